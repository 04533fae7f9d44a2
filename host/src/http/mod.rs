//! The HTTP API (SPEC §7): node status and metrics, peers, the videoproxy routes under
//! `/video` (or, with `UPSTREAM`, a balancing reverse proxy for them) and static files.

mod admin;
mod files;
mod status;
pub mod upstream;
pub mod video;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, header};
use axum::routing::{any, get, post};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::config::Config;
use crate::media::MediaHub;
use crate::policy::Policy;
use crate::policy::reload::{MAX_POLICY_BYTES, Reloader};
use upstream::Upstream;
use video::VideoApi;

/// What the WebRTC side shows the HTTP API (implemented by the peer manager).
pub trait PeerView: Send + Sync + 'static {
    /// Peers and their connection, ICE and DataChannel states (`/peers`).
    fn peers_json(&self) -> serde_json::Value;
    /// Send queues per channel (`/peers?t=video`).
    fn queues_json(&self) -> serde_json::Value;
    /// Prometheus lines for the WebRTC counters (`/metrics`).
    fn write_metrics(&self, out: &mut String);
}

/// Everything the handlers share.
pub struct Shared {
    /// The node's configuration.
    pub config: Config,
    /// The running policy.
    pub policy: Arc<Policy>,
    /// Reloads the policy (`POST /admin/policy`).
    pub reloader: Arc<Reloader>,
    /// Media caches and origin.
    pub hub: Arc<MediaHub>,
    /// The WebRTC side, when enabled.
    pub peers: Option<Arc<dyn PeerView>>,
    /// When the node started.
    pub started: Instant,
    /// Clients, caches and endpoints of the `/video` routes.
    pub video: VideoApi,
    /// The `UPSTREAM` balancer; when set, `/video/...` goes there instead of `video`.
    pub upstream: Option<Upstream>,
    /// Where static files are served from (`PUBLIC_DIR`, `./public` by default).
    pub public_dir: PathBuf,
}

impl Shared {
    /// Everything the handlers need, built from the configuration; no WebRTC side yet
    /// (`peers` is `None`).
    pub fn new(
        config: Config,
        reloader: Arc<Reloader>,
        hub: Arc<MediaHub>,
    ) -> Result<Self, String> {
        let policy = reloader.policy().clone();
        let video = VideoApi::new(&config)?;
        let public_dir = config.public_dir.clone();
        let upstream = if config.upstreams.is_empty() {
            None
        } else {
            Some(Upstream::new(config.upstreams.clone())?)
        };
        Ok(Shared {
            config,
            policy,
            reloader,
            hub,
            peers: None,
            started: Instant::now(),
            video,
            upstream,
            public_dir,
        })
    }
}

/// CORS for `/video`: any origin, `GET`/`HEAD`, requested headers mirrored, the range
/// headers readable by scripts, preflights cached for ten days (videoproxy's max-age).
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("etag"),
        ])
        .max_age(Duration::from_secs(864_000))
}

/// Handler state.
pub type AppState = Arc<Shared>;

/// The node's router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`:
/// the admin route needs the peer's address.
pub fn router(state: AppState) -> Router {
    let video = if state.upstream.is_some() {
        any(upstream::proxy)
    } else {
        any(video::handle)
    };
    Router::new()
        .route("/status", get(status::status))
        .route("/peers", get(status::peers))
        .route("/metrics", get(status::metrics))
        .route(
            "/admin/policy",
            post(admin::policy).layer(DefaultBodyLimit::max(MAX_POLICY_BYTES)),
        )
        .route("/video/{*path}", video.layer(cors()))
        .fallback(files::serve)
        .with_state(state)
}
