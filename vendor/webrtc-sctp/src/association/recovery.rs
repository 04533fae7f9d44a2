//! videortc patch: time-based loss detection (RACK, RFC 8985) and a tail-loss probe.
//!
//! Upstream finds a lost chunk only by three miss indications in later SACKs, and everything
//! else waits for T3-rtx, whose RTO is at least a second. Two losses are common on a real path
//! and never produce three miss indications: a fast retransmission that is lost again (the
//! chunk's miss indicator is already spent), and the last chunks of a flight (nothing after
//! them arrives to be reported). Each cost a stall of a second or more, longer than the 2 s
//! `maxPacketLifeTime` of the channels allows twice.
//!
//! RACK: a chunk is lost once a chunk *sent* more than a reordering window after it has been
//! delivered. The association keeps the send time of the latest-sent delivered chunk ([`Rack`])
//! and marks every outstanding chunk sent before it (less the window) for retransmission. The
//! first transmissions are classified once, in TSN order (which is their send order), behind a
//! frontier; retransmitted chunks are re-checked from a short list until they are delivered.
//!
//! The probe: when no SACK has arrived for about two round trips while data is outstanding,
//! the highest outstanding chunk is sent again, without touching the congestion window. The
//! SACK it draws reports the holes before it, and RACK then recovers them in one round trip.
//! A probe that was not needed costs one duplicate packet. One probe per silence; if that is
//! answered by silence too, T3-rtx takes over as before.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::chunk::chunk_payload_data::ChunkPayloadData;

/// The reordering window never goes below this (timer granularity).
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(1);
/// Added to the probe timeout when a single packet is outstanding: the receiver may hold its
/// SACK that long (RFC 4960's delayed SACK; dcSCTP's default is 200 ms).
const DELAYED_ACK: Duration = Duration::from_millis(200);
/// The probe timeout never goes below this.
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
pub(crate) struct Rack {
    /// Send time of the latest-sent chunk known to be delivered.
    xmit: Option<Instant>,
    /// First transmissions below this TSN are acked, abandoned or already marked lost.
    frontier: Option<u32>,
    /// Retransmitted chunks not yet delivered.
    resent: HashSet<u32>,
    /// When the tail-loss probe fires.
    probe_at: Option<Instant>,
    /// A probe was sent and no SACK has acknowledged anything since.
    probed: bool,
}

impl Rack {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A chunk last sent at `sent_at` (its `nsent`th transmission) was delivered. An ack that
    /// came back faster than the path's minimum RTT belongs to an earlier transmission.
    pub(crate) fn on_delivered(&mut self, sent_at: Option<Instant>, nsent: u32, min_rtt: Duration) {
        let Some(sent_at) = sent_at else { return };
        if nsent > 1 && sent_at.elapsed() < min_rtt {
            return;
        }
        if self.xmit.is_none_or(|x| sent_at > x) {
            self.xmit = Some(sent_at);
        }
    }

    /// Chunks sent at or before this were sent before a delivered chunk, beyond reordering.
    pub(crate) fn lost_before(&self, min_rtt: Duration) -> Option<Instant> {
        let window = (min_rtt / 4).max(MIN_REORDER_WINDOW);
        self.xmit?.checked_sub(window)
    }

    /// Where the scan of first transmissions starts: the frontier or the ack point's next TSN,
    /// whichever is later (serial-number arithmetic).
    pub(crate) fn scan_from(&self, next_after_ack: u32) -> u32 {
        match self.frontier {
            Some(f) if crate::util::sna32gt(f, next_after_ack) => f,
            _ => next_after_ack,
        }
    }

    pub(crate) fn set_frontier(&mut self, tsn: u32) {
        self.frontier = Some(tsn);
    }

    /// A chunk is being sent again: it is no longer marked lost, its send time is now, and it
    /// is re-checked until delivered.
    pub(crate) fn on_resent(&mut self, c: &mut ChunkPayloadData) {
        c.lost = false;
        c.sent_at = Some(Instant::now());
        self.resent.insert(c.tsn);
    }

    /// The retransmitted chunks to re-check (the caller puts back those still outstanding).
    pub(crate) fn take_resent(&mut self) -> HashSet<u32> {
        std::mem::take(&mut self.resent)
    }

    pub(crate) fn put_resent(&mut self, resent: HashSet<u32>) {
        self.resent = resent;
    }

    /// A SACK acknowledged something new: a probe may be sent again after the next silence.
    pub(crate) fn on_progress(&mut self) {
        self.probed = false;
    }

    /// (Re)arms the probe after a send or a SACK while `packets` packets' worth is in flight;
    /// disarms it when nothing is, or while a probe is unanswered.
    pub(crate) fn arm_probe(&mut self, srtt: Duration, rto: Duration, in_flight_packets: usize) {
        if in_flight_packets == 0 || self.probed || srtt.is_zero() {
            self.probe_at = None;
            return;
        }
        let mut timeout = (srtt * 2).max(MIN_PROBE_TIMEOUT);
        if in_flight_packets == 1 {
            timeout += DELAYED_ACK;
        }
        self.probe_at = Some(Instant::now() + timeout.min(rto));
    }

    /// When the write loop must wake for the probe.
    pub(crate) fn probe_at(&self) -> Option<Instant> {
        self.probe_at
    }

    /// Whether the probe is due now; if so it counts as sent.
    pub(crate) fn take_probe(&mut self, now: Instant) -> bool {
        match self.probe_at {
            Some(at) if at <= now => {
                self.probe_at = None;
                self.probed = true;
                true
            }
            _ => false,
        }
    }

    /// Everything in flight was acknowledged.
    pub(crate) fn on_idle(&mut self) {
        self.probe_at = None;
        self.resent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_sent_delivery_wins_and_early_acks_of_retransmissions_do_not_count() {
        let mut r = Rack::new();
        let t0 = Instant::now() - Duration::from_millis(100);
        let t1 = t0 + Duration::from_millis(10);
        r.on_delivered(Some(t1), 1, Duration::from_millis(50));
        r.on_delivered(Some(t0), 1, Duration::from_millis(50));
        assert_eq!(r.lost_before(Duration::ZERO), t1.checked_sub(MIN_REORDER_WINDOW));
        // Retransmitted just now, "acked" faster than the path allows: the original's ack.
        r.on_delivered(Some(Instant::now()), 2, Duration::from_millis(50));
        assert_eq!(r.lost_before(Duration::ZERO), t1.checked_sub(MIN_REORDER_WINDOW));
    }

    #[test]
    fn one_probe_per_silence() {
        let mut r = Rack::new();
        r.arm_probe(Duration::from_millis(50), Duration::from_secs(1), 4);
        let at = r.probe_at().unwrap();
        assert!(!r.take_probe(at - Duration::from_millis(1)));
        assert!(r.take_probe(at));
        r.arm_probe(Duration::from_millis(50), Duration::from_secs(1), 4);
        assert!(r.probe_at().is_none());
        r.on_progress();
        r.arm_probe(Duration::from_millis(50), Duration::from_secs(1), 1);
        assert!(r.probe_at().unwrap() > Instant::now() + DELAYED_ACK);
    }
}
