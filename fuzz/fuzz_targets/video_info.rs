//! VideoInfo JSON from a BASE_URL origin, and everything the node derives from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc::media::VideoInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = serde_json::from_slice::<VideoInfo>(data) else {
        return;
    };
    for (itag, stream) in &info.streams {
        let meta = stream.meta(itag.parse().unwrap_or(0), true);
        let _ = (meta.content_length, meta.init_range, meta.index_range);
    }
    let _ = serde_json::to_vec(&info.without_urls());
});
