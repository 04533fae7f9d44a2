//! The WebRTC side of the node (SPEC §3 signalling, §4 DataChannel protocol).
//!
//! - [`PeerManager`] turns [`SignalEvent`](crate::signal::SignalEvent)s into peer connections:
//!   it offers to peers that come online, answers offers, trickles candidates with the real
//!   `sdpMid`, probes or replaces known peers that reappear and drops dead ones.
//! - Every DataChannel (ours, label `"dc"`, or one the browser opens) is detached and served by
//!   two tasks: a read loop that decodes messages through the [`Policy`]
//!   and a sender that works through the channel's FIFO queue, paced by the channel's buffered
//!   amount (never by sleeps) and cancellable by `quit` at any point.
//! - The media layer plugs in through [`SegmentSource`]; the HTTP layer reads
//!   [`PeerManager::snapshot`] and [`RtcStats`].
//!
//! The webrtc 0.17 specifics (detached channels, buffered-amount-low, ICE settings) follow
//! `WEBRTC-NOTES.md` and stay inside this module, so the stack could be replaced.

mod channel;
mod config;
mod glue;
mod limits;
mod manager;
mod peer;
mod queue;
mod sender;
mod stack;
mod stats;
mod window;

#[cfg(test)]
mod test_peer;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use config::{DEFAULT_ICE_SERVER, DEFAULT_MESSAGE_SIZE, IceServer, RtcConfig};
pub use manager::PeerManager;
pub use stats::{
    ChannelSnapshot, PathSnapshot, PeerSnapshot, RtcSnapshot, RtcStats, SignalState, StatsSnapshot,
};
pub use window::WindowPool;

use crate::media::Decision;
use crate::policy::{ByteRange, Policy, Request, SegmentRef};
use crate::signal::{SignalClient, SignalError};

/// What the media layer offers the DataChannel protocol.
pub trait SegmentSource: Send + Sync + 'static {
    /// The policy's decision on a query or resolve (loading info and index as it asks).
    fn decide(&self, request: &Request) -> impl Future<Output = Decision> + Send;
    /// Bytes `range` of the segment's stream (cached and coalesced by the implementation),
    /// counted in the memory budget's bytes in flight until the lease is dropped.
    fn fetch(
        &self,
        seg: &SegmentRef,
        range: ByteRange,
    ) -> impl Future<Output = Result<crate::budget::Lease, String>> + Send;
}

/// Errors of the WebRTC side.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// The WebRTC stack failed (SDP, ICE, DTLS, SCTP).
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::Error),
    /// A signalling message could not be queued.
    #[error("signalling: {0}")]
    Signal(#[from] SignalError),
    /// The configuration cannot work.
    #[error("invalid WebRTC configuration: {0}")]
    Config(String),
    /// Binding the shared UDP socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything the peers and channels of one manager share.
pub(crate) struct Ctx<S> {
    pub(crate) config: RtcConfig,
    pub(crate) policy: Arc<Policy>,
    pub(crate) source: Arc<S>,
    pub(crate) stats: Arc<RtcStats>,
    pub(crate) signal: SignalClient,
    /// Reports from peers to the manager's loop.
    pub(crate) events: mpsc::UnboundedSender<peer::PeerEvent>,
    /// Zero of the monotonic clock decisions see (`now-ms`).
    pub(crate) epoch: std::time::Instant,
    /// Refusals at the admission limits, logged sparingly.
    pub(crate) limits: limits::LimitLog,
    /// What send windows may hold above their floors.
    pub(crate) windows: WindowPool,
}

impl<S> Ctx<S> {
    /// Milliseconds since the manager started, for the policy's `now-ms`.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Installs ring as the process-wide rustls crypto provider.
///
/// webrtc's DTLS uses rustls with ring; if another provider (aws-lc-rs) is also compiled in,
/// rustls cannot pick one and every DTLS handshake panics inside a tokio worker. Call this once
/// at start-up, before any peer connection; further calls (and a provider already installed)
/// are harmless.
pub fn init_crypto() {
    // `Err` only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
