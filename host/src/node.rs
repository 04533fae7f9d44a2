//! Wires the node together: media hub, HTTP API and (when configured) the WebRTC peer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use videortc::config::Config;
use videortc::http::{self, Shared};
use videortc::media::{HubConfig, MediaHub, Origin, http_client, stream_client};
use videortc::policy::Policy;
use videortc::policy::reload::Reloader;
use videortc::rtc::{IceServer, PeerManager, RtcConfig};
use videortc::signal::{ClientConfig, SignalClient};

/// How long in-flight HTTP requests may run on after a shutdown signal before they are cut.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// The WebRTC side, for shutdown.
struct Rtc {
    manager: PeerManager<MediaHub>,
    signal: SignalClient,
    run: tokio::task::JoinHandle<()>,
}

/// Runs the node until `shutdown` completes, then shuts down gracefully: stops accepting,
/// lets in-flight HTTP requests finish for up to [`HTTP_DRAIN`], closes every peer's
/// connection (its channels with it) and leaves the signalling server.
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
    let m = config.memory;
    tracing::info!(
        budget = m.total,
        peers = m.peers,
        segments = m.segments,
        in_flight = m.in_flight,
        windows = m.windows,
        tables = m.tables,
        ranges = m.ranges,
        infos = m.infos,
        documents = m.documents,
        youtube = m.youtube,
        "memory budget"
    );
    let hub_config = HubConfig {
        segment_bytes: m.segments,
        segment_ttl: config.segment_ttl,
        table_bytes: m.tables,
        info_bytes: m.infos,
        range_bytes: m.ranges,
        youtube_bytes: m.youtube,
        in_flight_bytes: m.in_flight,
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
    let rtc = match rtc_settings {
        Some(settings) => {
            let rtc = start_rtc(&settings, m.windows, policy, hub).await?;
            shared.peers = Some(Arc::new(rtc.manager.clone()));
            Some(rtc)
        }
        None => None,
    };
    let shared = Arc::new(shared);
    tracing::info!(addr = %local, "listening");
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let server = axum::serve(
        listener,
        http::router(shared).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let drain_deadline = async {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(HTTP_DRAIN).await;
    };
    tokio::select! {
        served = server => served.context("HTTP server")?,
        () = drain_deadline => {
            tracing::warn!(after = ?HTTP_DRAIN, "cutting HTTP requests still in flight");
        }
    }
    if let Some(rtc) = rtc {
        tracing::info!("closing peer connections");
        rtc.signal.shutdown();
        // The manager closes every peer when signalling ends; it waits for them up to 5 s.
        if tokio::time::timeout(Duration::from_secs(8), rtc.run)
            .await
            .is_err()
        {
            rtc.manager.shutdown().await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Joins the signalling server and starts the peer manager.
async fn start_rtc(
    rtc: &videortc::config::RtcSettings,
    windows: u64,
    policy: Arc<Policy>,
    hub: Arc<MediaHub>,
) -> anyhow::Result<Rtc> {
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
        window_max: rtc.window_max.max(rtc.window),
        window_pool: windows,
        max_peers: rtc.limits.max_peers,
        max_channels: rtc.limits.max_channels,
        max_queue: rtc.limits.max_queued,
        offers_per_minute: rtc.limits.offers_per_minute,
        ..RtcConfig::default()
    };
    let signal_config = ClientConfig {
        max_message_size: rtc.limits.max_signal_message,
        ..ClientConfig::new(rtc.ws_addr.clone(), rtc.id.clone())
    };
    let (signal, events) =
        SignalClient::spawn(signal_config).map_err(|e| anyhow::anyhow!("signalling: {e}"))?;
    let manager = PeerManager::new(config, policy, hub, signal.clone())
        .await
        .map_err(|e| anyhow::anyhow!("WebRTC: {e}"))?;
    let runner = manager.clone();
    let run = tokio::spawn(async move { runner.run(events).await });
    tracing::info!(id = %rtc.id, ws = %rtc.ws_addr, "WebRTC peer started");
    Ok(Rtc {
        manager,
        signal,
        run,
    })
}
