//! MP4 `sidx` segment tables: any bytes as the index of a stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc_guest::index::parse_fetched;
use videortc_guest::types::{ByteRange, StreamMeta};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes pick the stream's length; the rest is the index at offset 100.
    let (len, bytes) = match data.split_first_chunk::<8>() {
        Some((head, rest)) => (u64::from_le_bytes(*head), rest),
        None => return,
    };
    if bytes.is_empty() {
        return;
    }
    let index = ByteRange {
        start: 100,
        end: 100 + bytes.len() as u64 - 1,
    };
    let meta = StreamMeta {
        itag: 140,
        mime: "audio/mp4".into(),
        content_length: Some(len),
        init_range: Some(ByteRange { start: 0, end: 99 }),
        index_range: Some(index),
        fetchable: true,
    };
    if let Ok(table) = parse_fetched(&meta, index, bytes) {
        // What the parser promises: ascending, disjoint, non-empty, inside the stream.
        let mut next = 0;
        for r in &table {
            assert!(r.start <= r.end && r.start >= next && r.end < len);
            next = r.end + 1;
        }
    }
});
