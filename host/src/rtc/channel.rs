//! One detached DataChannel: its read loop and the protocol decisions (SPEC §4).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::{Instrument, debug, info, warn};
use webrtc::data::data_channel::DataChannel;

use super::queue::{Cancel, Push, SendQueue, seg_name};
use super::stats::{ChannelSnapshot, PathSnapshot, bump};
use super::{Ctx, SegmentSource, sender};
use crate::media::Decision;
use crate::policy::{Message, Request, RequestKind, SegmentRef};

/// A DataChannel being served.
pub(crate) struct Channel {
    /// The remote peer's id: the policy's opaque key of the asker.
    peer: Arc<str>,
    pub(super) label: String,
    pub(super) dc: Arc<DataChannel>,
    queue: Mutex<SendQueue>,
    /// Signalled when a job is queued.
    pub(super) wake: Notify,
    /// Signalled by `on_buffered_amount_low`.
    pub(super) low: Arc<Notify>,
    /// Set once the channel is closed, by either side.
    pub(super) closed: Cancel,
    /// Bounds concurrent `query` lookups.
    lookups: Arc<Semaphore>,
    /// Messages received so far (for ping probes).
    received: watch::Sender<u64>,
    /// The peer's clock of last traffic (shared by its channels).
    activity: Arc<AtomicU64>,
}

impl Channel {
    /// Serves a freshly detached channel: pacing hooks, read loop, sender, then the opening
    /// ping. `peer` only labels the logs.
    pub(crate) fn start<S: SegmentSource>(
        ctx: &Arc<Ctx<S>>,
        peer: &str,
        label: String,
        dc: Arc<DataChannel>,
        activity: Arc<AtomicU64>,
    ) -> Arc<Self> {
        let channel = Arc::new(Self {
            peer: Arc::from(peer),
            label,
            dc,
            queue: Mutex::new(SendQueue::new(ctx.config.max_queue)),
            wake: Notify::new(),
            low: Arc::new(Notify::new()),
            closed: Cancel::default(),
            lookups: Arc::new(Semaphore::new(ctx.config.max_lookups)),
            received: watch::Sender::new(0),
            activity,
        });
        channel.dc.set_buffered_amount_low_threshold(
            ctx.config
                .window
                .saturating_sub(super::DEFAULT_MESSAGE_SIZE),
        );
        let low = channel.low.clone();
        // Runs under the SCTP association lock: only signal.
        channel.dc.on_buffered_amount_low(Box::new(move || {
            low.notify_one();
            Box::pin(async {})
        }));
        ctx.stats.channels.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "dc",
            peer = %short(peer),
            label = %channel.label,
            sid = channel.dc.stream_identifier()
        );
        info!(parent: &span, "data channel open");
        tokio::spawn(sender::run(channel.clone(), ctx.clone()).instrument(span.clone()));
        tokio::spawn(read_loop(channel.clone(), ctx.clone()).instrument(span));
        channel
    }

    /// Whether the channel is still being served.
    pub(crate) fn is_open(&self) -> bool {
        !self.closed.is_cancelled()
    }

    /// Stops serving: cancels everything queued or in flight and closes the stream. Idempotent.
    pub(crate) async fn close<S>(&self, ctx: &Ctx<S>) {
        if !self.closed.cancel() {
            return;
        }
        self.lock_queue().quit_all();
        self.wake.notify_waiters();
        ctx.stats.channels.fetch_sub(1, Ordering::Relaxed);
        if let Err(err) = self.dc.close().await {
            debug!(%err, "data channel close");
        }
        info!("data channel closed");
    }

    /// Sends a text message; `false` if the channel is closed or the send failed.
    pub(crate) async fn send_text(&self, text: String) -> bool {
        if !self.is_open() {
            return false;
        }
        match self.dc.write_data_channel(&Bytes::from(text), true).await {
            Ok(_) => true,
            Err(err) => {
                debug!(%err, "text send failed");
                false
            }
        }
    }

    /// Records traffic on this channel (for the peer's idle time).
    pub(super) fn touch<S>(&self, ctx: &Ctx<S>) {
        self.activity.store(ctx.now_ms(), Ordering::Relaxed);
    }

    /// A receiver of the count of messages received (changes on every message).
    pub(crate) fn received(&self) -> watch::Receiver<u64> {
        self.received.subscribe()
    }

    pub(super) fn lock_queue(&self) -> MutexGuard<'_, SendQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The channel's state for `/peers`.
    pub(crate) fn snapshot(&self) -> ChannelSnapshot {
        let (queued, in_flight) = self.lock_queue().describe();
        ChannelSnapshot {
            label: self.label.clone(),
            id: self.dc.stream_identifier(),
            state: if self.is_open() { "open" } else { "closed" },
            buffered_amount: self.dc.buffered_amount(),
            queued,
            in_flight,
            messages_received: self.dc.messages_received(),
            messages_sent: self.dc.messages_sent(),
            path: {
                let c = self.dc.congestion();
                PathSnapshot {
                    srtt_ms: c.srtt_us as f64 / 1000.0,
                    min_rtt_ms: c.min_rtt_us as f64 / 1000.0,
                    cwnd: c.cwnd,
                    ssthresh: c.ssthresh,
                    in_flight: c.in_flight,
                    delivery_rate: c.delivery_rate,
                    pacing_rate: c.pacing_rate,
                    retransmitted: c.retransmitted,
                    probes: c.probes,
                    timeouts: c.timeouts,
                }
            },
        }
    }

    /// The policy's question about `seg` from this channel's peer.
    pub(super) fn request<S>(&self, ctx: &Ctx<S>, kind: RequestKind, seg: SegmentRef) -> Request {
        Request {
            kind,
            segment: seg,
            peer: self.peer.to_string(),
            now_ms: ctx.now_ms(),
        }
    }

    /// Acts on one decoded message. Never waits on the origin.
    async fn handle<S: SegmentSource>(self: &Arc<Self>, ctx: &Arc<Ctx<S>>, message: Message) {
        let stats = &ctx.stats;
        match message {
            Message::Ping(pong) => {
                self.send_text(pong).await;
            }
            Message::Pong => {}
            Message::Query(seg) => {
                bump(&stats.queries);
                self.spawn_query(ctx, seg);
            }
            Message::Resolve(seg) => {
                bump(&stats.resolves);
                let name = seg_name(&seg);
                match self.lock_queue().push(seg) {
                    Push::Queued => self.wake.notify_one(),
                    Push::Duplicate => debug!(seg = %name, "resolve already queued"),
                    Push::Full => {
                        bump(&stats.overload_dropped);
                        debug!(seg = %name, "send queue full; resolve ignored");
                        ctx.limits.note("queued resolves", &self.peer);
                    }
                }
            }
            Message::Quit(seg) => {
                bump(&stats.quits);
                let matched = self.lock_queue().quit(&seg);
                debug!(seg = %seg_name(&seg), matched, "quit");
            }
            Message::QuitAll => {
                bump(&stats.quits);
                let n = self.lock_queue().quit_all();
                debug!(jobs = n, "quit all");
            }
            Message::Ignored(event) => {
                bump(&stats.ignored_messages);
                debug!(%event, "event ignored");
            }
            Message::Invalid(reason) => {
                bump(&stats.invalid_messages);
                debug!(%reason, "invalid message ignored");
            }
        }
    }

    /// Answers a query in its own task: the policy's reply (`found`), or nothing.
    fn spawn_query<S: SegmentSource>(self: &Arc<Self>, ctx: &Arc<Ctx<S>>, seg: SegmentRef) {
        let Ok(permit) = self.lookups.clone().try_acquire_owned() else {
            bump(&ctx.stats.overload_dropped);
            debug!(seg = %seg_name(&seg), "too many lookups in flight; query ignored");
            return;
        };
        let (channel, ctx) = (self.clone(), ctx.clone());
        let name = seg_name(&seg);
        let request = self.request(&ctx, RequestKind::Query, seg);
        let task = async move {
            let _permit = permit;
            let decision = tokio::select! {
                d = ctx.source.decide(&request) => d,
                () = channel.closed.cancelled() => return,
            };
            match decision {
                Decision::Reply(text) => {
                    if channel.send_text(text).await {
                        bump(&ctx.stats.found_replies);
                    }
                }
                Decision::Silent(why) => debug!(seg = %name, %why, "query: silent"),
                Decision::Send(_) => warn!(seg = %name, "query: a send plan, ignored"),
            }
        };
        tokio::spawn(task.in_current_span());
    }
}

/// Reads until the channel closes. Detached channels never fire `on_close`, so closure is
/// detected here: an `Ok(0)` is EOF only if no message was counted (an empty message is a
/// message), and a read error ends the channel.
async fn read_loop<S: SegmentSource>(channel: Arc<Channel>, ctx: Arc<Ctx<S>>) {
    channel.send_text(ctx.policy.ping_text()).await;
    let mut buf = vec![0u8; ctx.config.read_buffer];
    loop {
        let before = channel.dc.messages_received();
        let read = tokio::select! {
            read = channel.dc.read_data_channel(&mut buf) => read,
            () = channel.closed.cancelled() => break,
        };
        let (n, is_text) = match read {
            Ok((0, _)) if channel.dc.messages_received() == before => {
                debug!("data channel EOF");
                break;
            }
            Ok(read) => read,
            Err(err) => {
                debug!(%err, "data channel read failed");
                break;
            }
        };
        channel.received.send_modify(|count| *count += 1);
        channel.touch(&ctx);
        let data = buf.get(..n).unwrap_or_default();
        let message = if !is_text {
            Message::Invalid(format!("binary message of {n} bytes"))
        } else {
            match std::str::from_utf8(data) {
                Ok(text) => match ctx.policy.decode(text).await {
                    Ok(message) => message,
                    Err(err) => Message::Invalid(format!("policy: {err}")),
                },
                Err(_) => Message::Invalid(format!("text message of {n} bytes is not UTF-8")),
            }
        };
        channel.handle(&ctx, message).await;
    }
    channel.close(&ctx).await;
}

/// The first 8 characters of a peer id, for logs.
pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
