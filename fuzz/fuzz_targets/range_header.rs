//! HTTP `Range` headers against any stream length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc::http::video::range::{RangeRequest, resolve};

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let len = u64::from_le_bytes(*head);
    let Ok(header) = std::str::from_utf8(rest) else {
        return;
    };
    if let RangeRequest::Partial(r) = resolve(Some(header), len) {
        assert!(r.start <= r.end && r.end < len);
    }
});
