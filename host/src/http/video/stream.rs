//! Media bytes: `/video/{id}/{itag}.mp4|webm` with `Range`, `/video/{id}/{itag}/{s}-{e}.ts`
//! and `/video/{id}.mp4|webm` (the best playable stream, `?prefer=`, `?download=1`).
//!
//! A range that lies inside a cache unit (the init range, the index range or a segment of
//! the stream's table) is served from the hub's byte cache, shared with the DataChannel
//! side and fetched once for concurrent requests; a small range is cached as it is; any
//! other range is streamed from the origin as it arrives, never buffered whole, and its
//! origin request ends when the client goes away.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};

use super::range::{self, RangeRequest};
use super::{CACHE_MEDIA, Ctx, VideoError, relay, stream_metas};
use crate::budget::Lease;
use crate::http::Shared;
use crate::media::{MediaHub, StreamItem};
use crate::policy::{ByteRange, Purpose};

/// Ranges up to this size that match no cache unit are cached as they are.
const SMALL_RANGE: u64 = 1 << 20;

/// `GET /video/{id}/{itag}.mp4|webm`.
pub(super) async fn stream(s: &Shared, ctx: &Ctx<'_>, itag: u32) -> Result<Response, VideoError> {
    let item = s.hub.stream(&ctx.vid, itag).await?;
    serve(s, ctx, itag, &item, None).await
}

/// `GET /video/{id}.mp4|webm?prefer=..&download=1`: the stream the policy picks.
pub(super) async fn auto(s: &Shared, ctx: &Ctx<'_>) -> Result<Response, VideoError> {
    let info = s.hub.info(&ctx.vid).await?;
    let prefer = match ctx.query.get("prefer") {
        Some(text) => s
            .policy
            .parse_preference(text)
            .await?
            .map_err(|e| VideoError::BadRequest(format!("prefer: {e}")))?,
        None => Vec::new(),
    };
    let metas = stream_metas(&s.hub, &info);
    let itag = s
        .policy
        .pick(Purpose::Progressive, &metas, &prefer)
        .await?
        .ok_or_else(|| VideoError::NotFound(format!("video {} has no playable stream", ctx.vid)))?;
    let item = info.streams.get(&itag.to_string()).ok_or_else(|| {
        VideoError::Internal(format!("the policy picked itag {itag}, not in the info"))
    })?;
    let disposition = (ctx.query.get("download") == Some("1")).then(|| {
        let ext = if item.mime.contains("mp4") {
            "mp4"
        } else {
            "webm"
        };
        content_disposition(&info.title, &ctx.vid, ext)
    });
    serve(s, ctx, itag, item, disposition).await
}

/// `GET /video/{id}/{itag}/{start}-{end}.ts`: exactly one inclusive range, `200`.
pub(super) async fn part(
    s: &Shared,
    ctx: &Ctx<'_>,
    itag: u32,
    range: ByteRange,
) -> Result<Response, VideoError> {
    let item = s.hub.stream(&ctx.vid, itag).await?;
    if let Some(len) = item.content_length()
        && range.end >= len
    {
        return Err(VideoError::Unsatisfiable { len });
    }
    let body = if ctx.head {
        Body::empty()
    } else {
        body(s, &ctx.vid, itag, &item, range, true).await?
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type(&item));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_MEDIA));
    Ok(resp)
}

/// Serves a stream with full `Range` semantics when its length is known; otherwise relays
/// the origin's answer to the client's `Range` (only possible with a stream URL).
async fn serve(
    s: &Shared,
    ctx: &Ctx<'_>,
    itag: u32,
    item: &StreamItem,
    disposition: Option<HeaderValue>,
) -> Result<Response, VideoError> {
    let Some(len) = item.content_length() else {
        let Some(url) = item.url.as_deref() else {
            return Err(VideoError::BadGateway(format!(
                "stream {}:{itag} has no length; ranges of it cannot be fetched through BASE_URL",
                ctx.vid
            )));
        };
        let url = url::Url::parse(url)
            .map_err(|e| VideoError::BadGateway(format!("bad stream URL: {e}")))?;
        let extra: Vec<_> = disposition
            .into_iter()
            .map(|v| (header::CONTENT_DISPOSITION, v))
            .collect();
        return relay::pipe(
            s.hub.origin().stream_client(),
            url,
            "stream origin",
            ctx.headers,
            ctx.head,
            CACHE_MEDIA,
            &extra,
        )
        .await;
    };
    let etag = etag(&ctx.vid, itag, len);
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type(item));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_MEDIA));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = disposition {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if none_match(ctx.headers, &etag) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(resp);
    }
    let range_header = ctx
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_holds(ctx.headers, &etag));
    let (range, ranged) = match range::resolve(range_header, len) {
        RangeRequest::Unsatisfiable => return Err(VideoError::Unsatisfiable { len }),
        RangeRequest::Full => (
            ByteRange {
                start: 0,
                end: len.saturating_sub(1),
            },
            false,
        ),
        RangeRequest::Partial(r) => (r, true),
    };
    let body_len = if len == 0 { 0 } else { range.len() };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    if ranged {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", range.start, range.end))
        {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    if !ctx.head && body_len > 0 {
        *resp.body_mut() = body(s, &ctx.vid, itag, item, range, ranged).await?;
    }
    Ok(resp)
}

/// A strong validator for a stream: the same id, itag and length are the same file.
fn etag(vid: &str, itag: u32, len: u64) -> String {
    format!("\"{vid}-{itag}-{len}\"")
}

/// `If-None-Match` lists our validator (or `*`).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// `Range` applies unless `If-Range` names another validator (or a date: we have none).
fn if_range_holds(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.trim() == etag),
    }
}

/// The stream's MIME type without parameters.
fn content_type(item: &StreamItem) -> HeaderValue {
    let essence = item.mime.split(';').next().unwrap_or_default().trim();
    HeaderValue::from_str(essence)
        .ok()
        .filter(|_| !essence.is_empty())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"))
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266, RFC 5987).
fn content_disposition(title: &str, vid: &str, ext: &str) -> HeaderValue {
    let clean: String = title
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .take(200)
        .collect();
    let name = match clean.trim() {
        "" => format!("{vid}.{ext}"),
        t => format!("{t}.{ext}"),
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // RFC 5987 attr-char.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Where the bytes of a range come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// This cache unit (init, index or segment), from the hub's byte cache; the range is a
    /// slice of it.
    Unit(ByteRange),
    /// A small range, cached as it is apart from the units.
    Small(ByteRange),
    /// Streamed from the origin.
    Origin,
}

/// Picks the source of `r`. With `ranged`, the stream's segment table is loaded (cached; a
/// stream the policy does not index has none) so that segment requests share the cache with
/// the DataChannel side.
async fn source(
    s: &Shared,
    vid: &str,
    itag: u32,
    item: &StreamItem,
    r: ByteRange,
    ranged: bool,
) -> Source {
    let limit = s.video.cache_unit_max;
    let meta = item.meta(itag, s.hub.origin().can_fetch(item));
    let mut units: Vec<ByteRange> = [meta.init_range, meta.index_range]
        .into_iter()
        .flatten()
        .collect();
    if ranged {
        let table = match s.hub.table(vid, itag, item).await {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::debug!(stream = %format!("{vid}:{itag}"), error = %e, "no segment table");
                None
            }
        };
        if let Some(t) = table {
            let k = t.partition_point(|seg| seg.end < r.start);
            units.extend(t.get(k).copied());
        }
    }
    if let Some(unit) = units
        .iter()
        .find(|u| u.start <= r.start && r.end <= u.end && u.len() <= limit)
    {
        return Source::Unit(*unit);
    }
    if r.len() <= SMALL_RANGE.min(limit) {
        return Source::Small(r);
    }
    Source::Origin
}

/// The body for exactly the bytes of `r`.
async fn body(
    s: &Shared,
    vid: &str,
    itag: u32,
    item: &StreamItem,
    r: ByteRange,
    ranged: bool,
) -> Result<Body, VideoError> {
    match source(s, vid, itag, item, r, ranged).await {
        source @ (Source::Unit(unit) | Source::Small(unit)) => {
            // The body keeps the whole unit alive until it is sent: that counts in flight.
            let held = s.hub.hold(unit.len()).await?;
            let bytes = match source {
                Source::Unit(_) => s.hub.bytes(vid, itag, item, unit).await?,
                _ => s.hub.small_range(vid, itag, item, unit).await?,
            };
            let from = usize::try_from(r.start - unit.start).unwrap_or(usize::MAX);
            let to = from.saturating_add(usize::try_from(r.len()).unwrap_or(usize::MAX));
            if to > bytes.len() {
                return Err(VideoError::Internal(format!(
                    "cached unit {}-{} holds {} bytes",
                    unit.start,
                    unit.end,
                    bytes.len()
                )));
            }
            Ok(Body::from_stream(Leased {
                bytes: bytes.slice(from..to),
                _lease: Lease::new(bytes, held),
            }))
        }
        Source::Origin => {
            let resp = s.hub.open_range(vid, itag, item, r).await?;
            Ok(Body::from_stream(Exact {
                inner: resp.bytes_stream().boxed(),
                left: r.len(),
                hub: s.hub.clone(),
                failed: false,
            }))
        }
    }
}

/// Cached bytes handed out in pieces of [`PIECE`], holding their room in flight until the
/// last piece is taken: the server takes the next piece only when the client has taken the
/// last, so a slow client holds the lease, not a copy the budget does not see.
struct Leased {
    bytes: Bytes,
    _lease: Lease,
}

/// The piece size of a [`Leased`] body.
const PIECE: usize = 64 << 10;

impl Stream for Leased {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.bytes.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.bytes.len().min(PIECE);
        Poll::Ready(Some(Ok(self.bytes.split_to(n))))
    }
}

/// An origin body that must be exactly `left` bytes long: a short, long or broken body
/// ends in an error, so the client sees a cut connection instead of wrong bytes.
struct Exact {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    left: u64,
    hub: Arc<MediaHub>,
    failed: bool,
}

impl Exact {
    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.failed = true;
        self.hub
            .stats()
            .origin_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "origin stream failed");
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Exact {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.left {
                    return self.fail(io::Error::other("origin sent more bytes than asked for"));
                }
                self.left -= n;
                self.hub
                    .stats()
                    .origin_bytes
                    .fetch_add(n, Ordering::Relaxed);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => self.fail(io::Error::other(format!(
                "origin body: {}",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "broken"
                }
            ))),
            Poll::Ready(None) if self.left > 0 => {
                let left = self.left;
                self.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("origin body ended {left} bytes early"),
                ))
            }
            Poll::Ready(None) => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn disposition_has_both_names() {
        let v = content_disposition("Ünïcode \"title\"/x", "vid", "mp4");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"_n_code _title__x.mp4\"; \
             filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22title%22_x.mp4"
        );
        let v = content_disposition("  ", "abcdef", "webm");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"abcdef.webm\"; filename*=UTF-8''abcdef.webm"
        );
    }

    #[test]
    fn validators() {
        let tag = etag("v", 18, 10);
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, &tag));
        assert!(if_range_holds(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"v-18-10\""),
        );
        assert!(none_match(&h, &tag));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"v-18-11\""));
        assert!(!if_range_holds(&h, &tag));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"v-18-10\""));
        assert!(if_range_holds(&h, &tag));
    }
}
