//! A YouTube stand-in on loopback for direct mode (`YOUTUBE_URL`): the innertube
//! `visitor_id` and `player` APIs, watch pages and player scripts, answered from the recorded
//! fixtures in `guest/tests/fixtures/youtube` (sources named in its README).
//!
//! For [`VID`] the player API answers a VISIONOS-shaped response (the recorded one, with its
//! formats replaced by the test origin's ffmpeg streams, so media can be checked byte for
//! byte); other ids get the scenario set in [`YtControl::scenarios`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::hits::Hits;
use crate::origin::{CAPTION_LANGS, Stream, TITLE, VID};

/// What the player API answers for a video id other than [`VID`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// `playabilityStatus` with this status and reason (and no streaming data).
    Status(String, String),
    /// A recorded player response from the fixtures (e.g. `player_m8uHb5jIGN8.json`).
    Recorded(String),
}

/// Switches and counters shared with the test.
#[derive(Debug, Default)]
pub struct YtControl {
    /// Requests seen, by path (with the video id for player requests: `/player?v=ID`).
    pub hits: Hits,
    /// Request headers seen last, by label (`visitor_id`, `player`, `watch`, `script`).
    pub headers: Mutex<HashMap<String, HeaderMap>>,
    /// Player API answers by video id (other than [`VID`]); unknown ids get `ERROR`.
    pub scenarios: Mutex<HashMap<String, Scenario>>,
    /// Player responses made for [`VID`]: each gets its own URLs (`&gen=N`).
    pub generation: AtomicU64,
    /// Seconds until the URLs expire (`expiresInSeconds` and `&expire=`).
    pub expires_in: AtomicU64,
    /// Every answer waits this many milliseconds first (a slow YouTube).
    pub delay_ms: AtomicU64,
}

/// The recorded fixtures of the guest's YouTube tests.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest/tests/fixtures/youtube")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone)]
struct App {
    control: Arc<YtControl>,
    /// The test origin serving the media.
    media: SocketAddr,
    streams: Arc<Vec<Stream>>,
}

/// A running stand-in; stopped on drop.
#[derive(Debug)]
pub struct YouTubeStandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Switches and counters.
    pub control: Arc<YtControl>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for YouTubeStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl YouTubeStandIn {
    /// Starts the stand-in; [`VID`]'s formats point at `media` (a test origin with `streams`).
    pub async fn start(media: SocketAddr, streams: Arc<Vec<Stream>>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(YtControl::default());
        control.expires_in.store(21_540, Ordering::SeqCst);
        let app = App {
            control: control.clone(),
            media,
            streams,
        };
        let router = Router::new()
            .route("/youtubei/v1/visitor_id", post(visitor_id))
            .route("/youtubei/v1/player", post(player))
            .route("/watch", get(watch))
            .route("/s/player/{id}/{*rest}", get(script))
            .layer(axum::middleware::from_fn_with_state(app.clone(), slow))
            .with_state(app);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(YouTubeStandIn {
            addr,
            control,
            task,
        })
    }

    /// `http://127.0.0.1:port`: the node's `YOUTUBE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Player API requests made for `id`.
    pub fn player_hits(&self, id: &str) -> u64 {
        self.control.hits.exact(&format!("/player?v={id}"))
    }

    /// The headers of the last request of `label` (`visitor_id`, `player`, `watch`, `script`).
    pub fn last_headers(&self, label: &str) -> Option<HeaderMap> {
        self.control.headers.lock().ok()?.get(label).cloned()
    }
}

/// Delays every answer by [`YtControl::delay_ms`].
async fn slow(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let delay = app.control.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    next.run(request).await
}

fn record(app: &App, key: &str, label: &str, headers: &HeaderMap) {
    app.control.hits.record(key);
    if let Ok(mut all) = app.control.headers.lock() {
        all.insert(label.to_owned(), headers.clone());
    }
}

fn json_response(v: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        v.to_string(),
    )
        .into_response()
}

async fn visitor_id(State(app): State<App>, headers: HeaderMap) -> Response {
    record(&app, "/visitor_id", "visitor_id", &headers);
    json_response(&json!({"responseContext": {"visitorData": "CgtTdGFuZEluVmlzaXQ%3D"}}))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The recorded VISIONOS-shaped response, with [`VID`]'s metadata and the test streams.
fn visionos_response(app: &App) -> Value {
    let mut v: Value =
        serde_json::from_slice(&fixture("visionos_player_QRS8MkLhQmM.json")).unwrap_or_default();
    let generation = app.control.generation.fetch_add(1, Ordering::SeqCst) + 1;
    let expires_in = app.control.expires_in.load(Ordering::SeqCst);
    let expire = unix_now() + expires_in;
    let formats: Vec<Value> = app
        .streams
        .iter()
        .map(|s| {
            let l = &s.layout;
            json!({
                "itag": s.itag,
                "url": format!("http://{}/media/{}?expire={expire}&gen={generation}", app.media, s.file),
                "mimeType": s.mime,
                "bitrate": 100_000,
                "contentLength": l.len.to_string(),
                "initRange": {"start": l.init.start.to_string(), "end": l.init.end.to_string()},
                "indexRange": {"start": l.index.start.to_string(), "end": l.index.end.to_string()},
                "quality": if s.mime.starts_with("audio") { "tiny" } else { "medium" },
                "qualityLabel": if s.mime.starts_with("audio") { Value::Null } else { json!("360p") },
                "approxDurationMs": "6000",
            })
        })
        .map(|mut f| {
            if let Some(o) = f.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            f
        })
        .collect();
    if let Some(d) = v
        .pointer_mut("/videoDetails")
        .and_then(Value::as_object_mut)
    {
        d.insert("videoId".into(), json!(VID));
        d.insert("title".into(), json!(TITLE));
        d.insert("lengthSeconds".into(), json!("6"));
        d.insert("author".into(), json!("ffmpeg"));
    }
    if let Some(sd) = v
        .pointer_mut("/streamingData")
        .and_then(Value::as_object_mut)
    {
        sd.insert("expiresInSeconds".into(), json!(expires_in.to_string()));
        sd.insert("adaptiveFormats".into(), json!(formats));
        sd.remove("formats");
    }
    let tracks: Vec<Value> = CAPTION_LANGS
        .iter()
        .map(|lang| {
            json!({
                "baseUrl": format!("http://{}/captions/{lang}.xml?v={VID}", app.media),
                "languageCode": lang,
                "name": {"simpleText": lang},
            })
        })
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "captions".into(),
            json!({"playerCaptionsTracklistRenderer": {"captionTracks": tracks}}),
        );
    }
    v
}

fn status_response(status: &str, reason: &str) -> Value {
    json!({"playabilityStatus": {"status": status, "reason": reason}})
}

async fn player(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = request
        .get("videoId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    record(&app, &format!("/player?v={id}"), "player", &headers);
    if id == VID {
        return json_response(&visionos_response(&app));
    }
    let scenario = app
        .control
        .scenarios
        .lock()
        .ok()
        .and_then(|s| s.get(&id).cloned());
    match scenario {
        Some(Scenario::Status(status, reason)) => json_response(&status_response(&status, &reason)),
        Some(Scenario::Recorded(name)) => {
            ([(header::CONTENT_TYPE, "application/json")], fixture(&name)).into_response()
        }
        None => json_response(&status_response("ERROR", "Video unavailable")),
    }
}

/// The recorded watch pages, by video id.
fn watch_page(id: &str) -> Option<&'static str> {
    match id {
        "WXxV9g7lsFE" => Some("watch_WXxV9g7lsFE.html"),
        "YQHsXMglC9A" => Some("watch_YQHsXMglC9A.html"),
        "irauhITDrsE" => Some("watch_irauhITDrsE.html"),
        "5qap5aO4i9A" => Some("watch_live_5qap5aO4i9A.html"),
        _ => None,
    }
}

async fn watch(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let id = q.get("v").cloned().unwrap_or_default();
    record(&app, &format!("/watch?v={id}"), "watch", &headers);
    match watch_page(&id) {
        Some(name) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            fixture(name),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

/// The synthetic player scripts (the recorded pages name players `2840754e` and `62f90c99`).
async fn script(
    State(app): State<App>,
    Path((id, _rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    record(&app, &format!("/s/player/{id}"), "script", &headers);
    let name = match id.as_str() {
        "2840754e" => "player_classic.js",
        "62f90c99" => "player_2026.js",
        _ => return (StatusCode::NOT_FOUND, "no such player").into_response(),
    };
    ([(header::CONTENT_TYPE, "text/javascript")], fixture(name)).into_response()
}
