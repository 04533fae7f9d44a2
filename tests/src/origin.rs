//! A real HTTP origin for tests: serves the ffmpeg fixtures through the videoproxy BASE_URL API
//! (`/{vid}.json`, `/{vid}.xml?lang=`, `/{vid}/{itag}/{start}-{end}.ts`) and as direct stream
//! URLs (`/media/{file}?x=1&range=start-end`, or with an HTTP `Range` header like a CDN), with
//! request counters, delays, throttled bodies, injected failures and per-video statuses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::hits::Hits;
use crate::walk::{self, Layout, Range};

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

/// A stream of `len` deterministic pseudo-random bytes (`seed` picks which), served as
/// `/media/{file}`. Its layout is a placeholder: list its itag in [`Control::plain`] so the
/// info does not claim init and index ranges it does not have.
pub fn synthetic_stream(itag: u32, file: &str, mime: &str, len: usize, seed: u64) -> Stream {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        bytes.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes.truncate(len);
    let zero = Range { start: 0, end: 0 };
    Stream {
        itag,
        file: file.to_owned(),
        mime: mime.to_owned(),
        bytes: Bytes::from(bytes),
        layout: Layout {
            len: len as u64,
            init: zero,
            index: zero,
            segments: Vec::new(),
            segment_data_start: 0,
        },
    }
}

/// Bodies of media responses: counted, and optionally sent slowly.
#[derive(Debug, Default)]
pub struct BodyStats {
    /// Media bodies started.
    pub started: AtomicU64,
    /// Media bodies sent to the end.
    pub finished: AtomicU64,
    /// Media bodies dropped before the end (the client went away).
    pub dropped: AtomicU64,
    /// Payload bytes handed to the server for sending.
    pub bytes: AtomicU64,
}

/// Behaviour switches and counters shared with the test.
#[derive(Debug, Default)]
pub struct Control {
    /// Requests seen, by path (with query).
    pub hits: Hits,
    /// Total requests.
    pub requests: AtomicU64,
    /// Fail this many next requests with 500.
    pub fail_next: AtomicU64,
    /// Refuse this many next media requests with 403 (an expired or revoked media URL).
    pub refuse_next: AtomicU64,
    /// Delay every response by this many milliseconds.
    pub delay_ms: AtomicU64,
    /// Whether stream URLs are included in the info.
    pub with_urls: AtomicBool,
    /// Itags listed without `initRange`/`indexRange` (progressive streams).
    pub plain: Mutex<Vec<u32>>,
    /// Itags listed without `len`.
    pub no_len: Mutex<Vec<u32>>,
    /// Statuses for `/{vid}.json` of other videos (e.g. 204 for one the allow-list refuses,
    /// 500 for one it allows but cannot parse); unknown videos get 404.
    pub info_status: Mutex<HashMap<String, u16>>,
    /// Media bodies are sent in chunks of this many bytes (64 KiB when 0)...
    pub chunk_bytes: AtomicU64,
    /// ...with this many milliseconds between chunks.
    pub chunk_delay_ms: AtomicU64,
    /// Cut every media body after this many bytes, keeping its full `Content-Length` (0: never).
    pub cut_after: AtomicU64,
    /// Media body counters.
    pub bodies: BodyStats,
    /// The last request headers seen, by path.
    pub headers: Mutex<HashMap<String, HeaderMap>>,
    /// Serve every id starting with [`ALIAS_PREFIX`] as the test video (its own id in the
    /// info): many distinct videos, hence distinct cache entries, with the same bytes.
    pub aliases: AtomicBool,
}

/// See [`Control::aliases`].
pub const ALIAS_PREFIX: &str = "alias";

impl App {
    /// Whether `vid` is served as the test video.
    fn serves(&self, vid: &str) -> bool {
        vid == VID || (vid.starts_with(ALIAS_PREFIX) && self.control.aliases.load(Ordering::SeqCst))
    }
}

impl Control {
    fn listed(list: &Mutex<Vec<u32>>, itag: u32) -> bool {
        list.lock().map(|l| l.contains(&itag)).unwrap_or(false)
    }

    /// How many times a path was requested.
    pub fn hits(&self, path: &str) -> u64 {
        self.hits.exact(path)
    }

    /// Requests whose path starts with `prefix`.
    pub fn hits_prefix(&self, prefix: &str) -> u64 {
        self.hits.prefix(prefix)
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
            .route("/captions/{file}", get(caption_file))
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
    gate_with(app, key, None).await
}

async fn gate_with(app: &App, key: String, headers: Option<&HeaderMap>) -> Option<Response> {
    app.control.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(h) = headers
        && let Ok(mut all) = app.control.headers.lock()
    {
        all.insert(key.clone(), h.clone());
    }
    app.control.hits.record(&key);
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

/// The VideoInfo JSON of the test video, as `vid`.
fn info_json(app: &App, vid: &str) -> Value {
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
        if let Some(o) = v.as_object_mut() {
            if with_urls {
                o.insert(
                    "url".into(),
                    json!(format!("http://{}/media/{}?expire=1", app.addr, s.file)),
                );
            }
            if Control::listed(&app.control.plain, s.itag) {
                o.remove("initRange");
                o.remove("indexRange");
            }
            if Control::listed(&app.control.no_len, s.itag) {
                o.remove("len");
            }
        }
        streams.insert(s.itag.to_string(), v);
    }
    let captions: Vec<Value> = CAPTION_LANGS
        .iter()
        .map(|lang| {
            if with_urls {
                json!({"language": lang, "url": format!("http://{}/captions/{lang}.xml?v={VID}", app.addr)})
            } else {
                json!({"language": lang})
            }
        })
        .collect();
    json!({"id": vid, "title": TITLE, "duration": "6", "author": "ffmpeg",
        "captions": captions, "streams": streams})
}

/// The title of the test video (non-ASCII, with characters a file name must not carry).
pub const TITLE: &str = "Fixture vidéo: \"test\"/1";

/// Caption languages of the test video.
pub const CAPTION_LANGS: [&str; 2] = ["en", "fr"];

/// The caption track in `lang` as the origin serves it.
pub fn caption_xml(lang: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?><transcript><text start=\"0\" dur=\"1\">{VID} in {lang}</text></transcript>"
    )
}

fn caption_response(lang: &str) -> Response {
    if !CAPTION_LANGS.contains(&lang) {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/xml; charset=UTF-8")],
        caption_xml(lang),
    )
        .into_response()
}

async fn caption_file(
    State(app): State<App>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&app, format!("/captions/{file}")).await {
        return r;
    }
    match (file.strip_suffix(".xml"), q.get("v").map(String::as_str)) {
        (Some(lang), Some(VID)) => caption_response(lang),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn info(
    State(app): State<App>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match q.get("lang") {
        Some(lang) => format!("/{file}?lang={lang}"),
        None => format!("/{file}"),
    };
    if let Some(r) = gate(&app, key).await {
        return r;
    }
    if let Some(vid) = file.strip_suffix(".xml") {
        return match (vid, q.get("lang")) {
            (VID, Some(lang)) => caption_response(lang),
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let Some(vid) = file.strip_suffix(".json") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if app.serves(vid) {
        return axum::Json(info_json(&app, vid)).into_response();
    }
    let status = app
        .control
        .info_status
        .lock()
        .ok()
        .and_then(|m| m.get(vid).copied());
    match status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(s) => s.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
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
    match (app.serves(&vid), stream, bounds) {
        (true, Some(s), Some((a, b))) => match slice(s, a, b) {
            Some(bytes) => send(&app, StatusCode::OK, bytes, HeaderMap::new()),
            None => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sends a media body in chunks (throttled and cut as [`Control`] says), with its full
/// `Content-Length`, counting it in [`BodyStats`].
fn send(app: &App, status: StatusCode, bytes: Bytes, mut headers: HeaderMap) -> Response {
    let c = app.control.clone();
    let chunk = match c.chunk_bytes.load(Ordering::SeqCst) {
        0 => 64 * 1024,
        n => usize::try_from(n).unwrap_or(64 * 1024),
    };
    let delay = Duration::from_millis(c.chunk_delay_ms.load(Ordering::SeqCst));
    let cut = usize::try_from(c.cut_after.load(Ordering::SeqCst)).unwrap_or(0);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    c.bodies.started.fetch_add(1, Ordering::SeqCst);
    let full = bytes.len();
    let sent = if cut > 0 {
        bytes.slice(..cut.min(full))
    } else {
        bytes
    };
    let guard = BodyGuard {
        control: c,
        done: false,
    };
    let body = futures_util::stream::unfold(
        (sent, 0usize, guard),
        move |(bytes, at, mut guard)| async move {
            if at >= bytes.len() {
                return None;
            }
            if at > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let end = (at + chunk).min(bytes.len());
            let piece = bytes.slice(at..end);
            let control = &guard.control;
            control
                .bodies
                .bytes
                .fetch_add(piece.len() as u64, Ordering::SeqCst);
            if end == bytes.len() {
                // Handed over whole (a cut body does not count as finished).
                guard.done = true;
                if end == full {
                    guard.control.bodies.finished.fetch_add(1, Ordering::SeqCst);
                }
            }
            Some((Ok::<_, std::io::Error>(piece), (bytes, end, guard)))
        },
    );
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = status;
    resp.headers_mut().extend(headers);
    resp
}

/// Counts a media body dropped before its end.
struct BodyGuard {
    control: Arc<Control>,
    done: bool,
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        if !self.done {
            self.control.bodies.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One `Range: bytes=` range against `len` (like a CDN: a single range, suffix and open
/// forms); `Err(())` when unsatisfiable, `Ok(None)` for no usable header.
fn header_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let r = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => (a, b.min(len.saturating_sub(1))),
        (Ok(a), Err(_)) if b.is_empty() => (a, len.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        _ => return Ok(None),
    };
    if len == 0 || r.0 >= len {
        Err(())
    } else {
        Ok(Some(r))
    }
}

async fn media(
    State(app): State<App>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = format!(
        "/media/{file}?range={}",
        q.get("range").map_or("", String::as_str)
    );
    if let Some(r) = gate_with(&app, key, Some(&headers)).await {
        return r;
    }
    let refuse = app
        .control
        .refuse_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refuse {
        return (StatusCode::FORBIDDEN, "expired").into_response();
    }
    let Some(s) = app.streams.iter().find(|s| s.file == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut out = HeaderMap::new();
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(essence) = s.mime.split(';').next()
        && let Ok(v) = HeaderValue::from_str(essence)
    {
        out.insert(header::CONTENT_TYPE, v);
    }
    match q.get("range").map(|r| parse_range(r)) {
        None => match header_range(&headers, s.layout.len) {
            Ok(None) => send(&app, StatusCode::OK, s.bytes.clone(), out),
            Ok(Some((a, b))) => match slice(s, a, b) {
                Some(bytes) => {
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", s.layout.len))
                    {
                        out.insert(header::CONTENT_RANGE, v);
                    }
                    send(&app, StatusCode::PARTIAL_CONTENT, bytes, out)
                }
                None => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
            },
            Err(()) => {
                let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", s.layout.len)) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                r
            }
        },
        Some(Some((a, b))) => match slice(s, a, b) {
            Some(bytes) => send(&app, StatusCode::OK, bytes, out),
            None => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        },
        Some(None) => StatusCode::BAD_REQUEST.into_response(),
    }
}
