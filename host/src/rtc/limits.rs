//! What the node does at its admission limits: refusals are counted every time and logged at
//! most once per interval per limit (a flood must not flood the log), and offers are rate
//! limited per peer id.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::warn;

/// A refusal of the same limit is logged at most this often.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Peer ids whose offer rate is tracked at once (older windows are forgotten first).
const TRACKED_IDS: usize = 4096;

/// Logs refusals at most once per [`LOG_INTERVAL`] per limit, with the number held back.
#[derive(Debug, Default)]
pub(crate) struct LimitLog {
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl LimitLog {
    /// Notes a refusal at `limit` (of peer `who`).
    pub(crate) fn note(&self, limit: &'static str, who: &str) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = last.entry(limit).or_insert((now - LOG_INTERVAL, 0));
        if now.duration_since(entry.0) >= LOG_INTERVAL {
            let held = entry.1;
            *entry = (now, 0);
            drop(last);
            warn!(limit, peer = %super::channel::short(who), also_refused = held, "limit reached; refused");
        } else {
            entry.1 += 1;
        }
    }
}

/// Offers per peer id per minute.
#[derive(Debug)]
pub(crate) struct OfferRate {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl OfferRate {
    pub(crate) fn new(per_minute: u32) -> Self {
        OfferRate {
            per_minute,
            windows: Mutex::default(),
        }
    }

    /// Whether one more offer from `id` is allowed now (and counts it if so).
    pub(crate) fn allow(&self, id: &str) -> bool {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= TRACKED_IDS && !windows.contains_key(id) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < minute);
            if windows.len() >= TRACKED_IDS {
                // Every tracked id is active: forget them rather than grow.
                windows.clear();
            }
        }
        let (start, count) = windows.entry(id.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= minute {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            return false;
        }
        *count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_limited_per_id() {
        let rate = OfferRate::new(3);
        assert!((0..3).all(|_| rate.allow("a")));
        assert!(!rate.allow("a"));
        assert!(rate.allow("b"));
        for k in 0..TRACKED_IDS * 2 {
            rate.allow(&format!("id{k}"));
        }
        assert!(
            rate.windows
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
                <= TRACKED_IDS
        );
    }
}
