//! `/video/...` paths and obfuscated ids (`CODE_PASS`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc::http::video::{ids, path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = path::parse(text);
    if let Ok(vid) = ids::decode_vid(text, 3, 7) {
        // Decoding inverts encoding.
        assert_eq!(ids::encode_vid(&vid, 3, 7).as_deref(), Some(text));
    }
});
