//! Automatic rollback: a policy that keeps failing (traps, deadlines, invalid results) is
//! replaced by the one that served before it, and at worst by the embedded default.
//!
//! Failures are counted per serving generation in a sliding window, so that failures of a
//! policy already swapped out never count against its successor.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// When the runtime rolls a failing policy back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackConfig {
    /// Failures within `window` that trigger a rollback; 0 turns rollback off.
    pub failures: u32,
    /// The sliding window failures are counted in.
    pub window: Duration,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        // A sound policy never traps; ten failures a minute is a policy that is broken for
        // some class of request, not one unlucky call.
        RollbackConfig {
            failures: 10,
            window: Duration::from_secs(60),
        }
    }
}

/// Recent failures of the serving generation.
#[derive(Debug, Default)]
pub(super) struct FailureWindow {
    generation: u64,
    times: VecDeque<Instant>,
}

impl FailureWindow {
    /// Notes a failure of `generation` at `now`. True when it reaches the threshold: the
    /// window is then cleared, so one burst triggers one rollback.
    pub(super) fn note(&mut self, config: &RollbackConfig, generation: u64, now: Instant) -> bool {
        if config.failures == 0 {
            return false;
        }
        if generation != self.generation {
            if generation < self.generation {
                // A call that started before the last swap: not the serving policy's fault.
                return false;
            }
            self.generation = generation;
            self.times.clear();
        }
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > config.window)
        {
            self.times.pop_front();
        }
        self.times.push_back(now);
        if self.times.len() >= config.failures as usize {
            self.times.clear();
            return true;
        }
        false
    }

    /// Failures of `generation` counted in the current window.
    pub(super) fn count(&self, generation: u64) -> usize {
        if generation == self.generation {
            self.times.len()
        } else {
            0
        }
    }
}

/// The last rollback, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackRecord {
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// The failing policy: its name, source and SHA-256.
    pub from: PolicyRef,
    /// The policy serving since.
    pub to: PolicyRef,
    /// The last failure before the rollback.
    pub reason: String,
}

/// Which component, for humans.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRef {
    /// `describe().name`.
    pub name: String,
    /// `embedded` or the path it was loaded from.
    pub source: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: RollbackConfig = RollbackConfig {
        failures: 3,
        window: Duration::from_secs(10),
    };

    #[test]
    fn a_burst_within_the_window_triggers_once() {
        let mut w = FailureWindow::default();
        let t = Instant::now();
        assert!(!w.note(&CONFIG, 1, t));
        assert!(!w.note(&CONFIG, 1, t + Duration::from_secs(1)));
        assert!(w.note(&CONFIG, 1, t + Duration::from_secs(2)));
        assert_eq!(w.count(1), 0);
        assert!(!w.note(&CONFIG, 1, t + Duration::from_secs(3)));
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut w = FailureWindow::default();
        let t = Instant::now();
        assert!(!w.note(&CONFIG, 1, t));
        assert!(!w.note(&CONFIG, 1, t + Duration::from_secs(1)));
        assert!(!w.note(&CONFIG, 1, t + Duration::from_secs(12)));
        assert_eq!(w.count(1), 1);
    }

    #[test]
    fn failures_of_a_swapped_out_policy_do_not_count() {
        let mut w = FailureWindow::default();
        let t = Instant::now();
        assert!(!w.note(&CONFIG, 2, t));
        assert!(!w.note(&CONFIG, 2, t));
        assert!(!w.note(&CONFIG, 3, t));
        assert!(!w.note(&CONFIG, 2, t));
        assert_eq!((w.count(3), w.count(2)), (1, 0));
    }

    #[test]
    fn zero_turns_rollback_off() {
        let mut w = FailureWindow::default();
        let off = RollbackConfig {
            failures: 0,
            ..CONFIG
        };
        let t = Instant::now();
        assert!((0..100).all(|_| !w.note(&off, 1, t)));
    }
}
