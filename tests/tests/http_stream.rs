//! Media bytes through a real node: `Range` semantics byte for byte, `.ts` ranges, the
//! segment cache, streaming of large ranges, client disconnects stopping the origin
//! transfer, and origin failures. Each in BASE_URL mode (bytes from
//! `BASE_URL/{vid}/{itag}/{s}-{e}.ts`) and with stream URLs (`/media/...&range=`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::sync::atomic::Ordering;

use http_common::{client, eventually, get, node, origin, request};
use videortc_tests::node::{Node, free_port};
use videortc_tests::origin::{TestOrigin, VID, fixture_streams, synthetic_stream};

/// Where the node gets bytes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    BaseUrl,
    StreamUrl,
}

const MODES: [Mode; 2] = [Mode::BaseUrl, Mode::StreamUrl];

async fn setup(mode: Mode) -> (TestOrigin, Node) {
    let origin = origin(mode == Mode::StreamUrl).await;
    let node = node(&origin, &[]).await;
    (origin, node)
}

fn ext(mime: &str) -> &'static str {
    if mime.contains("webm") { "webm" } else { "mp4" }
}

/// A `Range` header, the expected status, the expected inclusive range.
type Case = (Option<String>, u16, Option<(u64, u64)>);

/// The cases for a stream of `len` bytes.
fn cases(len: u64) -> Vec<Case> {
    let l = len;
    vec![
        (None, 200, Some((0, l - 1))),
        (Some("bytes=0-0".into()), 206, Some((0, 0))),
        (Some("bytes=100-199".into()), 206, Some((100, 199))),
        (Some(format!("bytes={}-", l / 2)), 206, Some((l / 2, l - 1))),
        (Some("bytes=-500".into()), 206, Some((l - 500, l - 1))),
        (Some(format!("bytes=-{}", l + 10)), 206, Some((0, l - 1))),
        (
            Some(format!("bytes=10-{}", l + 100)),
            206,
            Some((10, l - 1)),
        ),
        (
            Some(format!("bytes={}-{}", l - 1, l - 1)),
            206,
            Some((l - 1, l - 1)),
        ),
        (Some(format!("bytes={l}-")), 416, None),
        (Some(format!("bytes={}-{}", l + 5, l + 9)), 416, None),
        (Some("bytes=-0".into()), 416, None),
        // Ignored (invalid or several ranges): the whole stream.
        (Some("bytes=5-1".into()), 200, Some((0, l - 1))),
        (Some("bytes=0-1,5-6".into()), 200, Some((0, l - 1))),
        (Some("pages=1-2".into()), 200, Some((0, l - 1))),
    ]
}

#[tokio::test]
async fn range_semantics_are_exact_in_both_modes() {
    for mode in MODES {
        let (origin, node) = setup(mode).await;
        for s in origin.streams.iter() {
            let url = format!("{}/video/{VID}/{}.{}", node.url(), s.itag, ext(&s.mime));
            let len = s.layout.len;
            for (range, status, want) in cases(len) {
                let headers: Vec<(&str, &str)> =
                    range.iter().map(|r| ("range", r.as_str())).collect();
                let got = get(&url, &headers).await;
                let what = format!("{mode:?} {} {range:?}", s.file);
                assert_eq!(got.status, status, "{what}: {}", got.text());
                assert_eq!(got.header("access-control-allow-origin"), "*", "{what}");
                match want {
                    Some((a, b)) => {
                        assert_eq!(&got.body[..], &s.bytes[a as usize..=b as usize], "{what}");
                        assert_eq!(got.header("content-length"), (b - a + 1).to_string());
                        assert_eq!(got.header("accept-ranges"), "bytes");
                        assert_eq!(got.header("cache-control"), "public, max-age=864000");
                        assert_eq!(Some(got.header("content-type")), s.mime.split(';').next());
                        assert_eq!(got.header("etag"), format!("\"{VID}-{}-{len}\"", s.itag));
                        if status == 206 {
                            assert_eq!(got.header("content-range"), format!("bytes {a}-{b}/{len}"));
                        } else {
                            assert_eq!(got.header("content-range"), "");
                        }
                    }
                    None => {
                        assert_eq!(
                            got.header("content-range"),
                            format!("bytes */{len}"),
                            "{what}"
                        );
                        assert_eq!(got.header("cache-control"), "", "{what}");
                    }
                }
            }
        }
        match mode {
            Mode::BaseUrl => assert_eq!(origin.control.hits_prefix("/media/"), 0),
            Mode::StreamUrl => {
                assert!(origin.control.hits_prefix("/media/") > 0);
                assert_eq!(origin.control.hits_prefix(&format!("/{VID}/")), 0);
            }
        }
    }
}

#[tokio::test]
async fn validators_and_head() {
    let (origin, node) = setup(Mode::BaseUrl).await;
    let s = origin.stream(137).unwrap();
    let url = format!("{}/video/{VID}/137.mp4", node.url());
    let etag = format!("\"{VID}-137-{}\"", s.layout.len);
    let before = origin.control.hits_prefix(&format!("/{VID}/137/"));
    let head = request(reqwest::Method::HEAD, &url, &[("range", "bytes=0-9")]).await;
    assert_eq!(head.status, 206);
    assert_eq!(head.header("content-length"), "10");
    assert!(head.body.is_empty());
    let not_modified = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(
        origin.control.hits_prefix(&format!("/{VID}/137/")),
        before,
        "no bytes fetched"
    );
    // If-Range with our validator keeps the range; another validator gets the whole stream.
    let kept = get(&url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(kept.status, 206);
    let whole = get(&url, &[("range", "bytes=0-9"), ("if-range", "\"other\"")]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(&whole.body[..], &s.bytes[..]);
}

#[tokio::test]
async fn ts_ranges_are_exact() {
    for mode in MODES {
        let (origin, node) = setup(mode).await;
        for s in origin.streams.iter() {
            let len = s.layout.len;
            for (a, b) in [(0, 0), (0, 999), (len / 3, len / 2), (len - 10, len - 1)] {
                let got = get(
                    &format!("{}/video/{VID}/{}/{a}-{b}.ts", node.url(), s.itag),
                    &[("range", "bytes=0-1")],
                )
                .await;
                assert_eq!(got.status, 200, "{mode:?} {} {a}-{b}", s.file);
                assert_eq!(&got.body[..], &s.bytes[a as usize..=b as usize]);
                assert_eq!(got.header("content-length"), (b - a + 1).to_string());
                assert_eq!(got.header("cache-control"), "public, max-age=864000");
            }
            let past = get(
                &format!("{}/video/{VID}/{}/0-{len}.ts", node.url(), s.itag),
                &[],
            )
            .await;
            assert_eq!(past.status, 416);
            assert_eq!(past.header("content-range"), format!("bytes */{len}"));
        }
    }
}

#[tokio::test]
async fn segment_ranges_are_served_from_the_cache() {
    for mode in MODES {
        let (origin, node) = setup(mode).await;
        for s in origin.streams.iter() {
            let seg = s.layout.segments[2];
            let (a, b) = (seg.start, seg.end);
            let url = format!("{}/video/{VID}/{}.{}", node.url(), s.itag, ext(&s.mime));
            for _ in 0..3 {
                let got = get(&url, &[("range", &format!("bytes={a}-{b}"))]).await;
                assert_eq!(got.status, 206);
                assert_eq!(&got.body[..], &s.bytes[a as usize..=b as usize]);
            }
            // A part of the segment, and the segment as a .ts range (another node's way).
            let part = get(&url, &[("range", &format!("bytes={}-{}", a + 10, b - 10))]).await;
            assert_eq!(&part.body[..], &s.bytes[a as usize + 10..=b as usize - 10]);
            let ts = get(
                &format!("{}/video/{VID}/{}/{a}-{b}.ts", node.url(), s.itag),
                &[],
            )
            .await;
            assert_eq!(&ts.body[..], &s.bytes[a as usize..=b as usize]);
            let hits = match mode {
                Mode::BaseUrl => origin
                    .control
                    .hits(&format!("/{VID}/{}/{a}-{b}.ts", s.itag)),
                Mode::StreamUrl => origin
                    .control
                    .hits(&format!("/media/{}?range={a}-{b}", s.file)),
            };
            assert_eq!(
                hits, 1,
                "{mode:?} {}: one origin request for the segment",
                s.file
            );
        }
    }
}

/// The fixtures plus an 8 MiB progressive stream (itag 22) without init/index ranges.
async fn big_origin(with_urls: bool) -> (TestOrigin, Vec<u8>) {
    let mut streams = fixture_streams().unwrap();
    let big = synthetic_stream(
        22,
        "big.mp4",
        "video/mp4; codecs=\"avc1.64001F, mp4a.40.2\"",
        8 << 20,
        7,
    );
    let bytes = big.bytes.to_vec();
    streams.push(big);
    let origin = TestOrigin::start(streams).await.unwrap();
    origin.control.plain.lock().unwrap().push(22);
    origin.control.with_urls.store(with_urls, Ordering::SeqCst);
    (origin, bytes)
}

#[tokio::test]
async fn large_ranges_stream_and_a_disconnect_stops_the_origin() {
    for mode in MODES {
        let (origin, bytes) = big_origin(mode == Mode::StreamUrl).await;
        let node = node(&origin, &[]).await;
        let url = format!("{}/video/{VID}/22.mp4", node.url());
        // Whole, and a large range: exact, one origin request each (too big to cache).
        let whole = get(&url, &[]).await;
        assert_eq!(whole.status, 200);
        assert!(whole.body[..] == bytes[..], "{mode:?} whole body differs");
        let part = get(&url, &[("range", "bytes=1000000-7999999")]).await;
        assert_eq!(part.status, 206);
        assert!(
            part.body[..] == bytes[1_000_000..8_000_000],
            "{mode:?} range differs"
        );
        let c = &origin.control.bodies;
        assert_eq!(c.finished.load(Ordering::SeqCst), 2);

        // Now slowly: 16 KiB every 20 ms would take 10 s. Read a little, then go away.
        origin
            .control
            .chunk_bytes
            .store(16 * 1024, Ordering::SeqCst);
        origin.control.chunk_delay_ms.store(20, Ordering::SeqCst);
        let mut resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut got = Vec::new();
        while got.len() < 100_000 {
            got.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
        }
        assert!(got[..] == bytes[..got.len()], "{mode:?} prefix differs");
        drop(resp);
        eventually(10, "the origin sees the transfer dropped", || {
            c.dropped.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(
            c.finished.load(Ordering::SeqCst),
            2,
            "{mode:?}: not sent to the end"
        );
        let sent = c.bytes.load(Ordering::SeqCst);
        assert!(
            sent < 2 * (8 << 20) + (4 << 20),
            "{mode:?}: {sent} bytes sent"
        );
    }
}

#[tokio::test]
async fn a_broken_origin_body_is_never_a_clean_short_response() {
    let (origin, _) = big_origin(false).await;
    // Cut after 2 MiB, sent slowly enough that the head and the first bytes are out first.
    origin.control.cut_after.store(2 << 20, Ordering::SeqCst);
    origin.control.chunk_delay_ms.store(2, Ordering::SeqCst);
    let node = node(&origin, &[]).await;
    let resp = client()
        .get(format!("{}/video/{VID}/22.mp4", node.url()))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.bytes().await;
    assert_eq!(status, 200, "{body:?}");
    assert!(body.is_err(), "the client must see the cut");
}

#[tokio::test]
async fn origin_failures_are_502_with_a_message() {
    let (origin, node) = setup(Mode::BaseUrl).await;
    // Warm the info and the segment table, then fail the next origin request (a range).
    let warm = get(&format!("{}/video/{VID}/137/0-9.ts", node.url()), &[]).await;
    assert_eq!(warm.status, 200);
    origin.control.fail_next.store(1, Ordering::SeqCst);
    let seg = origin.stream(137).unwrap().layout.segments[3];
    let url = format!(
        "{}/video/{VID}/137/{}-{}.ts",
        node.url(),
        seg.start,
        seg.end
    );
    let got = get(&url, &[]).await;
    assert_eq!(got.status, 502);
    assert!(got.text().contains("origin answered 500"), "{}", got.text());
    assert_eq!(got.header("cache-control"), "");
    // Not cached: the next request gets the bytes.
    let got = get(&url, &[]).await;
    assert_eq!(
        &got.body[..],
        &origin.stream(137).unwrap().bytes[seg.start as usize..=seg.end as usize]
    );

    // An origin that is not there at all.
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let lonely = Node::start(&[], &[("BASE_URL", dead.as_str())])
        .await
        .unwrap();
    let got = get(&format!("{}/video/{VID}.json", lonely.url()), &[]).await;
    assert_eq!(got.status, 502);
    assert!(
        got.json()["msg"]
            .as_str()
            .unwrap()
            .contains("connection failed")
    );
    let got = get(&format!("{}/video/{VID}/137.mp4", lonely.url()), &[]).await;
    assert_eq!(got.status, 502);
    // Without BASE_URL the node parses YouTube (YOUTUBE_URL), unreachable here: a 502 that
    // says which request failed.
    let closed = format!("http://127.0.0.1:{}", free_port().unwrap());
    let bare = Node::start(&[], &[("YOUTUBE_URL", closed.as_str())])
        .await
        .unwrap();
    let got = get(&format!("{}/video/{VID}.json", bare.url()), &[]).await;
    assert_eq!(got.status, 502, "{}", got.text());
    assert!(got.text().contains("request failed"), "{}", got.text());
}

#[tokio::test]
async fn streams_without_a_length_are_piped_with_the_clients_range() {
    let origin = origin(true).await;
    origin.control.no_len.lock().unwrap().push(251);
    let node = node(&origin, &[]).await;
    let s = origin.stream(251).unwrap();
    let url = format!("{}/video/{VID}/251.webm", node.url());
    let got = get(&url, &[("range", "bytes=100-299")]).await;
    assert_eq!(got.status, 206);
    assert_eq!(&got.body[..], &s.bytes[100..300]);
    assert_eq!(
        got.header("content-range"),
        format!("bytes 100-299/{}", s.layout.len)
    );
    assert_eq!(got.header("cache-control"), "public, max-age=864000");
    let sent = origin.control.headers.lock().unwrap()["/media/audio.webm?range="].clone();
    assert_eq!(sent.get("range").unwrap(), "bytes=100-299");
    let whole = get(&url, &[]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(&whole.body[..], &s.bytes[..]);

    // In BASE_URL mode without URLs such a stream cannot be ranged.
    let origin = http_common::origin(false).await;
    origin.control.no_len.lock().unwrap().push(251);
    let base_node = http_common::node(&origin, &[]).await;
    let got = get(&format!("{}/video/{VID}/251.webm", base_node.url()), &[]).await;
    assert_eq!(got.status, 502);
    assert!(got.text().contains("has no length"), "{}", got.text());
}

/// An origin slower than `ORIGIN_TIMEOUT` is a 504 with a message, for info, cached segment
/// bytes and streamed ranges alike; nothing of it is cached.
#[tokio::test]
async fn slow_origin_is_a_gateway_timeout() {
    for mode in MODES {
        let origin = origin(mode == Mode::StreamUrl).await;
        let slow = node(&origin, &[("ORIGIN_TIMEOUT", "1")]).await;
        let stream = origin.stream(137).unwrap();
        let seg = stream.layout.segments[1];
        let ts = format!(
            "{}/video/{VID}/137/{}-{}.ts",
            slow.url(),
            seg.start,
            seg.end
        );
        let got = get(&format!("{}/video/{VID}.json", slow.url()), &[]).await;
        assert_eq!(got.status, 200, "{mode:?}");

        origin.control.delay_ms.store(2500, Ordering::SeqCst);
        let got = get(&ts, &[]).await;
        assert_eq!(got.status, 504, "{mode:?}: {}", got.text());
        assert!(got.text().contains("timed out"), "{mode:?}: {}", got.text());
        assert_eq!(got.header("cache-control"), "");
        let got = get(&format!("{}/video/{VID}/137.mp4", slow.url()), &[]).await;
        assert_eq!(got.status, 504, "{mode:?}: {}", got.text());
        let other = format!("{}/video/{VID}/251.webm", slow.url());
        // Info of a video not yet cached times out the same way.
        let fresh = node(&origin, &[("ORIGIN_TIMEOUT", "1")]).await;
        let got = get(&format!("{}/video/{VID}.json", fresh.url()), &[]).await;
        assert_eq!(got.status, 504, "{mode:?}: {}", got.text());
        assert!(got.json()["msg"].as_str().unwrap().contains("timed out"));

        origin.control.delay_ms.store(0, Ordering::SeqCst);
        let got = get(&ts, &[]).await;
        assert_eq!(got.status, 200, "{mode:?}: {}", got.text());
        assert_eq!(
            &got.body[..],
            &stream.bytes[seg.start as usize..=seg.end as usize]
        );
        let got = get(&other, &[]).await;
        assert_eq!(got.status, 200, "{mode:?}");
        assert_eq!(&got.body[..], &origin.stream(251).unwrap().bytes[..]);
    }
}
