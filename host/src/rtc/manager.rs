//! The peer manager: signalling events in, peer connections out (SPEC §3).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use super::channel::short;
use super::limits::OfferRate;
use super::peer::{Command, NO_CHANNEL, Peer, PeerEvent, Role};
use super::stack::Stack;
use super::stats::{RtcSnapshot, RtcStats, SignalState, bump};
use super::{Ctx, RtcConfig, RtcError, SegmentSource, WindowPool};
use crate::policy::Policy;
use crate::signal::{SignalClient, SignalEvent};

/// How long [`PeerManager::shutdown`] waits for connections to close.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Drives the node's peer connections from signalling events.
///
/// - `init`: the peers already online will offer to us; those we still hold are pinged and
///   dropped if they do not answer.
/// - `online(id)`: a new peer gets a connection, our `"dc"` channel and an offer. A known peer
///   that still answers a ping is kept; otherwise it is replaced by a fresh offer.
/// - `offer`: answered on a fresh connection. An offer naming a peer that is connected
///   replaces it only if that connection fails a ping probe: ids are public, so anyone could
///   otherwise disconnect anyone. Offers beyond [`RtcConfig::offers_per_minute`] per id are
///   ignored. `answer` and `candidate` go to the peer's connection, in order (candidates that
///   come before the remote description are buffered).
/// - At [`RtcConfig::max_peers`] a newcomer takes the place of the peer idle longest (no
///   DataChannel traffic for [`RtcConfig::idle_after`]); if every peer is active it is refused.
/// - Peers whose connection fails or closes are dropped at once, those disconnected for
///   [`RtcConfig::disconnect_grace`] or not connected within [`RtcConfig::connect_timeout`] at
///   the next sweep. A signalling reconnect keeps the peers.
///
/// Cheap to clone; all clones share the peers.
pub struct PeerManager<S: SegmentSource> {
    inner: Arc<Inner<S>>,
}

impl<S: SegmentSource> Clone for PeerManager<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: SegmentSource> std::fmt::Debug for PeerManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManager")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

struct Slot<S> {
    peer: Arc<Peer<S>>,
    commands: mpsc::Sender<Command>,
}

struct Inner<S> {
    ctx: Arc<Ctx<S>>,
    stack: Stack,
    id: String,
    slots: Mutex<HashMap<String, Slot<S>>>,
    generation: AtomicU64,
    signal_state: watch::Sender<SignalState>,
    reports: Mutex<Option<mpsc::UnboundedReceiver<PeerEvent>>>,
    offers: OfferRate,
    /// Peers re-made for want of a DataChannel, and when: once per [`REMAKE_EVERY`].
    remade: Mutex<HashMap<String, std::time::Instant>>,
}

/// A peer is re-made for want of a DataChannel at most this often.
const REMAKE_EVERY: Duration = Duration::from_secs(300);

impl<S: SegmentSource> PeerManager<S> {
    /// Builds the WebRTC stack (binding the shared UDP port if `PUBLICIP` has one). `signal`
    /// sends our offers, answers and candidates; feed its events to [`Self::run`].
    pub async fn new(
        config: RtcConfig,
        policy: Arc<Policy>,
        source: Arc<S>,
        signal: SignalClient,
    ) -> Result<Self, RtcError> {
        config.validate()?;
        let stack = Stack::new(&config).await?;
        let (events, reports) = mpsc::unbounded_channel();
        let id = signal.id().to_owned();
        let offers = OfferRate::new(config.offers_per_minute);
        let window_pool = config.window_pool;
        let ctx = Arc::new(Ctx {
            config,
            policy,
            source,
            stats: Arc::new(RtcStats {
                signal_events_shed: signal.shed_counter(),
                ..RtcStats::default()
            }),
            signal,
            events,
            epoch: std::time::Instant::now(),
            limits: Default::default(),
            windows: WindowPool::new(window_pool),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                stack,
                id,
                slots: Mutex::default(),
                generation: AtomicU64::new(0),
                signal_state: watch::Sender::new(SignalState::Disconnected),
                reports: Mutex::new(Some(reports)),
                offers,
                remade: Mutex::default(),
            }),
        })
    }

    /// Handles signalling events until the stream ends, then closes every peer. Call once.
    pub async fn run(&self, mut events: mpsc::Receiver<SignalEvent>) {
        let reports = lock(&self.inner.reports).take();
        let Some(mut reports) = reports else {
            warn!("peer manager is already running");
            return;
        };
        let mut sweep = tokio::time::interval(self.inner.ctx.config.sweep_interval);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.inner.on_signal(event).await,
                    None => break,
                },
                Some(PeerEvent::Dead { id, generation, reason }) = reports.recv() => {
                    self.inner.remove_if(&id, generation, reason);
                }
                _ = sweep.tick() => self.inner.sweep().await,
            }
        }
        self.shutdown().await;
    }

    /// Closes every peer connection (waiting up to 5 s).
    pub async fn shutdown(&self) {
        let slots: Vec<Slot<S>> = self.inner.slots().drain().map(|(_, s)| s).collect();
        self.inner.update_gauge();
        let closing = slots.iter().map(|s| s.peer.close());
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, futures_util::future::join_all(closing))
            .await
            .is_err()
        {
            warn!("peer connections did not close in time");
        }
    }

    /// This node's peer id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The counters (for `/metrics`).
    pub fn stats(&self) -> &RtcStats {
        &self.inner.ctx.stats
    }

    /// The signalling state; changes can be awaited.
    pub fn signal_state(&self) -> watch::Receiver<SignalState> {
        self.inner.signal_state.subscribe()
    }

    /// Every peer, channel and send queue, and the counters (for `/peers`).
    pub fn snapshot(&self) -> RtcSnapshot {
        let peers: Vec<Arc<Peer<S>>> = self
            .inner
            .slots()
            .values()
            .map(|s| s.peer.clone())
            .collect();
        let mut peers: Vec<_> = peers.iter().map(|p| p.snapshot()).collect();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        RtcSnapshot {
            id: self.inner.id.clone(),
            signalling: *self.inner.signal_state.borrow(),
            peers,
            stats: self.inner.ctx.stats.snapshot(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: SegmentSource> Inner<S> {
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot<S>>> {
        lock(&self.slots)
    }

    fn peer(&self, id: &str) -> Option<Arc<Peer<S>>> {
        self.slots().get(id).map(|s| s.peer.clone())
    }

    async fn on_signal(self: &Arc<Self>, event: SignalEvent) {
        match event {
            SignalEvent::Connected => {
                self.signal_state.send_replace(SignalState::Connected);
            }
            SignalEvent::Disconnected => {
                self.signal_state.send_replace(SignalState::Disconnected);
            }
            SignalEvent::Init { ids } => {
                self.signal_state.send_replace(SignalState::Ready);
                info!(online = ids.len(), "signalling ready");
                // They will offer to us; a connection we still hold must prove it is alive.
                for id in ids.iter().filter(|id| **id != self.id) {
                    if let Some(peer) = self.peer(id) {
                        self.spawn_probe(peer, false);
                    }
                }
            }
            SignalEvent::Online { id } if id != self.id => match self.peer(&id) {
                Some(peer) if peer.is_connected() => self.spawn_probe(peer, true),
                _ => self.open(id, Role::Offerer, Command::Connect).await,
            },
            SignalEvent::Offer { from, sdp } if from != self.id => {
                if !self.offers.allow(&from) {
                    bump(&self.ctx.stats.offers_limited);
                    self.ctx.limits.note("offers per minute", &from);
                    return;
                }
                match self.peer(&from) {
                    Some(peer) if peer.is_connected() => self.spawn_offer_probe(peer, sdp),
                    _ => self.open(from, Role::Answerer, Command::Offer(sdp)).await,
                }
            }
            SignalEvent::Answer { from, sdp } => self.forward(&from, Command::Answer(sdp)),
            SignalEvent::Candidate { from, candidate } => {
                self.forward(&from, Command::Candidate(candidate));
            }
            SignalEvent::Online { .. } | SignalEvent::Offer { .. } => {
                debug!("signalling message about ourselves ignored");
            }
        }
    }

    /// Hands a command to the peer's task (never waits).
    fn forward(&self, id: &str, command: Command) {
        let slots = self.slots();
        let Some(slot) = slots.get(id) else {
            debug!(peer = %short(id), ?command, "signalling for an unknown peer ignored");
            return;
        };
        if let Err(err) = slot.commands.try_send(command) {
            warn!(peer = %short(id), %err, "peer command queue full; signalling dropped");
        }
    }

    /// Whether a peer `id` may be created: there is room, or it replaces itself, or an idle
    /// peer gives way (and is dropped here): one that never connected first, then the one
    /// idle longest.
    fn admit(&self, id: &str) -> bool {
        let victim = {
            let slots = self.slots();
            if slots.contains_key(id) || slots.len() < self.ctx.config.max_peers {
                return true;
            }
            let idle_after =
                u64::try_from(self.ctx.config.idle_after.as_millis()).unwrap_or(u64::MAX);
            // A peer that never connected serves nobody: it goes before a connected one.
            slots
                .values()
                .map(|s| {
                    let p = &s.peer;
                    (!p.is_connected(), p.idle_ms(), p.id.clone(), p.generation)
                })
                .filter(|(_, idle, ..)| *idle >= idle_after)
                .max_by_key(|(unconnected, idle, ..)| (*unconnected, *idle))
                .map(|(_, idle, id, generation)| (idle, id, generation))
        };
        match victim {
            Some((idle_ms, victim, generation)) => {
                info!(peer = %short(&victim), idle_ms, newcomer = %short(id), "idle peer gives way");
                bump(&self.ctx.stats.peers_evicted);
                self.remove_if(&victim, generation, "gave way to a new peer");
                true
            }
            None => {
                bump(&self.ctx.stats.peers_refused);
                self.ctx.limits.note("peers", id);
                false
            }
        }
    }

    /// An offer for a peer we hold connected: a hijack unless that connection is dead. The
    /// offer is answered only if the existing connection fails a ping probe.
    fn spawn_offer_probe(self: &Arc<Self>, peer: Arc<Peer<S>>, sdp: String) {
        let inner = self.clone();
        tokio::spawn(async move {
            if peer.probe(inner.ctx.config.probe_timeout).await {
                bump(&inner.ctx.stats.offers_refused);
                inner.ctx.limits.note("offer for a live peer", &peer.id);
                return;
            }
            let current = inner
                .slots()
                .get(&peer.id)
                .is_some_and(|s| s.peer.generation == peer.generation);
            if current {
                info!(peer = %short(&peer.id), "connected peer did not answer; taking its new offer");
                inner
                    .open(peer.id.clone(), Role::Answerer, Command::Offer(sdp))
                    .await;
            }
        });
    }

    /// Creates a peer connection for `id` (replacing any earlier one) and hands it `first`.
    async fn open(&self, id: String, role: Role, first: Command) {
        if !self.admit(&id) {
            return;
        }
        let pc = match self.stack.peer_connection().await {
            Ok(pc) => pc,
            Err(err) => {
                warn!(peer = %short(&id), %err, "cannot create a peer connection");
                return;
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let (commands, receiver) = mpsc::channel(self.ctx.config.command_queue);
        // A new queue has room for the first command.
        let _ = commands.try_send(first);
        let peer = Peer::spawn(self.ctx.clone(), id.clone(), generation, role, pc, receiver);
        bump(&self.ctx.stats.peers_created);
        info!(peer = %short(&id), ?role, generation, "peer created");
        let old = self.slots().insert(id, Slot { peer, commands });
        if let Some(old) = old {
            info!(peer = %short(&old.peer.id), generation = old.peer.generation, "peer replaced");
            bump(&self.ctx.stats.peers_dropped);
            old.peer.shutdown();
        }
        self.update_gauge();
    }

    /// Pings a known peer in the background; if it does not answer, drops it and, when
    /// `reconnect`, offers again.
    fn spawn_probe(self: &Arc<Self>, peer: Arc<Peer<S>>, reconnect: bool) {
        let inner = self.clone();
        tokio::spawn(async move {
            if peer.probe(inner.ctx.config.probe_timeout).await {
                debug!(peer = %short(&peer.id), "known peer answered; kept");
                return;
            }
            let current = inner
                .slots()
                .get(&peer.id)
                .is_some_and(|s| s.peer.generation == peer.generation);
            if !current {
                return;
            }
            if reconnect {
                info!(peer = %short(&peer.id), "known peer did not answer; reconnecting");
                inner
                    .open(peer.id.clone(), Role::Offerer, Command::Connect)
                    .await;
            } else {
                inner.remove_if(&peer.id, peer.generation, "no answer to ping");
            }
        });
    }

    /// Drops the peer `id` if it is still the connection `generation`.
    fn remove_if(&self, id: &str, generation: u64, reason: &str) {
        let removed = {
            let mut slots = self.slots();
            match slots.get(id) {
                Some(slot) if slot.peer.generation == generation => slots.remove(id),
                _ => None,
            }
        };
        if let Some(slot) = removed {
            info!(peer = %short(id), generation, reason, "peer dropped");
            bump(&self.ctx.stats.peers_dropped);
            slot.peer.shutdown();
            self.update_gauge();
        }
    }

    /// Drops every peer that is failed, closed, disconnected too long or stuck connecting. A
    /// peer connected without a DataChannel is re-made with a new offer, once.
    async fn sweep(&self) {
        let dead: Vec<(String, u64, &'static str)> = self
            .slots()
            .values()
            .filter_map(|s| {
                s.peer
                    .health()
                    .map(|reason| (s.peer.id.clone(), s.peer.generation, reason))
            })
            .collect();
        for (id, generation, reason) in dead {
            if reason == NO_CHANNEL && self.remake_allowed(&id) {
                info!(peer = %short(&id), generation, "connected without a data channel; re-making");
                bump(&self.ctx.stats.peers_remade);
                self.open(id, Role::Offerer, Command::Connect).await;
            } else {
                self.remove_if(&id, generation, reason);
            }
        }
    }

    /// Whether `id` may be re-made now (and notes it if so).
    fn remake_allowed(&self, id: &str) -> bool {
        let mut remade = lock(&self.remade);
        remade.retain(|_, at| at.elapsed() < REMAKE_EVERY);
        if remade.contains_key(id) {
            return false;
        }
        remade.insert(id.to_owned(), std::time::Instant::now());
        true
    }

    fn update_gauge(&self) {
        let n = self.slots().len() as u64;
        self.ctx.stats.peers.store(n, Ordering::Relaxed);
    }
}
