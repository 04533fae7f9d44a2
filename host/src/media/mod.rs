//! Media: VideoInfo, segment tables and segment bytes (SPEC §5–§6).
//!
//! [`Origin`] fetches from BASE_URL or stream URLs; without BASE_URL the info comes from
//! YouTube through the policy's parser (`youtube.rs`); [`MediaHub`] caches and coalesces,
//! and asks the policy every question about the media.

mod hub;
mod info;
mod origin;
mod youtube;

pub use hub::{CacheSummary, CachedVideo, Decision, HubConfig, MediaError, MediaHub, MediaStats};
pub use info::{Caption, RangeItem, StreamItem, VideoInfo};
pub(crate) use origin::error_chain;
pub use origin::{Origin, OriginError, http_client, stream_client};
