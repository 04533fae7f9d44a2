//! The same vectors natively and through the built component: decode, framing, decisions,
//! selection. The component must agree with the rlib everywhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use videortc::policy::{self as wasm, Policy, PolicyConfig};
use videortc_guest::{decision, framing, protocol, selection, types as nt};

fn seg_w(s: &nt::SegmentRef) -> wasm::SegmentRef {
    wasm::SegmentRef {
        vid: s.vid.clone(),
        itag: s.itag,
        index: s.index,
    }
}

fn message_matches(n: &protocol::Message, w: &wasm::Message) -> bool {
    use protocol::Message as N;
    use wasm::Message as W;
    match (n, w) {
        (N::Ping, W::Ping) | (N::Pong, W::Pong) | (N::QuitAll, W::QuitAll) => true,
        (N::Query(a), W::Query(b)) | (N::Resolve(a), W::Resolve(b)) | (N::Quit(a), W::Quit(b)) => {
            seg_w(a) == *b
        }
        (N::Invalid(a), W::Invalid(b)) => a == b,
        _ => false,
    }
}

fn meta_w(m: &nt::StreamMeta) -> wasm::StreamMeta {
    let r = |r: nt::ByteRange| wasm::ByteRange {
        start: r.start,
        end: r.end,
    };
    wasm::StreamMeta {
        itag: m.itag,
        mime: m.mime.clone(),
        content_length: m.content_length,
        init_range: m.init_range.map(r),
        index_range: m.index_range.map(r),
        fetchable: m.fetchable,
    }
}

const MESSAGES: &[&str] = &[
    r#"{"event":"ping"}"#,
    r#"{"event":"pong"}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":3}}"#,
    r#"{"event":"resolve","data":{"id":"dQw4w9WgXcQ:137","index":0}}"#,
    r#"{"event":"quit","data":{"id":"dQw4w9WgXcQ:137","index":9}}"#,
    r#"{"event":"quit","data":{"id":"","index":0}}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":-5}}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"5"}}"#,
    r#"{"event":"nope"}"#,
    "not json",
    "",
];

#[test]
fn decode_agrees_and_round_trips() {
    let p = Policy::with_default(PolicyConfig::default()).unwrap();
    for text in MESSAGES {
        let n = protocol::decode(text);
        let w = p.decode(text).unwrap();
        assert!(message_matches(&n, &w), "{text}: {n:?} vs {w:?}");
    }
    let big = format!(
        r#"{{"event":"query","data":{{"id":"{}","index":1}}}}"#,
        "x".repeat(60_000)
    );
    assert!(matches!(p.decode(&big).unwrap(), wasm::Message::Invalid(_)));
    let s = nt::SegmentRef {
        vid: "dQw4w9WgXcQ".into(),
        itag: 251,
        index: 3,
    };
    assert_eq!(
        p.encode_found(&seg_w(&s)).unwrap(),
        protocol::encode_found(&s)
    );
    assert_eq!(p.encode_pong().unwrap(), r#"{"event":"pong"}"#);
    assert_eq!(p.encode_ping().unwrap(), r#"{"event":"ping"}"#);
}

#[test]
fn framing_agrees() {
    let p = Policy::with_default(PolicyConfig::default()).unwrap();
    let s = nt::SegmentRef {
        vid: "dQw4w9WgXcQ".into(),
        itag: 251,
        index: 12,
    };
    for len in [
        1u64,
        51_199,
        51_200,
        51_201,
        5_800_000,
        51_200 * 999,
        51_200 * 1000,
    ] {
        let n = framing::headers(&s, len);
        let w = p.headers(&seg_w(&s), len).unwrap();
        match (n, w) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{len}"),
            (
                Err(framing::FrameError::HeaderTooLong(a)),
                Err(wasm::FrameError::HeaderTooLong(b)),
            ) => {
                assert_eq!(a, b)
            }
            (a, b) => panic!("{len}: {a:?} vs {b:?}"),
        }
    }
    let h = p.header(&seg_w(&s), 7, 114).unwrap().unwrap();
    assert_eq!(h, b"[\"dQw4w9WgXcQ:251|12\",7,114]  ".to_vec());
    assert_eq!(
        p.plan(&seg_w(&s), 0).unwrap(),
        Err(wasm::FrameError::EmptySegment)
    );
    assert_eq!(
        p.header(&seg_w(&s), 3, 3).unwrap(),
        Err(wasm::FrameError::ChunkOutOfRange)
    );
}

#[test]
fn selection_and_decisions_agree() {
    let p = Policy::with_default(PolicyConfig::default()).unwrap();
    let dash = |itag: u32, mime: &str| nt::StreamMeta {
        itag,
        mime: mime.into(),
        content_length: Some(100_000),
        init_range: Some(nt::ByteRange { start: 0, end: 99 }),
        index_range: Some(nt::ByteRange {
            start: 100,
            end: 199,
        }),
        fetchable: true,
    };
    let streams = vec![
        dash(140, "audio/mp4"),
        dash(251, "audio/webm"),
        dash(136, "video/mp4"),
        dash(247, "video/webm"),
        nt::StreamMeta {
            itag: 18,
            mime: "video/mp4".into(),
            fetchable: true,
            ..Default::default()
        },
    ];
    let ws: Vec<wasm::StreamMeta> = streams.iter().map(meta_w).collect();
    for (np, wp) in [
        (selection::Purpose::MpdAudio, wasm::Purpose::MpdAudio),
        (selection::Purpose::MpdVideo, wasm::Purpose::MpdVideo),
        (selection::Purpose::Progressive, wasm::Purpose::Progressive),
    ] {
        assert_eq!(
            p.default_preference(wp).unwrap(),
            selection::default_preference(np).to_vec()
        );
        for prefer in [vec![], vec![140], vec![136, 247], vec![5, 18]] {
            assert_eq!(
                p.pick(wp, &ws, &prefer).unwrap(),
                selection::pick(np, &streams, &prefer)
            );
        }
    }
    assert_eq!(p.parse_preference("18, 22").unwrap(), Ok(vec![18, 22]));
    assert!(p.parse_preference("18,abc").unwrap().is_err());
    let seg = nt::SegmentRef {
        vid: "dQw4w9WgXcQ".into(),
        itag: 251,
        index: 2,
    };
    let lookup = |count, len: u64| decision::SegmentLookup {
        count,
        range: Some(nt::ByteRange {
            start: 500,
            end: 500 + len - 1,
        }),
    };
    let cases = [
        (None, decision::TableState::NotLoaded),
        (Some(&streams[1]), decision::TableState::NotLoaded),
        (Some(&streams[1]), decision::TableState::Failed),
        (
            Some(&streams[1]),
            decision::TableState::Loaded(lookup(3, 1000)),
        ),
        (
            Some(&streams[1]),
            decision::TableState::Loaded(lookup(2, 1000)),
        ),
        (
            Some(&streams[0]),
            decision::TableState::Loaded(lookup(3, 1000)),
        ),
        (Some(&streams[4]), decision::TableState::NotLoaded),
    ];
    for (meta, table) in cases {
        let n = decision::found(&seg, meta, table);
        let wt = match table {
            decision::TableState::NotLoaded => wasm::TableState::NotLoaded,
            decision::TableState::Failed => wasm::TableState::Failed,
            decision::TableState::Loaded(l) => wasm::TableState::Loaded(wasm::SegmentLookup {
                count: l.count,
                range: l.range.map(|r| wasm::ByteRange {
                    start: r.start,
                    end: r.end,
                }),
            }),
        };
        let w = p
            .found(&seg_w(&seg), meta.map(meta_w).as_ref(), wt)
            .unwrap();
        let same = matches!(
            (n, &w),
            (decision::Verdict::Serve, wasm::Verdict::Serve)
                | (decision::Verdict::NeedIndex, wasm::Verdict::NeedIndex)
        ) || matches!((n, &w), (decision::Verdict::Silent(a), wasm::Verdict::Silent(b)) if silence_name(a) == silence_name_w(b));
        assert!(same, "{meta:?} {table:?}: {n:?} vs {w:?}");
    }
}

fn silence_name(s: decision::Silence) -> &'static str {
    match s {
        decision::Silence::UnknownStream => "unknown-stream",
        decision::Silence::NotServable => "not-servable",
        decision::Silence::IndexUnavailable => "index-unavailable",
        decision::Silence::IndexOutOfRange => "index-out-of-range",
        decision::Silence::HeaderTooLong => "header-too-long",
    }
}

fn silence_name_w(s: &wasm::Silence) -> &'static str {
    match s {
        wasm::Silence::UnknownStream => "unknown-stream",
        wasm::Silence::NotServable => "not-servable",
        wasm::Silence::IndexUnavailable => "index-unavailable",
        wasm::Silence::IndexOutOfRange => "index-out-of-range",
        wasm::Silence::HeaderTooLong => "header-too-long",
    }
}

#[test]
fn any_text_decodes_the_same() {
    let p = Policy::with_default(PolicyConfig {
        instances: 1,
        ..PolicyConfig::default()
    })
    .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(500));
    let texts = prop_oneof![
        ".{0,200}",
        r#"\{"event":"(query|resolve|quit)","data":\{"id":"[A-Za-z0-9_:-]{0,20}","index":-?[0-9]{1,12}\}\}"#,
    ];
    runner
        .run(&texts, |text| {
            let w = p.decode(&text).unwrap();
            prop_assert!(message_matches(&protocol::decode(&text), &w), "{text}");
            Ok(())
        })
        .unwrap();
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}
