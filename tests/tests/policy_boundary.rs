//! The same vectors natively and through the built component: decode, decisions (with the
//! segment table lent across the boundary), selection and id rules. The component must
//! agree with the rlib everywhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use proptest::prelude::*;
use videortc::policy::{self as wasm, Policy, PolicyConfig, TableArg};
use videortc_guest::{decision, protocol, selection, types as nt};

fn seg_w(s: &nt::SegmentRef) -> wasm::SegmentRef {
    wasm::SegmentRef {
        vid: s.vid.clone(),
        itag: s.itag,
        index: s.index,
    }
}

fn range_w(r: nt::ByteRange) -> wasm::ByteRange {
    wasm::ByteRange {
        start: r.start,
        end: r.end,
    }
}

fn message_matches(n: &protocol::Message, w: &wasm::Message) -> bool {
    use protocol::Message as N;
    use wasm::Message as W;
    match (n, w) {
        (N::Pong, W::Pong) | (N::QuitAll, W::QuitAll) => true,
        (N::Ping(a), W::Ping(b))
        | (N::Ignored(a), W::Ignored(b))
        | (N::Invalid(a), W::Invalid(b)) => a == b,
        (N::Query(a), W::Query(b)) | (N::Resolve(a), W::Resolve(b)) | (N::Quit(a), W::Quit(b)) => {
            seg_w(a) == *b
        }
        _ => false,
    }
}

fn meta_w(m: &nt::StreamMeta) -> wasm::StreamMeta {
    wasm::StreamMeta {
        itag: m.itag,
        mime: m.mime.clone(),
        content_length: m.content_length,
        init_range: m.init_range.map(range_w),
        index_range: m.index_range.map(range_w),
        fetchable: m.fetchable,
    }
}

async fn policy() -> Policy {
    Policy::with_default(PolicyConfig::default()).await.unwrap()
}

const MESSAGES: &[&str] = &[
    r#"{"event":"ping"}"#,
    r#"{"event":"pong"}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":3}}"#,
    r#"{"event":"resolve","data":{"id":"dQw4w9WgXcQ:137","index":0}}"#,
    r#"{"event":"quit","data":{"id":"dQw4w9WgXcQ:137","index":9}}"#,
    r#"{"event":"quit","data":{"id":"dQw4w9WgXcQ:137","index":"9"}}"#,
    r#"{"event":"quit","data":{"id":"","index":0}}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":-5}}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"5"}}"#,
    r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"x5"}}"#,
    r#"{"event":"chat","data":{"text":"hi"}}"#,
    r#"{"event":"nope"}"#,
    "not json",
    "",
];

#[tokio::test]
async fn decode_agrees() {
    let p = policy().await;
    for text in MESSAGES {
        let n = protocol::decode(text);
        let w = p.decode(text).await.unwrap();
        assert!(message_matches(&n, &w), "{text}: {n:?} vs {w:?}");
    }
    let big = format!(
        r#"{{"event":"query","data":{{"id":"{}","index":1}}}}"#,
        "x".repeat(60_000)
    );
    assert!(matches!(
        p.decode(&big).await.unwrap(),
        wasm::Message::Invalid(_)
    ));
    assert_eq!(p.ping_text(), protocol::encode_ping());
}

fn dash(itag: u32, mime: &str) -> nt::StreamMeta {
    nt::StreamMeta {
        itag,
        mime: mime.into(),
        content_length: Some(1 << 40),
        init_range: Some(nt::ByteRange { start: 0, end: 99 }),
        index_range: Some(nt::ByteRange {
            start: 100,
            end: 199,
        }),
        fetchable: true,
    }
}

/// `count` segments of `len` bytes from byte 200.
fn table(count: u64, len: u64) -> Vec<nt::ByteRange> {
    (0..count)
        .map(|k| nt::ByteRange {
            start: 200 + k * len,
            end: 200 + (k + 1) * len - 1,
        })
        .collect()
}

fn verdict_matches(n: &decision::Verdict, w: &wasm::Verdict) -> bool {
    use decision::Verdict as N;
    use wasm::Verdict as W;
    match (n, w) {
        (N::Reply(a), W::Reply(b)) => a == b,
        (N::Send(a), W::Send(b)) => {
            range_w(a.range) == b.range
                && a.payload_size == b.payload_size
                && a.header_size == b.header_size
                && a.headers == b.headers
        }
        (N::NeedIndex, W::NeedIndex) => true,
        (N::Silent(a), W::Silent(b)) => {
            format!("{a:?}") == format!("{b:?}").trim_start_matches("Silence::")
        }
        _ => false,
    }
}

#[tokio::test]
async fn decisions_agree_with_the_table_lent_across() {
    let p = policy().await;
    let streams = [
        dash(251, "audio/webm"),
        dash(140, "audio/mp4"),
        nt::StreamMeta {
            index_range: None,
            ..dash(18, "video/mp4")
        },
    ];
    let small = table(3, 120_000);
    let huge = table(13, 51_200 * 1000);
    let tables: [Option<&Vec<nt::ByteRange>>; 3] = [None, Some(&small), Some(&huge)];
    let mut compared = 0;
    for kind in [decision::RequestKind::Query, decision::RequestKind::Resolve] {
        for meta in [
            None,
            Some(&streams[0]),
            Some(&streams[1]),
            Some(&streams[2]),
        ] {
            for (vid, itag, index) in [
                ("dQw4w9WgXcQ", 251, 2),
                ("dQw4w9WgXcQ", 251, 3),
                ("dQw4w9WgXcQ", 251, 12),
                ("abcdefghijklmno", 251, 100),
                ("dQw4w9WgXcQ", 140, 0),
            ] {
                for (t, failed) in tables.iter().flat_map(|t| [(t, false), (t, true)]) {
                    let request = decision::Request {
                        kind,
                        segment: nt::SegmentRef {
                            vid: vid.into(),
                            itag,
                            index,
                        },
                        peer: "peer-1".into(),
                        now_ms: 42,
                    };
                    let n_state = match (t, failed) {
                        (Some(t), _) => decision::TableState::Loaded(*t),
                        (None, false) => decision::TableState::NotLoaded,
                        (None, true) => decision::TableState::Failed,
                    };
                    let n = decision::decide(&request, meta, n_state);
                    let lent = t.map(|t| Arc::new(t.iter().copied().map(range_w).collect()));
                    let arg = match (&lent, failed) {
                        (Some(t), _) => TableArg::Loaded(t),
                        (None, false) => TableArg::NotLoaded,
                        (None, true) => TableArg::Failed,
                    };
                    let w_request = wasm::Request {
                        kind: match kind {
                            decision::RequestKind::Query => wasm::RequestKind::Query,
                            decision::RequestKind::Resolve => wasm::RequestKind::Resolve,
                        },
                        segment: seg_w(&request.segment),
                        peer: request.peer.clone(),
                        now_ms: request.now_ms,
                    };
                    let w = p
                        .decide(&w_request, meta.map(meta_w).as_ref(), arg)
                        .await
                        .unwrap();
                    assert!(
                        verdict_matches(&n, &w),
                        "{request:?} {meta:?}: {n:?} vs {w:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 2 * 4 * 5 * 6);
    let s = p.stats();
    assert_eq!(
        s.traps.load(Ordering::Relaxed) + s.invalid.load(Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn selection_and_id_rules_agree() {
    let p = policy().await;
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
        for prefer in [vec![], vec![140], vec![136, 247], vec![5, 18]] {
            assert_eq!(
                p.pick(wp, &ws, &prefer).await.unwrap(),
                selection::pick(np, &streams, &prefer)
            );
        }
    }
    assert_eq!(
        p.parse_preference("18, 22").await.unwrap(),
        Ok(vec![18, 22])
    );
    assert!(p.parse_preference("18,abc").await.unwrap().is_err());
    for id in [
        "dQw4w9WgXcQ",
        "a-b_c1",
        "short",
        "abcdefghijklmnop",
        "bad id!",
        "ünicode1",
    ] {
        assert_eq!(
            p.valid_video_id(id).await.unwrap(),
            nt::valid_vid(id),
            "{id}"
        );
    }
    for itag in ["18", "251", "0", "018", "1000", "", "+1", "x"] {
        assert_eq!(
            p.parse_itag(itag).await.unwrap(),
            nt::parse_itag(itag),
            "{itag}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_text_decodes_the_same() {
    let p = Arc::new(
        Policy::with_default(PolicyConfig {
            instances: 1,
            ..PolicyConfig::default()
        })
        .await
        .unwrap(),
    );
    let handle = tokio::runtime::Handle::current();
    let q = p.clone();
    tokio::task::spawn_blocking(move || {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(500));
        let texts = prop_oneof![
            ".{0,200}",
            r#"\{"event":"(query|resolve|quit|chat)","data":\{"id":"[A-Za-z0-9_:-]{0,20}","index":-?[0-9]{1,12}\}\}"#,
            r#"\{"event":"(query|resolve|quit)","data":\{"id":"[A-Za-z0-9_:-]{0,20}","index":"[0-9+ -]{0,12}"\}\}"#,
        ];
        runner
            .run(&texts, |text| {
                let w = handle.block_on(q.decode(&text)).unwrap();
                prop_assert!(message_matches(&protocol::decode(&text), &w), "{text}");
                Ok(())
            })
            .unwrap();
    })
    .await
    .unwrap();
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}
