//! Wires the node together: media hub, HTTP API and (when configured) the WebRTC peer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use videortc::config::Config;
use videortc::http::{self, Shared};
use videortc::media::{HubConfig, MediaHub, Origin, http_client};
use videortc::policy::Policy;

/// Runs the node until `shutdown` completes.
pub async fn run(
    addr: SocketAddr,
    config: Config,
    policy: Arc<Policy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = http_client(config.video_proxy.as_ref(), Duration::from_secs(60))
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
    let hub_config = HubConfig {
        segment_bytes: config.cache_bytes,
        segment_ttl: config.segment_ttl,
        ..HubConfig::default()
    };
    let hub = Arc::new(MediaHub::new(
        policy.clone(),
        Origin::new(client, config.base_url.clone()),
        &hub_config,
    ));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    let shared = Arc::new(Shared { config, policy, hub, peers: None, started: Instant::now() });
    tracing::info!(addr = %local, "listening");
    axum::serve(listener, http::router(shared))
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server")?;
    Ok(())
}
