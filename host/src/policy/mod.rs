//! The policy runtime: the WebAssembly component that makes every media decision.
//!
//! A [`Policy`] holds the current component behind an atomic pointer. Calls are async and run
//! on a small pool of reused instances (one `Store` each), bounded by an epoch deadline and a
//! memory limit. [`Policy::load`] compiles (or deserialises), version-checks, instantiates and
//! self-checks a new component before it swaps it in; calls in flight finish on the old one,
//! and a component that fails never replaces the running one. Everything the guest returns
//! is validated before the host acts on it. [`reload`] watches the operator's file.

mod bindings;
mod imports;
mod load;
pub mod reload;
mod rollback;
mod runtime;
mod selfcheck;

pub use imports::{LentTable, PolicyLog};
pub use load::{WORLD_MAJOR_MINOR, precompile};
pub use rollback::{PolicyRef, RollbackConfig, RollbackRecord};
pub use runtime::{
    MAX_INDEX_FETCH, MAX_MESSAGE, MAX_REPLY, MAX_SEGMENT, Policy, PolicyConfig, PolicyError,
    PolicyStats, TableArg,
};

pub use bindings::exports::videortc::policy::about::Description;
pub use bindings::exports::videortc::policy::decision::{
    Request, RequestKind, SendPlan, Silence, TableMissing, Verdict,
};
pub use bindings::exports::videortc::policy::peer_protocol::Message;
pub use bindings::exports::videortc::policy::segment_index::{IndexError, IndexInput, Unindexable};
pub use bindings::exports::videortc::policy::selection::Purpose;
pub use bindings::videortc::policy::types::{ByteRange, LogLevel, SegmentRef, StreamMeta};
pub use bindings::youtube::exports::videortc::policy::youtube::{
    Caption as YtCaption, Fetch as YtFetch, HttpRequest as YtHttpRequest,
    HttpResponse as YtHttpResponse, Job as YtJob, LoginKind, Method as YtMethod, Playability,
    Step as YtStep, StreamInfo as YtStreamInfo, VideoInfo as YtVideoInfo, YoutubeError,
};

/// The default policy, built from `guest/` by `build.rs`.
pub static DEFAULT_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/policy.component.wasm"));

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

impl std::fmt::Display for Silence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Silence::UnknownStream => f.write_str("unknown stream"),
            Silence::NotServable => f.write_str("not servable"),
            Silence::IndexUnavailable => f.write_str("index unavailable"),
            Silence::IndexOutOfRange => f.write_str("no such segment"),
            Silence::HeaderTooLong => f.write_str("chunk header too long"),
            Silence::Refused(why) => write!(f, "refused: {why}"),
            Silence::Other(why) => f.write_str(why),
        }
    }
}

impl std::fmt::Display for Playability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Playability::LoginRequired(kind) => {
                let why = match kind {
                    LoginKind::Private => "private video",
                    LoginKind::Age => "age check",
                    LoginKind::Bot => "YouTube asks this node's IP to sign in: bot check",
                    LoginKind::Other => "sign-in required",
                };
                write!(f, "LOGIN_REQUIRED ({why})")
            }
            Playability::Unplayable => f.write_str("UNPLAYABLE"),
            Playability::Error => f.write_str("ERROR"),
            Playability::LiveStreamOffline => f.write_str("LIVE_STREAM_OFFLINE"),
            Playability::AgeCheckRequired => f.write_str("AGE_CHECK_REQUIRED"),
            Playability::AgeVerificationRequired => f.write_str("AGE_VERIFICATION_REQUIRED"),
            Playability::ContentCheckRequired => f.write_str("CONTENT_CHECK_REQUIRED"),
            Playability::Other(status) => f.write_str(status),
        }
    }
}

impl std::fmt::Display for YoutubeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            YoutubeError::Unplayable(u) => write!(f, "{}: {}", u.status, u.reason),
            YoutubeError::BadResponse(b) => {
                write!(f, "unreadable YouTube {} response: {}", b.what, b.message)
            }
            YoutubeError::Cipher(c) => write!(
                f,
                "the signature cipher of player {} is not understood: {}",
                c.player, c.message
            ),
            YoutubeError::Http(h) => match h.status {
                Some(status) => write!(f, "YouTube {} answered {status}: {}", h.what, h.message),
                None => write!(f, "YouTube {} request failed: {}", h.what, h.message),
            },
            YoutubeError::BadJob(m) => write!(f, "invalid request: {m}"),
        }
    }
}

#[cfg(test)]
mod tests;
