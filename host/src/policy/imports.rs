//! What the host lends a policy (`interface host` in the WIT file): segment tables, held on
//! the host and looked up by the guest without being copied, and a rate-limited log.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::StoreLimits;
use wasmtime::component::{Resource, ResourceTable};

use super::ByteRange;
use super::bindings::videortc::policy::{host, types};

/// A segment table lent to one `decide` call (the resource `segment-table`).
#[derive(Debug, Clone)]
pub struct LentTable(pub Arc<Vec<ByteRange>>);

/// The state of one instance's store.
pub(super) struct State {
    pub(super) limits: StoreLimits,
    /// Handles of the tables lent to the call in progress.
    pub(super) table: ResourceTable,
    pub(super) log: Arc<PolicyLog>,
    /// Epoch ticks the call in progress may still run (see `runtime.rs`).
    pub(super) ticks_left: u64,
}

impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: types::LogLevel, message: String) {
        self.log.write(level, &message);
    }
}

impl host::HostSegmentTable for State {
    fn count(&mut self, table: Resource<LentTable>) -> u32 {
        self.table
            .get(&table)
            .map_or(0, |t| u32::try_from(t.0.len()).unwrap_or(u32::MAX))
    }

    fn get(&mut self, table: Resource<LentTable>, index: u32) -> Option<ByteRange> {
        let t = self.table.get(&table).ok()?;
        t.0.get(usize::try_from(index).ok()?).copied()
    }

    fn drop(&mut self, table: Resource<LentTable>) -> wasmtime::Result<()> {
        self.table.delete(table)?;
        Ok(())
    }
}

/// Longest policy log line kept (longer ones are cut).
const LINE_MAX: usize = 1024;
/// Lines per second a policy may log, on average…
const RATE: f64 = 10.0;
/// …and at once.
const BURST: f64 = 50.0;
/// The same line is written at most once in this period.
const REPEAT: Duration = Duration::from_secs(600);
/// Distinct recent lines remembered for [`REPEAT`].
const REMEMBERED: usize = 4096;

/// The policy's log: a token bucket against floods, and repeats of a line dropped.
#[derive(Debug)]
pub struct PolicyLog {
    inner: Mutex<LogState>,
    /// Lines written.
    pub written: AtomicU64,
    /// Lines dropped (rate limit or repeat).
    pub dropped: AtomicU64,
}

#[derive(Debug)]
struct LogState {
    tokens: f64,
    refilled: Instant,
    recent: HashMap<u64, Instant>,
}

impl Default for PolicyLog {
    fn default() -> Self {
        PolicyLog {
            inner: Mutex::new(LogState {
                tokens: BURST,
                refilled: Instant::now(),
                recent: HashMap::new(),
            }),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl PolicyLog {
    /// Whether a line may be written now.
    fn admit(&self, line: &str) -> bool {
        let mut hasher = DefaultHasher::new();
        line.hash(&mut hasher);
        let key = hasher.finish();
        let now = Instant::now();
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if s.recent
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < REPEAT)
        {
            return false;
        }
        let elapsed = now.duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * RATE).min(BURST);
        s.refilled = now;
        if s.tokens < 1.0 {
            return false;
        }
        s.tokens -= 1.0;
        if s.recent.len() >= REMEMBERED {
            s.recent.retain(|_, at| now.duration_since(*at) < REPEAT);
            if s.recent.len() >= REMEMBERED {
                s.recent.clear();
            }
        }
        s.recent.insert(key, now);
        true
    }

    /// Writes one line from the policy, unless it is a repeat or over the rate.
    pub fn write(&self, level: types::LogLevel, message: &str) {
        let mut cut = message.len().min(LINE_MAX);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let line = message.get(..cut).unwrap_or_default();
        if !self.admit(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.written.fetch_add(1, Ordering::Relaxed);
        match level {
            types::LogLevel::Error => tracing::error!(target: "policy", "{line}"),
            types::LogLevel::Warn => tracing::warn!(target: "policy", "{line}"),
            types::LogLevel::Info => tracing::info!(target: "policy", "{line}"),
            types::LogLevel::Debug => tracing::debug!(target: "policy", "{line}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn drops_repeats_and_floods() {
        let log = PolicyLog::default();
        log.write(types::LogLevel::Info, "same");
        log.write(types::LogLevel::Info, "same");
        assert_eq!(log.written.load(Ordering::Relaxed), 1);
        assert_eq!(log.dropped.load(Ordering::Relaxed), 1);
        for i in 0..200 {
            log.write(types::LogLevel::Debug, &format!("line {i}"));
        }
        let written = log.written.load(Ordering::Relaxed);
        assert!((50..60).contains(&written), "{written}");
        assert_eq!(written + log.dropped.load(Ordering::Relaxed), 202);
    }
}
