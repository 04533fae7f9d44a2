//! The media hub: VideoInfo, segment tables and segment bytes, cached and coalesced.
//!
//! Each cache rebuilds a missing entry with exactly one origin request while concurrent
//! callers wait for it (moka's `try_get_with`). Errors are not cached for long: a failed
//! info lookup is remembered for a few seconds to protect the origin, then retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;
use serde::Serialize;

use super::info::{StreamItem, VideoInfo};
use super::origin::{Origin, OriginError};
use crate::policy::{
    ByteRange, Container, IndexInput, Policy, SegmentLookup, SegmentRef, TableState, Verdict,
};

/// Largest index (plus head) the hub will fetch for one stream.
const MAX_INDEX_BYTES: u64 = 8 << 20;

/// Errors of the media layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MediaError {
    /// The origin failed.
    #[error(transparent)]
    Origin(#[from] OriginError),
    /// The video has no such stream.
    #[error("no stream {itag} in video {vid}")]
    NoStream {
        /// Video id.
        vid: String,
        /// Itag.
        itag: u32,
    },
    /// The stream cannot be served segment by segment.
    #[error("stream {0} is not servable")]
    NotServable(String),
    /// The policy rejected the index.
    #[error("index of {stream}: {msg}")]
    Index {
        /// `VID:ITAG`.
        stream: String,
        /// Why.
        msg: String,
    },
    /// The segment does not exist.
    #[error("segment {0} does not exist")]
    NoSegment(String),
    /// The policy runtime failed.
    #[error("policy: {0}")]
    Policy(String),
}

/// Cache sizes and lifetimes.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long VideoInfo stays cached.
    pub info_ttl: Duration,
    /// How long segment tables stay cached.
    pub table_ttl: Duration,
    /// How long segment bytes stay cached.
    pub segment_ttl: Duration,
    /// Byte budget of the segment cache.
    pub segment_bytes: u64,
    /// How long a failed info lookup is remembered.
    pub failure_ttl: Duration,
    /// How long "no such video" (origin 404 or 204) is remembered.
    pub unknown_ttl: Duration,
    /// Info requests to the origin at once; more wait. Bounds what peers asking for many
    /// unknown videos can make the origin do.
    pub max_info_fetches: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            info_ttl: Duration::from_secs(3600),
            table_ttl: Duration::from_secs(3600),
            segment_ttl: Duration::from_secs(120),
            segment_bytes: crate::config::DEFAULT_CACHE_BYTES,
            failure_ttl: Duration::from_secs(5),
            unknown_ttl: Duration::from_secs(60),
            max_info_fetches: 16,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// Info lookups served from cache.
    pub info_hits: AtomicU64,
    /// Info lookups that went to the origin (or joined a fetch in flight).
    pub info_misses: AtomicU64,
    /// Segment-table lookups served from cache.
    pub table_hits: AtomicU64,
    /// Segment-table lookups that loaded the index.
    pub table_misses: AtomicU64,
    /// Segment byte lookups served from cache.
    pub segment_hits: AtomicU64,
    /// Segment byte lookups that went to the origin (or joined a fetch in flight).
    pub segment_misses: AtomicU64,
    /// Requests sent to the origin.
    pub origin_requests: AtomicU64,
    /// Origin requests that failed.
    pub origin_errors: AtomicU64,
    /// Bytes received from the origin.
    pub origin_bytes: AtomicU64,
}

type TableKey = (String, u32);
type SegmentKey = (String, u32, u64, u64);

/// VideoInfo, segment tables and bytes for the DataChannel protocol and the HTTP API.
pub struct MediaHub {
    policy: Arc<Policy>,
    origin: Origin,
    infos: Cache<String, Arc<VideoInfo>>,
    failures: Cache<String, MediaError>,
    unknown: Cache<String, MediaError>,
    info_fetches: tokio::sync::Semaphore,
    tables: Cache<TableKey, Arc<Vec<ByteRange>>>,
    segments: Cache<SegmentKey, Bytes>,
    stats: MediaStats,
}

impl std::fmt::Debug for MediaHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaHub").finish_non_exhaustive()
    }
}

/// A cached video, for `/peers?t=video`.
#[derive(Debug, Clone, Serialize)]
pub struct CachedVideo {
    /// Video id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Itags with a loaded segment table, and their segment counts.
    pub tables: Vec<(u32, usize)>,
    /// Itags of all streams.
    pub streams: Vec<String>,
}

/// A summary of the caches, for `/status` and `/metrics`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CacheSummary {
    /// Cached infos.
    pub videos: u64,
    /// Cached segment tables.
    pub tables: u64,
    /// Cached segments.
    pub segments: u64,
    /// Bytes held by the segment cache.
    pub segment_bytes: u64,
    /// The segment cache's byte budget.
    pub segment_budget: u64,
}

fn weight(_: &SegmentKey, v: &Bytes) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

impl MediaHub {
    /// A hub over `origin`, deciding through `policy`.
    pub fn new(policy: Arc<Policy>, origin: Origin, config: &HubConfig) -> Self {
        MediaHub {
            policy,
            origin,
            infos: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.info_ttl)
                .build(),
            failures: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.failure_ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.unknown_ttl)
                .build(),
            info_fetches: tokio::sync::Semaphore::new(config.max_info_fetches.max(1)),
            tables: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.table_ttl)
                .build(),
            segments: Cache::builder()
                .max_capacity(config.segment_bytes)
                .weigher(weight)
                .time_to_live(config.segment_ttl)
                .build(),
            stats: MediaStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    /// The policy the hub decides with.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn origin_result<T>(&self, r: &Result<T, OriginError>, bytes: impl Fn(&T) -> usize) {
        self.count(&self.stats.origin_requests);
        match r {
            Ok(v) => {
                self.stats
                    .origin_bytes
                    .fetch_add(bytes(v) as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.count(&self.stats.origin_errors);
                tracing::warn!(error = %e, "origin request failed");
            }
        }
    }

    /// The VideoInfo of `vid`, cached for an hour; one origin request for concurrent misses.
    pub async fn info(&self, vid: &str) -> Result<Arc<VideoInfo>, MediaError> {
        if let Some(info) = self.infos.get(vid).await {
            self.count(&self.stats.info_hits);
            return Ok(info);
        }
        if let Some(e) = self.failures.get(vid).await {
            return Err(e);
        }
        if let Some(e) = self.unknown.get(vid).await {
            return Err(e);
        }
        self.count(&self.stats.info_misses);
        let result =
            self.infos
                .try_get_with(vid.to_owned(), async {
                    // Coalesced waiters share this one fetch; only the fetch takes a permit.
                    let _permit = self.info_fetches.acquire().await.map_err(|_| {
                        OriginError::Unavailable("media hub is shutting down".into())
                    })?;
                    let r = self.origin.video_info(vid).await;
                    self.origin_result(&r, |_| 0);
                    r.map(Arc::new)
                })
                .await;
        match result {
            Ok(info) => Ok(info),
            Err(e) => {
                let unknown = matches!(*e, OriginError::NotFound(_) | OriginError::Denied(_));
                let e = MediaError::Origin((*e).clone());
                let memory = if unknown {
                    &self.unknown
                } else {
                    &self.failures
                };
                memory.insert(vid.to_owned(), e.clone()).await;
                Err(e)
            }
        }
    }

    /// The stream item of `vid:itag`.
    pub async fn stream(&self, vid: &str, itag: u32) -> Result<StreamItem, MediaError> {
        let info = self.info(vid).await?;
        info.streams
            .get(&itag.to_string())
            .cloned()
            .ok_or_else(|| MediaError::NoStream {
                vid: vid.to_owned(),
                itag,
            })
    }

    /// The segment table of a stream, cached; one index fetch for concurrent misses.
    pub async fn table(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
    ) -> Result<Arc<Vec<ByteRange>>, MediaError> {
        let key = (vid.to_owned(), itag);
        if let Some(t) = self.tables.get(&key).await {
            self.count(&self.stats.table_hits);
            return Ok(t);
        }
        self.count(&self.stats.table_misses);
        self.tables
            .try_get_with(key, self.load_table(vid, itag, stream))
            .await
            .map_err(|e| (*e).clone())
    }

    async fn load_table(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
    ) -> Result<Arc<Vec<ByteRange>>, MediaError> {
        let stream_id = format!("{vid}:{itag}");
        let meta = stream.meta(itag, self.origin.can_fetch(stream));
        let (Some(len), Some(index), Some(init)) =
            (meta.content_length, meta.index_range, meta.init_range)
        else {
            return Err(MediaError::NotServable(stream_id));
        };
        let container = Policy::container_of(&stream.mime)
            .ok_or_else(|| MediaError::NotServable(stream_id.clone()))?;
        if index.len() > MAX_INDEX_BYTES || index.end >= len {
            return Err(MediaError::NotServable(stream_id));
        }
        // WebM: the Segment data start lies in the head of the file; fetch it with the index
        // in one request when they are adjacent, as in YouTube's files.
        let (index_bytes, head_bytes) = match container {
            Container::Webm if init.start == 0 && index.end < MAX_INDEX_BYTES => {
                let all = self
                    .fetch(
                        vid,
                        itag,
                        stream,
                        ByteRange {
                            start: 0,
                            end: index.end,
                        },
                    )
                    .await?;
                let at = usize::try_from(index.start).unwrap_or(usize::MAX);
                let head = all.slice(..at.min(all.len()));
                (all.slice(at.min(all.len())..).to_vec(), Some(head.to_vec()))
            }
            _ => (self.fetch(vid, itag, stream, index).await?.to_vec(), None),
        };
        let input = IndexInput {
            container,
            index_range: index,
            content_length: len,
            index_bytes,
            head_bytes,
        };
        let parsed = self
            .policy
            .parse_index(&input)
            .map_err(|e| MediaError::Policy(e.to_string()))?;
        match parsed {
            Ok(table) => {
                tracing::debug!(stream = %stream_id, segments = table.len(), "segment table loaded");
                Ok(Arc::new(table))
            }
            Err(e) => Err(MediaError::Index {
                stream: stream_id,
                msg: e.to_string(),
            }),
        }
    }

    async fn fetch(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<Bytes, MediaError> {
        let r = self.origin.fetch_range(vid, itag, stream, range).await;
        self.origin_result(&r, Bytes::len);
        Ok(r?)
    }

    /// Bytes of a range of a stream, cached by range; one origin request for concurrent misses.
    pub async fn bytes(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<Bytes, MediaError> {
        let key = (vid.to_owned(), itag, range.start, range.end);
        if let Some(b) = self.segments.get(&key).await {
            self.count(&self.stats.segment_hits);
            return Ok(b);
        }
        self.count(&self.stats.segment_misses);
        self.segments
            .try_get_with(key, self.fetch(vid, itag, stream, range))
            .await
            .map_err(|e| (*e).clone())
    }

    /// The found decision for `seg`: its byte range if the node can serve it, loading the
    /// info and the segment table as the policy asks.
    pub async fn find(&self, seg: &SegmentRef) -> Result<Option<ByteRange>, MediaError> {
        let stream = match self.stream(&seg.vid, seg.itag).await {
            Ok(s) => Some(s),
            Err(MediaError::NoStream { .. }) => None,
            Err(e) => return Err(e),
        };
        let meta = stream
            .as_ref()
            .map(|s| s.meta(seg.itag, self.origin.can_fetch(s)));
        let mut table_state = TableState::NotLoaded;
        let mut table = None;
        // At most two rounds: the policy may ask for the table once.
        for _ in 0..2 {
            let verdict = self
                .policy
                .found(seg, meta.as_ref(), table_state)
                .map_err(|e| MediaError::Policy(e.to_string()))?;
            match verdict {
                Verdict::Serve => {
                    let range = table
                        .as_deref()
                        .and_then(|t: &Vec<ByteRange>| t.get(seg.index as usize).copied());
                    return Ok(range);
                }
                Verdict::Silent(why) => {
                    tracing::debug!(segment = %seg.stream_id(), index = seg.index, ?why, "not serving");
                    return Ok(None);
                }
                Verdict::NeedIndex => {
                    let Some(s) = stream.as_ref() else {
                        return Ok(None);
                    };
                    table_state = match self.table(&seg.vid, seg.itag, s).await {
                        Ok(t) => {
                            let state = TableState::Loaded(SegmentLookup {
                                count: u32::try_from(t.len()).unwrap_or(u32::MAX),
                                range: t.get(seg.index as usize).copied(),
                            });
                            table = Some(t);
                            state
                        }
                        Err(e) => {
                            tracing::warn!(segment = %seg.stream_id(), error = %e, "segment table unavailable");
                            TableState::Failed
                        }
                    };
                }
            }
        }
        Ok(None)
    }

    /// The bytes of a segment the node serves.
    pub async fn segment(&self, seg: &SegmentRef) -> Result<Bytes, MediaError> {
        let range = self
            .find(seg)
            .await?
            .ok_or_else(|| MediaError::NoSegment(format!("{}|{}", seg.stream_id(), seg.index)))?;
        let stream = self.stream(&seg.vid, seg.itag).await?;
        self.bytes(&seg.vid, seg.itag, &stream, range).await
    }

    /// Cached videos and their loaded tables.
    pub fn videos(&self) -> Vec<CachedVideo> {
        let mut out: Vec<CachedVideo> = self
            .infos
            .iter()
            .map(|(id, info)| CachedVideo {
                id: id.to_string(),
                title: info.title.clone(),
                tables: Vec::new(),
                streams: info.streams.keys().cloned().collect(),
            })
            .collect();
        for (key, table) in self.tables.iter() {
            if let Some(v) = out.iter_mut().find(|v| v.id == key.0) {
                v.tables.push((key.1, table.len()));
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Cache sizes.
    pub fn summary(&self) -> CacheSummary {
        CacheSummary {
            videos: self.infos.entry_count(),
            tables: self.tables.entry_count(),
            segments: self.segments.entry_count(),
            segment_bytes: self.segments.weighted_size(),
            segment_budget: self.segments.policy().max_capacity().unwrap_or(0),
        }
    }
}
