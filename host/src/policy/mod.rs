//! The policy runtime: the WebAssembly component that makes every media decision.
//!
//! A [`Policy`] holds the current component behind an atomic pointer. Calls run on a small
//! pool of reused instances (one `Store` each), bounded by an epoch deadline and a memory
//! limit. [`Policy::load`] compiles, instantiates and self-checks a new component before it
//! swaps it in; calls in flight finish on the old one, and a component that fails the
//! checks never replaces the running one. Everything the guest returns is validated.

mod bindings;
mod runtime;
mod selfcheck;

pub use runtime::{Policy, PolicyConfig, PolicyError, PolicyStats};

pub use bindings::exports::videortc::policy::decision::{
    SegmentLookup, Silence, TableState, Verdict,
};
pub use bindings::exports::videortc::policy::framing::{ChunkPlan, FrameError};
pub use bindings::exports::videortc::policy::peer_protocol::Message;
pub use bindings::exports::videortc::policy::segment_index::{IndexError, IndexInput};
pub use bindings::exports::videortc::policy::selection::Purpose;
pub use bindings::exports::videortc::policy::types::{
    ByteRange, Container, SegmentRef, StreamMeta,
};

/// The default policy, built from `guest/` by `build.rs`.
pub static DEFAULT_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/policy.component.wasm"));

/// Size of every chunk header on the wire.
pub const HEADER_SIZE: usize = 30;

impl SegmentRef {
    /// The wire stream id `VID:ITAG`.
    pub fn stream_id(&self) -> String {
        format!("{}:{}", self.vid, self.itag)
    }
}

impl ByteRange {
    /// Bytes in the inclusive range (0 if it is backwards).
    pub fn len(&self) -> u64 {
        if self.end < self.start {
            0
        } else {
            (self.end - self.start).saturating_add(1)
        }
    }

    /// True when the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
