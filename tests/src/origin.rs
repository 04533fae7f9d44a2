//! A real HTTP origin for tests: serves the ffmpeg fixtures through the videoproxy BASE_URL API
//! (`/{vid}.json`, `/{vid}/{itag}/{start}-{end}.ts`) and as direct stream URLs
//! (`/media/{file}?x=1&range=start-end`), with request counters, delays and injected failures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::walk::{self, Layout};

/// The video id the test origin serves.
pub const VID: &str = "fixtureVid01";

/// One stream of the test video.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Itag.
    pub itag: u32,
    /// File name under the fixture directory.
    pub file: String,
    /// MIME type with codecs.
    pub mime: String,
    /// The file's bytes.
    pub bytes: Bytes,
    /// Its layout, from the independent walker.
    pub layout: Layout,
}

/// The four committed fixtures as the streams of [`VID`].
pub fn fixture_streams() -> Result<Vec<Stream>, String> {
    let spec = [
        (137, "video.mp4", "video/mp4; codecs=\"avc1.64000d\""),
        (140, "audio.m4a", "audio/mp4; codecs=\"mp4a.40.2\""),
        (248, "video.webm", "video/webm; codecs=\"vp9\""),
        (251, "audio.webm", "audio/webm; codecs=\"opus\""),
    ];
    spec.iter()
        .map(|(itag, file, mime)| {
            let path = walk::fixture_dir().join(file);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let layout = walk::layout_for_path(&path)?;
            Ok(Stream {
                itag: *itag,
                file: (*file).to_owned(),
                mime: (*mime).to_owned(),
                bytes: Bytes::from(bytes),
                layout,
            })
        })
        .collect()
}

/// Behaviour switches and counters shared with the test.
#[derive(Debug, Default)]
pub struct Control {
    /// Requests seen, by path (with query).
    pub hits: Mutex<HashMap<String, u64>>,
    /// Total requests.
    pub requests: AtomicU64,
    /// Fail this many next requests with 500.
    pub fail_next: AtomicU64,
    /// Delay every response by this many milliseconds.
    pub delay_ms: AtomicU64,
    /// Whether stream URLs are included in the info.
    pub with_urls: std::sync::atomic::AtomicBool,
}

impl Control {
    /// How many times a path was requested.
    pub fn hits(&self, path: &str) -> u64 {
        self.hits
            .lock()
            .map(|h| h.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Requests whose path starts with `prefix`.
    pub fn hits_prefix(&self, prefix: &str) -> u64 {
        self.hits
            .lock()
            .map(|h| {
                h.iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v)
                    .sum()
            })
            .unwrap_or(0)
    }
}

#[derive(Clone)]
struct App {
    streams: Arc<Vec<Stream>>,
    control: Arc<Control>,
    addr: SocketAddr,
}

/// A running test origin.
#[derive(Debug)]
pub struct TestOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Counters and switches.
    pub control: Arc<Control>,
    /// The streams it serves.
    pub streams: Arc<Vec<Stream>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestOrigin {
    /// Starts an origin on 127.0.0.1 serving `streams`.
    pub async fn start(streams: Vec<Stream>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control::default());
        let streams = Arc::new(streams);
        let app = App {
            streams: streams.clone(),
            control: control.clone(),
            addr,
        };
        let router = Router::new()
            .route("/media/{file}", get(media))
            .route("/{vid}/{itag}/{range}", get(range))
            .route("/{file}", get(info))
            .with_state(app);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(TestOrigin {
            addr,
            control,
            streams,
            task,
        })
    }

    /// `http://127.0.0.1:port` — use as BASE_URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A stream by itag.
    pub fn stream(&self, itag: u32) -> Option<&Stream> {
        self.streams.iter().find(|s| s.itag == itag)
    }
}

async fn gate(app: &App, key: String) -> Option<Response> {
    app.control.requests.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut h) = app.control.hits.lock() {
        *h.entry(key).or_default() += 1;
    }
    let delay = app.control.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fail = app
        .control
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    fail.then(|| (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response())
}

/// The VideoInfo JSON of the test video.
fn info_json(app: &App) -> Value {
    let with_urls = app.control.with_urls.load(Ordering::SeqCst);
    let mut streams = serde_json::Map::new();
    for s in app.streams.iter() {
        let mut v = json!({
            "quality": "test",
            "type": s.mime,
            "itag": s.itag.to_string(),
            "len": s.layout.len.to_string(),
            "initRange": {"start": s.layout.init.start.to_string(), "end": s.layout.init.end.to_string()},
            "indexRange": {"start": s.layout.index.start.to_string(), "end": s.layout.index.end.to_string()},
        });
        if with_urls && let Some(o) = v.as_object_mut() {
            o.insert(
                "url".into(),
                json!(format!("http://{}/media/{}?expire=1", app.addr, s.file)),
            );
        }
        streams.insert(s.itag.to_string(), v);
    }
    json!({"id": VID, "title": "Fixture video", "duration": "6", "author": "ffmpeg", "streams": streams})
}

async fn info(State(app): State<App>, Path(file): Path<String>) -> Response {
    if let Some(r) = gate(&app, format!("/{file}")).await {
        return r;
    }
    match file.strip_suffix(".json") {
        Some(VID) => axum::Json(info_json(&app)).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn slice(s: &Stream, start: u64, end: u64) -> Option<Bytes> {
    if start > end || end >= s.layout.len {
        return None;
    }
    let (a, b) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    Some(s.bytes.slice(a..=b))
}

fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

async fn range(
    State(app): State<App>,
    Path((vid, itag, range)): Path<(String, u32, String)>,
) -> Response {
    if let Some(r) = gate(&app, format!("/{vid}/{itag}/{range}")).await {
        return r;
    }
    let stream = app.streams.iter().find(|s| s.itag == itag);
    let bounds = range.strip_suffix(".ts").and_then(parse_range);
    match (vid == VID, stream, bounds) {
        (true, Some(s), Some((a, b))) => match slice(s, a, b) {
            Some(bytes) => bytes.into_response(),
            None => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn media(
    State(app): State<App>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = format!(
        "/media/{file}?range={}",
        q.get("range").map_or("", String::as_str)
    );
    if let Some(r) = gate(&app, key).await {
        return r;
    }
    let Some(s) = app.streams.iter().find(|s| s.file == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match q.get("range").map(|r| parse_range(r)) {
        None => s.bytes.clone().into_response(),
        Some(Some((a, b))) => match slice(s, a, b) {
            Some(bytes) => bytes.into_response(),
            None => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        },
        Some(None) => StatusCode::BAD_REQUEST.into_response(),
    }
}
