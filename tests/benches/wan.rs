//! WAN benchmark: the real node in a network namespace behind a userspace impaired link
//! (`tests/src/wan.rs`: delay, random loss, a shared bottleneck), headless Chromium peers on the
//! host. For each round trip, loss rate and sender mode it starts a fresh node and one browser
//! peer, resolves a cold then a warm ~5.4 MB segment and reports the warm one's throughput,
//! whether it completed byte-exact, and the longest time nothing arrived. Then 8 peers at mixed
//! round trips resolve at once over the shared uplink (fairness), on fresh associations and again
//! on ramped ones.
//!
//! `cargo bench -p videortc-tests --bench wan` as root (needs `ip netns`, Chromium, ffmpeg).
//! Environment (defaults in brackets):
//! - `WAN_RTTS` [20,50,100,200] round trips in ms; `WAN_LOSSES` [0,1] loss in % per direction;
//! - `WAN_MODES` [fixed,adaptive]: `fixed` is a fixed 64 KiB window (`RTC_WINDOW_MAX=65536`),
//!   `adaptive` the node's defaults;
//! - `WAN_RATE_MBIT` [400] and `WAN_QUEUE_KB` [1024]: the node's uplink and its queue;
//! - `WAN_SECONDS` [30]: how long one transfer may take before it is reported as capped;
//! - `WAN_FAIR` [1]: run the 8-peer fairness phase (RTTs 20, 50, 100, 200 ms, two peers each);
//! - `WAN_DEBUG`: print each single peer's path after its warm segment, UDP receive-buffer
//!   drops and every gap over 0.3 s; in the fairness phase, every peer's path each 250 ms;
//! - `VIDEORTC_NODE`: run this node binary instead of building one.
//!
//! MB = 10^6 bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use videortc_tests::browser::at;
use videortc_tests::mesh::{BIG_ITAG, Mesh, WebPeer, big_stream, cpu_seconds, peer_id};
use videortc_tests::node::free_port;
use videortc_tests::origin::VID;
use videortc_tests::wan::{Bottleneck, Forwarder, Link, NetNs, relay_into};

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bin = match videortc_tests::node::program() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("wan bench: cannot build the node: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(bin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wan bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the bench shares across runs.
struct Bench {
    bin: PathBuf,
    /// Origin, signalling server and Chromium; its node is started here, in the namespace.
    mesh: Mesh,
    ns: NetNs,
    bottleneck: Bottleneck,
    cap: Duration,
    runs: u64,
}

/// One transfer as the browser saw it.
#[derive(Debug, Clone)]
struct Transfer {
    bytes: u64,
    seconds: f64,
    complete: bool,
    exact: bool,
    longest_gap: f64,
}

impl Transfer {
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-9) / 1e6
    }
}

/// A node in the namespace; killed on drop.
struct NsNode {
    child: Child,
    id: String,
    http: u16,
}

impl NsNode {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Bench {
    /// `GET path` from the node's HTTP port inside the namespace (HTTP/1.0, whole body).
    async fn node_get(&self, node: &NsNode, path: &str) -> Result<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = self.ns.connect(node.http).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: node\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(out
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or(out))
    }

    async fn start_node(&mut self, udp: u16, mode: &str) -> Result<NsNode, String> {
        self.runs += 1;
        let id = peer_id("wannode", self.runs);
        let http = free_port()?;
        let ws = format!("ws://127.0.0.1:{}/uid/", self.mesh.signal.port);
        let public = format!("127.0.0.1:{udp}");
        let log = std::env::var("NODE_LOG")
            .unwrap_or_else(|_| "info,webrtc=warn,webrtc_ice=error,dtls=error".into());
        let mut cmd = self.ns.command(&self.bin);
        cmd.args(["-h", "127.0.0.1", "-p", &http.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", log)
            .env("NO_COLOR", "1")
            .env("ID", &id)
            .env("WS_ADDR", ws)
            .env("BASE_URL", self.mesh.origin.base_url())
            .env("RTC_LOOPBACK", "1")
            .env("PUBLICIP", public)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if mode == "fixed" {
            cmd.env("RTC_WINDOW", "65536")
                .env("RTC_WINDOW_MAX", "65536");
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn node: {e}"))?;
        if let Some(err) = child.stderr.take() {
            let quiet = std::env::var_os("WAN_NODE_LOG").is_none();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if !quiet || line.contains("WARN") || line.contains("ERROR") {
                        eprintln!("[node] {line}");
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ns.connect(http).await.is_err() {
            if Instant::now() > deadline {
                return Err("node not listening within 30 s".into());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("node exited: {status}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(NsNode { child, id, http })
    }

    async fn peers(&mut self, node: &NsNode, count: usize) -> Result<Vec<WebPeer>, String> {
        let mut peers = Vec::new();
        let mut page = None;
        for i in 0..count {
            // Two peers per page, like the rtc bench.
            if i % 2 == 0 {
                page = Some(self.mesh.page().await?);
            }
            let page = page.clone().ok_or("no page")?;
            self.runs += 1;
            let me = peer_id("wanpeer", self.runs);
            peers.push(self.mesh.peer_as(&page, &me, &node.id).await?);
        }
        let ready = join_all(peers.iter().map(|p| p.ready(Duration::from_secs(30)))).await;
        ready.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(peers)
    }

    /// Resolves `index` of the big stream and follows it until it completes, stops moving or
    /// the cap passes.
    async fn transfer(&self, peer: &WebPeer, index: u32) -> Result<Transfer, String> {
        let sid = format!("{VID}:{BIG_ITAG}");
        let stream = self.mesh.origin.stream(BIG_ITAG).ok_or("no big stream")?;
        let range = stream.layout.segments[index as usize];
        let want = &stream.bytes[range.start as usize..=range.end as usize];
        let started = Instant::now();
        peer.start_resolve(&sid, index).await?;
        let mut last_bytes = 0;
        let mut last_move = Instant::now();
        let mut longest_gap = 0.0f64;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let p = peer.progress(&sid, index).await?;
            let bytes = at(&p, "/received").as_u64().unwrap_or(0);
            if bytes > last_bytes {
                let gap = last_move.elapsed().as_secs_f64();
                if gap > 0.3 && std::env::var_os("WAN_DEBUG").is_some() {
                    eprintln!(
                        "gap of {gap:.2} s before byte {last_bytes} ({:.2} s into the transfer)",
                        started.elapsed().as_secs_f64() - gap
                    );
                }
                longest_gap = longest_gap.max(gap);
                last_bytes = bytes;
                last_move = Instant::now();
            }
            if at(&p, "/complete").as_bool() == Some(true) {
                let r = peer.finish(&sid, index).await?;
                let exact = r.len == want.len() as u64
                    && r.sha256 == sha256_hex(want)
                    && r.dups == 0
                    && r.problems.is_empty();
                return Ok(Transfer {
                    bytes: r.len,
                    seconds: r.total_ms / 1000.0,
                    complete: true,
                    exact,
                    longest_gap,
                });
            }
            let stalled = last_move.elapsed() > Duration::from_secs(10);
            if started.elapsed() > self.cap || stalled {
                longest_gap = longest_gap.max(last_move.elapsed().as_secs_f64());
                peer.quit(&sid, index).await?;
                return Ok(Transfer {
                    bytes: last_bytes,
                    seconds: started.elapsed().as_secs_f64(),
                    complete: false,
                    exact: false,
                    longest_gap,
                });
            }
        }
    }
}

/// `RcvbufErrors` of `/proc/net/snmp`, on the host or inside `ns`.
fn rcvbuf_errors(ns: Option<&NetNs>) -> String {
    let text = match ns {
        None => std::fs::read_to_string("/proc/net/snmp").unwrap_or_default(),
        Some(ns) => ns
            .enter(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))
            .unwrap_or_default(),
    };
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return "?".into();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .map_or("?".into(), |(_, v)| v.to_owned())
}

fn verdict(t: &Transfer) -> &'static str {
    match (t.complete, t.exact) {
        (true, true) => "complete, byte-exact",
        (true, false) => "complete, BYTES DIFFER",
        (false, _) if t.longest_gap > 9.0 => "STALLED",
        (false, _) => "capped (still moving)",
    }
}

async fn run(bin: PathBuf) -> Result<(), String> {
    let dir = std::env::temp_dir().join("videortc-bench-media");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mesh = Mesh::new(vec![big_stream(&dir)?]).await?;
    let (signal, origin) = (&mesh.signal, &mesh.origin);
    let ns = NetNs::create(&format!("vrtc-wan-{}", std::process::id()))
        .map_err(|e| format!("{e} (the WAN bench needs root for `ip netns`)"))?;
    let _signal_relay = relay_into(
        &ns,
        signal.port,
        SocketAddr::from((Ipv4Addr::LOCALHOST, signal.port)),
    )?;
    let origin_addr: SocketAddr = origin
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("origin address: {e}"))?;
    let _origin_relay = relay_into(&ns, origin_addr.port(), origin_addr)?;
    let rate_mbit = env_num("WAN_RATE_MBIT", 400.0);
    let bottleneck = Bottleneck {
        rate: (rate_mbit * 1e6 / 8.0) as u64,
        queue: (env_num("WAN_QUEUE_KB", 1024.0) * 1024.0) as u64,
    };
    let mut bench = Bench {
        bin,
        mesh,
        ns,
        bottleneck,
        cap: Duration::from_secs_f64(env_num("WAN_SECONDS", 30.0)),
        runs: 0,
    };
    let rtts: Vec<f64> = env_list("WAN_RTTS", "20,50,100,200")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let losses: Vec<f64> = env_list("WAN_LOSSES", "0,1")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let modes = env_list("WAN_MODES", "fixed,adaptive");
    println!(
        "WAN bench: node in a network namespace, one Chromium peer on the host, 5.4 MB warm segment; uplink {rate_mbit} Mbit/s, queue {} KiB; cap {:?} per transfer",
        bottleneck.queue / 1024,
        bench.cap
    );
    println!();
    println!(
        "| RTT ms | loss % | mode | MB/s | result | longest gap s | node CPU s/MB | lost / overflowed datagrams |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &rtt in &rtts {
        for &loss in &losses {
            for mode in &modes {
                let link = Link {
                    delay: Duration::from_secs_f64(rtt / 2000.0),
                    loss: loss / 100.0,
                };
                match one_peer(&mut bench, mode, link).await {
                    Ok((t, cpu, stats)) => println!(
                        "| {rtt} | {loss} | {mode} | {:.2} | {} | {:.1} | {} | {} / {} |",
                        t.mbps(),
                        verdict(&t),
                        t.longest_gap,
                        cpu.map_or("n/a".into(), |c| format!(
                            "{:.3}",
                            c / (t.bytes as f64 / 1e6)
                        )),
                        stats.2,
                        stats.3
                    ),
                    Err(e) => println!("| {rtt} | {loss} | {mode} | – | FAILED: {e} | | | |"),
                }
            }
        }
    }
    if env_num("WAN_FAIR", 1.0) > 0.0 {
        println!();
        println!("8 peers at once, RTTs 20/50/100/200 ms (two each), no loss, shared uplink:");
        println!();
        println!(
            "| mode | associations | per-peer MB/s (RTT ms) | slowest / fastest | aggregate MB/s | complete |"
        );
        println!("|---|---|---|---|---|---|");
        for mode in &modes {
            match fairness(&mut bench, mode).await {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => println!("| {mode} | | FAILED: {e} | | | |"),
            }
        }
    }
    Ok(())
}

async fn one_peer(
    bench: &mut Bench,
    mode: &str,
    link: Link,
) -> Result<(Transfer, Option<f64>, (u64, u64, u64, u64)), String> {
    let udp = free_port()?;
    let forwarder = Forwarder::start(&bench.ns, udp, vec![link], bench.bottleneck).await?;
    let node = bench.start_node(udp, mode).await?;
    let peers = bench.peers(&node, 1).await?;
    let peer = &peers[0];
    // Cold: the node fetches the segment from the origin (through the relay) while sending.
    let _cold = bench.transfer(peer, 0).await?;
    let cpu0 = node.pid().and_then(cpu_seconds);
    let warm = bench.transfer(peer, 1).await?;
    let cpu = cpu0
        .zip(node.pid().and_then(cpu_seconds))
        .map(|(a, b)| b - a);
    if std::env::var_os("WAN_DEBUG").is_some() {
        let peers = bench.node_get(&node, "/peers").await?;
        let v: serde_json::Value = serde_json::from_str(&peers).unwrap_or_default();
        eprintln!(
            "path after the warm segment: {}",
            at(&v, "/peers/0/channels/0/path")
        );
        eprintln!(
            "UDP receive-buffer drops: host {}, node's namespace {}",
            rcvbuf_errors(None),
            rcvbuf_errors(Some(&bench.ns))
        );
        if let Ok(out) = std::process::Command::new("ss").args(["-uamp"]).output() {
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines.windows(2) {
                if pair[1].contains("skmem") && !pair[1].contains(",d0)") {
                    eprintln!("{}\n  {}", pair[0], pair[1].trim());
                }
            }
        }
    }
    let stats = forwarder.stats.snapshot();
    let _ = peer.page.close().await;
    drop(node);
    Ok((warm, cpu, stats))
}

async fn fairness(bench: &mut Bench, mode: &str) -> Result<Vec<String>, String> {
    let udp = free_port()?;
    let links = [20.0, 50.0, 100.0, 200.0]
        .iter()
        .map(|rtt| Link {
            delay: Duration::from_secs_f64(rtt / 2000.0),
            loss: 0.0,
        })
        .collect();
    let forwarder = Forwarder::start(&bench.ns, udp, links, bench.bottleneck).await?;
    let node = bench.start_node(udp, mode).await?;
    let peers = bench.peers(&node, 8).await?;
    // Warm the node's cache, then everyone resolves the same warm segment at once: first on
    // fresh associations (each still in slow start: a 200 ms peer needs about ten round trips
    // for 5.4 MB however idle the path), then again on the associations that round ramped up,
    // which is how the node shares its uplink between peers that are already streaming.
    let _ = bench.transfer(&peers[0], 1).await?;
    let mut rtts = Vec::new();
    for p in &peers {
        rtts.push(p.ping().await?);
    }
    let mut lines = Vec::new();
    for round in ["fresh", "ramped"] {
        let line = fair_round(bench, &node, &peers, &rtts).await?;
        lines.push(format!("| {mode} | {round} | {line}"));
    }
    let _ = forwarder.stats.snapshot();
    for p in &peers {
        let _ = p.page.close().await;
    }
    drop(node);
    Ok(lines)
}

/// All `peers` resolve the warm segment at once; the table cells from per-peer rate on.
async fn fair_round(
    bench: &Bench,
    node: &NsNode,
    peers: &[WebPeer],
    rtts: &[f64],
) -> Result<String, String> {
    let started = Instant::now();
    let transfers = join_all(peers.iter().map(|p| bench.transfer(p, 1)));
    let results = if std::env::var_os("WAN_DEBUG").is_some() {
        // Every 250 ms, each peer's path as the node sees it (RTT, window, rates, recovery).
        let sample = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Ok(text) = bench.node_get(node, "/peers").await else {
                    continue;
                };
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let rows: Vec<String> = v["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let path = p.pointer("/channels/0/path")?;
                        Some(format!(
                            "rtt {:.0} cwnd {} ss {} infl {} dr {:.2} pr {:.2} rtx {} pr {} to {}",
                            path["min_rtt_ms"].as_f64()?,
                            path["cwnd"].as_u64()? / 1000,
                            path["ssthresh"].as_u64()? / 1000,
                            path["in_flight"].as_u64()? / 1000,
                            path["delivery_rate"].as_f64()? / 1e6,
                            path["pacing_rate"].as_f64()? / 1e6,
                            path["retransmitted"],
                            path["probes"],
                            path["timeouts"],
                        ))
                    })
                    .collect();
                eprintln!("t={:.2}s", started.elapsed().as_secs_f64());
                for r in rows {
                    eprintln!("  {r}");
                }
            }
        };
        tokio::select! {
            r = transfers => r,
            () = sample => unreachable!(),
        }
    } else {
        transfers.await
    };
    let wall = started.elapsed().as_secs_f64();
    let mut rates = Vec::new();
    let mut bytes = 0;
    let mut complete = 0;
    for r in results {
        let t = r?;
        bytes += t.bytes;
        complete += u32::from(t.complete && t.exact);
        rates.push(t.mbps());
    }
    let mut cells: Vec<String> = rates
        .iter()
        .zip(rtts)
        .map(|(r, rtt)| format!("{r:.2} ({rtt:.0})"))
        .collect();
    cells.sort();
    let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let fastest = rates.iter().copied().fold(0.0, f64::max);
    Ok(format!(
        "{} | {:.2} | {:.2} | {complete}/{} |",
        cells.join(", "),
        slowest / fastest.max(1e-9),
        bytes as f64 / wall / 1e6,
        peers.len()
    ))
}
