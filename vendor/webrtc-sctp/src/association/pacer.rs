//! videortc patch: paced sending and a congestion snapshot per association.
//!
//! Upstream sends whatever the congestion window allows the moment a SACK frees it, so a large
//! window leaves in bursts that overflow a browser's UDP receive buffer on a long path (see
//! WEBRTC-NOTES.md, "Over a delayed link"). Here new DATA leaves at a pacing rate derived from
//! the window and the smoothed round trip, as Linux paces TCP: `gain × cwnd / srtt`, gain 2 in
//! slow start (so the window can still double each round trip) and 1.25 after it. The bucket
//! holds about 2 ms of sending (at least four packets), because a tokio timer wakes no finer
//! than a millisecond. Without an RTT sample sending is not paced; on loopback the rate is so
//! high that the bucket never empties. RTTs are kept in microseconds here ([`RttFilter`]):
//! upstream's millisecond `srtt` reads 0 on a LAN.
//!
//! [`Congestion`] is shared with every stream of the association so that the application can
//! size what it queues to what the association can actually send ([`CongestionSnapshot`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Gain in slow start: lets the window double each round trip.
const SLOW_START_GAIN: f64 = 2.0;
/// Gain in congestion avoidance.
const AVOIDANCE_GAIN: f64 = 1.25;
/// How much sending the bucket holds, in time.
const BUCKET_TIME: Duration = Duration::from_millis(2);
/// Delivery-rate samples are taken over at least this long.
const MIN_SAMPLE: Duration = Duration::from_millis(20);
/// How many samples the delivery-rate max filter keeps.
const SAMPLES: usize = 8;
/// How long a minimum RTT sample counts.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);

/// The round trip below which congestion avoidance grows as plain SCTP/Reno (TCP Hybla's RTT0).
const REFERENCE_RTT: Duration = Duration::from_millis(25);
/// The most the growth is scaled by (ρ for a 200 ms path).
const MAX_RTT_SCALE: f64 = 8.0;

/// What congestion avoidance adds to the window per window acknowledged: one MTU on a path of
/// up to 25 ms, ρ² MTUs beyond it with ρ = srtt / 25 ms (TCP Hybla). A sender's *rate* then
/// grows as fast on a long path as on a short one. Plain SCTP adds one MTU per round trip
/// everywhere, so its rate grows by MTU / RTT² per second: after a loss a 200 ms peer recovered
/// 64 times slower than a 25 ms one, and peers of mixed RTTs on one node got rates that fell
/// with the square of their RTT.
pub(crate) fn avoidance_increase(mtu: u32, srtt: Duration) -> u32 {
    let rho = (srtt.as_secs_f64() / REFERENCE_RTT.as_secs_f64()).clamp(1.0, MAX_RTT_SCALE);
    (f64::from(mtu) * rho * rho) as u32
}

/// A token bucket refilled at the pacing rate.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Bytes per second; 0 means not paced.
    rate: f64,
    tokens: f64,
    depth: f64,
    last: Instant,
    /// Set when a chunk was held back for want of tokens.
    blocked: Option<usize>,
}

impl Pacer {
    pub(crate) fn new() -> Self {
        Self {
            rate: 0.0,
            tokens: 0.0,
            depth: 0.0,
            last: Instant::now(),
            blocked: None,
        }
    }

    /// Sets the rate from the congestion window, the smoothed RTT and the phase.
    pub(crate) fn update(&mut self, cwnd: u32, srtt: Duration, slow_start: bool, mtu: u32) {
        self.refill(Instant::now());
        if srtt.is_zero() {
            self.rate = 0.0;
            return;
        }
        let gain = if slow_start {
            SLOW_START_GAIN
        } else {
            AVOIDANCE_GAIN
        };
        self.rate = gain * f64::from(cwnd) / srtt.as_secs_f64();
        self.depth = (self.rate * BUCKET_TIME.as_secs_f64()).max(4.0 * f64::from(mtu));
        self.tokens = self.tokens.min(self.depth);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.depth);
    }

    /// Whether `bytes` may leave now (and takes them if so).
    pub(crate) fn try_take(&mut self, bytes: usize) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        self.refill(Instant::now());
        // A chunk larger than the bucket goes once the bucket is full.
        let need = (bytes as f64).min(self.depth);
        if self.tokens >= need {
            self.tokens -= bytes as f64;
            self.blocked = None;
            true
        } else {
            self.blocked = Some(bytes);
            false
        }
    }

    /// Sending resumed for another reason (nothing pending, the window is full).
    pub(crate) fn clear_blocked(&mut self) {
        self.blocked = None;
    }

    /// When the chunk held back can leave, if one is.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        let bytes = self.blocked?;
        if self.rate <= 0.0 {
            return None;
        }
        let need = (bytes as f64).min(self.depth) - self.tokens;
        let wait = Duration::from_secs_f64((need / self.rate).max(0.0));
        Some(self.last + wait)
    }

    /// Bytes per second, 0 when not paced.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }
}

/// Delivery rate from SACKs: bytes newly acknowledged over intervals of at least
/// [`MIN_SAMPLE`] (and a round trip), the max of the last few samples.
#[derive(Debug)]
pub(crate) struct DeliveryRate {
    since: Instant,
    acked: u64,
    samples: [f64; SAMPLES],
    next: usize,
}

impl DeliveryRate {
    pub(crate) fn new() -> Self {
        Self {
            since: Instant::now(),
            acked: 0,
            samples: [0.0; SAMPLES],
            next: 0,
        }
    }

    /// Counts `bytes` acknowledged now; `srtt` sets the sampling interval.
    pub(crate) fn on_ack(&mut self, bytes: i64, srtt: Duration) {
        self.acked += u64::try_from(bytes).unwrap_or(0);
        let elapsed = self.since.elapsed();
        if elapsed < MIN_SAMPLE.max(srtt) {
            return;
        }
        let sample = self.acked as f64 / elapsed.as_secs_f64();
        if let Some(slot) = self.samples.get_mut(self.next % SAMPLES) {
            *slot = sample;
        }
        self.next = self.next.wrapping_add(1);
        self.acked = 0;
        self.since = Instant::now();
    }

    /// Bytes per second.
    pub(crate) fn rate(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }
}

/// Round-trip samples in microseconds: a smoothed value (RFC 6298 weights) and the minimum of
/// the last [`MIN_RTT_WINDOW`].
#[derive(Debug)]
pub(crate) struct RttFilter {
    srtt: Option<Duration>,
    min: Option<(Duration, Instant)>,
}

impl RttFilter {
    pub(crate) fn new() -> Self {
        Self {
            srtt: None,
            min: None,
        }
    }

    pub(crate) fn on_sample(&mut self, rtt: Duration) {
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
        let now = Instant::now();
        let keep = matches!(self.min, Some((m, at)) if m <= rtt && now.duration_since(at) < MIN_RTT_WINDOW);
        if !keep {
            self.min = Some((rtt, now));
        }
    }

    /// Zero before the first sample.
    pub(crate) fn srtt(&self) -> Duration {
        self.srtt.unwrap_or_default()
    }

    /// Zero before the first sample.
    pub(crate) fn min_rtt(&self) -> Duration {
        self.min.map(|(m, _)| m).unwrap_or_default()
    }
}

/// The values [`Congestion::publish`] stores.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Published {
    pub(crate) cwnd: u32,
    pub(crate) ssthresh: u32,
    pub(crate) srtt: Duration,
    pub(crate) min_rtt: Duration,
    pub(crate) pacing_rate: f64,
    pub(crate) delivery_rate: f64,
    pub(crate) in_flight: usize,
}

/// What the association can send, shared with its streams.
#[derive(Debug, Default)]
pub struct Congestion {
    cwnd: AtomicU32,
    ssthresh: AtomicU32,
    srtt_us: AtomicU64,
    min_rtt_us: AtomicU64,
    pacing_rate: AtomicU64,
    delivery_rate: AtomicU64,
    in_flight: AtomicU32,
    retransmitted: AtomicU64,
    probes: AtomicU64,
    timeouts: AtomicU64,
}

/// A copy of [`Congestion`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CongestionSnapshot {
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Slow-start threshold, bytes.
    pub ssthresh: u32,
    /// Smoothed round trip, microseconds (0 before the first sample).
    pub srtt_us: u64,
    /// Smallest round trip of the last 10 s, microseconds (0 before the first sample).
    pub min_rtt_us: u64,
    /// Pacing rate, bytes per second (0: not paced).
    pub pacing_rate: u64,
    /// Delivery rate measured from acknowledgements, bytes per second.
    pub delivery_rate: u64,
    /// Bytes sent and not yet acknowledged.
    pub in_flight: u32,
    /// DATA chunks sent again after a loss was detected (miss indications, RACK or a probe).
    pub retransmitted: u64,
    /// Tail-loss probes sent (recovery.rs).
    pub probes: u64,
    /// Retransmission timeouts (T3-rtx): each resets the window to one packet.
    pub timeouts: u64,
}

impl Congestion {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn publish(&self, p: Published) {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.cwnd.store(p.cwnd, Ordering::Relaxed);
        self.ssthresh.store(p.ssthresh, Ordering::Relaxed);
        self.srtt_us.store(us(p.srtt), Ordering::Relaxed);
        self.min_rtt_us.store(us(p.min_rtt), Ordering::Relaxed);
        self.pacing_rate.store(p.pacing_rate as u64, Ordering::Relaxed);
        self.delivery_rate
            .store(p.delivery_rate as u64, Ordering::Relaxed);
        self.in_flight.store(
            u32::try_from(p.in_flight).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn count_retransmitted(&self) {
        self.retransmitted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_probe(&self) {
        self.probes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CongestionSnapshot {
        CongestionSnapshot {
            cwnd: self.cwnd.load(Ordering::Relaxed),
            ssthresh: self.ssthresh.load(Ordering::Relaxed),
            srtt_us: self.srtt_us.load(Ordering::Relaxed),
            min_rtt_us: self.min_rtt_us.load(Ordering::Relaxed),
            pacing_rate: self.pacing_rate.load(Ordering::Relaxed),
            delivery_rate: self.delivery_rate.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            retransmitted: self.retransmitted.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avoidance_grows_by_the_square_of_the_rtt_ratio_beyond_25_ms() {
        assert_eq!(avoidance_increase(1200, Duration::from_millis(5)), 1200);
        assert_eq!(avoidance_increase(1200, Duration::from_millis(50)), 4800);
        assert_eq!(avoidance_increase(1200, Duration::from_millis(200)), 76800);
        assert_eq!(avoidance_increase(1200, Duration::from_secs(2)), 76800);
    }

    #[test]
    fn unpaced_without_rtt() {
        let mut p = Pacer::new();
        p.update(100_000, Duration::ZERO, true, 1200);
        assert!((0..1000).all(|_| p.try_take(1200)));
        assert_eq!(p.wake_at(), None);
    }

    #[test]
    fn paced_at_gain_times_cwnd_over_srtt() {
        let mut p = Pacer::new();
        // 100 kB window over 50 ms in avoidance: 2.5 MB/s.
        p.update(100_000, Duration::from_millis(50), false, 1200);
        assert!((p.rate() - 2_500_000.0).abs() < 1.0);
        // The bucket (2 ms = 5 kB, at least 4 packets) drains, then a chunk waits.
        let mut sent = 0;
        while p.try_take(1200) {
            sent += 1;
            assert!(sent < 100, "never blocked");
        }
        let wait = p.wake_at().expect("blocked").saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_millis(1), "{wait:?}");
    }

    #[test]
    fn delivery_rate_is_the_max_of_recent_samples() {
        let mut d = DeliveryRate::new();
        std::thread::sleep(MIN_SAMPLE);
        d.on_ack(100_000, Duration::ZERO);
        let r = d.rate();
        assert!(r > 0.0 && r <= 100_000.0 / MIN_SAMPLE.as_secs_f64() * 1.01, "{r}");
    }

    #[test]
    fn rtt_filter_keeps_the_minimum_and_smooths() {
        let mut f = RttFilter::new();
        assert_eq!(f.srtt(), Duration::ZERO);
        f.on_sample(Duration::from_millis(50));
        f.on_sample(Duration::from_millis(90));
        assert_eq!(f.min_rtt(), Duration::from_millis(50));
        assert_eq!(f.srtt(), Duration::from_millis(55));
    }
}
