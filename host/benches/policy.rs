//! Per-call cost of the policy through wasmtime (`Policy`, async calls) against the same
//! logic native (`videortc_guest`): decode of a typical query, a warm query decision, a warm
//! resolve decision (with every chunk header of a 5.8 MB segment), a 1,000-reference `sidx`;
//! and the one-off cost of compiling (or loading a precompiled) and self-checking a component.
//!
//! Run with `cargo bench -p videortc --bench policy` (release).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use videortc::policy::{self as wasm, Policy, PolicyConfig, TableArg};
use videortc_guest::{decision, index, protocol, types as nt};

const QUERY: &str = r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":42}}"#;
const VID: &str = "dQw4w9WgXcQ";
const ITAG: u32 = 251;
/// A typical 5.8 MB segment (114 chunks of 51,200 bytes).
const SEGMENT_LEN: u64 = 5_800_000;
const SEGMENTS: u64 = 120;
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

fn native_request(kind: decision::RequestKind) -> decision::Request {
    decision::Request {
        kind,
        segment: nt::SegmentRef {
            vid: VID.into(),
            itag: ITAG,
            index: 42,
        },
        peer: "zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r6r".into(),
        now_ms: 1_000,
    }
}

fn wasm_request(kind: wasm::RequestKind) -> wasm::Request {
    wasm::Request {
        kind,
        segment: wasm::SegmentRef {
            vid: VID.into(),
            itag: ITAG,
            index: 42,
        },
        peer: "zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r6r".into(),
        now_ms: 1_000,
    }
}

/// The stream of the decision benchmarks: servable, 120 segments of 5.8 MB.
fn native_meta() -> nt::StreamMeta {
    nt::StreamMeta {
        itag: ITAG,
        mime: r#"audio/webm; codecs="opus""#.into(),
        content_length: Some(2_000 + SEGMENTS * SEGMENT_LEN),
        init_range: Some(nt::ByteRange { start: 0, end: 258 }),
        index_range: Some(nt::ByteRange {
            start: 259,
            end: 1_999,
        }),
        fetchable: true,
    }
}

fn wasm_meta() -> wasm::StreamMeta {
    let m = native_meta();
    let r = |r: nt::ByteRange| wasm::ByteRange {
        start: r.start,
        end: r.end,
    };
    wasm::StreamMeta {
        itag: m.itag,
        mime: m.mime,
        content_length: m.content_length,
        init_range: m.init_range.map(r),
        index_range: m.index_range.map(r),
        fetchable: true,
    }
}

fn native_table() -> Vec<nt::ByteRange> {
    (0..SEGMENTS)
        .map(|k| nt::ByteRange {
            start: 2_000 + k * SEGMENT_LEN,
            end: 2_000 + (k + 1) * SEGMENT_LEN - 1,
        })
        .collect()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn policy(rt: &Runtime) -> Policy {
    rt.block_on(Policy::with_default(PolicyConfig::default()))
        .expect("the embedded policy loads")
}

fn decisions(c: &mut Criterion) {
    let rt = runtime();
    let p = policy(&rt);
    let mut g = c.benchmark_group("policy");

    g.bench_function("decode/native", |b| {
        b.iter(|| protocol::decode(black_box(QUERY)))
    });
    g.bench_function("decode/wasm", |b| {
        b.to_async(&rt)
            .iter(|| async { p.decode(black_box(QUERY)).await.unwrap() })
    });

    let meta = native_meta();
    let table = native_table();
    let wmeta = wasm_meta();
    let wtable = Arc::new(
        table
            .iter()
            .map(|r| wasm::ByteRange {
                start: r.start,
                end: r.end,
            })
            .collect::<Vec<_>>(),
    );
    for (name, kind, wkind) in [
        (
            "query",
            decision::RequestKind::Query,
            wasm::RequestKind::Query,
        ),
        (
            "resolve",
            decision::RequestKind::Resolve,
            wasm::RequestKind::Resolve,
        ),
    ] {
        let req = native_request(kind);
        let wreq = wasm_request(wkind);
        let n = decision::decide(&req, Some(&meta), decision::TableState::Loaded(&table));
        assert!(matches!(
            n,
            decision::Verdict::Reply(_) | decision::Verdict::Send(_)
        ));
        g.bench_function(format!("decide_{name}/native"), |b| {
            b.iter(|| {
                decision::decide(
                    black_box(&req),
                    Some(&meta),
                    decision::TableState::Loaded(&table),
                )
            })
        });
        g.bench_function(format!("decide_{name}/wasm"), |b| {
            b.to_async(&rt).iter(|| async {
                p.decide(black_box(&wreq), Some(&wmeta), TableArg::Loaded(&wtable))
                    .await
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn sidx_parse(c: &mut Criterion) {
    let rt = runtime();
    let p = policy(&rt);
    let bytes = sidx(REFERENCES, REFERENCE_SIZE);
    let index_range = nt::ByteRange {
        start: INDEX_START,
        end: INDEX_START + bytes.len() as u64 - 1,
    };
    let content_length = index_range.end + 1 + u64::from(REFERENCES) * u64::from(REFERENCE_SIZE);
    let meta = nt::StreamMeta {
        itag: 140,
        mime: "audio/mp4".into(),
        content_length: Some(content_length),
        init_range: Some(nt::ByteRange {
            start: 0,
            end: INDEX_START - 1,
        }),
        index_range: Some(index_range),
        fetchable: true,
    };
    assert_eq!(
        index::parse_fetched(&meta, index_range, &bytes)
            .unwrap()
            .len(),
        REFERENCES as usize
    );
    let r = |r: nt::ByteRange| wasm::ByteRange {
        start: r.start,
        end: r.end,
    };
    let winput = wasm::IndexInput {
        meta: wasm::StreamMeta {
            itag: 140,
            mime: "audio/mp4".into(),
            content_length: Some(content_length),
            init_range: meta.init_range.map(r),
            index_range: Some(r(index_range)),
            fetchable: true,
        },
        fetched: r(index_range),
        bytes: bytes.clone(),
    };
    let parsed = rt.block_on(p.parse_index(&winput)).unwrap().unwrap();
    assert_eq!(parsed.len(), REFERENCES as usize);

    let mut g = c.benchmark_group("sidx_1000");
    g.bench_function("native", |b| {
        b.iter(|| index::parse_fetched(black_box(&meta), index_range, black_box(&bytes)).unwrap())
    });
    g.bench_function("wasm", |b| {
        b.to_async(&rt)
            .iter(|| async { p.parse_index(black_box(&winput)).await.unwrap().unwrap() })
    });
    g.finish();
}

fn load(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Engine + epoch thread + compile + instantiate + self-check.
    g.bench_function("with_default", |b| {
        b.to_async(&rt)
            .iter(|| async { Policy::with_default(PolicyConfig::default()).await.unwrap() })
    });
    // A hot swap on a running policy: compile + instantiate + self-check + swap.
    let p = policy(&rt);
    g.bench_function("hot_swap", |b| {
        b.to_async(&rt).iter(|| async {
            p.load(wasm::DEFAULT_COMPONENT.to_vec(), "embedded")
                .await
                .unwrap()
        })
    });
    // The same from a `compile-policy` file: no compilation.
    let cwasm = wasm::precompile(wasm::DEFAULT_COMPONENT).unwrap();
    g.bench_function("hot_swap_precompiled", |b| {
        b.to_async(&rt)
            .iter(|| async { p.load(cwasm.clone(), "embedded.cwasm").await.unwrap() })
    });
    g.finish();
}

criterion_group!(benches, decisions, sidx_parse, load);
criterion_main!(benches);
