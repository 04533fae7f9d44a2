//! Shared by the `http_*` tests: a plain HTTP client, the origin with the fixtures, nodes in
//! BASE_URL mode, and raw requests for paths a client would normalise.
#![allow(dead_code)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use videortc_tests::node::Node;
use videortc_tests::origin::{TestOrigin, fixture_streams};

/// A client that ignores proxy variables and follows no redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `GET url` with extra headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    request(reqwest::Method::GET, url, headers).await
}

/// Any method.
pub async fn request(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut rb = client().request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{url} body: {e}"));
    Got {
        status,
        headers,
        body,
    }
}

/// The origin over the four fixtures; stream URLs in the info when `with_urls`.
pub async fn origin(with_urls: bool) -> TestOrigin {
    let origin = TestOrigin::start(fixture_streams().unwrap()).await.unwrap();
    origin.control.with_urls.store(with_urls, Ordering::SeqCst);
    origin
}

/// A node with `BASE_URL` at `origin`, plus `env`.
pub async fn node(origin: &TestOrigin, env: &[(&str, &str)]) -> Node {
    let base = origin.base_url();
    let mut all = vec![("BASE_URL", base.as_str())];
    all.extend_from_slice(env);
    Node::start(&[], &all).await.unwrap()
}

/// Sends `METHOD path` exactly as written (no client normalises the path) and returns the
/// status code and the raw response.
pub async fn raw(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Waits until `cond` holds (polling), failing after `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
