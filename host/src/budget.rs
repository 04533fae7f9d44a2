//! One memory budget (`MEMORY_BUDGET`) for everything strangers can make the node hold, so
//! that a node in a public room stays inside its container (`docker run -m 200m`).
//!
//! The budget is carved up once, at start: first a reservation for the peers (what each
//! connection the admission limits allow can hold: its association's state and receive
//! window, every channel's read buffer and the floor of its send window), then shares of the
//! rest for the segment cache, segment bytes held by sends in progress (bytes a slow peer or
//! HTTP client still holds after the cache dropped them count here), send windows grown past
//! their floors on long fast paths (`rtc/window.rs`), segment tables, small HTTP ranges
//! (a cache of their own, so that they never evict the segments peers are being served),
//! VideoInfo, documents (data API answers, captions) and YouTube responses (direct mode).
//! What is not carved out (the binary, wasmtime's code and instances, the runtime) is the
//! fixed overhead the README states, measured.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default budget: with the measured fixed overhead it fits a 200 MB container.
pub const DEFAULT_MEMORY_BUDGET: u64 = 144 << 20;
/// What is left for the caches after the peers' reservation must be at least this.
pub const MIN_CACHES: u64 = 16 << 20;

/// What a peer connection may hold besides its channels: ICE, DTLS and SCTP state, and the
/// association's receive window (the vendored SCTP advertises 128 KiB: peers only send small
/// JSON messages, so this is all an incomplete message can pin).
pub const PER_PEER: u64 = (256 + 128) << 10;

/// What one open DataChannel may hold at most: its read buffer and its send window.
pub fn per_channel(read_buffer: u64, window: u64) -> u64 {
    read_buffer.saturating_add(window)
}

/// The budget, carved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shares {
    /// The whole budget.
    pub total: u64,
    /// Reserved for peer connections and their channels.
    pub peers: u64,
    /// The segment cache.
    pub segments: u64,
    /// Segment bytes held by sends in progress.
    pub in_flight: u64,
    /// What DataChannel send windows may queue above their floors (the floors are in `peers`).
    pub windows: u64,
    /// Segment tables.
    pub tables: u64,
    /// Small HTTP ranges that are not a whole segment.
    pub ranges: u64,
    /// VideoInfo.
    pub infos: u64,
    /// Data API answers and captions.
    pub documents: u64,
    /// YouTube pages, API answers and player scripts (direct mode).
    pub youtube: u64,
}

/// Why a budget cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The peers' reservation leaves too little.
    #[error(
        "{total} bytes leave {rest} for the caches after {peers} reserved for peers (at least {min} are needed); raise MEMORY_BUDGET or lower MAX_PEERS / MAX_CHANNELS"
    )]
    TooSmall {
        /// The budget.
        total: u64,
        /// The peers' reservation.
        peers: u64,
        /// What is left.
        rest: u64,
        /// What is needed.
        min: u64,
    },
    /// `CACHE_BYTES` does not fit.
    #[error(
        "CACHE_BYTES {segments} does not fit: {rest} is left of MEMORY_BUDGET after the peers' reservation, and the other caches need {min}"
    )]
    SegmentsTooLarge {
        /// What was asked for the segment cache.
        segments: u64,
        /// What is left after the peers.
        rest: u64,
        /// What the other shares need at least.
        min: u64,
    },
}

impl Shares {
    /// Carves `total` up, `peers` first (0 without WebRTC). The rest goes in sixteenths:
    /// 7 segments, 3 in flight, 1 each to send windows, tables, ranges, infos, documents and
    /// YouTube. With
    /// `segments` (`CACHE_BYTES`) given, the segment cache gets exactly that and the other
    /// shares split what is left in the same proportions.
    ///
    /// # Errors
    /// When less than [`MIN_CACHES`] is left for the caches.
    pub fn carve(total: u64, peers: u64, segments: Option<u64>) -> Result<Shares, BudgetError> {
        let rest = total.saturating_sub(peers);
        if rest < MIN_CACHES {
            return Err(BudgetError::TooSmall {
                total,
                peers,
                rest,
                min: MIN_CACHES,
            });
        }
        let (segments, others) = match segments {
            None => (rest / 16 * 7, rest / 16 * 9),
            Some(s) => {
                let others = rest.saturating_sub(s);
                if others < MIN_CACHES / 2 {
                    return Err(BudgetError::SegmentsTooLarge {
                        segments: s,
                        rest,
                        min: MIN_CACHES / 2,
                    });
                }
                (s, others)
            }
        };
        let ninth = others / 9;
        Ok(Shares {
            total,
            peers,
            segments,
            in_flight: ninth * 3,
            windows: ninth,
            tables: ninth,
            ranges: ninth,
            infos: ninth,
            documents: ninth,
            youtube: ninth,
        })
    }
}

/// Segment bytes held by sends in progress, counted against their share: a send waits for
/// room before it takes its bytes, so what peers and clients hold stays bounded however many
/// of them ask at once. Those already sending keep what they hold; newcomers wait, then give
/// up with [`Busy`]. Sends of the same segment share one buffer, so they share one hold
/// ([`InFlight::hold_shared`]): eight peers served a popular segment hold its bytes once.
#[derive(Debug, Clone)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    /// Holds by what they hold (a segment's range), while any send keeps them.
    shared: Arc<Mutex<HashMap<String, Weak<OwnedSemaphorePermit>>>>,
    /// Permits are KiB: a semaphore counts in u32-sized units.
    total_kib: u32,
    wait: Duration,
}

/// No room came for bytes in flight within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node is busy: no room for {0} more bytes in flight")]
pub struct Busy(pub u64);

/// Room for some bytes in flight; given back when the last send sharing it drops it.
#[derive(Debug)]
pub struct Held {
    _permit: Arc<OwnedSemaphorePermit>,
}

impl InFlight {
    /// `bytes` of room; a send waits at most `wait` for its share.
    pub fn new(bytes: u64, wait: Duration) -> Self {
        let kib = u32::try_from(bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        InFlight {
            permits: Arc::new(Semaphore::new(kib as usize)),
            shared: Arc::default(),
            total_kib: kib,
            wait,
        }
    }

    /// Waits for room for `bytes` (a single send larger than the whole share waits for all
    /// of it).
    ///
    /// # Errors
    /// [`Busy`] when no room came within the wait.
    pub async fn hold(&self, bytes: u64) -> Result<Held, Busy> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        let acquire = self.permits.clone().acquire_many_owned(kib);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Held {
                _permit: Arc::new(permit),
            }),
            _ => Err(Busy(bytes)),
        }
    }

    /// Like [`InFlight::hold`], but sends naming the same `key` (the same bytes: a segment's
    /// range, served from one cached buffer) share one hold, counted once.
    ///
    /// # Errors
    /// [`Busy`] when no room came within the wait.
    pub async fn hold_shared(&self, key: &str, bytes: u64) -> Result<Held, Busy> {
        if let Some(held) = self.shared_get(key) {
            return Ok(held);
        }
        let held = self.hold(bytes).await?;
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        // Another send of the same bytes may have got room meanwhile: share its hold (ours is
        // given back as it drops).
        if let Some(permit) = shared.get(key).and_then(Weak::upgrade) {
            return Ok(Held { _permit: permit });
        }
        shared.retain(|_, w| w.strong_count() > 0);
        shared.insert(key.to_owned(), Arc::downgrade(&held._permit));
        Ok(held)
    }

    fn shared_get(&self, key: &str) -> Option<Held> {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let permit = shared.get(key).and_then(Weak::upgrade)?;
        Some(Held { _permit: permit })
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        u64::from(self.total_kib).saturating_sub(self.permits.available_permits() as u64) * 1024
    }

    /// The share's size in bytes.
    pub fn capacity(&self) -> u64 {
        u64::from(self.total_kib) * 1024
    }
}

/// Segment bytes and the room they hold in the budget while a send uses them.
pub struct Lease {
    bytes: Bytes,
    _held: Option<Held>,
}

impl Lease {
    /// `bytes` counted in flight by `held`.
    pub fn new(bytes: Bytes, held: Held) -> Self {
        Lease {
            bytes,
            _held: Some(held),
        }
    }

    /// Bytes that count nowhere (tests, and sources without a budget).
    pub fn unaccounted(bytes: Bytes) -> Self {
        Lease { bytes, _held: None }
    }

    /// The bytes, for a body that holds the lease until it is sent.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("len", &self.bytes.len())
            .field("counted", &self._held.is_some())
            .finish()
    }
}

impl Deref for Lease {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_default_budget_fits_the_default_peers() {
        let peers = 64 * (PER_PEER + 4 * per_channel(64 << 10, 64 << 10));
        let s = Shares::carve(DEFAULT_MEMORY_BUDGET, peers, None).unwrap();
        assert_eq!(s.peers, 56 * MIB);
        let carved = s.peers
            + s.segments
            + s.in_flight
            + s.windows
            + s.tables
            + s.ranges
            + s.infos
            + s.documents
            + s.youtube;
        assert!(carved <= s.total, "{s:?}");
        assert!(s.total - carved < 64, "{s:?}");
        assert!(s.segments > 30 * MIB && s.in_flight > 14 * MIB, "{s:?}");
        assert!(s.windows > 5 * MIB, "{s:?}");
    }

    #[test]
    fn a_budget_the_peers_fill_is_refused() {
        let e = Shares::carve(64 * MIB, 60 * MIB, None).unwrap_err();
        assert!(matches!(e, BudgetError::TooSmall { rest, .. } if rest == 4 * MIB));
        assert!(e.to_string().contains("MAX_PEERS"), "{e}");
    }

    #[test]
    fn cache_bytes_takes_the_segment_share_and_must_fit() {
        let s = Shares::carve(128 * MIB, 0, Some(100 * MIB)).unwrap();
        assert_eq!(s.segments, 100 * MIB);
        assert_eq!(s.in_flight, 28 * MIB / 9 * 3);
        let e = Shares::carve(128 * MIB, 0, Some(125 * MIB)).unwrap_err();
        assert!(matches!(e, BudgetError::SegmentsTooLarge { .. }), "{e}");
    }

    #[tokio::test]
    async fn in_flight_bytes_wait_for_room_and_give_it_back() {
        let f = InFlight::new(100 << 10, Duration::from_millis(50));
        let a = f.hold(60 << 10).await.unwrap();
        assert_eq!(f.held(), 60 << 10);
        // 50 KiB more do not fit: the newcomer waits, then is told the node is busy.
        assert_eq!(f.hold(50 << 10).await.unwrap_err(), Busy(50 << 10));
        drop(a);
        assert_eq!(f.held(), 0);
        let b = f.hold(50 << 10).await.unwrap();
        // A send larger than the whole share waits for all of it.
        let f2 = f.clone();
        let big = tokio::spawn(async move { f2.hold(10 << 20).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(b);
        big.await.unwrap().unwrap();
        assert_eq!(f.capacity(), 100 << 10);
    }

    #[tokio::test]
    async fn sends_of_the_same_bytes_share_one_hold() {
        let f = InFlight::new(100 << 10, Duration::from_millis(50));
        let a = f.hold_shared("v/1/0-59999", 60 << 10).await.unwrap();
        // Eight more sends of the same segment: counted once, none waits.
        let more: Vec<Held> =
            futures_util::future::join_all((0..8).map(|_| f.hold_shared("v/1/0-59999", 60 << 10)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(f.held(), 60 << 10);
        // Another segment is other bytes: it does not fit beside the first.
        assert_eq!(
            f.hold_shared("v/1/60000-119999", 60 << 10)
                .await
                .unwrap_err(),
            Busy(60 << 10)
        );
        drop(a);
        assert_eq!(f.held(), 60 << 10, "the others still hold it");
        drop(more);
        assert_eq!(f.held(), 0);
        // Gone from every send: the next one holds afresh.
        let b = f.hold_shared("v/1/0-59999", 60 << 10).await.unwrap();
        assert_eq!(f.held(), 60 << 10);
        drop(b);
    }

    #[tokio::test]
    async fn a_lease_holds_its_room_until_dropped() {
        let f = InFlight::new(1 << 20, Duration::from_millis(50));
        let lease = Lease::new(Bytes::from_static(b"abc"), f.hold(3).await.unwrap());
        assert_eq!(&*lease, b"abc");
        assert_eq!(f.held(), 1024);
        let body = lease.bytes().clone();
        drop(lease);
        assert_eq!(f.held(), 0);
        assert_eq!(body.len(), 3);
    }
}
