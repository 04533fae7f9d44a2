//! Request counts by path (with query), kept by the test servers.

use std::collections::HashMap;
use std::sync::Mutex;

/// How many times each path was requested.
#[derive(Debug, Default)]
pub struct Hits(Mutex<HashMap<String, u64>>);

impl Hits {
    /// Counts one request of `path`.
    pub fn record(&self, path: &str) {
        if let Ok(mut h) = self.0.lock() {
            *h.entry(path.to_owned()).or_default() += 1;
        }
    }

    /// Requests of exactly `path`.
    pub fn exact(&self, path: &str) -> u64 {
        self.0
            .lock()
            .map(|h| h.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Requests whose path starts with `prefix`.
    pub fn prefix(&self, prefix: &str) -> u64 {
        self.0
            .lock()
            .map(|h| {
                h.iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v)
                    .sum()
            })
            .unwrap_or(0)
    }
}
