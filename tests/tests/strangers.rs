//! Strangers in a public room, black-box: the real signalling server, the real node with a
//! small `MEMORY_BUDGET`, a browser peer in Chromium being served, and raw WebSocket clients
//! doing what any participant can: a thousand offers from fake ids, a forged offer and a
//! second socket for the browser's id, junk and oversized messages; then a soak of 4,000
//! distinct segments over HTTP while the browser resolves. The node must keep serving the
//! browser byte-exact, keep its peer count at `MAX_PEERS`, and its resident memory must grow
//! by no more than the budget.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use futures_util::{SinkExt, future::join_all};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use videortc_tests::browser::at;
use videortc_tests::mesh::{Mesh, WebPeer, chunk_count, peer_id, rss_kib};
use videortc_tests::origin::{ALIAS_PREFIX, TestOrigin, fixture_streams};

const JOIN: Duration = Duration::from_secs(20);

/// An SDP offer as Chromium makes it (one data channel, no candidates yet).
const OFFER_JS: &str = "(async () => { const pc = new RTCPeerConnection(); \
    pc.createDataChannel('x'); const o = await pc.createOffer(); pc.close(); return o.sdp; })()";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `vid`'s segment `index` of `itag` reaches the browser byte-exact.
async fn resolve_exact(peer: &WebPeer, origin: &TestOrigin, vid: &str, itag: u32, index: usize) {
    let s = origin.stream(itag).unwrap();
    let r = s.layout.segments[index];
    let want = &s.bytes[r.start as usize..=r.end as usize];
    let got = peer
        .resolve(&format!("{vid}:{itag}"), index as u32)
        .await
        .unwrap();
    let what = format!("{vid}:{itag} segment {index}");
    assert_eq!(got.len, want.len() as u64, "{what}");
    assert_eq!(got.sha256, sha256_hex(want), "{what}: bytes differ");
    assert_eq!(got.chunks, chunk_count(want.len() as u64), "{what}");
    assert_eq!(got.dups, 0, "{what}");
    assert!(got.problems.is_empty(), "{what}: {:?}", got.problems);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins the signalling server as `id`; what the server sends is read and dropped.
async fn join(ws_base: &str, id: &str) -> futures_util::stream::SplitSink<Socket, Message> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{ws_base}{id}"))
        .await
        .unwrap();
    let (sink, mut source) = ws.split();
    tokio::spawn(async move { while source.next().await.is_some() {} });
    sink
}

fn offer(from: &str, to: &str, sdp: &str) -> Message {
    Message::text(
        json!({"event": "offer", "from": from, "to": to,
            "data": {"type": "offer", "sdp": sdp}})
        .to_string(),
    )
}

async fn get_json(url: &str) -> Value {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The node's view of its peers (`/peers`).
async fn peers(node: &str) -> Value {
    get_json(&format!("{node}/peers")).await
}

fn peer_entry<'a>(peers: &'a Value, id: &str) -> Option<&'a Value> {
    at(peers, "/peers")
        .as_array()?
        .iter()
        .find(|p| at(p, "/id").as_str() == Some(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_exhaust_hijack_or_stall_the_node() {
    tokio::task::spawn_blocking(videortc_tests::node::binary)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(300), strangers())
        .await
        .expect("the test did not finish within 300 s");
}

async fn strangers() {
    let mut m = Mesh::new(fixture_streams().unwrap()).await.unwrap();
    m.origin.control.aliases.store(true, Ordering::SeqCst);
    // A small budget and few peers; `STRANGERS_DEFAULTS=1` runs the node's defaults (144 MiB,
    // 64 peers), as `scripts/docker-image.sh` does in a 200 MB container.
    let defaults = std::env::var_os("STRANGERS_DEFAULTS").is_some();
    let (budget_mib, max_peers): (u64, usize) = if defaults { (144, 64) } else { (40, 16) };
    let (budget, peers_limit) = (format!("{budget_mib}M"), max_peers.to_string());
    let limits = [
        ("MEMORY_BUDGET", budget.as_str()),
        ("MAX_PEERS", peers_limit.as_str()),
    ];
    m.start_node(if defaults { &[] } else { &limits })
        .await
        .unwrap();
    m.signal.wait_joined(&m.node_id, JOIN).await.unwrap();
    let node = m.node_url().unwrap();
    let pid = m.node_pid().unwrap();
    let peer = m.connected_peer().await.unwrap();
    resolve_exact(&peer, &m.origin, "aliasVid0000", 137, 0).await;
    let (idle_kib, _) = rss_kib(pid).unwrap_or_default();
    let before = peers(&node).await;
    let browser_age = at(peer_entry(&before, &peer.me).unwrap(), "/age_secs")
        .as_u64()
        .unwrap();

    // 1. A thousand offers: 200 fake ids, 5 offers each (under the per-id rate), at once.
    let sdp = peer.page.eval(OFFER_JS).await.unwrap();
    let sdp = sdp.as_str().unwrap().to_owned();
    let ws = m.signal.ws_base();
    let fakes: Vec<String> = (0..200).map(|n| peer_id("fake", n)).collect();
    join_all(fakes.iter().map(|id| {
        let (ws, sdp, to) = (ws.clone(), sdp.clone(), m.node_id.clone());
        async move {
            let mut sink = join(&ws, id).await;
            for _ in 0..5 {
                sink.send(offer(id, &to, &sdp)).await.unwrap();
            }
            sink
        }
    }))
    .await;
    // The node answers HTTP at once, holds at most `MAX_PEERS`, and the browser is still
    // its peer, the same connection, served byte-exact.
    let status = reqwest::get(format!("{node}/status")).await.unwrap();
    assert!(status.status().is_success());
    // The node works through the thousand offers (a connection each); soon it is full and
    // refuses newcomers, never holding more than MAX_PEERS.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let flooded = loop {
        let flooded = peers(&node).await;
        let held = at(&flooded, "/peers").as_array().unwrap().len();
        assert!(held <= max_peers, "{held} peers: {flooded}");
        if at(&flooded, "/stats/peers_refused").as_u64().unwrap() > 0 {
            break flooded;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody was refused: {flooded}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let entry = peer_entry(&flooded, &peer.me).expect("the browser peer was dropped");
    assert!(at(entry, "/age_secs").as_u64().unwrap() >= browser_age);
    resolve_exact(&peer, &m.origin, "aliasVid0001", 140, 1).await;

    // 2. A forged offer naming the browser: the server sends it as from its real sender,
    //    and a second socket for the browser's id is closed. The browser keeps its link.
    let forger = peer_id("forger", 1);
    let mut sink = join(&ws, &forger).await;
    sink.send(offer(&peer.me, &m.node_id, &sdp)).await.unwrap();
    let (second, _) = tokio_tungstenite::connect_async(format!("{ws}{}", peer.me))
        .await
        .unwrap();
    let (_, mut second) = second.split();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = second.next().await {
            assert!(
                !m.to_string().contains("init"),
                "the second socket joined: {m}"
            );
        }
    })
    .await;
    assert!(ended.is_ok(), "the second socket for a live id stayed open");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = peers(&node).await;
    let entry = peer_entry(&after, &peer.me).expect("the forged offer replaced the browser");
    assert!(at(entry, "/age_secs").as_u64().unwrap() >= browser_age);
    resolve_exact(&peer, &m.origin, "aliasVid0002", 251, 0).await;

    // 3. Junk: 1,000 malformed messages and one of 200 KB (over the node's 64 KiB limit, under
    //    the server's) to the node, and one of 10 MB (the server cuts its sender off).
    let node_id = m.node_id.clone();
    for n in 0..1000 {
        let junk = match n % 4 {
            0 => format!("{{\"event\":\"offer\",\"to\":\"{node_id}\",\"data\":"),
            1 => json!({"to": node_id, "event": "offer", "data": n}).to_string(),
            2 => json!({"to": node_id, "event": "frobnicate"}).to_string(),
            _ => format!("not json at all {n}"),
        };
        sink.send(Message::text(junk)).await.unwrap();
    }
    let big = json!({"to": node_id, "event": "offer", "data": {"type": "offer",
        "sdp": "v".repeat(200 << 10)}});
    sink.send(Message::text(big.to_string())).await.unwrap();
    let mut huge_sender = join(&ws, &peer_id("huge", 1)).await;
    let huge = json!({"to": node_id, "event": "offer", "data": {"type": "offer",
        "sdp": "v".repeat(10 << 20)}});
    let _ = huge_sender.send(Message::text(huge.to_string())).await;
    // The node stays on the signalling server: a new browser peer still reaches it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        at(&peers(&node).await, "/signalling").as_str(),
        Some("ready")
    );
    resolve_exact(&peer, &m.origin, "aliasVid0003", 248, 0).await;

    // 4. Soak: distinct segments over HTTP, 16 at a time, while the browser resolves: 4,000
    //    by default (`SOAK_SEGMENTS`), about 85 MB, twice the budget, so an unbounded cache
    //    (or the old 64 MiB segment cache) would show.
    let count: usize = std::env::var("SOAK_SEGMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let origin = &m.origin;
    let per_video: Vec<(u32, usize)> = origin
        .streams
        .iter()
        .flat_map(|s| (0..s.layout.segments.len()).map(move |k| (s.itag, k)))
        .collect();
    let wanted: Vec<(String, u32, usize)> = (0..)
        .flat_map(|v| {
            let vid = format!("{ALIAS_PREFIX}S{v:06}");
            per_video.iter().map(move |&(i, k)| (vid.clone(), i, k))
        })
        .take(count)
        .collect();
    let volume: usize = wanted
        .iter()
        .map(|(_, i, k)| origin.stream(*i).unwrap().layout.segments[*k].len() as usize)
        .sum();
    let client = reqwest::Client::new();
    let http = stream::iter(wanted.iter())
        .map(|(vid, itag, k)| {
            let (client, node) = (client.clone(), node.clone());
            async move {
                let s = origin.stream(*itag).unwrap();
                let r = s.layout.segments[*k];
                let url = format!("{node}/video/{vid}/{itag}/{}-{}.ts", r.start, r.end);
                let resp = client.get(&url).send().await.unwrap();
                assert!(resp.status().is_success(), "{url}: {}", resp.status());
                let body = resp.bytes().await.unwrap();
                assert_eq!(
                    &body[..],
                    &s.bytes[r.start as usize..=r.end as usize],
                    "{url}"
                );
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    let browser = async {
        for n in 0..20 {
            let vid = format!("{ALIAS_PREFIX}S{:06}", n * 7);
            resolve_exact(&peer, origin, &vid, 137, n % 2).await;
        }
    };
    tokio::join!(http, browser);

    if std::env::var_os("VIDEORTC_NODE").is_some() {
        // Another node command (the Docker image): its memory is measured by whoever runs it.
        eprintln!(
            "strangers: {count} segments, {} MB served",
            volume / 1_000_000
        );
        drop(sink);
        return;
    }
    // Memory: the node grew by no more than its budget.
    let (now_kib, peak_kib) = rss_kib(pid).unwrap();
    let grown_mib = peak_kib.saturating_sub(idle_kib) / 1024;
    let metrics = reqwest::get(format!("{node}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    eprintln!(
        "strangers: {count} segments, {} MB; RSS idle {} MiB, peak {} MiB, now {} MiB (grew \
         {grown_mib} MiB, budget {budget_mib} MiB)",
        volume / 1_000_000,
        idle_kib / 1024,
        peak_kib / 1024,
        now_kib / 1024
    );
    assert!(
        grown_mib <= budget_mib,
        "RSS grew by {grown_mib} MiB, over the {budget_mib} MiB budget\n{metrics}"
    );
    let segments_held = metrics
        .lines()
        .find_map(|l| l.strip_prefix("videortc_cache_segment_bytes "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap();
    assert!(segments_held <= budget_mib << 20, "{segments_held}");
    drop(sink);
}
