//! Wires the node together: media hub, HTTP API and (when configured) the WebRTC peer.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use videortc::config::Config;
use videortc::http::{self, Shared};
use videortc::media::{HubConfig, MediaHub, Origin, http_client, stream_client};
use videortc::policy::Policy;
use videortc::policy::reload::Reloader;
use videortc::rtc::{IceServer, PeerManager, RtcConfig};
use videortc::signal::{ClientConfig, SignalClient};

/// Runs the node until `shutdown` completes.
pub async fn run(
    addr: SocketAddr,
    config: Config,
    reloader: Arc<Reloader>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let policy = reloader.policy().clone();
    // Operators swap the policy by editing its file, SIGHUP or POST /admin/policy.
    let _watch = reloader
        .watch()
        .map_err(|e| anyhow::anyhow!("policy file: {e}"))?;
    #[cfg(unix)]
    let _hangup = reloader.reload_on_sighup().context("SIGHUP handler")?;
    let client = http_client(config.video_proxy.as_ref(), config.origin_timeout)
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
    let streams = stream_client(config.video_proxy.as_ref(), config.stream_idle_timeout())
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
    let hub_config = HubConfig {
        segment_bytes: config.cache_bytes,
        segment_ttl: config.segment_ttl,
        ..HubConfig::default()
    };
    let hub = Arc::new(MediaHub::new(
        policy.clone(),
        Origin::new(client, config.base_url.clone()).with_stream_client(streams),
        config.youtube_url.clone(),
        &hub_config,
    ));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    let rtc_settings = config.rtc.clone();
    let mut shared =
        Shared::new(config, reloader.clone(), hub.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(rtc) = rtc_settings {
        let manager = start_rtc(&rtc, policy, hub).await?;
        shared.peers = Some(Arc::new(manager));
    }
    let shared = Arc::new(shared);
    tracing::info!(addr = %local, "listening");
    axum::serve(
        listener,
        http::router(shared).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("HTTP server")?;
    Ok(())
}

/// Joins the signalling server and starts the peer manager.
async fn start_rtc(
    rtc: &videortc::config::RtcSettings,
    policy: Arc<Policy>,
    hub: Arc<MediaHub>,
) -> anyhow::Result<PeerManager<MediaHub>> {
    videortc::rtc::init_crypto();
    let config = RtcConfig {
        ice_servers: rtc
            .ice_servers
            .iter()
            .map(|s| IceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect(),
        public_ip: rtc.public_ip.map(|p| (p.ip, p.port)),
        include_loopback: rtc.include_loopback,
        window: rtc.window,
        low_water: RtcConfig::default().low_water.min(rtc.window / 4),
        ..RtcConfig::default()
    };
    let (signal, events) =
        SignalClient::spawn(ClientConfig::new(rtc.ws_addr.clone(), rtc.id.clone()))
            .map_err(|e| anyhow::anyhow!("signalling: {e}"))?;
    let manager = PeerManager::new(config, policy, hub, signal)
        .await
        .map_err(|e| anyhow::anyhow!("WebRTC: {e}"))?;
    let runner = manager.clone();
    tokio::spawn(async move { runner.run(events).await });
    tracing::info!(id = %rtc.id, ws = %rtc.ws_addr, "WebRTC peer started");
    Ok(manager)
}
