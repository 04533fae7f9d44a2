//! A signalling server compatible with `suconghou/signalserver`.
//!
//! Behaviour (the original's, unless noted):
//! - Accepts WebSocket upgrades whose path ends in `uid/{id}` with a valid 36-character
//!   [peer id](super::is_valid_peer_id). The original accepts the upgrade and then terminates
//!   the socket; we reject in the handshake with HTTP 404. The query string is ignored (the
//!   original rejects any).
//! - On connect: the newcomer gets `{"event":"init","ids":[…]}` (ids online, other than its
//!   own, in join order, de-duplicated), then every connection with another id gets
//!   `{"event":"online","id":…}`. There is no "offline" event.
//! - Any text or binary frame that is a JSON object with a non-empty string `to` is relayed
//!   (same frame type) to every connection with that id, the sender included, with `from` set
//!   to the sender's own id: a client cannot speak for another. (The original relays the bytes
//!   verbatim, so anyone could write any `from`.) Anything else is logged and ignored.
//! - One live socket per id. A second socket for an id is accepted only if the first does not
//!   answer a ping within [`ServerConfig::probe_timeout`] (it is then dropped); otherwise the
//!   newcomer is closed with 1008 "id in use". (The original keeps every duplicate, so anyone
//!   could listen in on an id's signalling; kicking the older one instead would make two tabs
//!   that share a session id kick each other forever.)
//! - Heartbeat: a WebSocket ping every [`ServerConfig::ping_interval`]; a connection from which
//!   nothing (pong or any other frame) arrived since the previous ping is dropped, so a dead
//!   peer goes within two intervals. The original uses 30 s and counts only pongs.
//! - Each connection has a bounded outgoing queue ([`ServerConfig::queue_capacity`] messages,
//!   each at most [`ServerConfig::max_message_size`] bytes). A message for a connection whose
//!   queue is full is dropped (counted, logged at most once per 10 s) rather than buffered
//!   without bound as the original does. The connection stays: a burst aimed at one peer (an
//!   offer flood) must not get that peer thrown out of the room. A reader that is really stuck
//!   is dropped by the heartbeat (no pong) or by a write that makes no progress for a ping
//!   interval.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, info, warn};

use super::{Message, PEER_ID_LEN, SignalError, is_valid_peer_id};

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long [`serve`] waits for connections to close after shutdown before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors), so it is not a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Tunables of the signalling server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Interval between WebSocket pings; a connection silent for a whole interval after a ping
    /// is dropped. Default 30 s (the original's).
    pub ping_interval: Duration,
    /// Messages queued per connection before it is dropped as too slow. Default 256.
    pub queue_capacity: usize,
    /// Largest incoming message (and frame) in bytes. Default 256 KiB.
    pub max_message_size: usize,
    /// Time allowed for the WebSocket handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// How long the socket already holding an id has to answer a ping before a newcomer with
    /// the same id replaces it. Default 3 s.
    pub probe_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            queue_capacity: 256,
            max_message_size: 256 * 1024,
            handshake_timeout: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(3),
        }
    }
}

/// Runs the signalling server with [`ServerConfig::default`] until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SignalError> {
    serve_with(listener, ServerConfig::default(), shutdown).await
}

/// Runs the signalling server until `shutdown` completes.
///
/// On shutdown it stops accepting, closes every connection (with a close frame), waits up to
/// 2 s for them and aborts the rest. Dropping the future instead aborts every connection at
/// once without close frames. Failed `accept`s are logged and retried.
pub async fn serve_with(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SignalError> {
    let shared = Shared::default();
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "signalling server listening");
    }
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    tasks.spawn(handle_connection(stream, addr, shared.clone(), config));
                }
                Err(err) => {
                    warn!(%err, "signalling accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next() => {}
        }
    }
    drop(listener);
    info!("signalling server shutting down");
    shared.lock().close_all();
    let drained = timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(left = tasks.len(), "aborting signalling connections");
    }
    Ok(())
}

/// The registry shared by all connection tasks.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Registry>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Connections online, keyed by a sequence number (so iteration is in join order).
///
/// Removing an entry drops its `kick` sender, which makes the connection task close.
#[derive(Default)]
struct Registry {
    next_seq: u64,
    closed: bool,
    conns: BTreeMap<u64, Conn>,
    /// Messages dropped at a full queue since the last log line, and when that was.
    shed: u64,
    shed_logged: Option<Instant>,
}

/// At most one log line per this long about messages dropped at full queues.
const SHED_LOG_EVERY: Duration = Duration::from_secs(10);

struct Conn {
    id: Arc<str>,
    tx: mpsc::Sender<WsMessage>,
    _kick: oneshot::Sender<()>,
    /// Frames received from it so far (a probe watches this move).
    heard: Arc<AtomicU64>,
    /// Asks its task to ping now.
    probe: mpsc::Sender<()>,
}

/// How a newcomer's connection task reaches the one already holding its id.
#[derive(Clone)]
struct Holder {
    seq: u64,
    heard: Arc<AtomicU64>,
    probe: mpsc::Sender<()>,
}

impl Registry {
    /// Registers a newcomer: queues `init` for it and `online` for everyone with another id.
    /// `None` when the server is shutting down.
    fn join(&mut self, id: &Arc<str>, link: Link) -> Option<u64> {
        let Link {
            tx,
            kick,
            heard,
            probe,
        } = link;
        if self.closed {
            return None;
        }
        let mut seen = HashSet::new();
        let ids = self
            .conns
            .values()
            .filter(|c| c.id != *id && seen.insert(c.id.clone()))
            .map(|c| c.id.to_string())
            .collect();
        let init = Message::Init { ids }.to_json().ok()?;
        let online = Message::Online { id: id.to_string() }.to_json().ok()?;
        // The queue is new and has room for at least one message.
        tx.try_send(WsMessage::text(init)).ok()?;
        self.deliver(|c| c.id != *id, &WsMessage::text(online));
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = id.clone();
        self.conns.insert(
            seq,
            Conn {
                id,
                tx,
                _kick: kick,
                heard,
                probe,
            },
        );
        Some(seq)
    }

    /// The connections holding `id`.
    fn holders(&self, id: &str) -> Vec<Holder> {
        self.conns
            .iter()
            .filter(|(_, c)| *c.id == *id)
            .map(|(seq, c)| Holder {
                seq: *seq,
                heard: c.heard.clone(),
                probe: c.probe.clone(),
            })
            .collect()
    }

    /// Queues `msg` for every connection matching `to`; a connection whose queue is full
    /// does not get it. Returns how many got it.
    fn deliver(&mut self, to: impl Fn(&Conn) -> bool, msg: &WsMessage) -> usize {
        let mut delivered = 0;
        let mut full: Option<Arc<str>> = None;
        let mut shed = 0;
        for conn in self.conns.values().filter(|c| to(c)) {
            match conn.tx.try_send(msg.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    shed += 1;
                    full.get_or_insert_with(|| conn.id.clone());
                }
                // The task is ending and will remove itself.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if let Some(peer) = full {
            self.note_shed(&peer, shed);
        }
        delivered
    }

    /// Counts messages dropped at a full queue; logs at most once per [`SHED_LOG_EVERY`].
    fn note_shed(&mut self, peer: &str, n: u64) {
        self.shed += n;
        let now = Instant::now();
        if self
            .shed_logged
            .is_some_and(|t| now.duration_since(t) < SHED_LOG_EVERY)
        {
            return;
        }
        warn!(
            %peer,
            dropped = self.shed,
            "signalling queue full; messages dropped (the connection stays)"
        );
        self.shed = 0;
        self.shed_logged = Some(now);
    }

    fn leave(&mut self, seq: u64) {
        self.conns.remove(&seq);
    }

    fn close_all(&mut self) {
        self.closed = true;
        self.conns.clear();
    }
}

/// The peer id in a request path ending in `uid/{id}`.
fn peer_id_from_path(path: &str) -> Option<&str> {
    let split = path.len().checked_sub(PEER_ID_LEN)?;
    let id = path.get(split..)?;
    let prefix = path.get(..split)?;
    (prefix.ends_with("uid/") && is_valid_peer_id(id)).then_some(id)
}

fn not_found() -> ErrorResponse {
    let mut response = ErrorResponse::new(Some("expected /uid/{36-char id}".to_owned()));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

async fn handle_connection(
    stream: TcpStream,
    addr: SocketAddr,
    shared: Shared,
    config: ServerConfig,
) {
    let mut id = None;
    #[allow(clippy::result_large_err)] // the error type is tungstenite's
    let check_path = |request: &Request, response: Response| {
        let found = peer_id_from_path(request.uri().path()).ok_or_else(not_found)?;
        id = Some(Arc::<str>::from(found));
        Ok(response)
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(ws_config));
    let mut ws = match timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => return debug!(%addr, %err, "signalling handshake rejected"),
        Err(_) => return debug!(%addr, "signalling handshake timed out"),
    };
    let Some(id) = id else { return };

    // One live socket per id: a holder that still answers keeps it.
    let holders = shared.lock().holders(&id);
    if !holders.is_empty() {
        if any_answers(&holders, config.probe_timeout).await {
            info!(peer = %id, %addr, "signalling socket refused: the id is in use");
            let frame = CloseFrame {
                code: CloseCode::Policy,
                reason: "id in use".into(),
            };
            let _ = timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
            return;
        }
        let mut registry = shared.lock();
        for h in &holders {
            registry.leave(h.seq);
        }
        info!(peer = %id, %addr, "signalling socket replaces one that did not answer");
    }
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let (kick_tx, kick_rx) = oneshot::channel();
    let (probe_tx, probe_rx) = mpsc::channel(1);
    let heard = Arc::new(AtomicU64::new(0));
    let link = Link {
        tx,
        kick: kick_tx,
        heard: heard.clone(),
        probe: probe_tx,
    };
    let Some(seq) = shared.lock().join(&id, link) else {
        let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
        return;
    };
    info!(peer = %id, %addr, "signalling peer connected");
    let wires = Wires {
        rx,
        kick: kick_rx,
        probe: probe_rx,
        heard,
    };
    let reason = run_connection(&mut ws, &id, wires, &shared, config).await;
    shared.lock().leave(seq);
    info!(peer = %id, %addr, reason, "signalling peer disconnected");
    let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
}

/// The registry's ends of a connection.
struct Link {
    tx: mpsc::Sender<WsMessage>,
    kick: oneshot::Sender<()>,
    heard: Arc<AtomicU64>,
    probe: mpsc::Sender<()>,
}

/// The connection task's ends.
struct Wires {
    rx: mpsc::Receiver<WsMessage>,
    kick: oneshot::Receiver<()>,
    probe: mpsc::Receiver<()>,
    heard: Arc<AtomicU64>,
}

/// Pings every holder at once; true if any of them sends a frame within `limit`.
async fn any_answers(holders: &[Holder], limit: Duration) -> bool {
    let before: Vec<u64> = holders
        .iter()
        .map(|h| h.heard.load(Ordering::SeqCst))
        .collect();
    for h in holders {
        // Full means a ping is already pending: as good.
        let _ = h.probe.try_send(());
    }
    let deadline = Instant::now() + limit;
    loop {
        let moved = holders
            .iter()
            .zip(&before)
            .any(|(h, b)| h.heard.load(Ordering::SeqCst) > *b);
        if moved {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pumps one connection until it ends; returns why.
async fn run_connection(
    ws: &mut WebSocketStream<TcpStream>,
    id: &str,
    wires: Wires,
    shared: &Shared,
    config: ServerConfig,
) -> &'static str {
    let Wires {
        mut rx,
        mut kick,
        mut probe,
        heard,
    } = wires;
    // A zero period would panic in `interval_at` (and make a busy loop).
    let period = config.ping_interval.max(Duration::from_millis(1));
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut alive = true;
    loop {
        let outgoing = tokio::select! {
            biased;
            _ = &mut kick => return "removed (replaced or shutdown)",
            frame = ws.next() => match frame {
                Some(Ok(msg @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                    alive = true;
                    heard.fetch_add(1, Ordering::SeqCst);
                    relay(shared, id, msg);
                    continue;
                }
                Some(Ok(WsMessage::Close(_))) | None => return "closed by peer",
                Some(Ok(_)) => {
                    alive = true;
                    heard.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                Some(Err(err)) => {
                    debug!(peer = %id, %err, "signalling read failed");
                    return "read error";
                }
            },
            queued = rx.recv() => match queued {
                Some(msg) => msg,
                None => return "queue closed",
            },
            Some(()) = probe.recv() => WsMessage::Ping(Default::default()),
            _ = ping.tick() => {
                if !alive {
                    return "no pong";
                }
                alive = false;
                WsMessage::Ping(Default::default())
            }
        };
        tokio::select! {
            biased;
            _ = &mut kick => return "removed (replaced or shutdown)",
            sent = timeout(period, ws.send(outgoing)) => match sent {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    debug!(peer = %id, %err, "signalling write failed");
                    return "write error";
                }
                Err(_) => return "write timed out",
            },
        }
    }
}

/// Relays a frame to the connections named by its `to`, as the same frame type, with `from`
/// set to the sender's id (whatever the sender wrote there).
fn relay(shared: &Shared, from: &str, msg: WsMessage) {
    let binary = matches!(msg, WsMessage::Binary(_));
    let mut object = match serde_json::from_slice::<serde_json::Value>(msg.into_data().as_ref()) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(_) => return debug!(peer = %from, "signalling message that is not an object ignored"),
        Err(err) => return debug!(peer = %from, %err, "invalid signalling message ignored"),
    };
    let to = match object.get("to").and_then(serde_json::Value::as_str) {
        Some(to) if !to.is_empty() => to.to_owned(),
        _ => return debug!(peer = %from, "signalling message without `to` ignored"),
    };
    object.insert("from".into(), serde_json::Value::String(from.to_owned()));
    let text = serde_json::Value::Object(object).to_string();
    let out = if binary {
        WsMessage::binary(text.into_bytes())
    } else {
        WsMessage::text(text)
    };
    let delivered = shared.lock().deliver(|c| *c.id == *to, &out);
    debug!(peer = %from, %to, delivered, "signalling message relayed");
}
