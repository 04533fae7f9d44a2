//! DataChannel text messages, as any peer may send them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc_guest::protocol::{Message, decode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode(text) {
        Message::Invalid(reason) => assert!(reason.len() < 200),
        Message::Ignored(event) => assert!(event.len() <= 40),
        _ => {}
    }
});
