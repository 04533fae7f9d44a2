//! Signalling messages, as any participant of the room may send them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc::signal::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = Message::parse(text) {
        // What parses serialises again.
        let _ = message.to_json();
    }
});
