//! End to end with the browsers we serve: a real signalling server (`videortc signal`), the test
//! origin (`BASE_URL`), the real `videortc` binary with `ID`/`WS_ADDR`/`RTC_LOOPBACK=1`, and
//! browser peers in headless Chromium (`tests/browser/peer.js`, driven over CDP).
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM=...`) and ffmpeg (`big.mp4`): missing
//! either fails the tests. Tests run one at a time (each starts its own Chromium and node).
//! `NODE_LOG=debug` / `SIGNAL_LOG=debug` / `BROWSER_LOG=1` make the processes talk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use sha2::{Digest, Sha256};
use videortc_tests::browser::at;
use videortc_tests::components::{CHAOS, CURATED};
use videortc_tests::mesh::{
    BIG_ITAG, Mesh, Resolved, SignalServer, WebPeer, big_stream, chunk_count,
};
use videortc_tests::origin::{Stream, TestOrigin, VID, fixture_streams};
use videortc_tests::youtube::YouTubeStandIn;

/// One test at a time: each runs Chromium, a node and a signalling server on 2 cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const JOIN: Duration = Duration::from_secs(20);
const SILENCE: Duration = Duration::from_millis(2500);

/// Runs `body` alone and within `limit` (not counting the build of the node binary).
async fn serial<F: Future<Output = ()>>(limit: Duration, body: F) {
    let _one = SERIAL.lock().await;
    tokio::task::spawn_blocking(videortc_tests::node::binary)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {limit:?}"));
}

async fn mesh(with_big: bool) -> Mesh {
    let mut streams = fixture_streams().unwrap();
    if with_big {
        streams.push(big_stream(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap());
    }
    Mesh::new(streams).await.unwrap()
}

/// A mesh whose node has joined the signalling server.
async fn mesh_with_node(with_big: bool) -> Mesh {
    let mut m = mesh(with_big).await;
    m.start_node(&[]).await.unwrap();
    m.signal.wait_joined(&m.node_id, JOIN).await.unwrap();
    m
}

fn sid(itag: u32) -> String {
    format!("{VID}:{itag}")
}

fn stream(origin: &TestOrigin, itag: u32) -> &Stream {
    origin.stream(itag).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The true bytes of segment `index` of `itag`.
fn segment(origin: &TestOrigin, itag: u32, index: usize) -> &[u8] {
    let s = stream(origin, itag);
    let r = s.layout.segments[index];
    &s.bytes[r.start as usize..=r.end as usize]
}

fn assert_exact(got: &Resolved, origin: &TestOrigin, itag: u32, index: usize, who: &str) {
    let want = segment(origin, itag, index);
    let what = format!("{who}: {} segment {index}", sid(itag));
    assert_eq!(got.len, want.len() as u64, "{what}: length");
    assert_eq!(got.sha256, sha256_hex(want), "{what}: bytes differ");
    assert_eq!(
        got.chunks,
        chunk_count(want.len() as u64),
        "{what}: chunk count"
    );
    assert_eq!(got.dups, 0, "{what}: duplicate chunks");
    assert!(got.problems.is_empty(), "{what}: {:?}", got.problems);
    if got.chunks > 1 {
        assert_eq!(got.payload, Some(51_200), "{what}: payload size");
    }
}

async fn resolve_exact(peer: &WebPeer, origin: &TestOrigin, itag: u32, index: usize) -> Resolved {
    let got = peer.resolve(&sid(itag), index as u32).await.unwrap();
    assert_exact(&got, origin, itag, index, &peer.me);
    got
}

/// The browser saw no malformed chunk header on its link to the node.
async fn assert_clean_link(peer: &WebPeer) -> Value {
    let stats = peer.stats().await.unwrap();
    assert_eq!(at(&stats, "/link/badHeaders").as_u64(), Some(0), "{stats}");
    let errors = at(&stats, "/link/errors")
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(errors.is_empty(), "browser-side errors: {errors:?}");
    stats
}

async fn wait_stat(peer: &WebPeer, pointer: &str, min: u64, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let stats = peer.stats().await.unwrap();
        if at(&stats, pointer).as_u64().unwrap_or(0) >= min {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pointer} < {min} after {limit:?}: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two peer.js peers connect, both roles, without a node: the harness itself works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_browser_peers_connect_to_each_other() {
    serial(Duration::from_secs(60), async {
        let mut m = mesh(false).await;
        let (pa, pb) = (m.page().await.unwrap(), m.page().await.unwrap());
        let (ida, idb) = (
            videortc_tests::mesh::peer_id("browser", 1),
            videortc_tests::mesh::peer_id("browser", 2),
        );
        let a = m.peer_to(&pa, &idb).await.unwrap();
        assert_eq!(a.me, ida);
        m.signal.wait_joined(&ida, JOIN).await.unwrap();
        let b = m.peer_to(&pb, &ida).await.unwrap();
        a.ready(JOIN).await.unwrap();
        b.ready(JOIN).await.unwrap();
        a.ping().await.unwrap();
        b.ping().await.unwrap();
        // a was online first, so a initiated (libwebrtc: the already-online peer offers).
        assert_eq!(
            at(&a.stats().await.unwrap(), "/link/offers").as_u64(),
            Some(1)
        );
        assert_eq!(
            at(&b.stats().await.unwrap(), "/link/answers").as_u64(),
            Some(1)
        );
    })
    .await;
}

/// Node online first: the node offers to the browser when it comes online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_node_first_node_offers() {
    serial(Duration::from_secs(90), async {
        let mut m = mesh_with_node(false).await;
        let page = m.page().await.unwrap();
        let peer = m.peer(&page).await.unwrap();
        peer.ready(JOIN).await.unwrap();
        let stats = peer.stats().await.unwrap();
        let inits = at(&stats, "/signal/inits/0")
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            inits.contains(&Value::from(m.node_id.clone())),
            "init: {stats}"
        );
        assert_eq!(at(&stats, "/link/offers").as_u64(), Some(0), "{stats}");
        assert!(at(&stats, "/link/answers").as_u64() >= Some(1), "{stats}");
        // SPEC §4: on channel open the node sends a ping (answered by the page).
        wait_stat(&peer, "/link/pingsIn", 1, Duration::from_secs(5)).await;
        peer.ping().await.unwrap();
        resolve_exact(&peer, &m.origin, 137, 0).await;
        assert_clean_link(&peer).await;
    })
    .await;
}

/// Browser online first: it offers when the node comes online, the node answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_browser_first_browser_offers() {
    serial(Duration::from_secs(90), async {
        let mut m = mesh(false).await;
        let page = m.page().await.unwrap();
        let peer = m.peer(&page).await.unwrap();
        m.signal.wait_joined(&peer.me, JOIN).await.unwrap();
        m.start_node(&[]).await.unwrap();
        peer.ready(JOIN).await.unwrap();
        let stats = peer.stats().await.unwrap();
        let onlines = at(&stats, "/signal/onlines")
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            onlines.contains(&Value::from(m.node_id.clone())),
            "online: {stats}"
        );
        assert!(at(&stats, "/link/offers").as_u64() >= Some(1), "{stats}");
        wait_stat(&peer, "/link/pingsIn", 1, Duration::from_secs(5)).await;
        peer.ping().await.unwrap();
        resolve_exact(&peer, &m.origin, 248, 0).await;
        assert_clean_link(&peer).await;
    })
    .await;
}

/// A page reload: the tab closes and a new one joins with the same peer id (libwebrtc keeps
/// it in sessionStorage). The node must drop the old connection and serve the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_the_same_id_is_served_again() {
    serial(Duration::from_secs(90), async {
        let mut m = mesh_with_node(false).await;
        let first = m.connected_peer().await.unwrap();
        resolve_exact(&first, &m.origin, 251, 0).await;
        first.page.close().await.unwrap();
        let page = m.page().await.unwrap();
        let again = m.peer_as(&page, &first.me, &m.node_id).await.unwrap();
        again.ready(JOIN).await.unwrap();
        again.ping().await.unwrap();
        resolve_exact(&again, &m.origin, 251, 1).await;
        assert_clean_link(&again).await;
    })
    .await;
}

/// The node's failure counters from `/metrics` (errors, traps, rejected results, dropped
/// work), for assertion messages.
async fn node_failures(m: &Mesh) -> String {
    let Some(node) = &m.node else {
        return "no node".into();
    };
    let text = match reqwest::get(format!("{}/metrics", node.url())).await {
        Ok(r) => r.text().await.unwrap_or_else(|e| e.to_string()),
        Err(e) => return format!("/metrics: {e}"),
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            ["error", "trap", "invalid", "dropped"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `found` exactly for segments that exist; silence for unknown video, itag, or index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_found_and_not_found() {
    serial(Duration::from_secs(90), async {
        let mut m = mesh_with_node(false).await;
        let peer = m.connected_peer().await.unwrap();
        let mut present = Vec::new();
        let mut absent = vec![
            ("unknownVid9:137".to_owned(), 0),
            (sid(22), 0),
            (format!("{VID}:"), 0),
            (VID.to_owned(), 0),
        ];
        for s in m.origin.streams.iter() {
            let n = s.layout.segments.len() as u32;
            present.extend([0, n / 2, n - 1].map(|i| (sid(s.itag), i)));
            absent.extend([n, n + 1000].map(|i| (sid(s.itag), i)));
        }
        let found = join_all(present.iter().map(|(id, i)| peer.query(id, *i, JOIN))).await;
        for ((id, i), f) in present.iter().zip(found) {
            if !f.unwrap() {
                panic!("no found for {id} {i}; node: {}", node_failures(&m).await);
            }
        }
        let found = join_all(absent.iter().map(|(id, i)| peer.query(id, *i, SILENCE))).await;
        for ((id, i), f) in absent.iter().zip(found) {
            assert!(!f.unwrap(), "found for {id} {i}, which does not exist");
        }
        peer.ping().await.unwrap();
        let stats = assert_clean_link(&peer).await;
        assert_eq!(
            at(&stats, "/link/binIn").as_u64(),
            Some(0),
            "queries sent data: {stats}"
        );
    })
    .await;
}

/// First, middle and last segment of each MP4 and WebM stream, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_is_byte_exact_mp4_and_webm() {
    serial(Duration::from_secs(120), async {
        let mut m = mesh_with_node(false).await;
        let peer = m.connected_peer().await.unwrap();
        for itag in [137, 140, 248, 251] {
            let n = stream(&m.origin, itag).layout.segments.len();
            for index in [0, n / 2, n - 1] {
                resolve_exact(&peer, &m.origin, itag, index).await;
            }
        }
        // Several queued at once on one channel: served in order, each complete.
        let segs: Vec<(u32, usize)> = (0..4)
            .map(|i| (140, i))
            .chain((0..3).map(|i| (251, i)))
            .collect();
        for (itag, i) in &segs {
            peer.start_resolve(&sid(*itag), *i as u32).await.unwrap();
        }
        for (itag, i) in &segs {
            let got = peer.finish(&sid(*itag), *i as u32).await.unwrap();
            assert_exact(&got, &m.origin, *itag, *i, &peer.me);
        }
        let stats = assert_clean_link(&peer).await;
        assert_eq!(at(&stats, "/link/stray").as_u64(), Some(0), "{stats}");
    })
    .await;
}

/// `quit` while a 5 MB segment is in flight stops it; the same segment resolves again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_in_flight_then_resolve_again() {
    serial(Duration::from_secs(120), async {
        let mut m = mesh_with_node(true).await;
        let peer = m.connected_peer().await.unwrap();
        let id = sid(BIG_ITAG);
        let len = segment(&m.origin, BIG_ITAG, 0).len() as u64;
        assert!(len > 4_000_000, "big.mp4 segment 0 is only {len} bytes");
        assert!(peer.query(&id, 0, JOIN).await.unwrap());
        peer.start_resolve_quitting(&id, 0, 3, false).await.unwrap();
        wait_progress(&peer, &id, 0, 3).await;
        peer.quiet(Duration::from_millis(1500), Duration::from_secs(20))
            .await
            .unwrap();
        let p = peer.progress(&id, 0).await.unwrap();
        let received = at(&p, "/received").as_u64().unwrap();
        assert_eq!(
            at(&p, "/complete").as_bool(),
            Some(false),
            "quit did not stop it: {p}"
        );
        assert!(
            received < len / 4,
            "{received} of {len} bytes arrived after quit: {p}"
        );
        eprintln!("quit in flight: {received} of {len} bytes arrived");
        peer.ping().await.unwrap();
        resolve_exact(&peer, &m.origin, BIG_ITAG, 0).await;
        assert_clean_link(&peer).await;
    })
    .await;
}

async fn wait_progress(peer: &WebPeer, id: &str, index: u32, chunks: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let p = peer.progress(id, index).await.unwrap();
        if at(&p, "/chunks").as_u64().unwrap_or(0) >= chunks {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no chunks: {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// quit-all (`id:""`, `index:0`) cancels the segment in flight and the one queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_all_cancels_in_flight_and_queued() {
    serial(Duration::from_secs(120), async {
        let mut m = mesh_with_node(true).await;
        let peer = m.connected_peer().await.unwrap();
        let id = sid(BIG_ITAG);
        let lens: Vec<u64> = (0..2)
            .map(|i| segment(&m.origin, BIG_ITAG, i).len() as u64)
            .collect();
        assert!(peer.query(&id, 1, JOIN).await.unwrap());
        // Both sent at once: 1 is queued behind 0 when the quit-all goes out.
        peer.start_resolves(&[(&id, 0, 3, true), (&id, 1, 0, false)])
            .await
            .unwrap();
        wait_progress(&peer, &id, 0, 3).await;
        peer.quiet(Duration::from_millis(1500), Duration::from_secs(20))
            .await
            .unwrap();
        let mut received = 0;
        for i in 0..2 {
            let p = peer.progress(&id, i).await.unwrap();
            assert_eq!(
                at(&p, "/complete").as_bool(),
                Some(false),
                "segment {i}: {p}"
            );
            received += at(&p, "/received").as_u64().unwrap();
        }
        let total: u64 = lens.iter().sum();
        assert!(
            received < total / 8,
            "{received} of {total} bytes arrived after quit-all"
        );
        eprintln!("quit-all: {received} of {total} bytes arrived");
        resolve_exact(&peer, &m.origin, BIG_ITAG, 1).await;
        assert_clean_link(&peer).await;
    })
    .await;
}

/// Garbage on the channel is ignored: the channel lives on and still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_ignored() {
    serial(Duration::from_secs(90), async {
        let mut m = mesh_with_node(false).await;
        let peer = m.connected_peer().await.unwrap();
        let seg = sid(137);
        let texts = [
            "not json".to_owned(),
            "{".into(),
            "[]".into(),
            "null".into(),
            "42".into(),
            "\"ping\"".into(),
            r#"{"event":5}"#.into(),
            r#"{"event":null,"data":{}}"#.into(),
            r#"{"data":{"id":"x","index":0}}"#.into(),
            r#"{"event":"query"}"#.into(),
            r#"{"event":"query","data":null}"#.into(),
            r#"{"event":"query","data":{"id":5,"index":"x"}}"#.into(),
            format!(r#"{{"event":"resolve","data":{{"id":"{seg}","index":-1}}}}"#),
            format!(r#"{{"event":"resolve","data":{{"id":"{seg}","index":1.5}}}}"#),
            format!(r#"{{"event":"resolve","data":{{"id":"{seg}","index":"x0"}}}}"#),
            format!(r#"{{"event":"resolve","data":{{"id":"{seg}","index":"-1"}}}}"#),
            format!(r#"{{"event":"resolve","data":{{"id":"{seg}","index":4294967296}}}}"#),
            format!(r#"{{"event":"resolve","data":{{"id":"{VID}","index":0}}}}"#),
            r#"{"event":"resolve","data":{"id":"../../etc:1","index":0}}"#.into(),
            r#"{"event":"quit","data":"all"}"#.into(),
            r#"{"event":"hello","data":{}}"#.into(),
            r#"{"event":"chat","data":{"text":"hi all"}}"#.into(),
            r#"{"event":"found","data":{"id":"x:1","index":0}}"#.into(),
            r#"{"event":"pong"}"#.into(),
            String::new(),
        ];
        for t in &texts {
            peer.send_text(t).await.unwrap();
        }
        peer.ping().await.unwrap();
        peer.send_repeat("x", 60_000).await.unwrap();
        let long_id = format!(
            r#"{{"event":"query","data":{{"id":"{}","index":0}}}}"#,
            "a".repeat(60_000)
        );
        peer.send_text(&long_id).await.unwrap();
        peer.ping().await.unwrap();
        for len in [0, 1, 29, 30, 100, 65_536] {
            peer.send_binary(len).await.unwrap();
        }
        peer.ping().await.unwrap();
        let stats = peer.stats().await.unwrap();
        assert_eq!(at(&stats, "/link/dc").as_str(), Some("open"), "{stats}");
        assert_eq!(
            at(&stats, "/link/binIn").as_u64(),
            Some(0),
            "garbage made data flow: {stats}"
        );
        // Still fully working after all that.
        resolve_exact(&peer, &m.origin, 137, 1).await;
        assert!(peer.query(&seg, 2, JOIN).await.unwrap());
        peer.ping().await.unwrap();
        assert_clean_link(&peer).await;
    })
    .await;
}

/// 8 peers (4 pages × 2 ids), each resolving several segments at once, all byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_peers_byte_exact() {
    serial(Duration::from_secs(150), async {
        let mut m = mesh_with_node(true).await;
        let peers = eight_peers(&mut m).await;
        let work = peers.iter().enumerate().map(|(k, p)| {
            let origin = &m.origin;
            async move {
                // Every peer: all of 137, two of 251, and one 5 MB segment for half of them.
                let mut segs: Vec<(u32, usize)> = (0..6).map(|i| (137, i)).collect();
                segs.extend([(251, k % 7), (251, (k + 3) % 7)]);
                if k % 2 == 0 {
                    segs.push((BIG_ITAG, (k / 2) % 2));
                }
                for (itag, i) in &segs {
                    p.start_resolve(&sid(*itag), *i as u32).await.unwrap();
                }
                for (itag, i) in &segs {
                    let got = p.finish(&sid(*itag), *i as u32).await.unwrap();
                    assert_exact(&got, origin, *itag, *i, &p.me);
                }
            }
        });
        join_all(work).await;
        for p in &peers {
            assert_clean_link(p).await;
        }
    })
    .await;
}

async fn eight_peers(m: &mut Mesh) -> Vec<WebPeer> {
    let mut peers = Vec::new();
    for _ in 0..4 {
        let page = m.page().await.unwrap();
        for _ in 0..2 {
            peers.push(m.peer(&page).await.unwrap());
        }
    }
    for r in join_all(peers.iter().map(|p| p.ready(JOIN))).await {
        r.unwrap();
    }
    peers
}

/// 8 peers resolve the same uncached segment at once: the origin sees one request for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_peers_same_segment_one_origin_request() {
    serial(Duration::from_secs(120), async {
        let mut m = mesh_with_node(false).await;
        let peers = eight_peers(&mut m).await;
        let (itag, index) = (248, 3);
        let id = sid(itag);
        // Info and index are loaded by the queries; the bytes are not fetched yet.
        for f in join_all(peers.iter().map(|p| p.query(&id, index as u32, JOIN))).await {
            assert!(f.unwrap());
        }
        let r = stream(&m.origin, itag).layout.segments[index];
        let path = format!("/{VID}/{itag}/{}-{}.ts", r.start, r.end);
        assert_eq!(
            m.origin.control.hits(&path),
            0,
            "segment fetched by a query"
        );
        // A slow origin: all 8 resolves arrive while the one fetch is outstanding.
        m.origin
            .control
            .delay_ms
            .store(400, std::sync::atomic::Ordering::SeqCst);
        let results = join_all(peers.iter().map(|p| p.resolve(&id, index as u32))).await;
        for (p, r) in peers.iter().zip(results) {
            assert_exact(&r.unwrap(), &m.origin, itag, index, &p.me);
        }
        assert_eq!(
            m.origin.control.hits(&path),
            1,
            "origin requests for {path}"
        );
    })
    .await;
}

/// The signalling server dies and comes back on the same port: node and browser re-join,
/// the existing channel keeps working, and a newcomer finds the node and is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalling_server_restart() {
    serial(Duration::from_secs(120), async {
        let mut m = mesh_with_node(false).await;
        let old = m.connected_peer().await.unwrap();
        resolve_exact(&old, &m.origin, 140, 0).await;
        let port = m.signal.port;
        m.signal.kill().await.unwrap();
        wait_stat(&old, "/signal/closes", 1, Duration::from_secs(10)).await;
        m.signal = SignalServer::start(Some(port)).await.unwrap();
        m.signal
            .wait_joined(&old.me, Duration::from_secs(30))
            .await
            .unwrap();
        m.signal
            .wait_joined(&m.node_id, Duration::from_secs(30))
            .await
            .unwrap();
        // The channel made before the restart still serves.
        old.ping().await.unwrap();
        resolve_exact(&old, &m.origin, 140, 1).await;
        // A newcomer sees the node online and gets served.
        let new = m.connected_peer().await.unwrap();
        let stats = new.stats().await.unwrap();
        let inits = at(&stats, "/signal/inits/0")
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(inits.contains(&Value::from(m.node_id.clone())), "{stats}");
        resolve_exact(&new, &m.origin, 140, 2).await;
        // And the old peer, after both re-joined, still works.
        old.ping().await.unwrap();
        resolve_exact(&old, &m.origin, 251, 0).await;
        assert_clean_link(&old).await;
        assert_clean_link(&new).await;
    })
    .await;
}

/// An operator swaps the policy while a segment is being sent: that segment finishes as the
/// old policy planned it, later ones follow the new policy, nothing is lost or sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_swap_while_sending() {
    serial(Duration::from_secs(150), async {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("swap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.wasm");
        std::fs::write(&file, videortc::policy::DEFAULT_COMPONENT).unwrap();
        let mut m = mesh(true).await;
        let path = file.display().to_string();
        m.start_node(&[("POLICY", path.as_str())]).await.unwrap();
        m.signal.wait_joined(&m.node_id, JOIN).await.unwrap();
        let peer = m.connected_peer().await.unwrap();
        let big = sid(BIG_ITAG);
        let len = |i: usize| segment(&m.origin, BIG_ITAG, i).len() as u64;
        let framed = |got: &Resolved, i: usize, payload: u64| {
            let want = segment(&m.origin, BIG_ITAG, i);
            assert_eq!(got.sha256, sha256_hex(want), "segment {i}: bytes differ");
            assert_eq!(
                (got.dups, got.problems.len()),
                (0, 0),
                "segment {i}: {got:?}"
            );
            got.payload == Some(payload) && got.chunks == len(i).div_ceil(payload)
        };

        peer.start_resolves(&[(&big, 0, 0, false), (&big, 1, 0, false)])
            .await
            .unwrap();
        // Segment 0 is on the wire: it was planned by the default policy.
        let deadline = tokio::time::Instant::now() + JOIN;
        while at(&peer.progress(&big, 0).await.unwrap(), "/chunks").as_u64() < Some(1) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "segment 0 never started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let url = format!("{}/admin/policy", m.node_url().unwrap());
        let resp = reqwest::Client::new()
            .post(url)
            .body(CHAOS)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);

        let first = peer.finish(&big, 0).await.unwrap();
        assert!(
            framed(&first, 0, 51_200),
            "segment 0 was re-planned: {first:?}"
        );
        // Queued before the swap, decided when its turn came: either framing, never a mix.
        let second = peer.finish(&big, 1).await.unwrap();
        assert!(
            framed(&second, 1, 51_200) || framed(&second, 1, 16_000),
            "{second:?}"
        );
        // Asked for after the swap: the new policy's chunks.
        for i in [0, 1] {
            let again = peer.resolve(&big, i as u32).await.unwrap();
            assert!(
                framed(&again, i, 16_000),
                "segment {i} after the swap: {again:?}"
            );
        }
        let stats = assert_clean_link(&peer).await;
        assert_eq!(at(&stats, "/link/stray").as_u64(), Some(0), "{stats}");
    })
    .await;
}

/// SIGTERM during 8 active sends: the node closes its peers' connections (every browser sees
/// its channel close), leaves signalling and exits 0 within the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_peers_and_exits_0() {
    serial(Duration::from_secs(150), async {
        let mut m = mesh_with_node(true).await;
        let peers = eight_peers(&mut m).await;
        resolve_exact(&peers[0], &m.origin, 140, 0).await;
        // Every peer has a 5 MB segment on the wire when the signal comes.
        for (k, p) in peers.iter().enumerate() {
            p.start_resolve(&sid(BIG_ITAG), (k % 2) as u32)
                .await
                .unwrap();
        }
        for (k, p) in peers.iter().enumerate() {
            wait_progress(p, &sid(BIG_ITAG), (k % 2) as u32, 1).await;
        }
        let pid = m.node_pid().unwrap();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let node = m.node.as_mut().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), node.child.wait())
            .await
            .expect("the node did not exit")
            .unwrap();
        assert!(status.success(), "{status:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for p in &peers {
            loop {
                let stats = p.stats().await.unwrap();
                let dc = at(&stats, "/link/dc")
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if dc != "open" {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{}: the channel stayed open: {stats}",
                    p.me
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;
}

/// Direct mode end to end: a node with no `BASE_URL` answers a browser's query and resolves
/// from the info its policy parsed out of the YouTube stand-in, byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_query_and_resolve() {
    serial(Duration::from_secs(120), async {
        let mut m = mesh(false).await;
        let yt = YouTubeStandIn::start(m.origin.addr, m.origin.streams.clone())
            .await
            .unwrap();
        m.start_node_direct(&yt.url(), &[]).await.unwrap();
        m.signal.wait_joined(&m.node_id, JOIN).await.unwrap();
        let peer = m.connected_peer().await.unwrap();
        assert!(peer.query(&sid(137), 1, SILENCE).await.unwrap());
        assert!(!peer.query(&sid(137), 999, SILENCE).await.unwrap());
        resolve_exact(&peer, &m.origin, 137, 1).await;
        resolve_exact(&peer, &m.origin, 251, 0).await;
        assert_eq!(yt.player_hits(VID), 1, "one parse for every question");
        assert_clean_link(&peer).await;
    })
    .await;
}

/// Like [`assert_exact`], for a segment framed by any of the test policies: the default and
/// `curated` send 51,200-byte payloads, `chaos` 16,000.
fn assert_exact_any_framing(
    got: &Resolved,
    origin: &TestOrigin,
    itag: u32,
    index: usize,
    who: &str,
) {
    let want = segment(origin, itag, index);
    let what = format!("{who}: {} segment {index}", sid(itag));
    assert_eq!(got.len, want.len() as u64, "{what}: length");
    assert_eq!(got.sha256, sha256_hex(want), "{what}: bytes differ");
    assert_eq!(got.dups, 0, "{what}: duplicate chunks");
    assert!(got.problems.is_empty(), "{what}: {:?}", got.problems);
    let payload = got.payload.unwrap_or(want.len() as u64);
    assert!(
        [51_200, 16_000].contains(&payload) || got.chunks == 1,
        "{what}: payload {payload}"
    );
    assert_eq!(
        got.chunks,
        (want.len() as u64).div_ceil(payload),
        "{what}: chunk count"
    );
}

async fn node_status(url: &str) -> Value {
    let text = reqwest::get(format!("{url}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Polls `/status` until `done` holds; the status then.
async fn wait_status(url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + JOIN;
    loop {
        let s = node_status(url).await;
        if done(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {what}: {s}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// 20 policy swaps — the file written in place, a file renamed over it, SIGHUP and admin
/// POSTs, mixed, through three different components — while 8 browser peers keep resolving:
/// every segment arrives byte-exact, none is lost or sent twice. Then a component that keeps
/// trapping is rolled back automatically to the one before it, `/status` says so, and the
/// peers are served on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_under_load_then_an_automatic_rollback() {
    serial(Duration::from_secs(300), async {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("swaps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.wasm");
        std::fs::write(&file, videortc::policy::DEFAULT_COMPONENT).unwrap();
        let mut m = mesh(false).await;
        let path = file.display().to_string();
        m.start_node(&[("POLICY", path.as_str()), ("POLICY_ROLLBACK_FAILURES", "3")])
            .await
            .unwrap();
        m.signal.wait_joined(&m.node_id, JOIN).await.unwrap();
        let peers = eight_peers(&mut m).await;
        let url = m.node_url().unwrap();
        let pid = m.node_pid().unwrap().to_string();
        let swapping = std::sync::atomic::AtomicBool::new(true);

        let work = peers.iter().enumerate().map(|(k, p)| {
            let (origin, swapping) = (&m.origin, &swapping);
            async move {
                let itags = [137, 140, 248, 251];
                let mut n = 0;
                while swapping.load(std::sync::atomic::Ordering::SeqCst) || n < 4 {
                    let itag = itags[(k + n) % itags.len()];
                    let count = stream(origin, itag).layout.segments.len();
                    let i = (3 * k + n) % count;
                    let got = p.resolve(&sid(itag), i as u32).await.unwrap();
                    assert_exact_any_framing(&got, origin, itag, i, &p.me);
                    n += 1;
                }
                n
            }
        });
        let swapper = async {
            let components = [CHAOS, CURATED, videortc::policy::DEFAULT_COMPONENT];
            let client = reqwest::Client::new();
            for k in 0..20 {
                let before = node_status(&url).await["policy"]["generation"]
                    .as_u64()
                    .unwrap();
                let bytes = components[k % components.len()];
                match k % 4 {
                    0 => std::fs::write(&file, bytes).unwrap(),
                    1 => {
                        let staged = dir.join("policy.wasm.new");
                        std::fs::write(&staged, bytes).unwrap();
                        std::fs::rename(&staged, &file).unwrap();
                    }
                    // The file as it is, loaded again.
                    2 => {
                        let kill = std::process::Command::new("kill")
                            .args(["-HUP", &pid])
                            .status()
                            .unwrap();
                        assert!(kill.success());
                    }
                    _ => {
                        let resp = client
                            .post(format!("{url}/admin/policy"))
                            .body(bytes)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
                    }
                }
                wait_status(&url, &format!("swapped ({k})"), |s| {
                    s["policy"]["generation"].as_u64() > Some(before)
                })
                .await;
                // Let some resolves run on this policy.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            swapping.store(false, std::sync::atomic::Ordering::SeqCst);
        };
        let (served, ()) = futures_util::future::join(join_all(work), swapper).await;
        eprintln!("segments per peer during the swaps: {served:?}");
        let s = node_status(&url).await;
        let policy = &s["policy"];
        assert!(policy["reloads"].as_u64() >= Some(20), "{s}");
        assert_eq!(
            (
                &policy["rejected"],
                &policy["traps"],
                &policy["invalid"],
                &policy["rollbacks"]
            ),
            (
                &Value::from(0),
                &Value::from(0),
                &Value::from(0),
                &Value::from(0)
            ),
            "{s}"
        );

        // A component that traps on a message a peer can send: rolled back after 3 traps.
        let before = policy["describe"].as_str().unwrap().to_owned();
        let resp = reqwest::Client::new()
            .post(format!("{url}/admin/policy"))
            .body(CHAOS)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        for _ in 0..3 {
            peers[0]
                .send_text(r#"{"event":"chaos-panic"}"#)
                .await
                .unwrap();
        }
        let s = wait_status(&url, "rolled back", |s| s["policy"]["rollbacks"] == 1).await;
        let policy = &s["policy"];
        assert_eq!(policy["describe"], before.as_str(), "{s}");
        assert_eq!(policy["traps"], 3, "{s}");
        let last = &policy["last_rollback"];
        assert!(
            last["from"]["name"].as_str().unwrap().ends_with("+chaos"),
            "{s}"
        );
        assert_eq!(last["from"]["source"], "upload", "{s}");
        assert_eq!(last["to"]["name"], before.as_str(), "{s}");
        assert!(
            last["reason"].as_str().unwrap().contains("unreachable"),
            "{s}"
        );
        let metrics = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == "videortc_policy_rollbacks_total 1"),
            "{metrics}"
        );
        for (k, p) in peers.iter().enumerate() {
            let i = k % 6;
            let got = p.resolve(&sid(137), i as u32).await.unwrap();
            assert_exact_any_framing(&got, &m.origin, 137, i, &p.me);
            assert_clean_link(p).await;
        }
    })
    .await;
}
