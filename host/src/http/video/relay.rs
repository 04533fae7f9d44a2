//! Relaying an upstream response: selected headers in, selected headers out, the body
//! streamed as it arrives (videoproxy `request.Pipe`).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::TryStreamExt;
use url::Url;

use super::VideoError;

/// Request headers passed on to the upstream.
const FORWARD: [HeaderName; 7] = [
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::IF_MODIFIED_SINCE,
    header::IF_NONE_MATCH,
    header::IF_RANGE,
    header::RANGE,
];

/// Response headers passed back to the client.
const EXPOSE: [HeaderName; 7] = [
    header::ACCEPT_RANGES,
    header::CONTENT_RANGE,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::LAST_MODIFIED,
    header::ETAG,
];

/// Fetches `url` with the client's conditional and range headers and relays the answer,
/// whatever its status. `cache_control` is set on 200, 206 and 304 only; `extra` headers
/// are added to those too.
pub(super) async fn pipe(
    client: &reqwest::Client,
    url: Url,
    what: &str,
    request: &HeaderMap,
    head: bool,
    cache_control: &'static str,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<Response, VideoError> {
    let method = if head { Method::HEAD } else { Method::GET };
    let mut rb = client.request(method, url);
    for name in FORWARD {
        for value in request.get_all(&name) {
            rb = rb.header(&name, value);
        }
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| VideoError::upstream(what, &e))?;
    let status = resp.status();
    let mut out = Response::builder().status(status);
    if let Some(headers) = out.headers_mut() {
        for name in EXPOSE {
            if let Some(v) = resp.headers().get(&name) {
                headers.insert(name, v.clone());
            }
        }
        if matches!(
            status,
            StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
        ) {
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            );
            for (name, value) in extra {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    let what = what.to_owned();
    let body = resp.bytes_stream().map_err(move |e| {
        tracing::debug!(%what, error = %e, "upstream body failed");
        std::io::Error::other(e)
    });
    out.body(Body::from_stream(body))
        .map_err(|e| VideoError::Internal(format!("response: {e}")))
}
