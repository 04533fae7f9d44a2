//! Operator reloads of the real (release) node: how long from a policy file replaced (`mv`)
//! until `/status` shows the new policy answering, for a raw `.wasm` and a precompiled
//! `.cwasm` (`videortc compile-policy`), and how long `POST /admin/policy` takes. The file
//! watcher waits for 300 ms of quiet before it reloads (editors write in several steps), so
//! that is the floor of the file route.
//!
//! `cargo bench -p videortc-tests --bench reload`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::Path;
use std::time::{Duration, Instant};

use videortc::policy::DEFAULT_COMPONENT;
use videortc_tests::node::{Node, binary};

use videortc_tests::components::CHAOS;
const ROUNDS: usize = 10;

async fn describe(client: &reqwest::Client, node: &Node) -> String {
    let text = client
        .get(format!("{}/status", node.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["policy"]["describe"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Replaces `file` by a rename of `bytes` and times until the node describes the new policy.
async fn swap(
    client: &reqwest::Client,
    node: &Node,
    file: &Path,
    bytes: &[u8],
    chaos: bool,
) -> Duration {
    let staged = file.with_extension("new");
    std::fs::write(&staged, bytes).unwrap();
    let start = Instant::now();
    std::fs::rename(&staged, file).unwrap();
    loop {
        if describe(client, node).await.ends_with("+chaos") == chaos {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no reload");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<40} median {:7.1} ms   min {:7.1} ms   max {:7.1} ms   ({} swaps)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

fn compile(bin: &Path, input: &Path, output: &Path) {
    let out = std::process::Command::new(bin)
        .arg("compile-policy")
        .args([input, output])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::main]
async fn main() {
    let bin = tokio::task::spawn_blocking(binary).await.unwrap().unwrap();
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (default_wasm, chaos_wasm) = (dir.join("default.wasm"), dir.join("chaos.wasm"));
    std::fs::write(&default_wasm, DEFAULT_COMPONENT).unwrap();
    std::fs::write(&chaos_wasm, CHAOS).unwrap();
    let (default_cwasm, chaos_cwasm) = (dir.join("default.cwasm"), dir.join("chaos.cwasm"));
    compile(&bin, &default_wasm, &default_cwasm);
    compile(&bin, &chaos_wasm, &chaos_cwasm);
    let file = dir.join("policy.wasm");
    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    let path = file.display().to_string();
    let node = Node::start(&[], &[("POLICY", path.as_str()), ("RUST_LOG", "warn")])
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    println!("policy reloads (release node, this machine; {ROUNDS} swaps each way)");

    let mut raw = Vec::new();
    for _ in 0..ROUNDS {
        raw.push(swap(&client, &node, &file, CHAOS, true).await);
        raw.push(swap(&client, &node, &file, DEFAULT_COMPONENT, false).await);
    }
    summary("file replaced (.wasm) -> answering", raw);

    let (chaos_pre, default_pre) = (
        std::fs::read(&chaos_cwasm).unwrap(),
        std::fs::read(&default_cwasm).unwrap(),
    );
    let mut pre = Vec::new();
    for _ in 0..ROUNDS {
        pre.push(swap(&client, &node, &file, &chaos_pre, true).await);
        pre.push(swap(&client, &node, &file, &default_pre, false).await);
    }
    summary("file replaced (.cwasm) -> answering", pre);

    // The admin route reloads the same file now, without waiting for the watcher.
    let mut admin = Vec::new();
    for k in 0..2 * ROUNDS {
        let (bytes, chaos) = if k % 2 == 0 {
            (&chaos_pre, true)
        } else {
            (&default_pre, false)
        };
        // Written in place, then posted at once: the watcher's debounce has not run yet.
        std::fs::write(&file, bytes).unwrap();
        let start = Instant::now();
        let resp = client
            .post(format!("{}/admin/policy", node.url()))
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        assert!(resp.status().is_success(), "{}", resp.status());
        assert_eq!(describe(&client, &node).await.ends_with("+chaos"), chaos);
        admin.push(took);
        // Let the watcher see the write and find nothing new before the next round.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    summary("POST /admin/policy (.cwasm), response", admin);
}
