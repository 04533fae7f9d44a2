//! The per-channel sender: one segment at a time, paced by the channel's buffered amount.
//!
//! When a job starts, the policy decides it (one guest call when info and table are cached):
//! the byte range and every chunk header. The sender fetches exactly those bytes and sends
//! the chunks as planned, so a policy swapped in meanwhile changes the next segment, never
//! one half sent.
//!
//! `send()` on a webrtc-rs channel never blocks and queues without bound, so the sender keeps
//! at most its window of bytes queued ([`window`](super::window): a floor, grown with the
//! path's bandwidth-delay product): it sends a chunk while `buffered + chunk <= window` (or the
//! buffer is empty) and otherwise waits for the edge-triggered buffered-amount-low event, whose
//! threshold is set to `window - chunk` before each wait, so the buffer crosses it exactly when
//! the next chunk fits.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tracing::{Instrument, debug, warn};

use super::channel::Channel;
use super::queue::{Job, seg_name};
use super::stats::bump;
use super::window::{Window, target};
use super::{Ctx, SegmentSource};
use crate::media::Decision;
use crate::policy::{RequestKind, SendPlan};

/// How a job ended.
#[derive(Debug)]
enum Outcome {
    /// Every chunk was handed to the channel.
    Sent { chunks: usize },
    /// The policy said no: stay silent.
    Skipped(String),
    /// The policy answered with a text instead of bytes (sent).
    Replied,
    /// `quit` or `quit-all`.
    Cancelled,
    /// The channel closed, or a write failed (which closes it).
    Closed,
    /// The segment cannot be sent.
    Failed(String),
}

/// Works through the channel's queue until the channel closes.
pub(crate) async fn run<S: SegmentSource>(channel: Arc<Channel>, ctx: Arc<Ctx<S>>) {
    while let Some(job) = next_job(&channel).await {
        let name = seg_name(&job.seg);
        let span = tracing::debug_span!("send", seg = %name);
        let outcome = send(&channel, &ctx, &job).instrument(span).await;
        channel.lock_queue().finish(&job);
        let stats = &ctx.stats;
        match outcome {
            Outcome::Sent { chunks } => {
                bump(&stats.segments_sent);
                debug!(seg = %name, chunks, "segment sent");
            }
            Outcome::Skipped(why) => debug!(seg = %name, %why, "segment not served"),
            Outcome::Replied => debug!(seg = %name, "resolve answered with a text"),
            Outcome::Cancelled => {
                bump(&stats.segments_cancelled);
                debug!(seg = %name, "segment cancelled");
            }
            Outcome::Closed => {
                bump(&stats.segments_cancelled);
                debug!(seg = %name, "channel closed during send");
                channel.close(&ctx).await;
                break;
            }
            Outcome::Failed(reason) => {
                bump(&stats.segments_failed);
                warn!(seg = %name, %reason, "segment send failed");
            }
        }
    }
}

/// The next job, or `None` once the channel is closed.
async fn next_job(channel: &Channel) -> Option<Job> {
    loop {
        let mut woken = pin!(channel.wake.notified());
        woken.as_mut().enable();
        if channel.closed.is_cancelled() {
            return None;
        }
        if let Some(job) = channel.lock_queue().start_next() {
            return Some(job);
        }
        tokio::select! {
            () = woken => {}
            () = channel.closed.cancelled() => return None,
        }
    }
}

/// Runs `fut` unless the job is cancelled or the channel closes first.
async fn unless_stopped<T>(
    channel: &Channel,
    job: &Job,
    fut: impl Future<Output = T>,
) -> Result<T, Outcome> {
    tokio::select! {
        biased;
        () = job.cancel.cancelled() => Err(Outcome::Cancelled),
        () = channel.closed.cancelled() => Err(Outcome::Closed),
        out = fut => Ok(out),
    }
}

async fn send<S: SegmentSource>(channel: &Channel, ctx: &Ctx<S>, job: &Job) -> Outcome {
    match try_send(channel, ctx, job).await {
        Ok(chunks) => Outcome::Sent { chunks },
        Err(outcome) => outcome,
    }
}

async fn try_send<S: SegmentSource>(
    channel: &Channel,
    ctx: &Ctx<S>,
    job: &Job,
) -> Result<usize, Outcome> {
    let seg = &job.seg;
    let request = channel.request(ctx, RequestKind::Resolve, seg.clone());
    let plan = match unless_stopped(channel, job, ctx.source.decide(&request)).await? {
        Decision::Send(plan) => plan,
        Decision::Silent(why) => return Err(Outcome::Skipped(why)),
        Decision::Reply(text) => {
            return if channel.send_text(text).await {
                Err(Outcome::Replied)
            } else {
                Err(Outcome::Closed)
            };
        }
    };
    let bytes = unless_stopped(channel, job, ctx.source.fetch(seg, plan.range))
        .await?
        .map_err(|err| Outcome::Failed(format!("fetch: {err}")))?;
    if bytes.len() as u64 != plan.range.len() {
        return Err(Outcome::Failed(format!(
            "fetched {} bytes for a range of {}",
            bytes.len(),
            plan.range.len()
        )));
    }
    // The plan was checked by the policy runtime: one header per chunk, messages bounded.
    let payload = usize::try_from(plan.payload_size)
        .unwrap_or(usize::MAX)
        .max(1);
    let count = bytes.len().div_ceil(payload);
    let mut window = Window::new(ctx.config.window, ctx.config.window_max);
    let sent = send_chunks(channel, ctx, job, &plan, &bytes, &mut window, count).await;
    window.release();
    sent.map(|()| count)
}

#[allow(clippy::too_many_arguments)]
async fn send_chunks<S: SegmentSource>(
    channel: &Channel,
    ctx: &Ctx<S>,
    job: &Job,
    plan: &SendPlan,
    bytes: &[u8],
    window: &mut Window,
    count: usize,
) -> Result<(), Outcome> {
    let payload = usize::try_from(plan.payload_size)
        .unwrap_or(usize::MAX)
        .max(1);
    let header = usize::try_from(plan.header_size).unwrap_or(usize::MAX);
    let stats = &ctx.stats;
    for i in 0..count {
        let start = i.saturating_mul(payload);
        let body = bytes.get(start..start.saturating_add(payload).min(bytes.len()));
        let head = plan
            .headers
            .get(i.saturating_mul(header)..(i + 1).saturating_mul(header));
        let (Some(body), Some(head)) = (body, head) else {
            return Err(Outcome::Failed(format!("chunk {i} outside the plan")));
        };
        let size = head.len() + body.len();
        wait_for_room(channel, ctx, job, window, size).await?;
        let mut message = BytesMut::with_capacity(size);
        message.extend_from_slice(head);
        message.extend_from_slice(body);
        if let Err(err) = channel
            .dc
            .write_data_channel(&message.freeze(), false)
            .await
        {
            debug!(%err, "chunk write failed");
            return Err(Outcome::Closed);
        }
        bump(&stats.chunks_sent);
        stats.bytes_sent.fetch_add(size as u64, Ordering::Relaxed);
        channel.touch(ctx);
    }
    Ok(())
}

/// Waits until a message of `size` bytes fits in the window, the job is cancelled, the channel
/// closes or nothing drains for `stall_timeout`.
async fn wait_for_room<S>(
    channel: &Channel,
    ctx: &Ctx<S>,
    job: &Job,
    window: &mut Window,
    size: usize,
) -> Result<(), Outcome> {
    loop {
        // Register before checking, so a low event between the check and the wait is kept.
        let mut low = pin!(channel.low.notified());
        low.as_mut().enable();
        if job.cancel.is_cancelled() {
            return Err(Outcome::Cancelled);
        }
        if channel.closed.is_cancelled() {
            return Err(Outcome::Closed);
        }
        let want = target(&channel.dc.congestion(), size);
        let window = window.resize(&ctx.windows, want, channel.dc.buffered_amount());
        // The threshold is set before the buffered amount is read: a drain below it after the
        // read crosses it and fires the event; one before the read is seen by the read.
        channel
            .dc
            .set_buffered_amount_low_threshold(window.saturating_sub(size));
        let buffered = channel.dc.buffered_amount();
        if buffered == 0 || buffered.saturating_add(size) <= window {
            return Ok(());
        }
        let drained =
            tokio::time::timeout(ctx.config.stall_timeout, unless_stopped(channel, job, low)).await;
        match drained {
            Ok(result) => result?,
            Err(_) => {
                return Err(Outcome::Failed(format!(
                    "stalled: {buffered} bytes buffered for {:?}",
                    ctx.config.stall_timeout
                )));
            }
        }
    }
}
