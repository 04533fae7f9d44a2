//! WebRTC benchmark of the real node against headless Chromium peers on loopback:
//! resolve → first chunk (cold and warm), one-peer throughput on a ~5.4 MB segment, aggregate
//! throughput over 8 peers (4 pages × 2 ids), and the node's memory with them.
//!
//! `cargo bench -p videortc-tests --bench rtc` (release node). Prints a Markdown table.
//! `BENCH_ROUNDS` (default 5) sets the throughput repetitions; `BENCH_PEERS` (default 8) the
//! peers of the aggregate phase (2 per page up to 8, then 4 per page: `BENCH_PEERS=63` with
//! the first peer fills the node's default `MAX_PEERS`, for its peak memory); `RTC_WINDOW` and
//! `RTC_WINDOW_MAX` are passed to the node when set. MB = 10^6 bytes. Needs Chromium and
//! ffmpeg.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sha2::{Digest, Sha256};
use videortc_tests::mesh::{BIG_ITAG, Mesh, Resolved, WebPeer, big_stream, cpu_seconds, rss_kib};
use videortc_tests::origin::{TestOrigin, VID, fixture_streams};

const SMALL_ITAGS: [u32; 4] = [137, 140, 248, 251];

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Build (or find fresh) the release node first: the time limit is for the bench itself.
    if let Err(e) = videortc_tests::node::program() {
        eprintln!("rtc bench: cannot build the node: {e}");
        return ExitCode::FAILURE;
    }
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(1200), run()).await }) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("rtc bench failed: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("rtc bench did not finish within 20 min");
            ExitCode::FAILURE
        }
    }
}

fn sid(itag: u32) -> String {
    format!("{VID}:{itag}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a delivered segment against the origin's bytes.
fn check(got: &Resolved, origin: &TestOrigin, itag: u32, index: usize) -> Result<(), String> {
    let s = origin.stream(itag).ok_or("no stream")?;
    let r = s.layout.segments[index];
    let want = &s.bytes[r.start as usize..=r.end as usize];
    if got.len != want.len() as u64 || got.sha256 != sha256_hex(want) {
        return Err(format!("{itag} segment {index}: bytes differ"));
    }
    Ok(())
}

/// Median, min and max.
fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (
        median,
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

fn fmt(values: &[f64], digits: usize) -> String {
    let (med, min, max) = summary(values);
    format!(
        "{med:.digits$} (min {min:.digits$}, max {max:.digits$}, n={})",
        values.len()
    )
}

/// CPU seconds of `root` and all its descendants (Chromium's browser, zygotes, renderers, GPU
/// and network services).
fn tree_cpu_seconds(root: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut parent = std::collections::HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent.insert(pid, ppid);
        }
    }
    let in_tree = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parent.get(&pid) {
            Some(&p) if p != 0 && p != pid => pid = p,
            _ => return false,
        }
    };
    parent
        .keys()
        .filter(|&&pid| in_tree(pid))
        .filter_map(|&pid| cpu_seconds(pid))
        .sum()
}

fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The node's loss recovery so far, summed over every channel's path in `/peers`:
/// chunks retransmitted, tail-loss probes, retransmission timeouts.
async fn recovery(m: &Mesh) -> [u64; 3] {
    let mut sum = [0; 3];
    let Some(url) = m.node_url() else { return sum };
    let Ok(resp) = reqwest::get(format!("{url}/peers")).await else {
        return sum;
    };
    let text = resp.text().await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    for peer in v["peers"].as_array().into_iter().flatten() {
        for ch in peer["channels"].as_array().into_iter().flatten() {
            for (k, key) in ["retransmitted", "probes", "timeouts"].iter().enumerate() {
                sum[k] += ch["path"][key].as_u64().unwrap_or(0);
            }
        }
    }
    sum
}

async fn run() -> Result<(), String> {
    let load_before = load_average();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let window = std::env::var("RTC_WINDOW").ok();
    let window_max = std::env::var("RTC_WINDOW_MAX").ok();
    let n_peers: usize = std::env::var("BENCH_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(8);
    let per_page = if n_peers <= 8 { 2 } else { 4 };
    tokio::task::spawn_blocking(videortc_tests::node::binary)
        .await
        .map_err(|e| e.to_string())??;
    let mut streams = fixture_streams()?;
    streams.push(big_stream(Path::new(env!("CARGO_TARGET_TMPDIR")))?);
    let mut m = Mesh::new(streams).await?;
    let env: Vec<(&str, &str)> = [("RTC_WINDOW", &window), ("RTC_WINDOW_MAX", &window_max)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
    m.start_node(&env).await?;
    m.signal
        .wait_joined(&m.node_id, Duration::from_secs(20))
        .await?;
    let pid = m.node_pid().ok_or("node has no pid")?;
    let (rss_idle, _) = rss_kib(pid).ok_or("cannot read node RSS")?;
    let peer = m.connected_peer().await?;

    // Resolve → first chunk. Info and index are loaded first (a query per stream), so "cold"
    // is one origin fetch of the segment bytes plus the send; "warm" is from the cache.
    let mut small = Vec::new();
    for itag in SMALL_ITAGS {
        if !peer.query(&sid(itag), 0, Duration::from_secs(10)).await? {
            return Err(format!("{itag}: no found"));
        }
        let n = m
            .origin
            .stream(itag)
            .ok_or("no stream")?
            .layout
            .segments
            .len();
        small.extend((0..n).map(|i| (itag, i)));
    }
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for (pass, out) in [(0, &mut cold), (1, &mut warm)] {
        for &(itag, i) in &small {
            let r = peer.resolve(&sid(itag), i as u32).await?;
            check(&r, &m.origin, itag, i)?;
            out.push(r.first_ms);
        }
        eprintln!("first-chunk pass {pass} done");
    }
    let ping: Vec<f64> = {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(peer.ping().await?);
        }
        v
    };

    // One peer, one ~5.4 MB segment at a time (the first fetch warms the cache).
    let big = sid(BIG_ITAG);
    let big_len = m
        .origin
        .stream(BIG_ITAG)
        .map_or(0, |s| s.layout.segments[0].len());
    let first = peer.resolve(&big, 0).await?;
    check(&first, &m.origin, BIG_ITAG, 0)?;
    let cold_big = first.len as f64 / first.total_ms / 1000.0;
    peer.resolve(&big, 1).await?;
    let mut one = Vec::new();
    let cpu0 = cpu_seconds(pid);
    let mut one_bytes = 0u64;
    for k in 0..rounds {
        let r = peer.resolve(&big, (k % 2) as u32).await?;
        check(&r, &m.origin, BIG_ITAG, k % 2)?;
        one_bytes += r.len;
        one.push(r.len as f64 / r.total_ms / 1000.0);
    }
    let one_cpu = cpu0.zip(cpu_seconds(pid)).map(|(a, b)| b - a);
    let one_recovery = recovery(&m).await;
    eprintln!("one-peer throughput done");

    // n peers, 2 or 4 to a page, each resolving a warm ~5.4 MB segment at the same time.
    let mut peers: Vec<WebPeer> = Vec::new();
    while peers.len() < n_peers {
        let page = m.page().await?;
        for _ in 0..per_page.min(n_peers - peers.len()) {
            peers.push(m.peer(&page).await?);
        }
    }
    for r in join_all(peers.iter().map(|p| p.ready(Duration::from_secs(60)))).await {
        r?;
    }
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak_rss.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::SeqCst) {
                if let Some((rss, _)) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut aggregate = Vec::new();
    let mut per_peer = Vec::new();
    let mut complete = 0;
    let mut attempted = 0;
    let cpu0 = cpu_seconds(pid);
    let browser_cpu0 = tree_cpu_seconds(m.browser.pid());
    let agg_start = Instant::now();
    let mut agg_bytes = 0u64;
    for round in 0..rounds {
        let start = Instant::now();
        let results = join_all(peers.iter().enumerate().map(|(k, p)| {
            let big = big.clone();
            async move { p.resolve(&big, ((k + round) % 2) as u32).await }
        }))
        .await;
        let wall = start.elapsed().as_secs_f64();
        let mut bytes = 0u64;
        for (k, r) in results.into_iter().enumerate() {
            attempted += 1;
            match r {
                Ok(r) if check(&r, &m.origin, BIG_ITAG, (k + round) % 2).is_ok() => {
                    complete += 1;
                    bytes += r.len;
                    per_peer.push(r.len as f64 / r.total_ms / 1000.0);
                }
                Ok(_) => eprintln!("round {round} peer {k}: bytes differ"),
                Err(e) => eprintln!("round {round} peer {k}: {e}"),
            }
        }
        agg_bytes += bytes;
        aggregate.push(bytes as f64 / wall / 1e6);
    }
    let agg_cpu = cpu0.zip(cpu_seconds(pid)).map(|(a, b)| b - a);
    let all_recovery = recovery(&m).await;
    let browser_cpu = tree_cpu_seconds(m.browser.pid()) - browser_cpu0;
    let agg_wall = agg_start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::SeqCst);
    let _ = sampler.await;
    let (rss_now, hwm) = rss_kib(pid).ok_or("cannot read node RSS")?;
    let mb_per_cpu = |bytes: u64, cpu: Option<f64>| {
        cpu.map_or("n/a".to_owned(), |c| {
            format!("{:.0}", bytes as f64 / 1e6 / c)
        })
    };

    println!();
    println!(
        "### videortc WebRTC bench (release node, window {} / max {}, {} rounds, segment {:.2} MB)",
        window.as_deref().unwrap_or("default"),
        window_max.as_deref().unwrap_or("default"),
        rounds,
        big_len as f64 / 1e6
    );
    println!();
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| ping → pong RTT, ms | {} | |", fmt(&ping, 2));
    println!(
        "| resolve → first chunk, cold (origin fetch), ms | {} | |",
        fmt(&cold, 2)
    );
    println!(
        "| resolve → first chunk, warm (cached), ms | {} | ≤ 10 |",
        fmt(&warm, 2)
    );
    println!("| 1 peer, cold 5.4 MB segment, MB/s | {cold_big:.1} | |");
    println!(
        "| 1 peer, warm 5.4 MB segment, MB/s | {} | ≥ 15 |",
        fmt(&one, 1)
    );
    println!(
        "| {n_peers} peers at once, aggregate MB/s | {} | ≥ 30 |",
        fmt(&aggregate, 1)
    );
    println!(
        "| {n_peers} peers, per-peer MB/s | {} | |",
        fmt(&per_peer, 1)
    );
    println!("| {n_peers} peers, segments complete and exact | {complete}/{attempted} | all |");
    println!(
        "| node MB sent per CPU-second, 1 peer / {n_peers} peers | {} / {} | |",
        mb_per_cpu(one_bytes, one_cpu),
        mb_per_cpu(agg_bytes, agg_cpu)
    );
    println!(
        "| {n_peers}-peer phase CPU: node / Chromium / wall, s | {} / {browser_cpu:.1} / {agg_wall:.1} (2 cores = {:.1} CPU-s) | |",
        agg_cpu.map_or("n/a".to_owned(), |c| format!("{c:.1}")),
        2.0 * agg_wall
    );
    println!(
        "| SCTP chunks retransmitted / probes / timeouts: first peer / all peers at the end | {} / {} | |",
        one_recovery.map(|n| n.to_string()).join(" / "),
        all_recovery.map(|n| n.to_string()).join(" / ")
    );
    println!(
        "| node RSS idle / peak sampled with {n_peers} peers / VmHWM, MB | {:.1} / {:.1} / {:.1} (now {:.1}) | ≤ 60 |",
        rss_idle as f64 / 1024.0,
        peak_rss.load(Ordering::SeqCst) as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss_now as f64 / 1024.0
    );
    println!();
    println!(
        "MB = 10^6 bytes. Load average before: {load_before}; after: {} (the bench itself \
         keeps both cores busy; a high load before means other work shared them).",
        load_average()
    );
    if complete != attempted {
        return Err(format!(
            "{} of {attempted} {n_peers}-peer segments failed",
            attempted - complete
        ));
    }
    Ok(())
}
