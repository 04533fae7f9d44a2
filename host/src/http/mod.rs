//! The HTTP API (SPEC §7): node status and metrics, peers, and the videoproxy routes.

mod status;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;

use crate::config::Config;
use crate::media::MediaHub;
use crate::policy::Policy;

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
    /// Media caches and origin.
    pub hub: Arc<MediaHub>,
    /// The WebRTC side, when enabled.
    pub peers: Option<Arc<dyn PeerView>>,
    /// When the node started.
    pub started: Instant,
}

/// Handler state.
pub type AppState = Arc<Shared>;

/// The node's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/status", get(status::status))
        .route("/peers", get(status::peers))
        .route("/metrics", get(status::metrics))
        .with_state(state)
}
