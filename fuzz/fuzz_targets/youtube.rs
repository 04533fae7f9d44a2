//! The YouTube parser: any responses at any step, and any flow state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc_guest::youtube::{Job, Response, Step, resume, start};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 {
        // A forged state.
        let _ = resume(rest, Ok(Response { status: 200, body: Vec::new() }));
        return;
    }
    // A real flow whose responses are the input, cut in up to 4 pieces at 0xFF bytes.
    let mut step = start(&Job {
        video_id: "dQw4w9WgXcQ",
        youtube_url: "https://www.youtube.com",
        now_unix: 1_700_000_000,
    });
    let mut bodies = rest.split(|b| *b == 0xFF);
    for _ in 0..6 {
        let Step::Fetch { state, .. } = step else {
            return;
        };
        let body = bodies.next().unwrap_or_default().to_vec();
        let status = if mode % 4 == 3 { 403 } else { 200 };
        step = resume(&state, Ok(Response { status, body }));
    }
});
