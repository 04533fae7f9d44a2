//! End-to-end tests on 127.0.0.1: a real signalling server, a real node ([`PeerManager`]) with
//! a fake [`SegmentSource`], and webrtc-rs "browsers" ([`Browser`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use super::test_peer::{Browser, Incoming};
use super::*;
use crate::budget::Lease;
use crate::media::Decision;
use crate::policy::{PolicyConfig, StreamMeta, TableArg, Verdict};
use crate::signal::{self, ClientConfig, SignalEvent};

const VID: &str = "testVid_0001";
const ITAG: u32 = 251;
/// Segment sizes by index: 1 KB, 200 KB, 2 MB, and 10 MB for cancellation tests.
const SIZES: [usize; 4] = [1_000, 200_000, 2_000_000, 10_000_000];
const SHORT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);
/// Chunk header and payload sizes of the default policy (SPEC §4).
const HEADER_SIZE: usize = 30;
const MAX_PAYLOAD: usize = 51_200;
/// Where the fake stream's first segment starts (after its init and index ranges).
const FIRST: u64 = 1_000;

async fn policy() -> Arc<Policy> {
    static POLICY: tokio::sync::OnceCell<Arc<Policy>> = tokio::sync::OnceCell::const_new();
    POLICY
        .get_or_init(|| async {
            Arc::new(Policy::with_default(PolicyConfig::default()).await.unwrap())
        })
        .await
        .clone()
}

fn segment_bytes(index: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| ((i * 131 + index * 17 + i / 251) % 256) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Serves `VID:251` segments 0..4 with deterministic bytes: a stream whose init and index
/// take bytes 0..1000 and whose segments follow, decided by the real default policy.
struct FakeSource {
    segments: HashMap<u32, Bytes>,
    table: Arc<Vec<ByteRange>>,
    fetches: AtomicUsize,
}

impl FakeSource {
    fn shared() -> Arc<Self> {
        static SOURCE: OnceLock<Arc<FakeSource>> = OnceLock::new();
        SOURCE
            .get_or_init(|| {
                let segments = SIZES
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| (i as u32, segment_bytes(i, len)))
                    .collect();
                let mut start = FIRST;
                let table = SIZES
                    .iter()
                    .map(|&len| {
                        let r = ByteRange {
                            start,
                            end: start + len as u64 - 1,
                        };
                        start += len as u64;
                        r
                    })
                    .collect();
                Arc::new(FakeSource {
                    segments,
                    table: Arc::new(table),
                    fetches: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    fn meta(&self) -> StreamMeta {
        StreamMeta {
            itag: ITAG,
            mime: "audio/webm; codecs=\"opus\"".into(),
            content_length: self.table.last().map(|r| r.end + 1),
            init_range: Some(ByteRange { start: 0, end: 499 }),
            index_range: Some(ByteRange {
                start: 500,
                end: FIRST - 1,
            }),
            fetchable: true,
        }
    }
}

impl SegmentSource for FakeSource {
    async fn decide(&self, r: &Request) -> Decision {
        let s = &r.segment;
        let meta = (s.vid == VID && s.itag == ITAG).then(|| self.meta());
        let table = TableArg::Loaded(&self.table);
        match policy().await.decide(r, meta.as_ref(), table).await {
            Ok(Verdict::Reply(text)) => Decision::Reply(text),
            Ok(Verdict::Send(plan)) => Decision::Send(plan),
            Ok(v) => Decision::Silent(format!("{v:?}")),
            Err(e) => Decision::Silent(e.to_string()),
        }
    }

    async fn fetch(&self, s: &SegmentRef, range: ByteRange) -> Result<Lease, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let k = self.table.iter().position(|r| *r == range);
        k.and_then(|k| self.segments.get(&(k as u32)))
            .filter(|_| s.vid == VID && s.itag == ITAG)
            .cloned()
            .map(Lease::unaccounted)
            .ok_or_else(|| "no such segment".to_owned())
    }
}

/// A signalling server on 127.0.0.1:0, stopped on drop.
struct Server {
    ws_addr: String,
    _stop: oneshot::Sender<()>,
}

/// `RUST_LOG=videortc=debug,webrtc=info cargo test ... -- --nocapture` shows what happened.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn server() -> Server {
    init_logs();
    init_crypto();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(signal::serve(listener, async move {
        let _ = stopped.await;
    }));
    Server {
        ws_addr: format!("ws://{addr}/uid/"),
        _stop: stop,
    }
}

fn test_config() -> RtcConfig {
    RtcConfig {
        ice_servers: Vec::new(),
        include_loopback: true,
        probe_timeout: Duration::from_secs(1),
        ..RtcConfig::default()
    }
}

fn node_id(n: u32) -> String {
    format!("node{n:032}")
}

fn peer_id(n: u32) -> String {
    format!("peer{n:032}")
}

/// The node under test.
struct Node {
    id: String,
    manager: PeerManager<FakeSource>,
    run: JoinHandle<()>,
    /// Signalling events for the node as if they came from the server (forged ones, say).
    inject: mpsc::Sender<SignalEvent>,
}

impl Node {
    /// Starts a node and waits until the signalling server has announced it.
    async fn start(server: &Server, config: RtcConfig) -> Self {
        let id = node_id(1);
        let (signal, events) =
            signal::SignalClient::spawn(ClientConfig::new(&server.ws_addr, &id)).unwrap();
        let manager = PeerManager::new(config, policy().await, FakeSource::shared(), signal)
            .await
            .unwrap();
        let (inject, merged) = mpsc::channel(256);
        let forward = inject.clone();
        tokio::spawn(async move {
            let mut events = events;
            while let Some(event) = events.recv().await {
                if forward.send(event).await.is_err() {
                    break;
                }
            }
        });
        let run = tokio::spawn({
            let manager = manager.clone();
            async move { manager.run(merged).await }
        });
        let mut state = manager.signal_state();
        timeout(SHORT, state.wait_for(|s| *s == SignalState::Ready))
            .await
            .expect("node not announced in time")
            .unwrap();
        Node {
            id,
            manager,
            run,
            inject,
        }
    }

    /// Waits until the counters satisfy `check`.
    async fn wait_stats(&self, what: &str, check: impl Fn(&StatsSnapshot) -> bool) {
        self.wait_for(what, |snap| check(&snap.stats)).await;
    }

    /// Waits until `check` holds for the snapshot.
    async fn wait_for(&self, what: &str, check: impl Fn(&RtcSnapshot) -> bool) -> RtcSnapshot {
        let deadline = Instant::now() + SHORT;
        loop {
            let snap = self.manager.snapshot();
            if check(&snap) {
                return snap;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {snap:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.run.abort();
        timeout(SHORT, self.manager.shutdown()).await.unwrap();
    }
}

/// Connects a browser to a running node and checks the opening ping.
async fn connect(server: &Server, node: &Node, n: u32) -> Browser {
    let mut browser = Browser::join(&server.ws_addr, &peer_id(n), &node.id).await;
    assert!(browser.init_ids.contains(&node.id));
    browser.channel(SHORT).await;
    assert_eq!(browser.next_text(SHORT).await, r#"{"event":"ping"}"#);
    browser
}

fn query(index: u32) -> String {
    format!(r#"{{"event":"query","data":{{"id":"{VID}:{ITAG}","index":{index}}}}}"#)
}

fn resolve(index: u32) -> String {
    format!(r#"{{"event":"resolve","data":{{"id":"{VID}:{ITAG}","index":{index}}}}}"#)
}

/// A quit as some browsers in the field send it: the index as a decimal string.
fn quit_with_text_index(index: u32) -> String {
    format!(r#"{{"event":"quit","data":{{"id":"{VID}:{ITAG}","index":"{index}"}}}}"#)
}

/// One received chunk.
#[derive(Debug)]
struct Chunk {
    index: u32,
    i: usize,
    n: usize,
    payload: Bytes,
}

/// Parses a binary chunk and checks its header is exactly `["VID:ITAG|N",i,n]` padded to 30.
fn parse_chunk(data: &Bytes) -> Chunk {
    assert!(data.len() > HEADER_SIZE, "chunk of {} bytes", data.len());
    let header = std::str::from_utf8(&data[..HEADER_SIZE]).unwrap();
    let (name, i, n): (String, usize, usize) = serde_json::from_str(header.trim_end()).unwrap();
    let (stream, index) = name.split_once('|').unwrap();
    assert_eq!(stream, format!("{VID}:{ITAG}"));
    let index: u32 = index.parse().unwrap();
    let expected = format!(r#"["{VID}:{ITAG}|{index}",{i},{n}]"#);
    assert_eq!(header, format!("{expected:<30}"), "header not exact");
    assert!(data.len() - HEADER_SIZE <= MAX_PAYLOAD);
    Chunk {
        index,
        i,
        n,
        payload: data.slice(HEADER_SIZE..),
    }
}

/// The next binary chunk (text messages are not expected meanwhile).
async fn next_chunk(browser: &mut Browser, within: Duration) -> Option<Chunk> {
    match browser.next(within).await? {
        Incoming::Binary(data) => Some(parse_chunk(&data)),
        Incoming::Text(text) => panic!("unexpected text while receiving chunks: {text}"),
    }
}

/// Receives segment `index` completely and checks it byte for byte.
async fn receive_segment(browser: &mut Browser, index: u32) {
    let mut data = Vec::new();
    let mut expect_i = 0;
    loop {
        let chunk = next_chunk(browser, SHORT)
            .await
            .expect("segment incomplete");
        assert_eq!(
            (chunk.index, chunk.i),
            (index, expect_i),
            "chunks out of order"
        );
        data.extend_from_slice(&chunk.payload);
        expect_i += 1;
        if chunk.i + 1 == chunk.n {
            assert_eq!(chunk.n, SIZES[index as usize].div_ceil(MAX_PAYLOAD));
            break;
        }
    }
    assert!(
        data == FakeSource::shared().segments[&index],
        "segment {index} differs"
    );
}

/// Counts chunks of `index` until the channel is quiet for [`QUIET`].
async fn drain_chunks(browser: &mut Browser) -> HashMap<u32, usize> {
    let mut counts = HashMap::new();
    while let Some(chunk) = next_chunk(browser, QUIET).await {
        *counts.entry(chunk.index).or_default() += 1;
    }
    counts
}

async fn ping_pong(browser: &mut Browser) {
    browser.send_text(r#"{"event":"ping"}"#).await;
    assert_eq!(browser.next_text(SHORT).await, r#"{"event":"pong"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_first_then_peer_joins_node_offers() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    assert!(
        !browser.initiated(),
        "the node was online first: it must offer"
    );
    ping_pong(&mut browser).await;
    // Candidates carry the real mid.
    let candidates = browser.remote_candidates();
    assert!(!candidates.is_empty());
    assert!(candidates.iter().all(|c| c.sdp_mid.as_deref() == Some("0")));
    let snap = node
        .wait_for("connected peer with channel dc", |s| {
            s.peers.len() == 1
                && s.peers[0].connection_state == "connected"
                && s.peers[0].channels.len() == 1
        })
        .await;
    assert_eq!(snap.peers[0].role, "offerer");
    assert_eq!(snap.peers[0].channels[0].label, "dc");
    assert_eq!(snap.signalling, SignalState::Ready);
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_first_then_node_joins_peer_offers() {
    let server = server().await;
    let mut browser = Browser::join(&server.ws_addr, &peer_id(1), &node_id(1)).await;
    assert!(browser.init_ids.is_empty());
    let node = Node::start(&server, test_config()).await;
    browser.channel(SHORT).await;
    assert!(
        browser.initiated(),
        "the browser was online first: it must offer"
    );
    assert_eq!(browser.next_text(SHORT).await, r#"{"event":"ping"}"#);
    ping_pong(&mut browser).await;
    browser.send_text(&query(0)).await;
    assert_eq!(
        browser.next_text(SHORT).await,
        format!(r#"{{"event":"found","data":{{"id":"{VID}:{ITAG}","index":0}}}}"#)
    );
    let snap = node.wait_for("one peer", |s| s.peers.len() == 1).await;
    assert_eq!(snap.peers[0].role, "answerer");
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_found_or_silent() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    for index in [2, 1] {
        browser.send_text(&query(index)).await;
        assert_eq!(
            browser.next_text(SHORT).await,
            format!(r#"{{"event":"found","data":{{"id":"{VID}:{ITAG}","index":{index}}}}}"#)
        );
    }
    // Unknown segment, unknown stream: silence, and the channel still answers.
    browser.send_text(&query(99)).await;
    browser
        .send_text(r#"{"event":"query","data":{"id":"otherVideo1:140","index":0}}"#)
        .await;
    assert_eq!(browser.next(QUIET).await, None, "expected silence");
    ping_pong(&mut browser).await;
    let stats = node.manager.stats().snapshot();
    assert_eq!((stats.queries, stats.found_replies), (4, 2));
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_delivers_segments_in_order() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    // Queued back to back; the duplicate of 1 is ignored.
    for index in [0, 1, 1, 2] {
        browser.send_text(&resolve(index)).await;
    }
    for index in [0, 1, 2] {
        receive_segment(&mut browser, index).await;
    }
    assert!(
        drain_chunks(&mut browser).await.is_empty(),
        "duplicate sent"
    );
    // Unknown segments are skipped silently; the next one still goes.
    browser.send_text(&resolve(99)).await;
    browser.send_text(&resolve(0)).await;
    receive_segment(&mut browser, 0).await;
    let stats = node.manager.stats().snapshot();
    assert_eq!(stats.segments_sent, 4);
    assert_eq!(stats.resolves, 6);
    let chunks: usize = [0, 1, 2, 0]
        .iter()
        .map(|&i| SIZES[i].div_ceil(MAX_PAYLOAD))
        .sum();
    assert_eq!(stats.chunks_sent, chunks as u64);
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_stops_a_transfer_in_flight() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    let n = SIZES[3].div_ceil(MAX_PAYLOAD);
    browser.send_text(&resolve(3)).await;
    let first = next_chunk(&mut browser, SHORT).await.unwrap();
    assert_eq!((first.index, first.i, first.n), (3, 0, n));
    browser.send_text(&quit_with_text_index(3)).await;
    let counts = drain_chunks(&mut browser).await;
    let got = 1 + counts.get(&3).copied().unwrap_or(0);
    assert!(got < n / 2, "{got} of {n} chunks arrived after quit");
    // The channel goes on.
    browser.send_text(&resolve(1)).await;
    receive_segment(&mut browser, 1).await;
    let stats = node.manager.stats().snapshot();
    assert_eq!((stats.segments_cancelled, stats.quits), (1, 1));
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_all_cancels_queued_and_in_flight() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    let n = SIZES[3].div_ceil(MAX_PAYLOAD);
    browser.send_text(&resolve(3)).await;
    browser.send_text(&resolve(2)).await;
    assert_eq!(next_chunk(&mut browser, SHORT).await.unwrap().index, 3);
    browser
        .send_text(r#"{"event":"quit","data":{"id":"","index":0}}"#)
        .await;
    let counts = drain_chunks(&mut browser).await;
    assert!(
        counts.get(&3).copied().unwrap_or(0) + 1 < n / 2,
        "{counts:?}"
    );
    assert_eq!(counts.get(&2), None, "queued segment was sent: {counts:?}");
    ping_pong(&mut browser).await;
    let snap = node.manager.snapshot();
    let channel = &snap.peers[0].channels[0];
    assert!(channel.queued.is_empty() && channel.in_flight.is_none());
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_do_not_kill_the_channel() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    let texts = [
        "not json".to_owned(),
        r#"{"event":"query","data":{"id":5,"index":"x"}}"#.to_owned(),
        r#"{"event":"resolve","data":{"id":"bad id!:1","index":-1}}"#.to_owned(),
        r#"{"data":1}"#.to_owned(),
        "a".repeat(60 * 1024),
        String::new(),
    ];
    // Page-level events of other peers: ignored quietly, not invalid.
    let ignored = [
        r#"{"event":"dance"}"#,
        r#"{"event":"chat","data":{"text":"hello"}}"#,
    ];
    for text in &texts {
        browser.send_text(text).await;
    }
    for text in ignored {
        browser.send_text(text).await;
    }
    browser.send_binary(Bytes::new()).await;
    browser.send_binary(Bytes::from(vec![7u8; 65_536])).await;
    ping_pong(&mut browser).await;
    let stats = node.manager.stats().snapshot();
    assert_eq!(stats.invalid_messages, texts.len() as u64 + 2);
    assert_eq!(stats.ignored_messages, ignored.len() as u64);
    // Still serving.
    browser.send_text(&resolve(0)).await;
    receive_segment(&mut browser, 0).await;
    let snap = node.manager.snapshot();
    assert_eq!(snap.peers[0].channels[0].state, "open");
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_concurrently() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut a = connect(&server, &node, 1).await;
    let mut b = connect(&server, &node, 2).await;
    a.send_text(&resolve(2)).await;
    b.send_text(&resolve(2)).await;
    b.send_text(&resolve(1)).await;
    tokio::join!(receive_segment(&mut a, 2), async {
        receive_segment(&mut b, 2).await;
        receive_segment(&mut b, 1).await;
    });
    let snap = node
        .wait_for("two connected peers", |s| {
            s.peers.len() == 2 && s.peers.iter().all(|p| p.channels.len() == 1)
        })
        .await;
    assert_eq!(snap.stats.peers, 2);
    assert_eq!(snap.stats.channels, 2);
    // One peer leaving does not disturb the other.
    a.close().await;
    node.wait_for("peer a dropped", |s| s.peers.len() == 1)
        .await;
    ping_pong(&mut b).await;
    b.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshed_peer_is_reconnected() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let browser = connect(&server, &node, 1).await;
    // The page reloads: same id, new connection, the old one gone without a word.
    browser.close().await;
    let mut again = connect(&server, &node, 1).await;
    ping_pong(&mut again).await;
    let snap = node
        .wait_for("one connected peer", |s| {
            s.peers.len() == 1 && s.peers[0].connection_state == "connected"
        })
        .await;
    assert_eq!(snap.stats.peers_created, 2);
    again.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_ip_with_port_shares_one_udp_socket() {
    let server = server().await;
    // A free UDP port (released again before the node binds it).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RtcConfig {
        public_ip: Some((IpAddr::V4(Ipv4Addr::LOCALHOST), Some(port))),
        ..test_config()
    };
    let node = Node::start(&server, config).await;
    let mut a = connect(&server, &node, 1).await;
    let mut b = connect(&server, &node, 2).await;
    for browser in [&a, &b] {
        let candidates = browser.remote_candidates();
        assert!(!candidates.is_empty());
        for c in candidates {
            assert!(
                c.candidate.contains(&format!(" 127.0.0.1 {port} typ host")),
                "{}",
                c.candidate
            );
        }
    }
    ping_pong(&mut a).await;
    ping_pong(&mut b).await;
    a.close().await;
    b.close().await;
    node.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Strangers in the room: hijacking, floods, admission

/// An offer naming a connected peer (ids are public) is answered only if that peer stops
/// answering: a live peer keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_for_a_live_peer_does_not_replace_it() {
    let server = server().await;
    let node = Node::start(&server, test_config()).await;
    let mut browser = connect(&server, &node, 1).await;
    let before = node.manager.stats().snapshot();
    node.inject
        .send(SignalEvent::Offer {
            from: peer_id(1),
            sdp: "v=0\r\n".into(),
        })
        .await
        .unwrap();
    // The node probes the live connection; the browser answers the ping.
    assert_eq!(browser.next_text(SHORT).await, r#"{"event":"ping"}"#);
    node.wait_stats("the offer refused", |s| s.offers_refused == 1)
        .await;
    let after = node.manager.stats().snapshot();
    assert_eq!(after.peers_created, before.peers_created);
    assert_eq!(after.peers_dropped, 0);
    browser.send_text(&resolve(0)).await;
    receive_segment(&mut browser, 0).await;
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_rate_limited_per_id() {
    let server = server().await;
    let config = RtcConfig {
        offers_per_minute: 2,
        ..test_config()
    };
    let node = Node::start(&server, config).await;
    for _ in 0..4 {
        node.inject
            .send(SignalEvent::Offer {
                from: peer_id(7),
                sdp: "not sdp".into(),
            })
            .await
            .unwrap();
    }
    node.wait_stats("two offers over the rate", |s| s.offers_limited == 2)
        .await;
    assert_eq!(node.manager.stats().snapshot().peers_created, 2);
    // Another id has its own allowance.
    node.inject
        .send(SignalEvent::Offer {
            from: peer_id(8),
            sdp: "not sdp".into(),
        })
        .await
        .unwrap();
    node.wait_stats("the other id's offer", |s| s.peers_created == 3)
        .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_peers_an_idle_peer_gives_way_and_an_active_one_does_not() {
    let server = server().await;
    let config = RtcConfig {
        max_peers: 1,
        idle_after: Duration::from_millis(1500),
        ..test_config()
    };
    let node = Node::start(&server, config).await;
    let mut first = connect(&server, &node, 1).await;
    // Active: asking for segments.
    first.send_text(&resolve(0)).await;
    receive_segment(&mut first, 0).await;
    let refused = Browser::join(&server.ws_addr, &peer_id(2), &node.id).await;
    node.wait_stats("the newcomer refused", |s| s.peers_refused == 1)
        .await;
    assert_eq!(node.manager.snapshot().peers.len(), 1);
    refused.close().await;
    // Idle long enough, the first peer gives way to the next newcomer.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let mut second = connect(&server, &node, 3).await;
    node.wait_stats("the idle peer evicted", |s| s.peers_evicted == 1)
        .await;
    let snap = node.manager.snapshot();
    assert_eq!(snap.peers.len(), 1);
    assert_eq!(snap.peers[0].id, peer_id(3));
    second.send_text(&resolve(1)).await;
    receive_segment(&mut second, 1).await;
    first.close().await;
    second.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_may_open_only_so_many_channels() {
    let server = server().await;
    let config = RtcConfig {
        max_channels: 1,
        ..test_config()
    };
    let node = Node::start(&server, config).await;
    let mut browser = connect(&server, &node, 1).await;
    let extra = browser.extra_channel("more").await;
    node.wait_stats("the extra channel refused", |s| s.channels_refused == 1)
        .await;
    let deadline = Instant::now() + SHORT;
    while extra.ready_state()
        != webrtc::data_channel::data_channel_state::RTCDataChannelState::Closed
    {
        assert!(
            Instant::now() < deadline,
            "the extra channel stayed {:?}",
            extra.ready_state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first channel still serves.
    browser.send_text(&resolve(0)).await;
    receive_segment(&mut browser, 0).await;
    browser.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_queues_only_so_many_resolves() {
    let server = server().await;
    let config = RtcConfig {
        max_queue: 8,
        ..test_config()
    };
    let node = Node::start(&server, config).await;
    let mut browser = connect(&server, &node, 1).await;
    // The 10 MB segment keeps the sender busy while 10,000 more resolves arrive.
    browser.send_text(&resolve(3)).await;
    assert_eq!(next_chunk(&mut browser, SHORT).await.unwrap().index, 3);
    for index in 100..10_100 {
        browser.send_text(&resolve(index)).await;
    }
    node.wait_stats("resolves over the queue dropped", |s| {
        s.resolves >= 10_001 && s.overload_dropped >= 10_000 - 8 - 1
    })
    .await;
    let snap = node.manager.snapshot();
    let queued = snap.peers[0].channels[0].queued.len();
    assert!(queued <= 8, "{queued} resolves queued");
    // The channel still serves once the flood is cancelled.
    browser
        .send_text(r#"{"event":"quit","data":{"id":"","index":0}}"#)
        .await;
    drain_chunks(&mut browser).await;
    browser.send_text(&resolve(1)).await;
    receive_segment(&mut browser, 1).await;
    browser.close().await;
    node.stop().await;
}
