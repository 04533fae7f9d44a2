//! The node's signalling client.
//!
//! [`SignalClient::spawn`] starts a task that dials `WS_ADDR + ID`, turns incoming frames into
//! [`SignalEvent`]s and sends what the [`SignalClient`] handle queues. It:
//! - sends a WebSocket ping every [`ClientConfig::ping_interval`] and treats a pong missing for
//!   [`ClientConfig::pong_timeout`], a read or write error, or a close as a drop;
//! - reconnects after a drop (or a failed dial) with exponential backoff from
//!   [`ClientConfig::backoff_min`] doubling to [`ClientConfig::backoff_max`], plus up to 50 %
//!   random jitter; the backoff resets once a connection has lasted
//!   [`ClientConfig::stable_after`];
//! - emits [`SignalEvent::Connected`] after every (re)connect (so the peer manager can
//!   re-announce) and [`SignalEvent::Disconnected`] when that connection ends;
//! - ignores messages `from` its own id, `online`/`init` entries naming itself, messages that do
//!   not parse and ids that are not [valid](super::is_valid_peer_id), with a log line;
//! - **drops** messages sent while it is not connected (with a debug log): signalling is redone
//!   after the reconnect, and a stale offer would only confuse the other side;
//! - reads the socket as fast as it comes: when the consumer of the events is behind (its
//!   queue of [`ClientConfig::queue_capacity`] is full, say under an offer flood) the new
//!   event is **shed**, counted ([`SignalClient::shed_counter`]) and logged sparsely, instead
//!   of the socket going unread, which a server answers by dropping messages or, once pings
//!   go unanswered, this node;
//! - stops when every handle is dropped, when [`SignalClient::shutdown`] is called, or when the
//!   event receiver is dropped; the event stream then ends.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use super::{
    IceCandidate, Message, Relay, SdpType, SessionDescription, SignalError, is_valid_peer_id,
    validate_peer_id,
};

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Smallest timer period accepted (a zero period would make a busy loop).
const MIN_PERIOD: Duration = Duration::from_millis(1);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Tunables of the signalling client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Signalling address prefix, e.g. `wss://ws.example/uid/` (`WS_ADDR`).
    pub ws_addr: String,
    /// This node's 36-character peer id (`ID`).
    pub id: String,
    /// Interval between WebSocket pings. Default 60 s.
    pub ping_interval: Duration,
    /// How long a pong may take before the connection counts as dropped. Default 20 s.
    pub pong_timeout: Duration,
    /// Limit on one dial (TCP, TLS and WebSocket handshake). Default 10 s.
    pub connect_timeout: Duration,
    /// First reconnect delay. Default 250 ms.
    pub backoff_min: Duration,
    /// Largest reconnect delay (before jitter). Default 30 s.
    pub backoff_max: Duration,
    /// A connection that lasted this long resets the backoff. Default 30 s.
    pub stable_after: Duration,
    /// Capacity of the outgoing queue and of the event channel. Default 256.
    pub queue_capacity: usize,
    /// Largest incoming message in bytes; larger ones are dropped unread. Default 64 KiB:
    /// SDP and candidates are a few KiB. The socket itself reads messages up to
    /// [`TRANSPORT_MAX`] (or this, if larger); only a message past that ends the connection
    /// (it is then re-made), so a stranger's big message costs no reconnect.
    pub max_message_size: usize,
}

impl ClientConfig {
    /// The defaults for `WS_ADDR` and `ID`.
    pub fn new(ws_addr: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            ws_addr: ws_addr.into(),
            id: id.into(),
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            queue_capacity: 256,
            max_message_size: 64 << 10,
        }
    }

    /// The URL dialled: `ws_addr + id`.
    pub fn url(&self) -> String {
        format!("{}{}", self.ws_addr, self.id)
    }
}

/// What the signalling client reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalEvent {
    /// A connection is up (after every reconnect too); `Init` follows from the server.
    Connected,
    /// Ids online before us (without our own).
    Init {
        /// The ids, in the server's order.
        ids: Vec<String>,
    },
    /// A peer came online (or reconnected): we should offer to it.
    Online {
        /// Its id.
        id: String,
    },
    /// A peer offers to connect.
    Offer {
        /// The offering peer.
        from: String,
        /// The offer's SDP.
        sdp: String,
    },
    /// A peer answers our offer.
    Answer {
        /// The answering peer.
        from: String,
        /// The answer's SDP.
        sdp: String,
    },
    /// A remote ICE candidate.
    Candidate {
        /// The peer it belongs to.
        from: String,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// The connection went down; a reconnect follows unless the client is stopping.
    Disconnected,
}

impl SignalEvent {
    /// The event's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SignalEvent::Connected => "connected",
            SignalEvent::Init { .. } => "init",
            SignalEvent::Online { .. } => "online",
            SignalEvent::Offer { .. } => "offer",
            SignalEvent::Answer { .. } => "answer",
            SignalEvent::Candidate { .. } => "candidate",
            SignalEvent::Disconnected => "disconnected",
        }
    }
}

/// Handle to the signalling client task: sends messages with `from` filled in.
///
/// Cheap to clone. The task stops when the last clone is dropped or [`Self::shutdown`] is
/// called.
#[derive(Debug, Clone)]
pub struct SignalClient {
    id: Arc<str>,
    outgoing: mpsc::Sender<String>,
    stop: Arc<watch::Sender<bool>>,
    shed: Arc<AtomicU64>,
}

impl SignalClient {
    /// Validates `config` and starts the client task. Must be called inside a Tokio runtime.
    ///
    /// Fails if the id is not a valid peer id or `ws_addr + id` is not a `ws://` / `wss://`
    /// URL.
    pub fn spawn(config: ClientConfig) -> Result<(Self, mpsc::Receiver<SignalEvent>), SignalError> {
        validate_peer_id(&config.id)?;
        let url = config.url();
        let scheme_ok = ["ws://", "wss://"].iter().any(|scheme| {
            url.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if !scheme_ok || url.as_str().into_client_request().is_err() {
            return Err(SignalError::InvalidAddress(url));
        }
        let capacity = config.queue_capacity.max(1);
        let (out_tx, out_rx) = mpsc::channel(capacity);
        let (event_tx, event_rx) = mpsc::channel(capacity);
        let (stop_tx, stop_rx) = watch::channel(false);
        let id: Arc<str> = Arc::from(config.id.as_str());
        let shed = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            timing: Timing::from(&config),
            url,
            max_message_size: config.max_message_size.max(1024),
            junk: Sparse::default(),
            behind: Sparse::default(),
            shed: shed.clone(),
            id: id.clone(),
            outgoing: out_rx,
            events: event_tx,
            stop: stop_rx,
        };
        tokio::spawn(worker.run());
        let handle = Self {
            id,
            outgoing: out_tx,
            stop: Arc::new(stop_tx),
            shed,
        };
        Ok((handle, event_rx))
    }

    /// Counts events shed because their consumer was behind (shared, for `/metrics`).
    pub fn shed_counter(&self) -> Arc<AtomicU64> {
        self.shed.clone()
    }

    /// Our own peer id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queues `{"event":"offer","from":ME,"to":to,"data":{"type":"offer","sdp":sdp}}`.
    pub fn send_offer(&self, to: &str, sdp: impl Into<String>) -> Result<(), SignalError> {
        let data = SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: sdp.into(),
        };
        self.send(Message::Offer(self.relay(to, data)))
    }

    /// Queues `{"event":"answer","from":ME,"to":to,"data":{"type":"answer","sdp":sdp}}`.
    pub fn send_answer(&self, to: &str, sdp: impl Into<String>) -> Result<(), SignalError> {
        let data = SessionDescription {
            sdp_type: SdpType::Answer,
            sdp: sdp.into(),
        };
        self.send(Message::Answer(self.relay(to, data)))
    }

    /// Queues `{"event":"candidate","from":ME,"to":to,"data":candidate}`.
    pub fn send_candidate(&self, to: &str, candidate: IceCandidate) -> Result<(), SignalError> {
        self.send(Message::Candidate(self.relay(to, candidate)))
    }

    /// Queues any message as is (no `from` is filled in). Never blocks: a full queue is
    /// [`SignalError::QueueFull`], a stopped client [`SignalError::Closed`]. A queued message
    /// is dropped if the client is not connected when it comes to send it.
    pub fn send(&self, message: Message) -> Result<(), SignalError> {
        let text = message.to_json()?;
        self.outgoing.try_send(text).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => SignalError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SignalError::Closed,
        })
    }

    /// Stops the client task (closing the connection politely); the event stream then ends.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    fn relay<T>(&self, to: &str, data: T) -> Relay<T> {
        Relay {
            from: self.id.to_string(),
            to: to.to_owned(),
            data,
        }
    }
}

/// The durations the task needs, sanitised.
#[derive(Debug, Clone, Copy)]
struct Timing {
    ping_interval: Duration,
    pong_timeout: Duration,
    connect_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    stable_after: Duration,
}

impl From<&ClientConfig> for Timing {
    fn from(config: &ClientConfig) -> Self {
        let backoff_min = config.backoff_min.max(MIN_PERIOD);
        Self {
            ping_interval: config.ping_interval.max(MIN_PERIOD),
            pong_timeout: config.pong_timeout,
            connect_timeout: config.connect_timeout,
            backoff_min,
            backoff_max: config.backoff_max.max(backoff_min),
            stable_after: config.stable_after,
        }
    }
}

/// The largest message the socket reads at all (see [`ClientConfig::max_message_size`]).
pub const TRANSPORT_MAX: usize = 1 << 20;

/// Ignored signalling messages, logged at most once per [`Sparse::EVERY`] with how many
/// more there were, so that a flood of junk costs no log flood.
#[derive(Debug, Default)]
struct Sparse {
    last: Option<Instant>,
    suppressed: u64,
}

impl Sparse {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, why: impl std::fmt::Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            self.suppressed += 1;
            debug!(%why, "signalling message ignored");
            return;
        }
        warn!(%why, more = self.suppressed, "signalling message ignored");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

struct Worker {
    timing: Timing,
    url: String,
    max_message_size: usize,
    junk: Sparse,
    /// Events shed because the consumer was behind.
    behind: Sparse,
    shed: Arc<AtomicU64>,
    id: Arc<str>,
    outgoing: mpsc::Receiver<String>,
    events: mpsc::Sender<SignalEvent>,
    stop: watch::Receiver<bool>,
}

impl Worker {
    async fn run(mut self) {
        let timing = self.timing;
        let mut backoff = timing.backoff_min;
        loop {
            let url = self.url.clone();
            let max = self.max_message_size.max(TRANSPORT_MAX);
            let dial = async move { timeout(timing.connect_timeout, connect(url, max)).await };
            let Some(dialled) = self.while_offline(dial).await else {
                break;
            };
            match dialled {
                Ok(Ok(ws)) => {
                    let since = Instant::now();
                    info!(url = %self.url, "signalling connected");
                    let flow = match self.emit(SignalEvent::Connected).await {
                        ControlFlow::Continue(()) => self.session(ws).await,
                        ControlFlow::Break(()) => ControlFlow::Break(()),
                    };
                    info!(url = %self.url, "signalling disconnected");
                    if flow.is_break() {
                        let _ = self.events.try_send(SignalEvent::Disconnected);
                        break;
                    }
                    if self.emit(SignalEvent::Disconnected).await.is_break() {
                        break;
                    }
                    if since.elapsed() >= timing.stable_after {
                        backoff = timing.backoff_min;
                    }
                }
                Ok(Err(err)) => warn!(url = %self.url, %err, "signalling connect failed"),
                Err(_) => warn!(url = %self.url, "signalling connect timed out"),
            }
            let delay = with_jitter(backoff);
            backoff = backoff.saturating_mul(2).min(timing.backoff_max);
            debug!(?delay, "signalling reconnect scheduled");
            if self
                .while_offline(tokio::time::sleep(delay))
                .await
                .is_none()
            {
                break;
            }
        }
        debug!("signalling client stopped");
    }

    /// Runs `fut` while not connected: outgoing messages are dropped meanwhile. `None` if the
    /// client is stopping.
    async fn while_offline<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        let mut fut = std::pin::pin!(fut);
        loop {
            tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => return None,
                out = &mut fut => return Some(out),
                msg = self.outgoing.recv() => match msg {
                    Some(_) => debug!("signalling not connected; message dropped"),
                    None => return None,
                },
            }
        }
    }

    /// Delivers an event unless the client is stopping or nobody listens.
    async fn emit(&mut self, event: SignalEvent) -> ControlFlow<()> {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|stop| *stop) => ControlFlow::Break(()),
            sent = self.events.send(event) => match sent {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            },
        }
    }

    /// Hands a message's event to the consumer without waiting: the socket must keep being
    /// read. Sheds it (counted, logged sparsely) when the consumer is behind; `Break` when
    /// nobody listens any more.
    fn offer(&mut self, event: SignalEvent) -> ControlFlow<()> {
        match self.events.try_send(event) {
            Ok(()) => ControlFlow::Continue(()),
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                self.behind.note(format_args!(
                    "the peer manager is behind: {} shed",
                    event.kind()
                ));
                ControlFlow::Continue(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ControlFlow::Break(()),
        }
    }

    /// Pumps one connection. `Break` when the client is stopping, `Continue` to reconnect.
    async fn session(&mut self, mut ws: Socket) -> ControlFlow<()> {
        let Timing {
            ping_interval,
            pong_timeout,
            ..
        } = self.timing;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pong_deadline: Option<Instant> = None;
        let (flow, polite) = loop {
            let step = tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => Step::Stop,
                frame = ws.next() => Step::Frame(frame),
                msg = self.outgoing.recv() => Step::Outgoing(msg),
                _ = ping.tick() => Step::Ping,
                () = sleep_until_some(pong_deadline) => Step::PongMissing,
            };
            let outgoing = match step {
                Step::Stop | Step::Outgoing(None) => break (ControlFlow::Break(()), true),
                Step::Outgoing(Some(text)) => WsMessage::text(text),
                Step::Ping => {
                    pong_deadline.get_or_insert_with(|| Instant::now() + pong_timeout);
                    WsMessage::Ping(Default::default())
                }
                Step::PongMissing => {
                    warn!(?pong_timeout, "signalling pong missing; reconnecting");
                    break (ControlFlow::Continue(()), false);
                }
                Step::Frame(Some(Ok(WsMessage::Text(text)))) => {
                    if text.len() > self.max_message_size {
                        self.junk.note(format_args!(
                            "a message of {} bytes (the limit is {})",
                            text.len(),
                            self.max_message_size
                        ));
                        continue;
                    }
                    if let Some(event) = self.decode(&text)
                        && self.offer(event).is_break()
                    {
                        break (ControlFlow::Break(()), true);
                    }
                    continue;
                }
                Step::Frame(Some(Ok(WsMessage::Pong(_)))) => {
                    pong_deadline = None;
                    continue;
                }
                Step::Frame(Some(Ok(WsMessage::Close(frame)))) => {
                    debug!(?frame, "signalling server closed the connection");
                    break (ControlFlow::Continue(()), true);
                }
                // Binary frames are not part of the protocol; pings are answered by
                // tungstenite itself.
                Step::Frame(Some(Ok(_))) => continue,
                Step::Frame(Some(Err(err))) => {
                    warn!(%err, "signalling read failed");
                    break (ControlFlow::Continue(()), false);
                }
                Step::Frame(None) => break (ControlFlow::Continue(()), false),
            };
            match timeout(pong_timeout, ws.send(outgoing)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    warn!(%err, "signalling write failed");
                    break (ControlFlow::Continue(()), false);
                }
                Err(_) => {
                    warn!("signalling write timed out");
                    break (ControlFlow::Continue(()), false);
                }
            }
        };
        if polite {
            let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
        }
        flow
    }

    /// Turns a text frame into an event, or `None` (logged) for what we ignore.
    fn decode(&mut self, text: &str) -> Option<SignalEvent> {
        let message = match Message::parse(text) {
            Ok(message) => message,
            Err(err) => {
                self.junk.note(err);
                return None;
            }
        };
        match message {
            Message::Init { ids } => {
                let ids = ids.into_iter().filter(|id| self.is_peer(id)).collect();
                Some(SignalEvent::Init { ids })
            }
            Message::Online { id } => self.is_peer(&id).then_some(SignalEvent::Online { id }),
            Message::Offer(Relay { from, data, .. }) => {
                self.is_peer(&from).then_some(SignalEvent::Offer {
                    from,
                    sdp: data.sdp,
                })
            }
            Message::Answer(Relay { from, data, .. }) => {
                self.is_peer(&from).then_some(SignalEvent::Answer {
                    from,
                    sdp: data.sdp,
                })
            }
            Message::Candidate(Relay { from, data, .. }) => {
                self.is_peer(&from).then_some(SignalEvent::Candidate {
                    from,
                    candidate: data,
                })
            }
        }
    }

    /// Whether `id` names another valid peer (not us).
    fn is_peer(&self, id: &str) -> bool {
        if id == &*self.id {
            debug!("signalling message about ourselves ignored");
            false
        } else if !is_valid_peer_id(id) {
            warn!(id, "signalling message with an invalid peer id ignored");
            false
        } else {
            true
        }
    }
}

/// What woke a session up.
enum Step {
    Stop,
    Frame(Option<Result<WsMessage, tungstenite::Error>>),
    Outgoing(Option<String>),
    Ping,
    PongMissing,
}

async fn connect(url: String, max_message_size: usize) -> Result<Socket, SignalError> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size));
    let (ws, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    Ok(ws)
}

/// Completes at `deadline`, never if there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// `delay` plus a random 0–50 % of it.
fn with_jitter(delay: Duration) -> Duration {
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    delay.saturating_add(Duration::from_millis(rand::random_range(0..=millis / 2)))
}
