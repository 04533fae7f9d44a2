//! HTTP figures of a release node against the in-process test origin, printed as lines:
//!
//! - throughput of one large `Range` request through the node (BASE_URL `.ts` mode and
//!   stream-URL mode) against the same request to the origin directly, and their ratio;
//! - requests per second of `/video/{id}.json` answered from the node's cache.
//!
//! `cargo bench -p videortc-tests --bench http` (builds the node in release).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use videortc_tests::node::Node;
use videortc_tests::origin::{TestOrigin, VID, fixture_streams, synthetic_stream};

const BIG: usize = 128 << 20;
const ROUNDS: usize = 5;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Seconds to read `url` with `range` to the end; checks the length.
async fn timed_read(client: &reqwest::Client, url: &str, range: &str, want: u64) -> f64 {
    let start = Instant::now();
    let mut resp = client.get(url).header("range", range).send().await.unwrap();
    assert_eq!(resp.status(), 206, "{url}");
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len() as u64;
    }
    assert_eq!(n, want, "{url}");
    start.elapsed().as_secs_f64()
}

/// Median MB/s over `ROUNDS` reads.
async fn throughput(url: &str, range: &str, want: u64) -> f64 {
    let client = client();
    let _ = timed_read(&client, url, range, want).await; // warm-up
    let mut rates: Vec<f64> = Vec::new();
    for _ in 0..ROUNDS {
        let secs = timed_read(&client, url, range, want).await;
        rates.push(want as f64 / secs / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

async fn json_rate(url: &str, concurrency: usize, secs: u64) -> f64 {
    let client = client();
    assert_eq!(client.get(url).send().await.unwrap().status(), 200);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let resp = client.get(&url).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    let body = resp.bytes().await.unwrap();
                    assert!(!body.is_empty());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn run() {
    let mut streams = fixture_streams().unwrap();
    streams.push(synthetic_stream(22, "big.mp4", "video/mp4", BIG, 11));
    let base_origin = TestOrigin::start(streams.clone()).await.unwrap();
    let url_origin = TestOrigin::start(streams).await.unwrap();
    for o in [&base_origin, &url_origin] {
        o.control.plain.lock().unwrap().push(22);
    }
    url_origin.control.with_urls.store(true, Ordering::SeqCst);
    let base = base_origin.base_url();
    let node_base = Node::start(&[], &[("BASE_URL", base.as_str()), ("RUST_LOG", "warn")])
        .await
        .unwrap();
    let url_base = url_origin.base_url();
    let node_url = Node::start(
        &[],
        &[("BASE_URL", url_base.as_str()), ("RUST_LOG", "warn")],
    )
    .await
    .unwrap();

    let len = BIG as u64;
    let range = format!("bytes=0-{}", len - 1);
    let direct = throughput(&format!("{base}/media/big.mp4"), &range, len).await;
    let via_ts = throughput(
        &format!("{}/video/{VID}/22.mp4", node_base.url()),
        &range,
        len,
    )
    .await;
    let via_url = throughput(
        &format!("{}/video/{VID}/22.mp4", node_url.url()),
        &range,
        len,
    )
    .await;
    println!("range {} MiB, median of {ROUNDS}:", BIG >> 20);
    println!("  origin direct           {direct:8.1} MB/s");
    println!(
        "  node, BASE_URL .ts      {via_ts:8.1} MB/s  ratio {:.2}",
        via_ts / direct
    );
    println!(
        "  node, stream URL        {via_url:8.1} MB/s  ratio {:.2}",
        via_url / direct
    );

    let json = format!("{}/video/{VID}.json", node_base.url());
    for c in [1, 16, 64] {
        let rate = json_rate(&json, c, 5).await;
        println!("  .json from cache, {c:2} concurrent: {rate:8.0} req/s");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        // `cargo test --benches` and listing: nothing to measure.
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
