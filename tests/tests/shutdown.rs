//! Graceful shutdown of the real binary: SIGTERM stops accepting, lets in-flight requests
//! finish and exits 0; a second signal exits at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_common::{get, node, origin};
use videortc_tests::origin::VID;

fn signal(pid: u32, name: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_exits_0() {
    let origin = origin(false).await;
    origin.control.delay_ms.store(1500, Ordering::SeqCst);
    let mut node = node(&origin, &[]).await;
    let url = format!("{}/video/{VID}.json", node.url());
    let slow = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(node.child.id().unwrap(), "TERM");
    // The request in flight completes...
    let got = slow.await.unwrap();
    assert_eq!(got.status, 200, "{}", got.text());
    // ...new connections are refused, and the node exits 0.
    let status = tokio::time::timeout(Duration::from_secs(15), node.child.wait())
        .await
        .expect("the node did not exit")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", node.port))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let origin = origin(false).await;
    origin.control.delay_ms.store(30_000, Ordering::SeqCst);
    let mut node = node(&origin, &[]).await;
    let url = format!("{}/video/{VID}.json", node.url());
    let _stuck = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = node.child.id().unwrap();
    signal(pid, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    signal(pid, "INT");
    let status = tokio::time::timeout(Duration::from_secs(5), node.child.wait())
        .await
        .expect("the node did not exit")
        .unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
}
