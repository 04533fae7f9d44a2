//! Configuration of the WebRTC side.

use std::net::IpAddr;
use std::time::Duration;

use super::RtcError;

/// The binary message size of the default policy (a 30-byte header and 51,200 payload bytes,
/// SPEC §4), for which the default low-water mark is set. A policy's send plan may make other
/// sizes, up to [`crate::policy::MAX_MESSAGE`]; the sender adapts the mark per segment.
pub const DEFAULT_MESSAGE_SIZE: usize = 30 + 51_200;
/// The ICE server used when none is configured.
pub const DEFAULT_ICE_SERVER: &str = "stun:stun.l.google.com:19302";

/// One STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

impl IceServer {
    /// A server without credentials (STUN).
    pub fn stun(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            username: None,
            credential: None,
        }
    }
}

/// Tunables of the WebRTC side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcConfig {
    /// STUN/TURN servers. Default: [`DEFAULT_ICE_SERVER`].
    pub ice_servers: Vec<IceServer>,
    /// `PUBLICIP`: announce this address as the host candidate (NAT 1:1). With a port, every
    /// peer shares one UDP socket bound to that port (ICE UDP mux).
    pub public_ip: Option<(IpAddr, Option<u16>)>,
    /// Gather loopback candidates too (tests on 127.0.0.1). Default false.
    pub include_loopback: bool,
    /// The floor of each channel's send window: a chunk is sent while
    /// `buffered + chunk <= window` (one chunk is always allowed onto an empty buffer), and the
    /// window grows from here with the path (`window.rs`). Default 64 KiB (WEBRTC-NOTES.md:
    /// best on one host).
    pub window: usize,
    /// The ceiling of each channel's send window; equal to `window` for a fixed window.
    /// Default 4 MiB.
    pub window_max: usize,
    /// Bytes all channels together may queue above their floors (`MEMORY_BUDGET`'s `windows`
    /// share). Default 16 MiB.
    pub window_pool: u64,
    /// A peer not connected this long after it was created is dropped. Default 60 s.
    pub connect_timeout: Duration,
    /// A peer connected this long without an open DataChannel (its channel's open handshake
    /// was lost, or it never opened one) is re-made once by a new offer, then dropped.
    /// Default 10 s.
    pub channel_timeout: Duration,
    /// A peer whose connection stays `disconnected` this long is dropped (ICE may recover
    /// before). Default 5 s.
    pub disconnect_grace: Duration,
    /// How long a known peer that comes online again has to answer a ping before it is
    /// replaced. Default 2 s.
    pub probe_timeout: Duration,
    /// Interval of the health sweep over all peers. Default 2 s.
    pub sweep_interval: Duration,
    /// A send that makes no progress (buffer not draining) this long is abandoned. Default 30 s.
    pub stall_timeout: Duration,
    /// Read buffer per channel; a larger message closes the channel. Default 64 KiB (the
    /// largest message Chrome sends to a peer that does not state `max-message-size`).
    pub read_buffer: usize,
    /// Segments queued per channel; further `resolve`s are ignored. Default 64.
    pub max_queue: usize,
    /// Peer connections held at once (`MAX_PEERS`). When full, a peer idle for
    /// [`RtcConfig::idle_after`] gives way to a newcomer; if none is idle, the newcomer is
    /// refused. Default 64.
    pub max_peers: usize,
    /// DataChannels one peer may have open; more are closed. Default 4.
    pub max_channels: usize,
    /// Offers accepted per peer id per minute; more are ignored. Default 12.
    pub offers_per_minute: u32,
    /// A peer with no DataChannel traffic this long counts as idle. Default 30 s.
    pub idle_after: Duration,
    /// Concurrent `query` lookups per channel; further queries get no answer. Default 64.
    pub max_lookups: usize,
    /// Signalling commands waiting per peer before new ones are dropped. Default 128.
    pub command_queue: usize,
}

impl Default for RtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: vec![IceServer::stun(DEFAULT_ICE_SERVER)],
            public_ip: None,
            include_loopback: false,
            window: 64 * 1024,
            window_max: 4 << 20,
            window_pool: 16 << 20,
            connect_timeout: Duration::from_secs(60),
            channel_timeout: Duration::from_secs(10),
            disconnect_grace: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(2),
            stall_timeout: Duration::from_secs(30),
            read_buffer: 64 * 1024,
            max_queue: 64,
            max_peers: 64,
            max_channels: 4,
            offers_per_minute: 12,
            idle_after: Duration::from_secs(30),
            max_lookups: 64,
            command_queue: 128,
        }
    }
}

impl RtcConfig {
    /// Checks values that cannot work.
    pub fn validate(&self) -> Result<(), RtcError> {
        let bad = |what: &str| Err(RtcError::Config(what.to_owned()));
        if self.window == 0 {
            return bad("window must be positive");
        }
        if self.window_max < self.window {
            return bad("the window's ceiling is below its floor");
        }
        if self.read_buffer < 64 * 1024 {
            return bad("read buffer must hold a 65,536-byte message");
        }
        if self.sweep_interval.is_zero() {
            return bad("sweep interval must be positive");
        }
        if self.max_queue == 0 || self.max_lookups == 0 || self.command_queue == 0 {
            return bad("queue sizes must be positive");
        }
        if self.max_peers == 0 || self.max_channels == 0 || self.offers_per_minute == 0 {
            return bad("peer, channel and offer limits must be positive");
        }
        if let Some(server) = self.ice_servers.iter().find(|s| s.urls.is_empty()) {
            return Err(RtcError::Config(format!(
                "ICE server without urls: {server:?}"
            )));
        }
        Ok(())
    }
}
