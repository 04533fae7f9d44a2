//! Operators swapping the policy of a running node (the real binary): the `POLICY` file
//! watched (written in place, replaced by a rename, broken), `SIGHUP`, `POST /admin/policy`
//! (loopback, token, uploads, refusals), precompiled files, and the `check-policy` /
//! `compile-policy` commands.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_common::{client, get, origin};
use serde_json::Value;
use videortc::policy::DEFAULT_COMPONENT;
use videortc_tests::node::{Node, binary};

use videortc_tests::components::{CHAOS, CURATED};
use videortc_tests::origin::VID;
use videortc_tests::xml;
const TOKEN: &str = "test-admin-token-0123456789";

/// A fresh directory for one test's policy files.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("policy-reload")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn status(node: &Node) -> Value {
    get(&format!("{}/status", node.url()), &[]).await.json()
}

/// A counter from `/metrics`.
async fn metric(node: &Node, name: &str) -> u64 {
    let text = get(&format!("{}/metrics", node.url()), &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Polls `/status` until `policy.describe` satisfies `want`; the status then.
async fn wait_policy(node: &Node, what: &str, want: impl Fn(&str) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(node).await;
        if want(s["policy"]["describe"].as_str().unwrap_or_default()) {
            return s;
        }
        assert!(Instant::now() < deadline, "policy never became {what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_metric(node: &Node, name: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(node, name).await < at_least {
        assert!(Instant::now() < deadline, "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_chaos(d: &str) -> bool {
    d.ends_with("+chaos")
}

fn is_default(d: &str) -> bool {
    d.starts_with("videortc-guest ") && !d.contains("chaos")
}

async fn node_with(file: &Path, env: &[(&str, &str)]) -> Node {
    let path = file.display().to_string();
    let mut all = vec![("POLICY", path.as_str())];
    all.extend_from_slice(env);
    Node::start(&[], &all).await.unwrap()
}

#[tokio::test]
async fn the_file_is_watched_in_place_and_through_renames() {
    let d = dir("watch");
    let file = d.join("policy.wasm");
    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    let node = node_with(
        &file,
        &[("POLICY_TIMEOUT_MS", "250"), ("POLICY_INSTANCES", "3")],
    )
    .await;
    let s = status(&node).await;
    assert!(is_default(s["policy"]["describe"].as_str().unwrap()), "{s}");
    assert_eq!(s["policy"]["world"], "0.2.1");
    assert_eq!(s["policy"]["source"], file.display().to_string());
    assert_eq!(s["policy"]["generation"], 1);
    assert_eq!(s["policy"]["sha256"], sha256_hex(DEFAULT_COMPONENT), "{s}");
    assert_eq!(s["policy"]["limits"]["timeout_ms"], 250, "{s}");
    assert_eq!(s["policy"]["limits"]["instances"], 3, "{s}");
    let started = s["policy"]["loaded_at"].as_u64().unwrap();
    assert!(started > 1_700_000_000, "{s}");

    // An editor writing in place.
    std::fs::write(&file, CHAOS).unwrap();
    let s = wait_policy(&node, "chaos", is_chaos).await;
    assert_eq!(s["policy"]["generation"], 2);
    assert_eq!(s["policy"]["sha256"], sha256_hex(CHAOS), "{s}");
    assert_eq!(s["policy"]["reloads"], 1, "{s}");
    assert!(s["policy"]["loaded_at"].as_u64().unwrap() >= started, "{s}");

    // `mv new policy.wasm`: a rename over the file.
    let staged = d.join("policy.wasm.new");
    std::fs::write(&staged, DEFAULT_COMPONENT).unwrap();
    std::fs::rename(&staged, &file).unwrap();
    wait_policy(&node, "the default", is_default).await;
    assert_eq!(metric(&node, "videortc_policy_reloads_total").await, 2);

    // A broken file: rejected, counted, and the running policy keeps serving.
    std::fs::write(&file, b"not a component").unwrap();
    wait_metric(&node, "videortc_policy_rejected_total", 1).await;
    let s = status(&node).await;
    assert!(is_default(s["policy"]["describe"].as_str().unwrap()), "{s}");
    let info = get(&format!("{}/video/dQw4w9WgXcQ/0.mp4", node.url()), &[]).await;
    assert_eq!(
        info.status, 400,
        "ids and itags are still checked by the policy"
    );

    // Writing the bytes already running is not a reload.
    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(metric(&node, "videortc_policy_reloads_total").await, 2);

    // A precompiled component from `compile-policy` loads from the file too.
    let cwasm = d.join("chaos.cwasm");
    let chaos = d.join("chaos.wasm");
    std::fs::write(&chaos, CHAOS).unwrap();
    let out = std::process::Command::new(binary().unwrap())
        .arg("compile-policy")
        .args([&chaos, &cwasm])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&cwasm, &file).unwrap();
    wait_policy(&node, "chaos (precompiled)", is_chaos).await;
    assert_eq!(metric(&node, "videortc_policy_reloads_total").await, 3);
}

#[tokio::test]
async fn sighup_reloads_even_the_same_bytes() {
    let d = dir("hup");
    let file = d.join("policy.wasm");
    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    let node = node_with(&file, &[]).await;
    let pid = node.child.id().unwrap().to_string();
    for expect in [1, 2] {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        wait_metric(&node, "videortc_policy_reloads_total", expect).await;
    }
    let s = status(&node).await;
    assert_eq!(s["policy"]["generation"], 3);
    assert!(is_default(s["policy"]["describe"].as_str().unwrap()));
}

async fn post(node: &Node, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = client()
        .post(format!("{}/admin/policy", node.url()))
        .body(body.to_vec());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn the_admin_endpoint() {
    let d = dir("admin");
    let file = d.join("policy.wasm");
    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    let node = node_with(&file, &[("ADMIN_TOKEN", TOKEN)]).await;
    let relayed = ("x-forwarded-for", "192.0.2.7");
    let bearer = format!("Bearer {TOKEN}");

    // From loopback: an upload replaces the policy.
    let (code, body) = post(&node, CHAOS, &[]).await;
    assert_eq!(code, 200, "{body}");
    assert!(is_chaos(body["policy"].as_str().unwrap()), "{body}");
    assert_eq!(
        (body["world"].as_str(), body["source"].as_str()),
        (Some("0.2.1"), Some("upload"))
    );

    // Relayed by a proxy: the token is needed, and a wrong one is refused.
    let (code, body) = post(&node, DEFAULT_COMPONENT, &[relayed]).await;
    assert_eq!(code, 403, "{body}");
    let (code, _) = post(
        &node,
        DEFAULT_COMPONENT,
        &[relayed, ("authorization", "Bearer wrong-token-0123456789")],
    )
    .await;
    assert_eq!(code, 403);
    assert!(is_chaos(
        status(&node).await["policy"]["describe"].as_str().unwrap()
    ));
    let (code, body) = post(
        &node,
        DEFAULT_COMPONENT,
        &[relayed, ("authorization", &bearer)],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(is_default(body["policy"].as_str().unwrap()), "{body}");

    // Refusals keep the running policy.
    let (code, body) = post(&node, b"junk", &[]).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("rejected"),
        "{body}"
    );
    let cwasm = videortc::policy::precompile(CHAOS).unwrap();
    let (code, body) = post(&node, &cwasm, &[]).await;
    assert_eq!(code, 415, "{body}");
    assert!(is_default(
        status(&node).await["policy"]["describe"].as_str().unwrap()
    ));
    assert_eq!(metric(&node, "videortc_policy_rejected_total").await, 2);

    // An empty body reloads the file.
    std::fs::write(d.join("x"), b"").unwrap();
    let (code, body) = post(&node, b"", &[]).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["source"], file.display().to_string());

    // Without POLICY there is no file to reload; uploads still work. GET is not a route.
    let bare = Node::start(&[], &[]).await.unwrap();
    let (code, _) = post(&bare, b"", &[]).await;
    assert_eq!(code, 400);
    let (code, _) = post(&bare, CHAOS, &[]).await;
    assert_eq!(code, 200);
    let got = get(&format!("{}/admin/policy", bare.url()), &[]).await;
    assert_eq!(got.status, 405);
}

#[tokio::test]
async fn check_and_compile_policy_commands() {
    let d = dir("commands");
    let wasm = d.join("p.wasm");
    let cwasm = d.join("p.cwasm");
    std::fs::write(&wasm, CHAOS).unwrap();
    let run = |args: &[&Path]| {
        let mut cmd = std::process::Command::new(binary().unwrap());
        for a in args {
            cmd.arg(a);
        }
        cmd.output().unwrap()
    };
    let out = run(&[Path::new("check-policy"), &wasm]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+chaos (videortc:policy@0.2.1)"), "{text}");

    let out = run(&[Path::new("compile-policy"), &wasm, &cwasm]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[Path::new("check-policy"), &cwasm]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("+chaos"));

    let junk = d.join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let out = run(&[Path::new("check-policy"), &junk]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("policy component rejected"), "{err}");
    assert_eq!(
        err.trim_end()
            .lines()
            .filter(|l| l.starts_with("videortc:"))
            .count(),
        1,
        "{err}"
    );
}

/// The itags a DASH manifest of the node picked, video then audio.
async fn mpd_itags(node: &Node) -> Vec<String> {
    let got = get(&format!("{}/video/{VID}.mpd", node.url()), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let mpd = xml::parse(&got.text()).unwrap();
    mpd.all("Period")
        .flat_map(|p| p.all("AdaptationSet"))
        .flat_map(|set| set.all("Representation"))
        .map(|r| r.attr("id").unwrap().to_owned())
        .collect()
}

/// The example policy `examples/policies/curated`, swapped into a running node, changes what
/// the node decides: manifests prefer AAC over Opus, and an id off its list is refused before
/// anything is fetched; swapping the default back restores both.
#[tokio::test]
async fn the_curated_example_changes_the_nodes_decisions() {
    let origin = origin(false).await;
    let d = dir("curated");
    let file = d.join("policy.wasm");
    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    let base = origin.base_url();
    let node = node_with(&file, &[("BASE_URL", base.as_str())]).await;
    let other = "dQw4w9WgXcQ";
    let other_json = format!("/{other}.json");

    assert_eq!(mpd_itags(&node).await, ["137", "251"]);
    let got = get(&format!("{}/video/{other}.json", node.url()), &[]).await;
    assert_ne!(
        got.status, 400,
        "the default policy accepts any well-formed id"
    );
    assert_eq!(origin.control.hits(&other_json), 1);

    std::fs::write(&file, CURATED).unwrap();
    let s = wait_policy(&node, "curated", |d| {
        d.starts_with("videortc-policy-curated ")
    })
    .await;
    assert_eq!(
        s["policy"]["features"],
        serde_json::json!(["allow-list", "segment-cap"])
    );
    assert_eq!(mpd_itags(&node).await, ["137", "140"], "AAC first");
    let metrics = get(&format!("{}/metrics", node.url()), &[]).await.text();
    let info = format!(
        r#"videortc_policy_info{{describe="videortc-policy-curated 0.1.0",world="0.2.1",source="{}",sha256="{}"}} 1"#,
        file.display(),
        sha256_hex(CURATED)
    );
    assert!(
        metrics.lines().any(|l| l == info),
        "{info} not in {metrics}"
    );
    for path in [
        format!("/video/{other}.json"),
        format!("/video/{other}.mpd"),
        format!("/video/{other}/140.mp4"),
    ] {
        let got = get(&format!("{}{path}", node.url()), &[]).await;
        assert_eq!(got.status, 400, "{path}: {}", got.text());
    }
    assert_eq!(
        origin.control.hits(&other_json),
        1,
        "nothing fetched for a refused id"
    );
    let listed = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
    assert_eq!(listed.status, 200);

    std::fs::write(&file, DEFAULT_COMPONENT).unwrap();
    wait_policy(&node, "the default", is_default).await;
    assert_eq!(mpd_itags(&node).await, ["137", "251"]);
}
