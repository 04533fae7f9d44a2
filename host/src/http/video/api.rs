//! `GET /video/api/v3/{videos,search,channels,playlists,playlistItems,videoCategories}`: the
//! YouTube Data API through `API_PROXY`, with `YOUTUBE_API_KEY` and videoproxy's `part`
//! values, cached for a day (one upstream request for concurrent misses), JSONP with
//! `callback`.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use url::Url;

use super::path::ApiKind;
use super::{CACHE_DOCUMENT, Document, Endpoints, MAX_DOCUMENT, Query, VideoError, read_limited};
use crate::http::Shared;

/// An upstream answer that is not cached: an error status with its body, or no answer.
#[derive(Debug)]
enum Failure {
    Status(StatusCode, Arc<Document>),
    Error(VideoError),
}

/// Serves one data-API request.
pub(super) async fn serve(
    s: &Shared,
    kind: ApiKind,
    query: &Query,
) -> Result<Response, VideoError> {
    let callback = query.get("callback").filter(|c| !c.is_empty());
    if let Some(cb) = callback
        && !valid_callback(cb)
    {
        return Err(VideoError::BadRequest(format!(
            "bad callback {cb:?}: expected a JavaScript name"
        )));
    }
    let mut params: Vec<(&str, &str)> = query
        .pairs()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| *k != "callback" && *k != "part")
        .collect();
    params.push(("part", kind.part()));
    // The client's own key wins, as in videoproxy.
    if !params.iter().any(|(k, v)| *k == "key" && !v.is_empty()) {
        params.retain(|(k, _)| *k != "key");
        let key = s.config.youtube_api_key.as_deref().ok_or_else(|| {
            VideoError::Unavailable("YOUTUBE_API_KEY is not set on this node".into())
        })?;
        params.push(("key", key));
    }
    // One canonical URL per question: names sorted, a name's values in their order.
    params.sort_by(|a, b| a.0.cmp(b.0));
    let mut url = Endpoints::join(&s.video.endpoints.data_api, &format!("v3/{}", kind.name()))?;
    url.query_pairs_mut().extend_pairs(params);
    let key = format!("api\n{url}");
    let (status, doc) = match s
        .video
        .documents
        .try_get_with(key, fetch(&s.video.api_client, url))
        .await
    {
        Ok(doc) => (StatusCode::OK, doc),
        Err(e) => match &*e {
            Failure::Status(status, doc) => (*status, doc.clone()),
            Failure::Error(e) => return Err(e.clone()),
        },
    };
    let mut resp = match callback {
        Some(cb) => {
            let mut body = BytesMut::with_capacity(doc.body.len() + cb.len() + 8);
            body.extend_from_slice(b"/**/");
            body.extend_from_slice(cb.as_bytes());
            body.extend_from_slice(b"(");
            body.extend_from_slice(&doc.body);
            body.extend_from_slice(b");");
            (
                status,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/javascript; charset=utf-8"),
                    ),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                ],
                Bytes::from(body),
            )
                .into_response()
        }
        None => {
            let content_type = doc
                .content_type
                .clone()
                .unwrap_or_else(|| HeaderValue::from_static("application/json; charset=utf-8"));
            (
                status,
                [(header::CONTENT_TYPE, content_type)],
                doc.body.clone(),
            )
                .into_response()
        }
    };
    if status == StatusCode::OK {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_DOCUMENT),
        );
    }
    Ok(resp)
}

/// A JSONP callback name: `[A-Za-z_$][A-Za-z0-9_$.]{0,127}`.
fn valid_callback(cb: &str) -> bool {
    let mut bytes = cb.bytes();
    cb.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'$')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_$.".contains(&b))
}

/// Asks the API; only a `200` is cached.
async fn fetch(client: &reqwest::Client, url: Url) -> Result<Arc<Document>, Failure> {
    let resp = client
        .get(url)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Failure::Error(VideoError::upstream("data API", &e)))?;
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = read_limited(resp, MAX_DOCUMENT, "data API")
        .await
        .map_err(Failure::Error)?;
    let doc = Arc::new(Document { content_type, body });
    if status == StatusCode::OK {
        Ok(doc)
    } else {
        Err(Failure::Status(status, doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks() {
        for ok in ["cb", "jQuery123_456", "$.cb", "a.b.c", "_"] {
            assert!(valid_callback(ok), "{ok}");
        }
        for bad in [
            "",
            "1cb",
            "cb()",
            "a-b",
            "<script>",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(!valid_callback(bad), "{bad}");
        }
    }
}
