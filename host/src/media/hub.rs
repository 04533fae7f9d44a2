//! The media hub: VideoInfo, segment tables and segment bytes, cached and coalesced, and the
//! place where the policy's decisions about them are asked for and executed.
//!
//! Each cache rebuilds a missing entry with exactly one origin request while concurrent
//! callers wait for it (moka's `try_get_with`). Errors are not cached for long: a failed
//! info or table lookup is remembered for a few seconds to protect the origin, then retried.
//! Segment tables are the policy's output: a table built by a policy that has since been
//! swapped out is rebuilt by the new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;
use serde::Serialize;

use super::info::{StreamItem, VideoInfo};
use super::origin::{Origin, OriginError};
use super::youtube::{YouTube, keep_for};
use crate::budget::{Busy, Held, InFlight, Lease};
use crate::policy::{
    ByteRange, IndexInput, Policy, Request, SegmentRef, SendPlan, TableArg, Verdict,
};

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
    /// The policy has no segment table for this stream.
    #[error("stream {stream} has no segment table: {msg}")]
    Unindexable {
        /// `VID:ITAG`.
        stream: String,
        /// Why.
        msg: String,
    },
    /// The policy rejected the index.
    #[error("index of {stream}: {msg}")]
    Index {
        /// `VID:ITAG`.
        stream: String,
        /// Why.
        msg: String,
    },
    /// The policy does not accept this video id (checked before anything is fetched).
    #[error("the policy does not accept video id {0:?}")]
    Refused(String),
    /// The policy runtime failed.
    #[error("policy: {0}")]
    Policy(String),
    /// No room in the memory budget for more bytes in flight.
    #[error(transparent)]
    Busy(#[from] Busy),
}

/// Cache sizes and lifetimes.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long VideoInfo stays cached (direct mode: until a little before its URLs expire).
    pub info_ttl: Duration,
    /// How long segment tables stay cached.
    pub table_ttl: Duration,
    /// How long segment bytes stay cached.
    pub segment_ttl: Duration,
    /// Byte budget of the segment cache.
    pub segment_bytes: u64,
    /// How long a failed info or table lookup is remembered.
    pub failure_ttl: Duration,
    /// Byte budget of the segment-table cache (a table of n segments weighs about 16n bytes).
    pub table_bytes: u64,
    /// How long "no such video" (origin 404 or 204, or a video YouTube will not play) is
    /// remembered.
    pub unknown_ttl: Duration,
    /// Info requests to the origin at once; more wait. Bounds what peers asking for many
    /// unknown videos can make the origin do.
    pub max_info_fetches: usize,
    /// Byte budget of the VideoInfo cache (weighed by their JSON size).
    pub info_bytes: u64,
    /// Byte budget of the cache of small HTTP ranges that are not a whole segment, kept
    /// apart so that they never evict segments.
    pub range_bytes: u64,
    /// Byte budget of the YouTube response cache (direct mode).
    pub youtube_bytes: u64,
    /// Segment bytes that sends in progress (peers, HTTP clients) may hold at once.
    pub in_flight_bytes: u64,
    /// How long a send waits for room in flight before it gives up.
    pub in_flight_wait: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            info_ttl: Duration::from_secs(3600),
            table_ttl: Duration::from_secs(3600),
            segment_ttl: Duration::from_secs(120),
            segment_bytes: 64 << 20,
            failure_ttl: Duration::from_secs(5),
            table_bytes: 16 << 20,
            unknown_ttl: Duration::from_secs(60),
            max_info_fetches: 16,
            info_bytes: 8 << 20,
            range_bytes: 8 << 20,
            youtube_bytes: 8 << 20,
            in_flight_bytes: 32 << 20,
            in_flight_wait: Duration::from_secs(10),
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
    /// Segment-table lookups answered by a remembered failure.
    pub table_failures_remembered: AtomicU64,
    /// Segment byte lookups served from cache.
    pub segment_hits: AtomicU64,
    /// Segment byte lookups that went to the origin (or joined a fetch in flight).
    pub segment_misses: AtomicU64,
    /// Small HTTP range lookups served from their cache.
    pub range_hits: AtomicU64,
    /// Small HTTP range lookups that went to the origin.
    pub range_misses: AtomicU64,
    /// Sends that gave up waiting for room in flight.
    pub in_flight_busy: AtomicU64,
    /// Requests sent to the origin.
    pub origin_requests: AtomicU64,
    /// Origin requests that failed.
    pub origin_errors: AtomicU64,
    /// Bytes received from the origin.
    pub origin_bytes: AtomicU64,
}

type TableKey = (String, u32);
type SegmentKey = (String, u32, u64, u64);

/// A segment table and the policy generation that built it.
#[derive(Debug)]
struct Table {
    generation: u64,
    ranges: Arc<Vec<ByteRange>>,
}

/// What the node does about a query or resolve, as the policy decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send this text to the peer (a query's `found`).
    Reply(String),
    /// Send these bytes of the stream, framed as planned.
    Send(SendPlan),
    /// Say nothing; the reason is for logs.
    Silent(String),
}

/// VideoInfo, segment tables and bytes for the DataChannel protocol and the HTTP API.
pub struct MediaHub {
    policy: Arc<Policy>,
    origin: Origin,
    /// Direct mode (no BASE_URL): info from YouTube through the policy's parser.
    youtube: Option<YouTube>,
    infos: Cache<String, Arc<VideoInfo>>,
    failures: Cache<String, MediaError>,
    unknown: Cache<String, MediaError>,
    info_fetches: tokio::sync::Semaphore,
    tables: Cache<TableKey, Arc<Table>>,
    table_failures: Cache<(TableKey, u64), MediaError>,
    segments: Cache<SegmentKey, Bytes>,
    ranges: Cache<SegmentKey, Bytes>,
    in_flight: InFlight,
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
    /// Bytes held by the VideoInfo cache (as weighed).
    pub info_bytes: u64,
    /// Bytes held by the segment-table cache.
    pub table_bytes: u64,
    /// Bytes held by the small-range cache.
    pub range_bytes: u64,
    /// Segment bytes held by sends in progress.
    pub in_flight_bytes: u64,
    /// What sends in progress may hold.
    pub in_flight_budget: u64,
}

/// Infos live for `info_ttl`, or in direct mode until a little before their URLs expire.
struct InfoExpiry(Duration);

impl moka::Expiry<String, Arc<VideoInfo>> for InfoExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        info: &Arc<VideoInfo>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(info.expires_in.map_or(self.0, keep_for))
    }
}

/// An info weighs its JSON size: what it holds is mostly strings (URLs, titles).
fn info_weight(_: &String, info: &Arc<VideoInfo>) -> u32 {
    let json = serde_json::to_vec(&**info).map_or(64 << 10, |v| v.len());
    u32::try_from(json.saturating_add(256)).unwrap_or(u32::MAX)
}

fn weight(_: &SegmentKey, v: &Bytes) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

fn table_weight(_: &TableKey, t: &Arc<Table>) -> u32 {
    let bytes = t
        .ranges
        .len()
        .saturating_mul(std::mem::size_of::<ByteRange>());
    u32::try_from(bytes.saturating_add(128)).unwrap_or(u32::MAX)
}

impl MediaHub {
    /// A hub over `origin`, deciding through `policy`. Without a BASE_URL the info comes
    /// from YouTube at `youtube_url`, through the policy's parser.
    pub fn new(
        policy: Arc<Policy>,
        origin: Origin,
        youtube_url: url::Url,
        config: &HubConfig,
    ) -> Self {
        let youtube = origin
            .base_url()
            .is_none()
            .then(|| YouTube::new(origin.client().clone(), youtube_url, config.youtube_bytes));
        MediaHub {
            policy,
            origin,
            youtube,
            infos: Cache::builder()
                .max_capacity(config.info_bytes)
                .weigher(info_weight)
                .expire_after(InfoExpiry(config.info_ttl))
                .build(),
            failures: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.failure_ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(20_000)
                .time_to_live(config.unknown_ttl)
                .build(),
            info_fetches: tokio::sync::Semaphore::new(config.max_info_fetches.max(1)),
            tables: Cache::builder()
                .max_capacity(config.table_bytes)
                .weigher(table_weight)
                .time_to_live(config.table_ttl)
                .build(),
            table_failures: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.failure_ttl)
                .build(),
            segments: Cache::builder()
                .max_capacity(config.segment_bytes)
                .weigher(weight)
                .time_to_live(config.segment_ttl)
                .build(),
            ranges: Cache::builder()
                .max_capacity(config.range_bytes)
                .weigher(weight)
                .time_to_live(config.segment_ttl)
                .build(),
            in_flight: InFlight::new(config.in_flight_bytes, config.in_flight_wait),
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
        // The policy's id rule (an allow-list, say) gates every fetch: one guest call, on
        // misses only, so a warm decision stays at decode + decide.
        match self.policy.valid_video_id(vid).await {
            Ok(true) => {}
            Ok(false) => return Err(MediaError::Refused(vid.to_owned())),
            Err(e) => return Err(MediaError::Policy(e.to_string())),
        }
        self.count(&self.stats.info_misses);
        let result =
            self.infos
                .try_get_with(vid.to_owned(), async {
                    // Coalesced waiters share this one fetch; only the fetch takes a permit.
                    let _permit = self.info_fetches.acquire().await.map_err(|_| {
                        OriginError::Unavailable("media hub is shutting down".into())
                    })?;
                    let r = match &self.youtube {
                        Some(yt) => yt.info(&self.policy, vid).await,
                        None => self.origin.video_info(vid).await,
                    };
                    self.origin_result(&r, |_| 0);
                    r.map(Arc::new)
                })
                .await;
        match result {
            Ok(info) => Ok(info),
            Err(e) => {
                let unknown = e.is_lasting();
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

    /// The segment table of a stream, cached; one index fetch for concurrent misses. A
    /// failure is remembered for `failure_ttl`, a table built by an older policy is rebuilt.
    pub async fn table(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
    ) -> Result<Arc<Vec<ByteRange>>, MediaError> {
        let generation = self.policy.generation();
        let key = (vid.to_owned(), itag);
        if let Some(t) = self.tables.get(&key).await {
            if t.generation == generation {
                self.count(&self.stats.table_hits);
                return Ok(t.ranges.clone());
            }
            self.tables.invalidate(&key).await;
        }
        let failure_key = (key.clone(), generation);
        if let Some(e) = self.table_failures.get(&failure_key).await {
            self.count(&self.stats.table_failures_remembered);
            return Err(e);
        }
        self.count(&self.stats.table_misses);
        let loaded = self
            .tables
            .try_get_with(key, async {
                let ranges = self.load_table(vid, itag, stream).await?;
                Ok::<_, MediaError>(Arc::new(Table { generation, ranges }))
            })
            .await;
        match loaded {
            Ok(t) => Ok(t.ranges.clone()),
            Err(e) => {
                let e = (*e).clone();
                self.table_failures.insert(failure_key, e.clone()).await;
                Err(e)
            }
        }
    }

    /// Asks the policy which bytes hold the index, fetches them and has the policy parse them.
    async fn load_table(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
    ) -> Result<Arc<Vec<ByteRange>>, MediaError> {
        let stream_id = format!("{vid}:{itag}");
        let meta = stream.meta(itag, self.origin.can_fetch(stream));
        let fetched = match self
            .policy
            .index_source(&meta)
            .await
            .map_err(policy_error)?
        {
            Ok(range) => range,
            Err(why) => {
                return Err(MediaError::Unindexable {
                    stream: stream_id,
                    msg: format!("{why}"),
                });
            }
        };
        let bytes = self.fetch(vid, itag, stream, fetched).await?;
        let input = IndexInput {
            meta,
            fetched,
            bytes: bytes.to_vec(),
        };
        match self
            .policy
            .parse_index(&input)
            .await
            .map_err(policy_error)?
        {
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
        match r {
            Err(e) if self.url_refused(&e) => {
                let fresh = self.reparse(vid, itag, stream).await?;
                let r = self.origin.fetch_range(vid, itag, &fresh, range).await;
                self.origin_result(&r, Bytes::len);
                Ok(r?)
            }
            r => Ok(r?),
        }
    }

    /// Starts streaming exactly the bytes of `range` (for the HTTP routes); in direct mode a
    /// refused URL makes one re-parse, as in [`MediaHub::bytes`].
    pub async fn open_range(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<reqwest::Response, MediaError> {
        self.count(&self.stats.origin_requests);
        let r = self.origin.open_range(vid, itag, stream, range).await;
        let r = match r {
            Err(e) if self.url_refused(&e) => {
                self.count(&self.stats.origin_errors);
                let fresh = self.reparse(vid, itag, stream).await?;
                self.count(&self.stats.origin_requests);
                self.origin.open_range(vid, itag, &fresh, range).await
            }
            r => r,
        };
        if r.is_err() {
            self.count(&self.stats.origin_errors);
        }
        Ok(r?)
    }

    /// A YouTube media URL answered 403 or 410: it expired or was revoked before the info
    /// did. Only in direct mode, where the info (and its URLs) are ours to refresh.
    fn url_refused(&self, e: &OriginError) -> bool {
        self.youtube.is_some()
            && matches!(
                e,
                OriginError::Status {
                    status: 403 | 410,
                    ..
                }
            )
    }

    /// Parses the video again (once: the cached info is dropped only if it still holds the
    /// refused URL, so concurrent failures share one re-parse) and returns the stream anew.
    async fn reparse(
        &self,
        vid: &str,
        itag: u32,
        refused: &StreamItem,
    ) -> Result<StreamItem, MediaError> {
        if let Some(info) = self.infos.get(vid).await
            && info.streams.get(&itag.to_string()).map(|s| &s.url) == Some(&refused.url)
        {
            self.infos.invalidate(vid).await;
        }
        tracing::info!(stream = %format!("{vid}:{itag}"), "media URL refused; parsing the video again");
        let fresh = self.stream(vid, itag).await?;
        if fresh.url == refused.url {
            return Err(MediaError::Origin(OriginError::Unavailable(format!(
                "the media URL of {vid}:{itag} was refused and parsing again gave the same URL"
            ))));
        }
        Ok(fresh)
    }

    /// Bytes of a range of a stream (a segment, an init or index range), cached by range;
    /// one origin request for concurrent misses.
    pub async fn bytes(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<Bytes, MediaError> {
        let s = &self.stats;
        self.cached(
            &self.segments,
            (&s.segment_hits, &s.segment_misses),
            vid,
            itag,
            stream,
            range,
        )
        .await
    }

    /// Bytes of a small HTTP range that is not a whole segment: cached apart from segments,
    /// so that clients asking for many odd ranges never evict what peers are being served.
    pub async fn small_range(
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
        let s = &self.stats;
        self.cached(
            &self.ranges,
            (&s.range_hits, &s.range_misses),
            vid,
            itag,
            stream,
            range,
        )
        .await
    }

    /// `range` of a stream from `cache`, or fetched into it (one origin request for
    /// concurrent misses), counted as a hit or a miss.
    async fn cached(
        &self,
        cache: &Cache<SegmentKey, Bytes>,
        (hits, misses): (&AtomicU64, &AtomicU64),
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<Bytes, MediaError> {
        let key = (vid.to_owned(), itag, range.start, range.end);
        if let Some(b) = cache.get(&key).await {
            self.count(hits);
            return Ok(b);
        }
        self.count(misses);
        cache
            .try_get_with(key, self.fetch(vid, itag, stream, range))
            .await
            .map_err(|e| (*e).clone())
    }

    /// Room in flight for `len` bytes, waited for up to the configured wait.
    pub async fn hold(&self, len: u64) -> Result<Held, MediaError> {
        self.in_flight.hold(len).await.map_err(|e| self.busy(e))
    }

    /// No room in flight came: counted, and said as [`MediaError::Busy`].
    fn busy(&self, e: Busy) -> MediaError {
        self.count(&self.stats.in_flight_busy);
        MediaError::Busy(e)
    }

    /// The policy's decision on a query or resolve: the video's info and the stream's
    /// segment table are loaded as the policy asks. With both cached this is one guest call.
    /// Failures (origin, policy) end in silence, logged.
    pub async fn decide(&self, request: &Request) -> Decision {
        let seg = &request.segment;
        let stream = match self.stream(&seg.vid, seg.itag).await {
            Ok(s) => Some(s),
            Err(MediaError::NoStream { .. } | MediaError::Refused(_)) => None,
            Err(e) => return Decision::Silent(e.to_string()),
        };
        let meta = stream
            .as_ref()
            .map(|s| s.meta(seg.itag, self.origin.can_fetch(s)));
        let cached = match &stream {
            Some(_) => self.cached_table(&seg.vid, seg.itag).await,
            None => None,
        };
        let mut table: Option<Result<Arc<Vec<ByteRange>>, MediaError>> = cached;
        // At most two rounds: the policy may ask for the table once.
        for _ in 0..2 {
            let arg = match &table {
                None => TableArg::NotLoaded,
                Some(Ok(t)) => TableArg::Loaded(t),
                Some(Err(_)) => TableArg::Failed,
            };
            let verdict = match self.policy.decide(request, meta.as_ref(), arg).await {
                Ok(v) => v,
                Err(e) => return Decision::Silent(format!("policy: {e}")),
            };
            match verdict {
                Verdict::Reply(text) => return Decision::Reply(text),
                Verdict::Send(plan) => return Decision::Send(plan),
                Verdict::Silent(why) => return Decision::Silent(why.to_string()),
                Verdict::NeedIndex => {
                    let Some(s) = stream.as_ref() else {
                        return Decision::Silent(
                            "the policy wants the index of an unknown stream".into(),
                        );
                    };
                    let loaded = self.table(&seg.vid, seg.itag, s).await;
                    if let Err(e) = &loaded {
                        tracing::debug!(segment = %seg.stream_id(), error = %e, "segment table unavailable");
                    }
                    table = Some(loaded);
                }
            }
        }
        Decision::Silent("no decision".into())
    }

    /// The stream's table or its remembered failure, if either is at hand: no fetch.
    async fn cached_table(
        &self,
        vid: &str,
        itag: u32,
    ) -> Option<Result<Arc<Vec<ByteRange>>, MediaError>> {
        let generation = self.policy.generation();
        let key = (vid.to_owned(), itag);
        if let Some(t) = self.tables.get(&key).await
            && t.generation == generation
        {
            self.count(&self.stats.table_hits);
            return Some(Ok(t.ranges.clone()));
        }
        let e = self.table_failures.get(&(key, generation)).await?;
        self.count(&self.stats.table_failures_remembered);
        Some(Err(e))
    }

    /// The bytes of `range` of a segment's stream, cached and coalesced, counted in flight
    /// until the lease is dropped (room is taken before the bytes).
    pub async fn segment_lease(
        &self,
        seg: &SegmentRef,
        range: ByteRange,
    ) -> Result<Lease, MediaError> {
        // Sends of one segment range share its cached buffer, so they share one hold.
        let key = format!("{}/{}/{}-{}", seg.vid, seg.itag, range.start, range.end);
        let held = self
            .in_flight
            .hold_shared(&key, range.len())
            .await
            .map_err(|e| self.busy(e))?;
        let stream = self.stream(&seg.vid, seg.itag).await?;
        let bytes = self.bytes(&seg.vid, seg.itag, &stream, range).await?;
        Ok(Lease::new(bytes, held))
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
                v.tables.push((key.1, table.ranges.len()));
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Lets the caches finish their pending evictions, so that [`MediaHub::summary`] is
    /// exact (moka applies them lazily).
    pub async fn run_pending_tasks(&self) {
        self.infos.run_pending_tasks().await;
        self.tables.run_pending_tasks().await;
        self.segments.run_pending_tasks().await;
        self.ranges.run_pending_tasks().await;
    }

    /// Cache sizes.
    pub fn summary(&self) -> CacheSummary {
        CacheSummary {
            videos: self.infos.entry_count(),
            tables: self.tables.entry_count(),
            segments: self.segments.entry_count(),
            segment_bytes: self.segments.weighted_size(),
            segment_budget: self.segments.policy().max_capacity().unwrap_or(0),
            info_bytes: self.infos.weighted_size(),
            table_bytes: self.tables.weighted_size(),
            range_bytes: self.ranges.weighted_size(),
            in_flight_bytes: self.in_flight.held(),
            in_flight_budget: self.in_flight.capacity(),
        }
    }
}

fn policy_error(e: crate::policy::PolicyError) -> MediaError {
    MediaError::Policy(e.to_string())
}
