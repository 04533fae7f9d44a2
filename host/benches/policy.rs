//! Per-call cost of the policy through wasmtime (`Policy`) against the same logic native
//! (`videortc_guest`): decode of a typical query, the `found` decision, a 1,000-reference
//! `sidx`, the headers of a 5.8 MB segment; and the one-off cost of compiling and
//! self-checking the embedded component.
//!
//! Run with `cargo bench -p videortc --bench policy` (release).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use videortc::policy::{self as wasm, Policy, PolicyConfig};
use videortc_guest::{decision, framing, index, protocol, types as nt};

const QUERY: &str = r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":42}}"#;
const VID: &str = "dQw4w9WgXcQ";
const ITAG: u32 = 251;
/// A typical 5.8 MB segment (114 chunks of 51,200 bytes).
const SEGMENT_LEN: u64 = 5_800_000;
const REFERENCES: u32 = 1_000;
const REFERENCE_SIZE: u32 = 50_000;
/// Where the `sidx` box starts in the stream.
const INDEX_START: u64 = 741;

/// A version-0 `sidx` box with `count` references of `size` bytes and first_offset 0.
fn sidx(count: u32, size: u32) -> Vec<u8> {
    let len = 32 + 12 * count;
    let mut b = Vec::with_capacity(len as usize);
    b.extend(len.to_be_bytes());
    b.extend(*b"sidx");
    b.extend([0, 0, 0, 0]); // version 0, flags
    b.extend(1u32.to_be_bytes()); // reference_ID
    b.extend(48_000u32.to_be_bytes()); // timescale
    b.extend(0u32.to_be_bytes()); // earliest_presentation_time
    b.extend(0u32.to_be_bytes()); // first_offset
    b.extend(0u16.to_be_bytes()); // reserved
    b.extend(u16::try_from(count).unwrap().to_be_bytes()); // reference_count
    for _ in 0..count {
        b.extend(size.to_be_bytes()); // reference_type 0, referenced_size
        b.extend(240_000u32.to_be_bytes()); // subsegment_duration
        b.extend(0x9000_0000u32.to_be_bytes()); // starts with SAP, type 1
    }
    b
}

fn native_seg() -> nt::SegmentRef {
    nt::SegmentRef {
        vid: VID.into(),
        itag: ITAG,
        index: 42,
    }
}

fn wasm_seg() -> wasm::SegmentRef {
    wasm::SegmentRef {
        vid: VID.into(),
        itag: ITAG,
        index: 42,
    }
}

/// The stream of the `found` benchmark: servable, its table loaded, segment 42 present.
fn native_meta() -> nt::StreamMeta {
    nt::StreamMeta {
        itag: ITAG,
        mime: r#"audio/webm; codecs="opus""#.into(),
        content_length: Some(50_000_000),
        init_range: Some(nt::ByteRange { start: 0, end: 258 }),
        index_range: Some(nt::ByteRange {
            start: 259,
            end: 1_900,
        }),
        fetchable: true,
    }
}

fn wasm_meta() -> wasm::StreamMeta {
    wasm::StreamMeta {
        itag: ITAG,
        mime: r#"audio/webm; codecs="opus""#.into(),
        content_length: Some(50_000_000),
        init_range: Some(wasm::ByteRange { start: 0, end: 258 }),
        index_range: Some(wasm::ByteRange {
            start: 259,
            end: 1_900,
        }),
        fetchable: true,
    }
}

fn policy() -> Policy {
    Policy::with_default(PolicyConfig::default()).expect("the embedded policy loads")
}

fn decode_and_found(c: &mut Criterion) {
    let p = policy();
    let mut g = c.benchmark_group("query");

    g.bench_function("decode/native", |b| {
        b.iter(|| protocol::decode(black_box(QUERY)))
    });
    g.bench_function("decode/wasm", |b| {
        b.iter(|| p.decode(black_box(QUERY)).unwrap())
    });

    let (seg, meta) = (native_seg(), native_meta());
    let table = decision::TableState::Loaded(decision::SegmentLookup {
        count: 120,
        range: Some(nt::ByteRange {
            start: 2_000_000,
            end: 2_000_000 + SEGMENT_LEN - 1,
        }),
    });
    assert_eq!(
        decision::found(&seg, Some(&meta), table),
        decision::Verdict::Serve
    );
    g.bench_function("found/native", |b| {
        b.iter(|| decision::found(black_box(&seg), Some(black_box(&meta)), table))
    });

    let (wseg, wmeta) = (wasm_seg(), wasm_meta());
    let wtable = || {
        wasm::TableState::Loaded(wasm::SegmentLookup {
            count: 120,
            range: Some(wasm::ByteRange {
                start: 2_000_000,
                end: 2_000_000 + SEGMENT_LEN - 1,
            }),
        })
    };
    assert_eq!(
        p.found(&wseg, Some(&wmeta), wtable()).unwrap(),
        wasm::Verdict::Serve
    );
    g.bench_function("found/wasm", |b| {
        b.iter(|| {
            p.found(black_box(&wseg), Some(black_box(&wmeta)), wtable())
                .unwrap()
        })
    });
    g.finish();
}

fn sidx_parse(c: &mut Criterion) {
    let p = policy();
    let bytes = sidx(REFERENCES, REFERENCE_SIZE);
    let index_range = nt::ByteRange {
        start: INDEX_START,
        end: INDEX_START + bytes.len() as u64 - 1,
    };
    let content_length = index_range.end + 1 + u64::from(REFERENCES) * u64::from(REFERENCE_SIZE);
    let input = index::IndexInput {
        container: nt::Container::Mp4,
        index_range,
        content_length,
        index_bytes: &bytes,
        head_bytes: None,
    };
    assert_eq!(index::parse(&input).unwrap().len(), REFERENCES as usize);
    let winput = wasm::IndexInput {
        container: wasm::Container::Mp4,
        index_range: wasm::ByteRange {
            start: index_range.start,
            end: index_range.end,
        },
        content_length,
        index_bytes: bytes.clone(),
        head_bytes: None,
    };
    assert_eq!(
        p.parse_index(&winput).unwrap().unwrap().len(),
        REFERENCES as usize
    );

    let mut g = c.benchmark_group("sidx_1000");
    g.bench_function("native", |b| {
        b.iter(|| index::parse(black_box(&input)).unwrap())
    });
    g.bench_function("wasm", |b| {
        b.iter(|| p.parse_index(black_box(&winput)).unwrap().unwrap())
    });
    g.finish();
}

fn headers(c: &mut Criterion) {
    let p = policy();
    let (seg, wseg) = (native_seg(), wasm_seg());
    let native = framing::headers(&seg, SEGMENT_LEN).unwrap();
    assert_eq!(p.headers(&wseg, SEGMENT_LEN).unwrap().unwrap(), native);

    let mut g = c.benchmark_group("headers_5.8MB");
    g.bench_function("native", |b| {
        b.iter(|| framing::headers(black_box(&seg), black_box(SEGMENT_LEN)).unwrap())
    });
    g.bench_function("wasm", |b| {
        b.iter(|| {
            p.headers(black_box(&wseg), black_box(SEGMENT_LEN))
                .unwrap()
                .unwrap()
        })
    });
    g.finish();
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Engine + epoch thread + compile + instantiate + self-check.
    g.bench_function("with_default", |b| {
        b.iter(|| Policy::with_default(PolicyConfig::default()).unwrap())
    });
    // A hot swap on a running policy: compile + instantiate + self-check + swap.
    let p = policy();
    g.bench_function("hot_swap", |b| {
        b.iter(|| p.load(wasm::DEFAULT_COMPONENT, "embedded").unwrap())
    });
    g.finish();
}

criterion_group!(benches, decode_and_found, sidx_parse, headers, load);
criterion_main!(benches);
