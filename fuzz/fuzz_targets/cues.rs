//! WebM `Cues` segment tables: any bytes as the head and index of a stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videortc_guest::index::parse_fetched;
use videortc_guest::types::{ByteRange, StreamMeta};

fuzz_target!(|data: &[u8]| {
    // Byte 0 (and 1) say where the index starts inside the bytes; bytes 2..10 the length.
    let Some((&[a, b], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let Some((head, bytes)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let len = u64::from_le_bytes(*head);
    let at = usize::from(u16::from_le_bytes([a, b])).min(bytes.len().saturating_sub(1));
    if bytes.is_empty() {
        return;
    }
    let end = bytes.len() as u64 - 1;
    let meta = StreamMeta {
        itag: 251,
        mime: "audio/webm".into(),
        content_length: Some(len),
        init_range: Some(ByteRange { start: 0, end: 0 }),
        index_range: Some(ByteRange {
            start: at as u64,
            end,
        }),
        fetchable: true,
    };
    if let Ok(table) = parse_fetched(&meta, ByteRange { start: 0, end }, bytes) {
        let mut next = 0;
        for r in &table {
            assert!(r.start <= r.end && r.start >= next && r.end < len);
            next = r.end + 1;
        }
    }
});
