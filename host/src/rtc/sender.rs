//! The per-channel sender: one segment at a time, paced by the channel's buffered amount.
//!
//! `send()` on a webrtc-rs channel never blocks and queues without bound, so the sender keeps
//! at most [`RtcConfig::window`](super::RtcConfig::window) bytes in flight: it sends a chunk
//! while `buffered + chunk <= window` (or the buffer is empty) and otherwise waits for the
//! edge-triggered buffered-amount-low event, whose threshold is clamped so that the buffer
//! always crosses it on the way down.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tracing::{Instrument, debug, warn};

use super::channel::Channel;
use super::config::MAX_PAYLOAD;
use super::queue::{Job, seg_name};
use super::stats::bump;
use super::{Ctx, SegmentSource};
use crate::policy::HEADER_SIZE;

/// How a job ended.
#[derive(Debug)]
enum Outcome {
    /// Every chunk was handed to the channel.
    Sent { chunks: usize },
    /// `lookup` said no: stay silent.
    Skipped,
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
            Outcome::Skipped => debug!(seg = %name, "segment not available; skipped"),
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
    let Some(expected) = unless_stopped(channel, job, ctx.source.lookup(seg)).await? else {
        return Err(Outcome::Skipped);
    };
    let bytes = unless_stopped(channel, job, ctx.source.fetch(seg))
        .await?
        .map_err(|err| Outcome::Failed(format!("fetch: {err}")))?;
    let length = bytes.len() as u64;
    if length != expected {
        warn!(seg = %seg_name(seg), expected, length, "segment length differs from lookup; sending what was fetched");
    }
    let plan = match ctx.policy.plan(seg, length) {
        Ok(Ok(plan)) => plan,
        Ok(Err(err)) => return Err(Outcome::Failed(format!("framing: {err:?}"))),
        Err(err) => return Err(Outcome::Failed(err.to_string())),
    };
    let payload = usize::try_from(plan.payload_size).unwrap_or(usize::MAX);
    if payload == 0 || payload > MAX_PAYLOAD {
        return Err(Outcome::Failed(format!("payload size {payload}")));
    }
    let headers = match ctx.policy.headers(seg, length) {
        Ok(Ok(headers)) => headers,
        Ok(Err(err)) => return Err(Outcome::Failed(format!("framing: {err:?}"))),
        Err(err) => return Err(Outcome::Failed(err.to_string())),
    };
    let count = headers.len() / HEADER_SIZE;
    if u64::try_from(count).ok() != Some(u64::from(plan.count)) {
        return Err(Outcome::Failed(format!(
            "{count} headers for a plan of {} chunks",
            plan.count
        )));
    }
    let stats = &ctx.stats;
    for (i, header) in headers.chunks_exact(HEADER_SIZE).enumerate() {
        let start = i.saturating_mul(payload);
        let end = start.saturating_add(payload).min(bytes.len());
        let Some(body) = bytes.get(start..end) else {
            return Err(Outcome::Failed(format!("chunk {i} outside the segment")));
        };
        let size = header.len() + body.len();
        wait_for_room(channel, ctx, job, size).await?;
        let mut message = BytesMut::with_capacity(size);
        message.extend_from_slice(header);
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
    }
    Ok(count)
}

/// Waits until a message of `size` bytes fits in the window, the job is cancelled, the channel
/// closes or nothing drains for `stall_timeout`.
async fn wait_for_room<S>(
    channel: &Channel,
    ctx: &Ctx<S>,
    job: &Job,
    size: usize,
) -> Result<(), Outcome> {
    let window = ctx.config.window;
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
