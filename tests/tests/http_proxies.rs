//! Outgoing proxies of a real node, through small real proxies: `VIDEO_PROXY` as an HTTP
//! proxy and as SOCKS5 with credentials, `IMAGE_PROXY`, `API_PROXY`, and `http_proxy` when
//! nothing is configured. Each test checks the bytes and that the traffic really went
//! through the proxy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::sync::atomic::Ordering;

use http_common::{get, node, origin};
use videortc_tests::node::Node;
use videortc_tests::origin::VID;
use videortc_tests::proxy::Proxy;
use videortc_tests::stand_in::{API_KEY, Google, thumbnail};

/// Info, a whole stream and a `.ts` range through the node; all bytes exact.
async fn fetch_media(node: &Node, origin: &videortc_tests::origin::TestOrigin) {
    let info = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["id"], VID);
    let s = origin.stream(140).unwrap();
    let whole = get(&format!("{}/video/{VID}/140.mp4", node.url()), &[]).await;
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(&whole.body[..], &s.bytes[..]);
    let ts = get(&format!("{}/video/{VID}/140/1000-1999.ts", node.url()), &[]).await;
    assert_eq!(&ts.body[..], &s.bytes[1000..2000]);
}

#[tokio::test]
async fn video_proxy_as_http_proxy() {
    let origin = origin(false).await;
    let proxy = Proxy::http().await.unwrap();
    let node = node(&origin, &[("VIDEO_PROXY", &proxy.url())]).await;
    fetch_media(&node, &origin).await;
    let targets = proxy.stats.targets();
    let base = origin.base_url();
    assert!(
        targets.contains(&format!("GET {base}/{VID}.json")),
        "{targets:?}"
    );
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with(&format!("GET {base}/{VID}/140/"))),
        "{targets:?}"
    );
    // Everything the origin saw came through the proxy.
    assert_eq!(
        origin.control.requests.load(Ordering::SeqCst),
        targets.len() as u64
    );
}

#[tokio::test]
async fn video_proxy_as_socks5_with_credentials() {
    let origin = origin(true).await;
    let socks = Proxy::socks5(Some(("alice", "s3cret"))).await.unwrap();
    let node = node(
        &origin,
        &[
            ("VIDEO_PROXY", &socks.host_port()),
            ("VIDEO_PROXY_USER", "alice"),
            ("VIDEO_PROXY_PASSWORD", "s3cret"),
        ],
    )
    .await;
    fetch_media(&node, &origin).await;
    assert!(socks.stats.users().iter().all(|u| u == "alice"));
    assert!(!socks.stats.users().is_empty());
    assert_eq!(socks.stats.auth_failures.load(Ordering::SeqCst), 0);
    let origin_addr = origin.addr.to_string();
    assert!(socks.stats.targets().iter().all(|t| *t == origin_addr));
    assert!(
        origin.control.hits_prefix("/media/") > 0,
        "stream URLs used"
    );

    // Wrong credentials: nothing gets through, and the client hears why.
    let refused = Node::start(
        &[],
        &[
            ("BASE_URL", origin.base_url().as_str()),
            ("VIDEO_PROXY", socks.host_port().as_str()),
            ("VIDEO_PROXY_USER", "alice"),
            ("VIDEO_PROXY_PASSWORD", "wrong"),
        ],
    )
    .await
    .unwrap();
    let got = get(&format!("{}/video/{VID}.json", refused.url()), &[]).await;
    assert_eq!(got.status, 502, "{}", got.text());
    assert!(socks.stats.auth_failures.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn image_and_api_proxies() {
    let origin = origin(false).await;
    let google = Google::start().await.unwrap();
    let http = Proxy::http().await.unwrap();
    let socks = Proxy::socks5(None).await.unwrap();
    let node = node(
        &origin,
        &[
            ("YOUTUBE_IMAGE_URL", &google.image_url()),
            ("YOUTUBE_API_URL", &google.api_url()),
            ("YOUTUBE_API_KEY", API_KEY),
            ("IMAGE_PROXY", &http.url()),
            ("API_PROXY", &socks.host_port()),
        ],
    )
    .await;
    let img = get(&format!("{}/video/{VID}.webp", node.url()), &[]).await;
    assert_eq!(img.status, 200);
    assert_eq!(&img.body[..], &thumbnail(VID, "webp")[..]);
    assert_eq!(
        http.stats.targets(),
        [format!(
            "GET {}/vi_webp/{VID}/mqdefault.webp",
            google.image_url()
        )]
    );
    let api = get(&format!("{}/video/api/v3/videos?id={VID}", node.url()), &[]).await;
    assert_eq!(api.status, 200, "{}", api.text());
    assert_eq!(api.json()["kind"], "youtube#videosListResponse");
    let google_addr = google.image_url().trim_start_matches("http://").to_owned();
    assert_eq!(socks.stats.targets(), [google_addr]);
    // The media went direct: neither proxy saw the origin.
    assert!(origin.control.requests.load(Ordering::SeqCst) > 0);
    assert!(
        !http
            .stats
            .targets()
            .iter()
            .any(|t| t.contains(&origin.base_url()))
    );
}

#[tokio::test]
async fn http_proxy_environment_applies_without_settings() {
    let origin = origin(false).await;
    let proxy = Proxy::http().await.unwrap();
    let node = node(&origin, &[("http_proxy", &proxy.url())]).await;
    fetch_media(&node, &origin).await;
    assert!(
        proxy
            .stats
            .targets()
            .contains(&format!("GET {}/{VID}.json", origin.base_url()))
    );
}

/// A TLS server with a self-signed certificate for 127.0.0.1 that counts handshakes the
/// client aborted and requests it got through.
fn self_signed_server() -> (u16, std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>) {
    use std::io::Read;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let c = counts.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 1024];
            match tls.read(&mut buf) {
                Ok(n) if n > 0 => c[1].fetch_add(1, Ordering::SeqCst),
                _ => c[0].fetch_add(1, Ordering::SeqCst),
            };
        }
    });
    (port, counts)
}

#[tokio::test]
async fn tls_certificates_are_verified() {
    let (port, counts) = self_signed_server();
    let base = format!("https://127.0.0.1:{port}");
    let node = Node::start(&[], &[("BASE_URL", base.as_str())])
        .await
        .unwrap();
    let got = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
    assert_eq!(got.status, 502, "{}", got.text());
    let msg = got.json()["msg"].as_str().unwrap().to_owned();
    assert!(msg.contains("certificate"), "{msg}");
    // The server thread notices the aborted handshake a moment after the client gave up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while counts[0].load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        counts[0].load(Ordering::SeqCst) >= 1,
        "a handshake was refused"
    );
    assert_eq!(
        counts[1].load(Ordering::SeqCst),
        0,
        "no request got through"
    );
}
