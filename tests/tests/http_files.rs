//! Static files from `./public` (here a temporary directory) through the node's router on a
//! real socket: the lookup order, and nothing outside the directory, whatever the path says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_common::{get, raw, request};
use videortc::config::Config;
use videortc::http::{Shared, router};
use videortc::media::{HubConfig, MediaHub, Origin, http_client};
use videortc::policy::reload::Reloader;
use videortc::policy::{Policy, PolicyConfig};

struct Site {
    root: PathBuf,
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const SECRET: &str = "top secret, outside public";

async fn site(with_public: bool) -> Site {
    let root = std::env::temp_dir().join(format!(
        "videortc-files-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let public = root.join("public");
    std::fs::create_dir_all(public.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/secret.txt"), SECRET).unwrap();
    if with_public {
        std::fs::write(public.join("index.html"), "<h1>root index</h1>").unwrap();
        std::fs::write(public.join("a.txt"), "file a").unwrap();
        std::fs::write(public.join("sub/index.html"), "<h1>sub index</h1>").unwrap();
        std::fs::write(public.join("sp ace.txt"), "spaced").unwrap();
        std::os::unix::fs::symlink(root.join("outside/secret.txt"), public.join("leak.txt"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("outside"), public.join("leakdir")).unwrap();
        std::os::unix::fs::symlink(public.join("a.txt"), public.join("alias.txt")).unwrap();
    } else {
        std::fs::remove_dir_all(&public).unwrap();
    }
    let dir = public.display().to_string();
    let config = Config::from_lookup(|k| (k == "PUBLIC_DIR").then(|| dir.clone())).unwrap();
    let policy = Arc::new(Policy::with_default(PolicyConfig::default()).await.unwrap());
    let client = http_client(None, Duration::from_secs(5)).unwrap();
    let hub = Arc::new(MediaHub::new(
        policy.clone(),
        Origin::new(client, None),
        url::Url::parse("https://www.youtube.com").unwrap(),
        &HubConfig::default(),
    ));
    let shared = Shared::new(config, Reloader::new(policy, None), hub).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router(Arc::new(shared));
    let task = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });
    Site { root, port, task }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn lookup_order() {
    let s = site(true).await;
    let u = format!("http://127.0.0.1:{}", s.port);
    for (path, body) in [
        ("/", "<h1>root index</h1>"),
        ("/a.txt", "file a"),
        ("/sp%20ace.txt", "spaced"),
        ("/alias.txt", "file a"),
        ("/sub", "<h1>sub index</h1>"),
        ("/sub/", "<h1>sub index</h1>"),
        ("/no/such/page", "<h1>root index</h1>"),
        ("/videos", "<h1>root index</h1>"),
    ] {
        let got = get(&format!("{u}{path}"), &[]).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.text(), body, "{path}");
    }
    let txt = get(&format!("{u}/a.txt"), &[("range", "bytes=1-3")]).await;
    assert_eq!(txt.status, 206);
    assert_eq!(txt.text(), "ile");
    assert!(txt.header("content-type").starts_with("text/plain"));
    let post = request(reqwest::Method::POST, &format!("{u}/a.txt"), &[]).await;
    assert_eq!(post.status, 405);
    // /status and /video still belong to the node.
    assert_eq!(get(&format!("{u}/status"), &[]).await.status, 200);
    assert_eq!(get(&format!("{u}/video/short.json"), &[]).await.status, 400);
}

#[tokio::test]
async fn nothing_outside_public() {
    let s = site(true).await;
    for path in [
        "/../outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E%2Foutside%2Fsecret.txt",
        "/sub/%2e%2e/%2e%2e/outside/secret.txt",
        "/..%5Coutside%5Csecret.txt",
    ] {
        let (status, text) = raw(s.port, "GET", path).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(!text.contains(SECRET), "{path}");
    }
    // Links out of the directory are as good as missing: the index answers instead.
    for path in ["/leak.txt", "/leakdir/secret.txt", "/leakdir/"] {
        let (status, text) = raw(s.port, "GET", path).await;
        assert!(!text.contains(SECRET), "{path}: {text}");
        assert_eq!(status, 200, "{path}");
        assert!(text.contains("root index"), "{path}");
    }
}

#[tokio::test]
async fn no_public_directory_is_a_404() {
    let s = site(false).await;
    let got = get(&format!("http://127.0.0.1:{}/index.html", s.port), &[]).await;
    assert_eq!(got.status, 404);
}
