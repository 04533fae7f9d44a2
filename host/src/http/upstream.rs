//! `UPSTREAM`: every `/video/...` request reverse-proxied to one of several upstream nodes.
//!
//! A random upstream is tried first; on a transport error or a status outside 200–304 the
//! request is sent once more to the next upstream in the list (the same one when there is
//! only one), and that answer is relayed whatever it is. `Cookie`, `X-Forwarded-For` and
//! `Forwarded` never leave the node, `Set-Cookie` never comes back, redirects are relayed
//! rather than followed, and the response body is streamed as it arrives; its upstream
//! request ends when the client goes away.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::TryStreamExt;
use rand::Rng;
use url::Url;

use super::AppState;
use super::video::VideoError;

/// Largest request body kept for a retry.
const MAX_REQUEST_BODY: usize = 1 << 20;

/// The upstream nodes and the client that talks to them.
#[derive(Debug, Clone)]
pub struct Upstream {
    targets: Vec<Url>,
    client: reqwest::Client,
}

impl Upstream {
    /// A balancer over `targets` (at least one). The client uses the `http(s)_proxy`
    /// environment, verifies TLS, and follows no redirects.
    pub fn new(targets: Vec<Url>) -> Result<Self, String> {
        if targets.is_empty() {
            return Err("UPSTREAM has no URL".into());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("UPSTREAM client: {e}"))?;
        Ok(Upstream { targets, client })
    }

    /// The upstream to try first and the one to retry on (`None` only without targets).
    fn pick(&self) -> Option<(&Url, &Url)> {
        let n = self.targets.len();
        let i = if n > 1 {
            rand::rng().random_range(0..n)
        } else {
            0
        };
        Some((self.targets.get(i)?, self.targets.get((i + 1) % n.max(1))?))
    }
}

/// `upstream` path + request path (one slash between), and the request's query.
fn target_url(upstream: &Url, path: &str, query: Option<&str>) -> Url {
    let mut url = upstream.clone();
    let joined = format!(
        "{}/{}",
        upstream.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(query);
    url.set_fragment(None);
    url
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones named in `Connection`.
fn hop_by_hop(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut names = vec![
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ];
    for v in headers.get_all(header::CONNECTION) {
        if let Ok(v) = v.to_str() {
            names.extend(
                v.split(',')
                    .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
            );
        }
    }
    names
}

/// The request headers sent upstream.
fn request_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = incoming.clone();
    for name in hop_by_hop(incoming) {
        out.remove(name);
    }
    for name in [
        header::HOST,
        header::CONTENT_LENGTH,
        header::COOKIE,
        header::FORWARDED,
        HeaderName::from_static("x-forwarded-for"),
    ] {
        out.remove(name);
    }
    out
}

/// Whether an answer is final (videoproxy: 200 to 304).
fn acceptable(status: StatusCode) -> bool {
    (200..=304).contains(&status.as_u16())
}

/// Any method on `/video/...` in UPSTREAM mode.
pub(super) async fn proxy(State(s): State<AppState>, req: Request) -> Response {
    let Some((up, (first, next))) = s.upstream.as_ref().and_then(|u| Some((u, u.pick()?))) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "UPSTREAM is not configured\n",
        )
            .into_response();
    };
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_REQUEST_BODY} bytes\n"),
            )
                .into_response();
        }
    };
    let headers = request_headers(&parts.headers);
    let send = |target: &Url| {
        let url = target_url(target, parts.uri.path(), parts.uri.query());
        let mut rb = up
            .client
            .request(parts.method.clone(), url)
            .headers(headers.clone());
        if !body.is_empty() {
            rb = rb.body(body.clone());
        }
        rb.send()
    };
    let answer = match send(first).await {
        Ok(resp) if acceptable(resp.status()) => Ok(resp),
        Ok(resp) => {
            tracing::warn!(upstream = %first, status = %resp.status(), path = %parts.uri.path(), "upstream refused; retrying");
            drop(resp);
            send(next).await
        }
        Err(e) => {
            let e = VideoError::upstream("upstream", &e);
            tracing::warn!(upstream = %first, error = %e, path = %parts.uri.path(), "upstream failed; retrying");
            send(next).await
        }
    };
    match answer {
        Ok(resp) => relay(resp),
        Err(e) => {
            let e = VideoError::upstream("upstream", &e);
            tracing::warn!(upstream = %next, error = %e, "upstream retry failed");
            (e.status(), format!("{e} (tried twice)\n")).into_response()
        }
    }
}

/// The upstream answer, minus hop-by-hop headers and `Set-Cookie`, body streamed.
fn relay(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let mut headers = resp.headers().clone();
    for name in hop_by_hop(resp.headers()) {
        headers.remove(name);
    }
    headers.remove(header::SET_COOKIE);
    let body = resp.bytes_stream().map_err(std::io::Error::other);
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn joins_paths_and_keeps_the_query() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            target_url(&u("http://a:1"), "/video/x.json", Some("info=all")).as_str(),
            "http://a:1/video/x.json?info=all"
        );
        assert_eq!(
            target_url(&u("http://a/base/"), "/video/x.json", None).as_str(),
            "http://a/base/video/x.json"
        );
        assert_eq!(
            target_url(&u("https://a/base?x=1"), "/video/y", None).as_str(),
            "https://a/base/video/y"
        );
    }

    #[test]
    fn strips_private_and_hop_by_hop_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("cookie", "a=1"),
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("host", "node"),
            ("range", "bytes=0-1"),
            ("user-agent", "ua"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = request_headers(&h);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["range", "user-agent"]);
    }

    #[test]
    fn picks_the_next_one_for_the_retry() {
        let one = Upstream::new(vec![Url::parse("http://a").unwrap()]).unwrap();
        let (a, b) = one.pick().unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("http://a/", "http://a/"));
        let three = Upstream::new(
            ["http://a", "http://b", "http://c"]
                .iter()
                .map(|s| Url::parse(s).unwrap())
                .collect(),
        )
        .unwrap();
        for _ in 0..50 {
            let (a, b) = three.pick().unwrap();
            let i = three.targets.iter().position(|t| t == a).unwrap();
            assert_eq!(b, &three.targets[(i + 1) % 3]);
        }
        assert!(Upstream::new(Vec::new()).is_err());
    }
}
