//! One peer connection and the task that applies its signalling in order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::signaling_state::RTCSignalingState;

use super::channel::{Channel, short};
use super::queue::Cancel;
use super::stats::{PeerSnapshot, bump};
use super::{Ctx, RtcError, SegmentSource};
use crate::signal::IceCandidate;

/// Label of the channel the node creates.
const CHANNEL_LABEL: &str = "dc";
/// `maxPacketLifeTime` of that channel, in ms (SPEC §3).
const MAX_PACKET_LIFE_TIME: u16 = 2000;
/// Remote candidates kept while the remote description is missing.
const MAX_EARLY_CANDIDATES: usize = 64;

/// Which side sent the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// We offered (the peer came online after us).
    Offerer,
    /// We answered the peer's offer.
    Answerer,
}

/// Signalling applied to a peer, in arrival order.
#[derive(Debug)]
pub(crate) enum Command {
    /// Create our DataChannel and send an offer.
    Connect,
    /// Answer this offer.
    Offer(String),
    /// Apply this answer to our offer.
    Answer(String),
    /// Add (or buffer) a remote candidate.
    Candidate(IceCandidate),
}

/// What a peer tells the manager.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// The peer is beyond repair and should be dropped.
    Dead {
        id: String,
        generation: u64,
        reason: &'static str,
    },
}

/// Local candidates wait until our description has been sent.
#[derive(Default)]
struct LocalCandidates {
    described: bool,
    mid: String,
    pending: Vec<RTCIceCandidateInit>,
}

/// One remote peer.
pub(crate) struct Peer<S> {
    pub(crate) id: String,
    /// Distinguishes this connection from earlier and later ones with the same id.
    pub(crate) generation: u64,
    pub(crate) role: Role,
    created: Instant,
    pc: Arc<RTCPeerConnection>,
    ctx: Arc<Ctx<S>>,
    channels: Mutex<Vec<Arc<Channel>>>,
    local: Mutex<LocalCandidates>,
    /// When the connection state last changed.
    state_since: Mutex<Instant>,
    /// When DataChannel traffic last went either way (`Ctx::now_ms`), for picking an idle
    /// peer to give way when the node is full.
    activity: Arc<AtomicU64>,
    /// Asks the task to stop.
    stop: Cancel,
    torn_down: AtomicBool,
    /// This peer, for tasks that must not keep it alive.
    me: Weak<Self>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`Peer::health`]'s reason for a connection without an open DataChannel.
pub(crate) const NO_CHANNEL: &str = "no data channel";

impl<S: SegmentSource> Peer<S> {
    /// Wraps a new peer connection, registers its handlers and starts the task that applies
    /// `commands`.
    pub(crate) fn spawn(
        ctx: Arc<Ctx<S>>,
        id: String,
        generation: u64,
        role: Role,
        pc: Arc<RTCPeerConnection>,
        commands: mpsc::Receiver<Command>,
    ) -> Arc<Self> {
        let now = Instant::now();
        let peer = Arc::new_cyclic(|me| Self {
            id,
            generation,
            role,
            created: now,
            pc,
            channels: Mutex::default(),
            local: Mutex::default(),
            state_since: Mutex::new(now),
            activity: Arc::new(AtomicU64::new(ctx.now_ms())),
            ctx,
            stop: Cancel::default(),
            torn_down: AtomicBool::new(false),
            me: me.clone(),
        });
        peer.register_handlers();
        let span = tracing::info_span!("peer", id = %short(&peer.id), generation);
        tokio::spawn(peer.clone().run(commands).instrument(span));
        peer
    }

    fn register_handlers(&self) {
        let weak = self.me.clone();
        self.pc.on_ice_candidate(Box::new(move |candidate| {
            if let (Some(peer), Some(candidate)) = (weak.upgrade(), candidate) {
                match candidate.to_json() {
                    Ok(init) => peer.local_candidate(init),
                    Err(err) => debug!(%err, "local candidate not serialisable"),
                }
            }
            Box::pin(async {})
        }));
        let weak = self.me.clone();
        self.pc
            .on_peer_connection_state_change(Box::new(move |state| {
                if let Some(peer) = weak.upgrade() {
                    peer.state_changed(state);
                }
                Box::pin(async {})
            }));
        let id = self.id.clone();
        self.pc
            .on_ice_connection_state_change(Box::new(move |state| {
                debug!(peer = %short(&id), %state, "ICE connection state");
                Box::pin(async {})
            }));
        let weak = self.me.clone();
        self.pc.on_data_channel(Box::new(move |dc| {
            if let Some(peer) = weak.upgrade() {
                peer.attach(&dc);
            }
            Box::pin(async {})
        }));
    }

    fn state_changed(&self, state: RTCPeerConnectionState) {
        *lock(&self.state_since) = Instant::now();
        info!(peer = %short(&self.id), %state, "connection state");
        let reason = match state {
            RTCPeerConnectionState::Failed => "connection failed",
            RTCPeerConnectionState::Closed => "connection closed",
            _ => return,
        };
        let _ = self.ctx.events.send(PeerEvent::Dead {
            id: self.id.clone(),
            generation: self.generation,
            reason,
        });
    }

    /// Serves `dc` once it opens. Called before the channel can deliver anything, so no early
    /// message is missed (a detached channel buffers until it is read).
    fn attach(&self, dc: &Arc<RTCDataChannel>) {
        let peer = self.me.clone();
        let weak_dc: Weak<RTCDataChannel> = Arc::downgrade(dc);
        dc.on_open(Box::new(move || {
            Box::pin(async move {
                let (Some(peer), Some(dc)) = (peer.upgrade(), weak_dc.upgrade()) else {
                    return;
                };
                match dc.detach().await {
                    Ok(raw) => peer.add_channel(dc.label().to_owned(), raw),
                    Err(err) => warn!(peer = %short(&peer.id), %err, "cannot detach data channel"),
                }
            })
        }));
    }

    fn add_channel(&self, label: String, raw: Arc<webrtc::data::data_channel::DataChannel>) {
        if self.stop.is_cancelled() {
            return;
        }
        let open = {
            let mut channels = lock(&self.channels);
            channels.retain(|c| c.is_open());
            channels.len()
        };
        if open >= self.ctx.config.max_channels {
            bump(&self.ctx.stats.channels_refused);
            self.ctx.limits.note("data channels per peer", &self.id);
            tokio::spawn(async move {
                let _ = raw.close().await;
            });
            return;
        }
        let channel = Channel::start(&self.ctx, &self.id, label, raw, self.activity.clone());
        lock(&self.channels).push(channel.clone());
        // Like the Go original, a peer is only worth keeping while it has a channel: the
        // remote closing its last one (or its whole association) drops the peer at once,
        // long before ICE notices.
        let peer = self.me.clone();
        tokio::spawn(async move {
            channel.closed.cancelled().await;
            if let Some(peer) = peer.upgrade() {
                peer.channel_closed();
            }
        });
    }

    fn channel_closed(&self) {
        let open = {
            let mut channels = lock(&self.channels);
            channels.retain(|c| c.is_open());
            channels.len()
        };
        if open == 0 && !self.stop.is_cancelled() {
            let _ = self.ctx.events.send(PeerEvent::Dead {
                id: self.id.clone(),
                generation: self.generation,
                reason: "data channels closed",
            });
        }
    }

    /// Applies signalling until told to stop or the manager forgets the peer, then closes.
    async fn run(self: Arc<Self>, mut commands: mpsc::Receiver<Command>) {
        let mut early: Vec<RTCIceCandidateInit> = Vec::new();
        loop {
            let command = tokio::select! {
                command = commands.recv() => command,
                () = self.stop.cancelled() => None,
            };
            let Some(command) = command else { break };
            let step = tokio::select! {
                step = self.execute(command, &mut early) => step,
                () = self.stop.cancelled() => break,
            };
            if let Err(err) = step {
                warn!(%err, "signalling step failed; dropping the peer");
                let _ = self.ctx.events.send(PeerEvent::Dead {
                    id: self.id.clone(),
                    generation: self.generation,
                    reason: "signalling failed",
                });
                break;
            }
        }
        self.close().await;
    }

    async fn execute(
        &self,
        command: Command,
        early: &mut Vec<RTCIceCandidateInit>,
    ) -> Result<(), RtcError> {
        match command {
            Command::Connect => self.connect().await,
            Command::Offer(sdp) => self.answer(sdp, early).await,
            Command::Answer(sdp) => self.accept_answer(sdp, early).await,
            Command::Candidate(candidate) => {
                self.add_candidate(candidate, early).await;
                Ok(())
            }
        }
    }

    /// Creates our channel and sends the offer.
    async fn connect(&self) -> Result<(), RtcError> {
        let init = RTCDataChannelInit {
            ordered: Some(true),
            max_packet_life_time: Some(MAX_PACKET_LIFE_TIME),
            ..Default::default()
        };
        let dc = self
            .pc
            .create_data_channel(CHANNEL_LABEL, Some(init))
            .await?;
        self.attach(&dc);
        let offer = self.pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(offer).await?;
        self.ctx.signal.send_offer(&self.id, sdp)?;
        debug!("offer sent");
        self.described().await;
        Ok(())
    }

    /// Answers an offer.
    async fn answer(
        &self,
        sdp: String,
        early: &mut Vec<RTCIceCandidateInit>,
    ) -> Result<(), RtcError> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        self.add_early(early).await;
        let answer = self.pc.create_answer(None).await?;
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(answer).await?;
        self.ctx.signal.send_answer(&self.id, sdp)?;
        debug!("answer sent");
        self.described().await;
        Ok(())
    }

    async fn accept_answer(
        &self,
        sdp: String,
        early: &mut Vec<RTCIceCandidateInit>,
    ) -> Result<(), RtcError> {
        if self.pc.signaling_state() != RTCSignalingState::HaveLocalOffer {
            debug!(state = %self.pc.signaling_state(), "unexpected answer ignored");
            return Ok(());
        }
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        debug!("answer applied");
        self.add_early(early).await;
        Ok(())
    }

    async fn add_candidate(&self, candidate: IceCandidate, early: &mut Vec<RTCIceCandidateInit>) {
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment,
        };
        if self.pc.remote_description().await.is_none() {
            if early.len() < MAX_EARLY_CANDIDATES {
                early.push(init);
            } else {
                debug!("too many early candidates; one dropped");
            }
            return;
        }
        if let Err(err) = self.pc.add_ice_candidate(init).await {
            debug!(%err, "remote candidate ignored");
        }
    }

    async fn add_early(&self, early: &mut Vec<RTCIceCandidateInit>) {
        for init in early.drain(..) {
            if let Err(err) = self.pc.add_ice_candidate(init).await {
                debug!(%err, "early remote candidate ignored");
            }
        }
    }

    /// Our description is out: from now on local candidates go out at once, with the real mid.
    async fn described(&self) {
        let mid = self
            .pc
            .local_description()
            .await
            .and_then(|d| first_mid(&d.sdp))
            .unwrap_or_else(|| "0".to_owned());
        let pending = {
            let mut local = lock(&self.local);
            local.described = true;
            local.mid = mid.clone();
            std::mem::take(&mut local.pending)
        };
        for init in pending {
            self.send_candidate(init, &mid);
        }
    }

    fn local_candidate(&self, init: RTCIceCandidateInit) {
        let mid = {
            let mut local = lock(&self.local);
            if !local.described {
                local.pending.push(init);
                return;
            }
            local.mid.clone()
        };
        self.send_candidate(init, &mid);
    }

    fn send_candidate(&self, init: RTCIceCandidateInit, mid: &str) {
        let candidate = IceCandidate {
            candidate: init.candidate,
            sdp_mid: Some(mid.to_owned()),
            sdp_mline_index: Some(0),
            username_fragment: init.username_fragment,
        };
        if let Err(err) = self.ctx.signal.send_candidate(&self.id, candidate) {
            warn!(peer = %short(&self.id), %err, "candidate not sent");
        }
    }

    /// Asks the task to stop; it then closes the connection.
    pub(crate) fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Closes every channel and the connection. Runs once.
    pub(crate) async fn close(&self) {
        self.stop.cancel();
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let channels = std::mem::take(&mut *lock(&self.channels));
        for channel in channels {
            channel.close(&self.ctx).await;
        }
        if let Err(err) = self.pc.close().await {
            debug!(%err, "peer connection close");
        }
        info!(peer = %short(&self.id), "peer closed");
    }

    /// Why the peer should be dropped, if it should: failed or closed, disconnected longer
    /// than the grace period, or not connected (or without a data channel) within the connect
    /// timeout.
    pub(crate) fn health(&self) -> Option<&'static str> {
        let config = &self.ctx.config;
        match self.pc.connection_state() {
            RTCPeerConnectionState::Failed => Some("connection failed"),
            RTCPeerConnectionState::Closed => Some("connection closed"),
            RTCPeerConnectionState::Disconnected
                if lock(&self.state_since).elapsed() >= config.disconnect_grace =>
            {
                Some("connection disconnected")
            }
            RTCPeerConnectionState::Connected
                if lock(&self.state_since).elapsed() > config.channel_timeout
                    && !lock(&self.channels).iter().any(|c| c.is_open()) =>
            {
                Some(NO_CHANNEL)
            }
            RTCPeerConnectionState::New
            | RTCPeerConnectionState::Connecting
            | RTCPeerConnectionState::Unspecified
                if self.created.elapsed() > config.connect_timeout =>
            {
                Some("stuck connecting")
            }
            _ if self.created.elapsed() > config.connect_timeout
                && !lock(&self.channels).iter().any(|c| c.is_open()) =>
            {
                Some(NO_CHANNEL)
            }
            _ => None,
        }
    }

    /// Milliseconds since DataChannel traffic last went either way.
    pub(crate) fn idle_ms(&self) -> u64 {
        self.ctx
            .now_ms()
            .saturating_sub(self.activity.load(Ordering::Relaxed))
    }

    /// Whether the connection is up (so a ping can tell whether the peer is still there).
    pub(crate) fn is_connected(&self) -> bool {
        self.pc.connection_state() == RTCPeerConnectionState::Connected
    }

    /// Whether the peer answers a ping (any message counts) within `timeout`.
    pub(crate) async fn probe(&self, timeout: Duration) -> bool {
        if self.pc.connection_state() != RTCPeerConnectionState::Connected {
            return false;
        }
        let channel = lock(&self.channels).iter().find(|c| c.is_open()).cloned();
        let Some(channel) = channel else {
            return false;
        };
        let ping = self.ctx.policy.ping_text();
        let mut received = channel.received();
        received.borrow_and_update();
        if !channel.send_text(ping).await {
            return false;
        }
        matches!(
            tokio::time::timeout(timeout, received.changed()).await,
            Ok(Ok(()))
        )
    }

    /// The peer's state for `/peers`.
    pub(crate) fn snapshot(&self) -> PeerSnapshot {
        let channels = lock(&self.channels)
            .iter()
            .filter(|c| c.is_open())
            .map(|c| c.snapshot())
            .collect();
        PeerSnapshot {
            id: self.id.clone(),
            role: match self.role {
                Role::Offerer => "offerer",
                Role::Answerer => "answerer",
            },
            age_secs: self.created.elapsed().as_secs(),
            connection_state: self.pc.connection_state().to_string(),
            ice_state: self.pc.ice_connection_state().to_string(),
            channels,
        }
    }
}

/// The mid of the first media section of an SDP (`a=mid:` line).
fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=mid:"))
        .map(str::to_owned)
        .filter(|mid| !mid.is_empty())
}

#[cfg(test)]
mod tests {
    use super::first_mid;

    #[test]
    fn mid_of_first_section() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\na=sctp-port:5000\r\n";
        assert_eq!(first_mid(sdp).as_deref(), Some("0"));
        assert_eq!(first_mid("v=0\r\n"), None);
    }
}
