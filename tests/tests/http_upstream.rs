//! `UPSTREAM`: a real node balancing `/video/...` over recording stand-ins and over another
//! real node, retrying once on the next upstream, never leaking cookies or client addresses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::sync::atomic::Ordering;

use http_common::{client, eventually, get, node};
use videortc_tests::node::{Node, free_port};
use videortc_tests::origin::{TestOrigin, VID, fixture_streams, synthetic_stream};
use videortc_tests::stand_in::{Behaviour, Recorder};

const PRIVATE: [(&str, &str); 3] = [
    ("cookie", "session=1"),
    ("x-forwarded-for", "10.1.2.3"),
    ("forwarded", "for=10.1.2.3"),
];

async fn balancer(upstreams: &[String]) -> Node {
    let list = upstreams.join(";");
    Node::start(&[], &[("UPSTREAM", list.as_str())])
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failing_upstream_is_retried_on_the_next() {
    let bad = Recorder::start("bad", Behaviour::Fail(500)).await.unwrap();
    let good = Recorder::start("good", Behaviour::Ok).await.unwrap();
    let node = balancer(&[bad.url(), good.url()]).await;
    let n = 30;
    for i in 0..n {
        let mut headers = PRIVATE.to_vec();
        headers.push(("x-client", "kept"));
        let got = get(&format!("{}/video/{VID}.json?i={i}", node.url()), &headers).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("x-upstream"), "good");
        assert_eq!(
            got.text(),
            format!("good GET /base/video/{VID}.json?i={i} 0")
        );
        assert_eq!(got.header("set-cookie"), "", "Set-Cookie removed");
        assert!(got.headers.get_all("set-cookie").iter().next().is_none());
        assert_eq!(got.header("cache-control"), "public, max-age=864000");
    }
    assert_eq!(good.seen.hits("/base/video/"), n);
    // The random first pick lands on `bad` about half the time (at least once in 30 but
    // for a 2^-30 chance); each such request was retried on `good`.
    let bad_hits = bad.seen.hits("/base/video/");
    assert!(bad_hits >= 1 && bad_hits <= n, "{bad_hits}");
    for (path, h) in bad
        .seen
        .requests()
        .iter()
        .chain(good.seen.requests().iter())
    {
        for (name, _) in PRIVATE {
            assert!(
                h.get(name).is_none(),
                "{name} reached the upstream for {path}"
            );
        }
        assert_eq!(h.get("x-client").unwrap(), "kept");
    }
}

#[tokio::test]
async fn a_single_upstream_is_retried_itself() {
    let flaky = Recorder::start("flaky", Behaviour::FailFirst)
        .await
        .unwrap();
    let node = balancer(&[flaky.url()]).await;
    let got = get(&format!("{}/video/x/y/z", node.url()), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(flaky.seen.hits("/base/video/x/y/z"), 2);
}

#[tokio::test]
async fn the_retrys_answer_is_final() {
    let a = Recorder::start("a", Behaviour::Fail(503)).await.unwrap();
    let b = Recorder::start("b", Behaviour::Fail(404)).await.unwrap();
    let node = balancer(&[a.url(), b.url()]).await;
    for _ in 0..4 {
        let got = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
        // Whichever was tried second answered.
        match got.header("x-upstream") {
            "a" => assert_eq!(got.status, 503),
            "b" => assert_eq!(got.status, 404),
            other => panic!("answer from {other:?}"),
        }
    }
    assert_eq!(
        a.seen.hits("/base/") + b.seen.hits("/base/"),
        8,
        "two tries each"
    );

    // Nobody there at all: a 502 with a message, not a hang.
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let node = balancer(&[dead]).await;
    let got = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
    assert_eq!(got.status, 502);
    assert!(got.text().contains("connection failed"), "{}", got.text());
}

#[tokio::test]
async fn a_dead_upstream_then_a_real_node_serves_exact_bytes_streamed() {
    let mut streams = fixture_streams().unwrap();
    let big = synthetic_stream(22, "big.mp4", "video/mp4", 4 << 20, 3);
    let big_bytes = big.bytes.clone();
    streams.push(big);
    let origin = TestOrigin::start(streams).await.unwrap();
    origin.control.plain.lock().unwrap().push(22);
    let inner = node(&origin, &[]).await;
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let edge = balancer(&[dead, inner.url()]).await;

    let direct = get(&format!("{}/video/{VID}.json", inner.url()), &[]).await;
    for _ in 0..6 {
        let got = get(&format!("{}/video/{VID}.json", edge.url()), &[]).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, direct.body);
        assert_eq!(got.header("access-control-allow-origin"), "*");
    }
    let s = origin.stream(251).unwrap();
    let got = get(
        &format!("{}/video/{VID}/251.webm", edge.url()),
        &[("range", "bytes=1000-")],
    )
    .await;
    assert_eq!(got.status, 206);
    assert_eq!(&got.body[..], &s.bytes[1000..]);
    assert_eq!(
        got.header("content-range"),
        format!("bytes 1000-{}/{}", s.layout.len - 1, s.layout.len)
    );

    // Streamed through both nodes; a client that leaves stops the origin transfer.
    let whole = get(&format!("{}/video/{VID}/22.mp4", edge.url()), &[]).await;
    assert!(whole.body == big_bytes);
    origin
        .control
        .chunk_bytes
        .store(16 * 1024, Ordering::SeqCst);
    origin.control.chunk_delay_ms.store(20, Ordering::SeqCst);
    let mut resp = client()
        .get(format!("{}/video/{VID}/22.mp4", edge.url()))
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], &big_bytes[..first.len()]);
    drop(resp);
    let bodies = &origin.control.bodies;
    eventually(10, "the origin sees the transfer dropped", || {
        bodies.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}
