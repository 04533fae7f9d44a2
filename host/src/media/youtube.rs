//! Direct mode (no `BASE_URL`): a video's info from YouTube, through the policy's sans-I/O
//! parser (`interface youtube`). The host executes the requests the parser asks for and
//! nothing more — only under `YOUTUBE_URL`, through `VIDEO_PROXY`, bounded in time and size,
//! cacheable GETs (player scripts) cached and shared — and never reads YouTube itself: every
//! client identity, URL and field name is the policy's.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use moka::Expiry;
use moka::future::Cache;
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use super::info::{Caption, RangeItem, StreamItem, VideoInfo};
use super::origin::{OriginError, error_chain, redact};
use crate::policy::{
    ByteRange, LogLevel, Policy, PolicyError, YoutubeError, YtHttpRequest, YtHttpResponse, YtJob,
    YtMethod, YtStep, YtVideoInfo,
};

/// Most requests one parse may make (visitor id, player, watch page, player script, …).
const MAX_STEPS: usize = 8;
/// Largest response handed to the parser (a player script is about 3 MB).
const MAX_RESPONSE: usize = 8 << 20;
/// Longest a cacheable GET is kept, whatever the parser asks.
const CACHE_MAX: Duration = Duration::from_secs(24 * 3600);

/// A cached GET response.
#[derive(Debug, Clone)]
struct Cached {
    status: u16,
    body: Bytes,
    ttl: Duration,
}

/// Each cached response lives as long as the parser said it may.
struct CacheFor;

impl Expiry<String, Cached> for CacheFor {
    fn expire_after_create(&self, _: &String, v: &Cached, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Executes the parser's requests.
pub struct YouTube {
    client: reqwest::Client,
    base: Url,
    cache: Cache<String, Cached>,
}

impl std::fmt::Debug for YouTube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YouTube").field("base", &self.base).finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A request of the parser's that got no response: the words the parser is given, and
/// whether it timed out (then the node answers 504, not 502).
#[derive(Debug, Clone)]
struct NoResponse {
    text: String,
    timed_out: bool,
}

impl From<String> for NoResponse {
    fn from(text: String) -> Self {
        NoResponse {
            text,
            timed_out: false,
        }
    }
}

impl NoResponse {
    fn transport(e: reqwest::Error) -> Self {
        NoResponse {
            text: error_chain(&e),
            timed_out: e.is_timeout(),
        }
    }
}

impl YouTube {
    /// Requests go through `client` (`VIDEO_PROXY`, `ORIGIN_TIMEOUT`) to `base` (`YOUTUBE_URL`).
    /// Responses are cached up to `cache_bytes`.
    pub fn new(client: reqwest::Client, base: Url, cache_bytes: u64) -> Self {
        YouTube {
            client,
            base,
            cache: Cache::builder()
                .max_capacity(cache_bytes)
                .weigher(|_: &String, v: &Cached| {
                    u32::try_from(v.body.len().saturating_add(64)).unwrap_or(u32::MAX)
                })
                .expire_after(CacheFor)
                .build(),
        }
    }

    /// The info of `vid`, as the policy's parser makes it from YouTube's answers.
    ///
    /// # Errors
    /// [`OriginError::YouTube`] with the parser's typed reason (not playable, unreadable
    /// response, unknown cipher, failed request); [`OriginError::Unavailable`] if the running
    /// policy has no parser or the parser misbehaves.
    pub async fn info(&self, policy: &Policy, vid: &str) -> Result<VideoInfo, OriginError> {
        let base = self.base.as_str().trim_end_matches('/').to_owned();
        let job = YtJob {
            video_id: vid.to_owned(),
            youtube_url: base,
            now_unix: unix_now(),
        };
        let mut step = policy.youtube_start(&job).await.map_err(unavailable)?;
        // The last request that timed out: a parse that fails on it is a gateway timeout.
        let mut timed_out: Option<String> = None;
        for _ in 0..MAX_STEPS {
            match step {
                YtStep::Done(info) => return Ok(self.convert(policy, info)),
                YtStep::Failed(YoutubeError::Http(_)) if timed_out.is_some() => {
                    let url = timed_out.unwrap_or_default();
                    return Err(OriginError::Timeout { url });
                }
                YtStep::Failed(e) => return Err(OriginError::YouTube(e)),
                YtStep::Fetch(f) => {
                    let response = match self.execute(&f.request).await {
                        Ok(r) => {
                            timed_out = None;
                            Ok(r)
                        }
                        Err(e) => {
                            tracing::debug!(label = %f.request.label, error = %e.text, "YouTube request failed");
                            timed_out = e.timed_out.then(|| {
                                Url::parse(&f.request.url)
                                    .map_or_else(|_| f.request.label.clone(), |u| redact(&u))
                            });
                            Err(e.text)
                        }
                    };
                    step = policy
                        .youtube_resume(&f.state, &response)
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        Err(OriginError::Unavailable(format!(
            "the YouTube parser asked for more than {MAX_STEPS} requests for {vid}"
        )))
    }

    /// Makes one request of the parser's; `Err` is a transport failure.
    async fn execute(&self, r: &YtHttpRequest) -> Result<YtHttpResponse, NoResponse> {
        let url = Url::parse(&r.url).map_err(|e| NoResponse::from(format!("bad URL: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(NoResponse::from(format!(
                "refused: {} is not under YOUTUBE_URL",
                redact(&url)
            )));
        }
        let cacheable = r.method == YtMethod::Get && r.cache_secs > 0;
        let got = if cacheable {
            let ttl = Duration::from_secs(u64::from(r.cache_secs)).min(CACHE_MAX);
            // Concurrent parses share one fetch; only a 200 is kept.
            let key = url.to_string();
            match self
                .cache
                .try_get_with(key, async {
                    let (status, body) = self.send(r, url.clone()).await.map_err(Err)?;
                    if status == 200 {
                        Ok(Cached { status, body, ttl })
                    } else {
                        Err(Ok((status, body)))
                    }
                })
                .await
            {
                Ok(c) => Ok((c.status, c.body)),
                Err(e) => (*e).clone(),
            }
        } else {
            self.send(r, url).await
        };
        got.map(|(status, body)| YtHttpResponse {
            status,
            body: body.to_vec(),
        })
    }

    async fn send(&self, r: &YtHttpRequest, url: Url) -> Result<(u16, Bytes), NoResponse> {
        let mut rb = match r.method {
            YtMethod::Get => self.client.get(url.clone()),
            YtMethod::Post => self.client.post(url.clone()),
        };
        for (name, value) in &r.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| NoResponse::from(format!("bad header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| NoResponse::from(format!("bad value of header {name}")))?;
            rb = rb.header(name, value);
        }
        if let Some(body) = &r.body {
            rb = rb.body(body.clone());
        }
        let mut resp = rb.send().await.map_err(NoResponse::transport)?;
        let status = resp.status().as_u16();
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(NoResponse::transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(NoResponse::from(format!(
                    "{} answered more than {MAX_RESPONSE} bytes",
                    redact(&url)
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body.freeze()))
    }

    /// The parser's info in the VideoInfo shape users know (numbers as strings, streams by
    /// itag, missing ranges as `{}`); its warnings go to the policy's (deduplicated) log.
    fn convert(&self, policy: &Policy, i: YtVideoInfo) -> VideoInfo {
        for w in &i.warnings {
            policy.log().write(LogLevel::Warn, w);
        }
        let headers: Arc<[(String, String)]> = i.media_headers.into();
        let range = |r: Option<ByteRange>| {
            Some(match r {
                Some(r) => RangeItem {
                    start: r.start.to_string(),
                    end: r.end.to_string(),
                },
                None => RangeItem {
                    start: String::new(),
                    end: String::new(),
                },
            })
        };
        let streams = i
            .streams
            .into_iter()
            .map(|s| {
                let item = StreamItem {
                    quality: s.quality,
                    mime: s.mime,
                    url: Some(s.url),
                    itag: s.itag.to_string(),
                    len: s.content_length.map(|n| n.to_string()).unwrap_or_default(),
                    init_range: range(s.init_range),
                    index_range: range(s.index_range),
                    media_headers: headers.clone(),
                };
                (s.itag.to_string(), item)
            })
            .collect();
        VideoInfo {
            id: i.id,
            title: i.title,
            duration: i.duration,
            author: i.author,
            captions: i
                .captions
                .into_iter()
                .map(|c| Caption {
                    url: Some(c.url),
                    language: c.language,
                })
                .collect(),
            streams,
            expires_in: i.expires_in_secs.map(Duration::from_secs),
        }
    }
}

fn unavailable(e: PolicyError) -> OriginError {
    OriginError::Unavailable(match e {
        PolicyError::Missing(what) => {
            format!("no BASE_URL, and the running policy has no {what}")
        }
        other => other.to_string(),
    })
}

/// How long an info with URLs that expire in `expires_in` is kept: until a tenth of the
/// time (at least a minute, at most ten) before they expire, and never less than 30 s.
pub fn keep_for(expires_in: Duration) -> Duration {
    let margin = (expires_in / 10).clamp(Duration::from_secs(60), Duration::from_secs(600));
    expires_in
        .saturating_sub(margin)
        .max(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infos_are_refreshed_before_their_urls_expire() {
        let h = |s| Duration::from_secs(s);
        assert_eq!(keep_for(h(21_540)), h(21_540 - 600));
        assert_eq!(keep_for(h(3_000)), h(2_700));
        assert_eq!(keep_for(h(300)), h(240));
        assert_eq!(keep_for(h(20)), h(30));
    }
}
