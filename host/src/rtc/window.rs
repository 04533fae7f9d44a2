//! How much one DataChannel's sender keeps queued: its send window.
//!
//! A fixed window caps a peer at window / RTT (64 KiB is 1.3 MB/s at 50 ms) however fast its
//! path. So every channel has a floor ([`RtcConfig::window`](super::RtcConfig::window),
//! reserved with the peer in `MEMORY_BUDGET`) and grows towards twice the path's
//! bandwidth-delay product, as its SCTP association measures them (delivery rate × minimum
//! RTT, see `vendor/webrtc-sctp/src/association/pacer.rs`), four times while the association
//! is in slow start on a path of 5 ms or more, up to a ceiling. In slow start the delivery
//! rate lags a round trip behind a window that doubles, and SCTP grows its window only while it
//! has data waiting: sized at twice the measured product, a fresh peer on a 200 ms path ran dry
//! between messages and its window grew by half, not twice, per round trip. (Sizing from what
//! is in flight instead feeds on itself where nothing is lost: on loopback the flight, and so
//! the bursts, grew until Chromium's receive buffer dropped them.) On loopback the product is
//! tiny and the floor rules. The association paces what it sends, so a large window does not
//! leave in bursts. Growth above the floor is drawn from a shared pool (the budget's `windows`
//! share): a channel takes only what is free and never waits for it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use webrtc::sctp::association::pacer::CongestionSnapshot;

/// Pool permits are KiB: a semaphore counts in u32-sized units.
const UNIT: usize = 1024;

/// The bytes all channels may queue above their floors.
#[derive(Debug, Clone)]
pub struct WindowPool {
    permits: Arc<Semaphore>,
    total: usize,
}

impl WindowPool {
    /// A pool of `bytes` (rounded down to KiB).
    pub fn new(bytes: u64) -> Self {
        let total = usize::try_from(bytes / UNIT as u64)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Bytes held by growing windows now.
    pub fn held(&self) -> u64 {
        (self.total.saturating_sub(self.permits.available_permits()) * UNIT) as u64
    }

    /// Bytes in the pool.
    pub fn capacity(&self) -> u64 {
        (self.total * UNIT) as u64
    }
}

/// Below this minimum RTT slow start is over in a few milliseconds and not worth the larger
/// window: on loopback, where the pacing rate is unbounded, the extra is one more burst for
/// the browser's 128 KiB receive buffer to drop.
const RAMP_MIN_RTT_US: u64 = 5_000;

/// What the path can take now: twice its bandwidth-delay product (four times in slow start on
/// a path of 5 ms or more) plus one message.
pub(crate) fn target(c: &CongestionSnapshot, message: usize) -> usize {
    let bdp = (c.delivery_rate as f64 * c.min_rtt_us as f64 / 1e6) as usize;
    let ramping = c.cwnd <= c.ssthresh && c.min_rtt_us >= RAMP_MIN_RTT_US;
    bdp.saturating_mul(if ramping { 4 } else { 2 })
        .saturating_add(message)
}

/// One channel's window: the floor plus what it holds from the pool.
#[derive(Debug)]
pub(crate) struct Window {
    floor: usize,
    ceiling: usize,
    extra: Option<OwnedSemaphorePermit>,
}

impl Window {
    pub(crate) fn new(floor: usize, ceiling: usize) -> Self {
        Self {
            floor,
            ceiling: ceiling.max(floor),
            extra: None,
        }
    }

    fn extra_units(&self) -> usize {
        self.extra
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// The window for the next message: grown towards `want` with what the pool has free, or
    /// shrunk towards it, never below what is `buffered` (those bytes are still held).
    pub(crate) fn resize(&mut self, pool: &WindowPool, want: usize, buffered: usize) -> usize {
        let want = want.clamp(self.floor, self.ceiling);
        let keep = want.max(buffered.min(self.ceiling));
        let want_units = want.saturating_sub(self.floor) / UNIT;
        let keep_units = keep.saturating_sub(self.floor).div_ceil(UNIT);
        let have = self.extra_units();
        if want_units > have {
            let free = pool.permits.available_permits();
            let more = (want_units - have).min(free);
            if more > 0
                && let Ok(permit) = pool
                    .permits
                    .clone()
                    .try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX))
            {
                match &mut self.extra {
                    Some(held) => held.merge(permit),
                    None => self.extra = Some(permit),
                }
            }
        } else if have > keep_units
            && let Some(held) = &mut self.extra
        {
            drop(held.split(have - keep_units));
        }
        self.floor + self.extra_units() * UNIT
    }

    /// Gives the growth back (the segment is done; its bytes have left or will be dropped).
    pub(crate) fn release(&mut self) {
        self.extra = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    /// A path past slow start.
    fn path(delivery_rate: u64, min_rtt_us: u64) -> CongestionSnapshot {
        CongestionSnapshot {
            delivery_rate,
            min_rtt_us,
            cwnd: 500_000,
            ssthresh: 400_000,
            ..CongestionSnapshot::default()
        }
    }

    #[test]
    fn the_target_is_twice_the_bdp_four_times_in_slow_start_plus_a_message() {
        // 8 MB/s at 50 ms: a 400 kB product.
        assert_eq!(target(&path(8_000_000, 50_000), 51_230), 800_000 + 51_230);
        // Before any measurement: one message.
        assert_eq!(target(&path(0, 0), 51_230), 51_230);
        // In slow start the rate lags a doubling window: four times the product.
        let ramping = CongestionSnapshot {
            cwnd: 300_000,
            ssthresh: 5_000_000,
            ..path(2_000_000, 100_000)
        };
        assert_eq!(target(&ramping, 51_230), 800_000 + 51_230);
        // Not on loopback: slow start there is over at once.
        let loopback = CongestionSnapshot {
            min_rtt_us: 300,
            ..ramping
        };
        assert_eq!(target(&loopback, 51_230), 2 * 600 + 51_230);
    }

    #[test]
    fn grows_with_what_the_pool_has_and_never_below_the_floor() {
        let pool = WindowPool::new((256 * KIB) as u64);
        let mut a = Window::new(64 * KIB, 1024 * KIB);
        let mut b = Window::new(64 * KIB, 1024 * KIB);
        assert_eq!(a.resize(&pool, 0, 0), 64 * KIB);
        assert_eq!(a.resize(&pool, 200 * KIB, 0), 200 * KIB);
        // b wants more than is left: it gets the rest.
        assert_eq!(b.resize(&pool, 1024 * KIB, 0), 64 * KIB + 120 * KIB);
        assert_eq!(pool.held(), (256 * KIB) as u64);
        // Past the ceiling is the ceiling.
        let mut c = Window::new(64 * KIB, 128 * KIB);
        assert_eq!(c.resize(&WindowPool::new(1 << 30), 10 << 20, 0), 128 * KIB);
        a.release();
        assert_eq!(pool.held(), (120 * KIB) as u64);
    }

    #[test]
    fn shrinks_only_to_what_is_still_buffered() {
        let pool = WindowPool::new((1024 * KIB) as u64);
        let mut w = Window::new(64 * KIB, 1024 * KIB);
        assert_eq!(w.resize(&pool, 800 * KIB, 0), 800 * KIB);
        // The path slowed down, but 500 KiB are still queued: keep them counted.
        assert_eq!(w.resize(&pool, 100 * KIB, 500 * KIB), 500 * KIB);
        assert_eq!(w.resize(&pool, 100 * KIB, 0), 100 * KIB);
        assert_eq!(pool.held(), (36 * KIB) as u64);
    }
}
