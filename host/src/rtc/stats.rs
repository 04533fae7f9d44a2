//! Counters and serialisable snapshots for `/peers`, `/status` and `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters of the WebRTC side. Gauges (`peers`, `channels`) go up and down; the rest only up.
#[derive(Debug, Default)]
pub struct RtcStats {
    /// Peer connections held now.
    pub peers: AtomicU64,
    /// Open DataChannels now.
    pub channels: AtomicU64,
    /// Segments sent completely.
    pub segments_sent: AtomicU64,
    /// Segments stopped by `quit`/`quit-all` or a closed channel.
    pub segments_cancelled: AtomicU64,
    /// Segments that could not be sent (lookup gone, fetch or framing error, stalled).
    pub segments_failed: AtomicU64,
    /// Binary chunks sent.
    pub chunks_sent: AtomicU64,
    /// Bytes sent in binary chunks (headers and payload).
    pub bytes_sent: AtomicU64,
    /// `query` messages received.
    pub queries: AtomicU64,
    /// `found` replies sent.
    pub found_replies: AtomicU64,
    /// `resolve` messages received.
    pub resolves: AtomicU64,
    /// `quit` and `quit-all` messages received.
    pub quits: AtomicU64,
    /// Messages that were not valid protocol messages (logged and ignored).
    pub invalid_messages: AtomicU64,
    /// Well-formed events the node does not act on (e.g. `chat`), ignored quietly.
    pub ignored_messages: AtomicU64,
    /// Queries or resolves dropped because a per-channel limit was reached.
    pub overload_dropped: AtomicU64,
    /// Peer connections created.
    pub peers_created: AtomicU64,
    /// Peer connections dropped (failed, closed, disconnected, stuck or replaced).
    pub peers_dropped: AtomicU64,
    /// Peers connected without an open DataChannel, re-made with a new offer.
    pub peers_remade: AtomicU64,
    /// New peers refused because the node was full of active peers (`MAX_PEERS`).
    pub peers_refused: AtomicU64,
    /// Idle peers dropped to make room for a new one.
    pub peers_evicted: AtomicU64,
    /// DataChannels closed because their peer had the most it may open.
    pub channels_refused: AtomicU64,
    /// Offers naming a connected peer that still answered a probe (ignored: no hijacking).
    pub offers_refused: AtomicU64,
    /// Offers over the per-id rate (ignored).
    pub offers_limited: AtomicU64,
    /// Signalling events shed because the peer manager was behind (the signalling client's
    /// counter, shared).
    pub signal_events_shed: std::sync::Arc<AtomicU64>,
}

/// A plain copy of [`RtcStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // same fields as `RtcStats`
pub struct StatsSnapshot {
    pub peers: u64,
    pub channels: u64,
    pub segments_sent: u64,
    pub segments_cancelled: u64,
    pub segments_failed: u64,
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    pub queries: u64,
    pub found_replies: u64,
    pub resolves: u64,
    pub quits: u64,
    pub invalid_messages: u64,
    pub ignored_messages: u64,
    pub overload_dropped: u64,
    pub peers_created: u64,
    pub peers_dropped: u64,
    pub peers_remade: u64,
    pub peers_refused: u64,
    pub peers_evicted: u64,
    pub channels_refused: u64,
    pub offers_refused: u64,
    pub offers_limited: u64,
    pub signal_events_shed: u64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl RtcStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            peers: get(&self.peers),
            channels: get(&self.channels),
            segments_sent: get(&self.segments_sent),
            segments_cancelled: get(&self.segments_cancelled),
            segments_failed: get(&self.segments_failed),
            chunks_sent: get(&self.chunks_sent),
            bytes_sent: get(&self.bytes_sent),
            queries: get(&self.queries),
            found_replies: get(&self.found_replies),
            resolves: get(&self.resolves),
            quits: get(&self.quits),
            invalid_messages: get(&self.invalid_messages),
            ignored_messages: get(&self.ignored_messages),
            overload_dropped: get(&self.overload_dropped),
            peers_created: get(&self.peers_created),
            peers_dropped: get(&self.peers_dropped),
            peers_remade: get(&self.peers_remade),
            peers_refused: get(&self.peers_refused),
            peers_evicted: get(&self.peers_evicted),
            channels_refused: get(&self.channels_refused),
            offers_refused: get(&self.offers_refused),
            offers_limited: get(&self.offers_limited),
            signal_events_shed: get(&self.signal_events_shed),
        }
    }

    /// Appends the counters in the Prometheus text format (`videortc_rtc_*`).
    pub fn write_prometheus(&self, out: &mut String) {
        let s = self.snapshot();
        let rows: [(&str, &str, &str, u64); 23] = [
            ("peers", "gauge", "Peer connections held.", s.peers),
            ("channels", "gauge", "Open DataChannels.", s.channels),
            (
                "segments_sent_total",
                "counter",
                "Segments sent completely.",
                s.segments_sent,
            ),
            (
                "segments_cancelled_total",
                "counter",
                "Segment sends cancelled by quit or close.",
                s.segments_cancelled,
            ),
            (
                "segments_failed_total",
                "counter",
                "Segment sends that failed.",
                s.segments_failed,
            ),
            (
                "chunks_sent_total",
                "counter",
                "Binary chunks sent.",
                s.chunks_sent,
            ),
            (
                "bytes_sent_total",
                "counter",
                "Bytes sent in binary chunks.",
                s.bytes_sent,
            ),
            (
                "queries_total",
                "counter",
                "Query messages received.",
                s.queries,
            ),
            (
                "found_total",
                "counter",
                "Found replies sent.",
                s.found_replies,
            ),
            (
                "resolves_total",
                "counter",
                "Resolve messages received.",
                s.resolves,
            ),
            ("quits_total", "counter", "Quit messages received.", s.quits),
            (
                "invalid_messages_total",
                "counter",
                "Invalid DataChannel messages.",
                s.invalid_messages,
            ),
            (
                "ignored_messages_total",
                "counter",
                "DataChannel events ignored (not part of the node's protocol).",
                s.ignored_messages,
            ),
            (
                "overload_dropped_total",
                "counter",
                "Queries or resolves dropped at a per-channel limit.",
                s.overload_dropped,
            ),
            (
                "peers_created_total",
                "counter",
                "Peer connections created.",
                s.peers_created,
            ),
            (
                "peers_dropped_total",
                "counter",
                "Peer connections dropped.",
                s.peers_dropped,
            ),
            (
                "peers_remade_total",
                "counter",
                "Peers connected without a DataChannel, re-made with a new offer.",
                s.peers_remade,
            ),
            (
                "peers_refused_total",
                "counter",
                "New peers refused at MAX_PEERS (no idle peer to give way).",
                s.peers_refused,
            ),
            (
                "peers_evicted_total",
                "counter",
                "Idle peers dropped to make room for new ones.",
                s.peers_evicted,
            ),
            (
                "channels_refused_total",
                "counter",
                "DataChannels refused at the per-peer limit.",
                s.channels_refused,
            ),
            (
                "offers_refused_total",
                "counter",
                "Offers for a connected peer that still answered (hijack attempts).",
                s.offers_refused,
            ),
            (
                "offers_limited_total",
                "counter",
                "Offers over the per-id rate.",
                s.offers_limited,
            ),
            (
                "signal_events_shed_total",
                "counter",
                "Signalling events shed because the peer manager was behind.",
                s.signal_events_shed,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP videortc_rtc_{name} {help}");
            let _ = writeln!(out, "# TYPE videortc_rtc_{name} {kind}");
            let _ = writeln!(out, "videortc_rtc_{name} {value}");
        }
    }
}

/// Where the signalling connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalState {
    /// Not connected (starting, or reconnecting).
    Disconnected,
    /// Connected, `init` not received yet.
    Connected,
    /// Connected and announced: the server has sent `init`.
    Ready,
}

/// The whole WebRTC side, for `/peers`.
#[derive(Debug, Clone, Serialize)]
pub struct RtcSnapshot {
    /// This node's peer id.
    pub id: String,
    /// The signalling connection.
    pub signalling: SignalState,
    /// Peers, sorted by id.
    pub peers: Vec<PeerSnapshot>,
    /// The counters.
    pub stats: StatsSnapshot,
}

/// One peer connection.
#[derive(Debug, Clone, Serialize)]
pub struct PeerSnapshot {
    /// The remote peer id.
    pub id: String,
    /// `offerer` if the node sent the offer, else `answerer`.
    pub role: &'static str,
    /// Seconds since the peer connection was created.
    pub age_secs: u64,
    /// `RTCPeerConnectionState` (`new`, `connecting`, `connected`, …).
    pub connection_state: String,
    /// `RTCIceConnectionState` (`checking`, `connected`, …).
    pub ice_state: String,
    /// Open DataChannels.
    pub channels: Vec<ChannelSnapshot>,
}

/// One DataChannel and its send queue.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelSnapshot {
    /// The channel label (`dc` for the node's own).
    pub label: String,
    /// The SCTP stream id.
    pub id: u16,
    /// `open` or `closed`.
    pub state: &'static str,
    /// Bytes queued in the SCTP stream, not yet acknowledged.
    pub buffered_amount: usize,
    /// Segments waiting, in order, as `VID:ITAG|N`.
    pub queued: Vec<String>,
    /// The segment being sent, as `VID:ITAG|N`.
    pub in_flight: Option<String>,
    /// Messages received on the channel.
    pub messages_received: usize,
    /// Messages sent on the channel.
    pub messages_sent: usize,
    /// The path as the channel's SCTP association measures it.
    pub path: PathSnapshot,
}

/// What the SCTP association under a channel knows of the path (`/peers`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PathSnapshot {
    /// Smoothed round trip, ms (0 before the first sample).
    pub srtt_ms: f64,
    /// Smallest round trip of the last 10 s, ms.
    pub min_rtt_ms: f64,
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Slow-start threshold, bytes.
    pub ssthresh: u32,
    /// Bytes sent and not yet acknowledged.
    pub in_flight: u32,
    /// Measured delivery rate, bytes per second.
    pub delivery_rate: u64,
    /// Pacing rate, bytes per second (0: not paced).
    pub pacing_rate: u64,
    /// DATA chunks sent again after a detected loss.
    pub retransmitted: u64,
    /// Tail-loss probes sent.
    pub probes: u64,
    /// Retransmission timeouts (each restarts from a one-packet window).
    pub timeouts: u64,
}
