//! Stand-ins on 127.0.0.1 for the servers a node talks to besides its origin: the YouTube
//! Data API and thumbnail host ([`Google`]), and upstream nodes that record what reached
//! them ([`Recorder`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::hits::Hits;

/// The key the data-API stand-in accepts.
pub const API_KEY: &str = "test-api-key";

/// A running server; stops on drop.
#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: Router) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running { addr, task })
}

/// Requests a stand-in saw, by path and query.
#[derive(Debug, Default)]
pub struct Seen {
    hits: Hits,
    headers: Mutex<Vec<(String, HeaderMap)>>,
}

impl Seen {
    fn record(&self, key: String, headers: &HeaderMap) {
        self.hits.record(&key);
        if let Ok(mut h) = self.headers.lock() {
            h.push((key, headers.clone()));
        }
    }

    /// Requests whose path (and query) starts with `prefix`.
    pub fn hits(&self, prefix: &str) -> u64 {
        self.hits.prefix(prefix)
    }

    /// Every request so far: path with query, and headers.
    pub fn requests(&self) -> Vec<(String, HeaderMap)> {
        self.headers.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// The data API (`/youtube/v3/{resource}`) and the thumbnail host (`/vi/{id}/mqdefault.jpg`,
/// `/vi_webp/{id}/mqdefault.webp`).
#[derive(Debug)]
pub struct Google {
    running: Running,
    /// What reached it.
    pub seen: Arc<Seen>,
}

/// The thumbnail the stand-in serves for `id` in `ext` (`jpg` or `webp`).
pub fn thumbnail(id: &str, ext: &str) -> Vec<u8> {
    let mut out = match ext {
        "webp" => b"RIFF\0\0\0\0WEBPVP8 ".to_vec(),
        _ => vec![0xFF, 0xD8, 0xFF, 0xE0],
    };
    for i in 0..2000u32 {
        out.extend_from_slice(format!("{id}:{i};").as_bytes());
    }
    out
}

impl Google {
    /// Starts the stand-in.
    pub async fn start() -> std::io::Result<Google> {
        let seen = Arc::new(Seen::default());
        let router = Router::new()
            .route("/youtube/v3/{resource}", get(api))
            .route("/{dir}/{id}/{file}", get(image))
            .with_state(seen.clone());
        Ok(Google {
            running: serve(router).await?,
            seen,
        })
    }

    /// `http://127.0.0.1:port/youtube`: `YOUTUBE_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://{}/youtube", self.running.addr)
    }

    /// `http://127.0.0.1:port`: `YOUTUBE_IMAGE_URL`.
    pub fn image_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }
}

static API_CALLS: AtomicU64 = AtomicU64::new(0);

async fn api(
    State(seen): State<Arc<Seen>>,
    Path(resource): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    seen.record(
        format!("/youtube/v3/{resource}?{}", uri.query().unwrap_or_default()),
        &headers,
    );
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("key").as_deref() != Some(API_KEY) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": 400, "message": "API key not valid."}})),
        )
            .into_response();
    }
    let n = API_CALLS.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "kind": format!("youtube#{resource}ListResponse"),
        "part": get("part"),
        "query": q,
        "call": n,
    }))
    .into_response()
}

async fn image(
    State(seen): State<Arc<Seen>>,
    Path((dir, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    seen.record(format!("/{dir}/{id}/{file}"), &headers);
    let (ext, mime) = match (dir.as_str(), file.as_str()) {
        ("vi", "mqdefault.jpg") => ("jpg", "image/jpeg"),
        ("vi_webp", "mqdefault.webp") => ("webp", "image/webp"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if id.starts_with("missing") {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "max-age=60")],
            "no such thumbnail",
        )
            .into_response();
    }
    let etag = format!("\"{id}-{ext}\"");
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "max-age=7200".to_owned()),
        (header::CONTENT_TYPE, mime.to_owned()),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let mut resp = (common, thumbnail(&id, ext)).into_response();
    resp.headers_mut()
        .insert("set-cookie", HeaderValue::from_static("tracker=1"));
    resp
}

/// What a [`Recorder`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200` with `name path?query` as the body.
    Ok,
    /// This status, always.
    Fail(u16),
    /// `500` for the first request, then like `Ok`.
    FailFirst,
}

/// An upstream node stand-in: answers every path as told and records what reached it.
#[derive(Debug)]
pub struct Recorder {
    running: Running,
    /// What reached it.
    pub seen: Arc<Seen>,
}

impl Recorder {
    /// Starts a recorder called `name` (it appears in bodies and in `x-upstream`).
    pub async fn start(name: &str, behaviour: Behaviour) -> std::io::Result<Recorder> {
        let seen = Arc::new(Seen::default());
        let state = (
            seen.clone(),
            name.to_owned(),
            behaviour,
            Arc::new(AtomicU64::new(0)),
        );
        let router = Router::new().fallback(record).with_state(state);
        Ok(Recorder {
            running: serve(router).await?,
            seen,
        })
    }

    /// Its base URL, with a path prefix (`/base`) that the proxy must keep.
    pub fn url(&self) -> String {
        format!("http://{}/base", self.running.addr)
    }
}

type RecorderState = (Arc<Seen>, String, Behaviour, Arc<AtomicU64>);

async fn record(
    State((seen, name, behaviour, count)): State<RecorderState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    seen.record(key.clone(), &headers);
    let n = count.fetch_add(1, Ordering::SeqCst);
    let status = match behaviour {
        Behaviour::Ok => StatusCode::OK,
        Behaviour::Fail(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Behaviour::FailFirst if n == 0 => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailFirst => StatusCode::OK,
    };
    let mut resp = (
        status,
        [
            ("x-upstream", name.clone()),
            ("set-cookie", "session=secret; Path=/".to_owned()),
            ("cache-control", "public, max-age=864000".to_owned()),
        ],
        format!("{name} {method} {key} {}", body.len()),
    )
        .into_response();
    resp.headers_mut()
        .append("set-cookie", HeaderValue::from_static("other=1"));
    resp
}
