#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;

fn calls(p: &Policy) -> u64 {
    p.stats().calls.load(Ordering::Relaxed)
}

#[tokio::test]
async fn embedded_component_loads_and_answers() {
    let p = Policy::with_default(PolicyConfig::default()).await.unwrap();
    let d = p.description();
    assert!(d.name.starts_with("videortc-guest "), "{d:?}");
    assert_eq!(d.world, "0.2.1");
    assert_eq!(d.features, ["youtube"]);
    assert_eq!(p.ping_text(), r#"{"event":"ping"}"#);
    assert_eq!(
        p.decode(r#"{"event":"pong"}"#).await.unwrap(),
        Message::Pong
    );
    assert_eq!(
        p.decode(r#"{"event":"chat","data":"hi"}"#).await.unwrap(),
        Message::Ignored("chat".into())
    );
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}

/// A warm query or resolve is one `decide` call; a ping is one `decode`.
#[tokio::test]
async fn a_warm_decision_is_one_call() {
    let p = Policy::with_default(PolicyConfig::default()).await.unwrap();
    let meta = StreamMeta {
        itag: 251,
        mime: "audio/webm".into(),
        content_length: Some(300_000),
        init_range: Some(ByteRange { start: 0, end: 99 }),
        index_range: Some(ByteRange {
            start: 100,
            end: 199,
        }),
        fetchable: true,
    };
    let table = Arc::new(vec![
        ByteRange {
            start: 200,
            end: 120_199,
        },
        ByteRange {
            start: 120_200,
            end: 299_999,
        },
    ]);
    let mut request = Request {
        kind: RequestKind::Query,
        segment: SegmentRef {
            vid: "dQw4w9WgXcQ".into(),
            itag: 251,
            index: 1,
        },
        peer: "p".into(),
        now_ms: 1,
    };
    let before = calls(&p);
    let v = p
        .decide(&request, Some(&meta), TableArg::Loaded(&table))
        .await
        .unwrap();
    assert_eq!(
        v,
        Verdict::Reply(r#"{"event":"found","data":{"id":"dQw4w9WgXcQ:251","index":1}}"#.into())
    );
    request.kind = RequestKind::Resolve;
    let Verdict::Send(plan) = p
        .decide(&request, Some(&meta), TableArg::Loaded(&table))
        .await
        .unwrap()
    else {
        panic!("no send plan")
    };
    assert_eq!(plan.range, table[1]);
    assert_eq!(plan.headers.len(), 4 * 30);
    assert_eq!(&plan.headers[90..], b"[\"dQw4w9WgXcQ:251|1\",3,4]     ");
    assert_eq!(calls(&p) - before, 2);
    let before = calls(&p);
    assert_eq!(
        p.decode(r#"{"event":"ping"}"#).await.unwrap(),
        Message::Ping(r#"{"event":"pong"}"#.into())
    );
    assert_eq!(calls(&p) - before, 1);
}

/// Lending a table many times does not exhaust the store's handle table (a regression: owned
/// handles passed as borrows stayed in it until the store refused new ones).
#[tokio::test]
async fn lending_tables_does_not_leak_handles() {
    let p = Policy::with_default(PolicyConfig {
        instances: 1,
        ..PolicyConfig::default()
    })
    .await
    .unwrap();
    let meta = StreamMeta {
        itag: 251,
        mime: "audio/webm".into(),
        content_length: Some(1_000),
        init_range: Some(ByteRange { start: 0, end: 99 }),
        index_range: Some(ByteRange {
            start: 100,
            end: 199,
        }),
        fetchable: true,
    };
    let table = Arc::new(vec![ByteRange {
        start: 200,
        end: 999,
    }]);
    let request = Request {
        kind: RequestKind::Query,
        segment: SegmentRef {
            vid: "dQw4w9WgXcQ".into(),
            itag: 251,
            index: 0,
        },
        peer: "p".into(),
        now_ms: 0,
    };
    // The store allows 100,000 live handles.
    for _ in 0..101_000 {
        let v = p
            .decide(&request, Some(&meta), TableArg::Loaded(&table))
            .await
            .unwrap();
        assert!(matches!(v, Verdict::Reply(_)));
    }
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}
