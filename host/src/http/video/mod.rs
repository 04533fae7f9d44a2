//! The videoproxy-compatible routes under `/video` (SPEC §7).
//!
//! Paths are parsed by [`path`], ids de-obfuscated by [`ids`] (`CODE_PASS`), checked by the
//! policy, and in BASE_URL mode against the origin's allow-list; then each route has its own
//! module. Every choice about ids and streams (which are valid, which itag, what has a segment
//! table) is the policy's.

mod api;
mod captions;
mod error;
pub mod ids;
mod image;
mod info;
mod mpd;
pub mod path;
pub mod range;
mod relay;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use moka::future::Cache;
use url::Url;

pub use error::VideoError;
use path::{InfoFormat, VideoPath};

use super::AppState;
use crate::config::Config;
use crate::media::{MediaError, MediaHub, OriginError, VideoInfo, http_client};
use crate::policy::StreamMeta;

/// `Cache-Control` of the JSON, MPD, caption and data-API answers (videoproxy's value).
const CACHE_DOCUMENT: &str = "public,max-age=864000";
/// `Cache-Control` of streamed media and images (videoproxy's value).
const CACHE_MEDIA: &str = "public, max-age=864000";
/// How long an allow-list refusal is remembered (videoproxy: an hour).
const DENIED_TTL: Duration = Duration::from_secs(3600);
/// How long data-API answers and captions stay cached (videoproxy: a day).
const DOCUMENT_TTL: Duration = Duration::from_secs(86_400);
/// Largest data-API answer or caption track accepted.
const MAX_DOCUMENT: usize = 8 << 20;

/// Where thumbnails and the YouTube Data API are fetched from (`YOUTUBE_IMAGE_URL`,
/// `YOUTUBE_API_URL`); Google's hosts by default. Other values point the node at a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Data API base; requests go to `{base}/v3/{resource}`.
    pub data_api: Url,
    /// Thumbnail base; requests go to `{base}/vi/{id}/mqdefault.jpg` and
    /// `{base}/vi_webp/{id}/mqdefault.webp`.
    pub images: Url,
}

impl Endpoints {
    /// The endpoints of the configuration (`YOUTUBE_API_URL`, `YOUTUBE_IMAGE_URL`).
    pub fn from_config(config: &Config) -> Self {
        Endpoints {
            data_api: config.youtube_api_url.clone(),
            images: config.youtube_image_url.clone(),
        }
    }

    /// `{base}/{tail}` with exactly one slash between.
    fn join(base: &Url, tail: &str) -> Result<Url, VideoError> {
        let text = format!("{}/{tail}", base.as_str().trim_end_matches('/'));
        Url::parse(&text).map_err(|e| VideoError::Internal(format!("{text}: {e}")))
    }
}

/// A cached small document: a data-API answer or a caption track.
#[derive(Debug)]
struct Document {
    content_type: Option<axum::http::HeaderValue>,
    body: Bytes,
}

fn document_weight<K>(_: &K, v: &Arc<Document>) -> u32 {
    u32::try_from(v.body.len().saturating_add(256)).unwrap_or(u32::MAX)
}

/// Clients, caches and endpoints of the `/video` routes.
pub struct VideoApi {
    endpoints: Endpoints,
    /// `IMAGE_PROXY`: thumbnails.
    image_client: reqwest::Client,
    /// `API_PROXY`: the data API.
    api_client: reqwest::Client,
    denied: Cache<String, ()>,
    documents: Cache<String, Arc<Document>>,
    /// Largest cache unit (segment, init or index range) served through the byte cache.
    cache_unit_max: u64,
}

impl std::fmt::Debug for VideoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoApi")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl VideoApi {
    /// Builds the clients (through `IMAGE_PROXY`, `API_PROXY`; captions use the origin's
    /// `VIDEO_PROXY` client) and caches.
    pub fn new(config: &Config) -> Result<Self, String> {
        let timeout = config.origin_timeout;
        Ok(VideoApi {
            endpoints: Endpoints::from_config(config),
            image_client: http_client(config.image_proxy.as_ref(), timeout)
                .map_err(|e| format!("IMAGE_PROXY client: {e}"))?,
            api_client: http_client(config.api_proxy.as_ref(), timeout)
                .map_err(|e| format!("API_PROXY client: {e}"))?,
            denied: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(DENIED_TTL)
                .build(),
            documents: Cache::builder()
                .max_capacity(config.memory.documents)
                .weigher(document_weight)
                .time_to_live(DOCUMENT_TTL)
                .build(),
            cache_unit_max: (config.memory.segments / 4).min(16 << 20),
        })
    }

    /// The endpoints in use.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The BASE_URL allow-list (videoproxy `InWhiteList`): `BASE_URL/{vid}.json` answering
    /// 204 refuses the video, 200 or 500 allows it. Refusals are remembered for an hour;
    /// an allowed video's info is in the hub's cache anyway. Without BASE_URL all is allowed.
    async fn check_allowed(&self, hub: &MediaHub, vid: &str) -> Result<(), VideoError> {
        if hub.origin().base_url().is_none() {
            return Ok(());
        }
        if self.denied.contains_key(vid) {
            return Err(VideoError::Denied);
        }
        match hub.info(vid).await {
            Ok(_) => Ok(()),
            Err(MediaError::Origin(OriginError::Denied(_))) => {
                self.denied.insert(vid.to_owned(), ()).await;
                Err(VideoError::Denied)
            }
            // Allowed, but the origin cannot parse it: the route fails with the origin's error.
            Err(MediaError::Origin(OriginError::Status { status: 500, .. })) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The query string as name/value pairs, decoded.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Query(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// One request to a video route, after id decoding.
pub(crate) struct Ctx<'a> {
    /// The (decoded) video id.
    vid: String,
    /// The id as written in the URL (relative URLs in the MPD keep it).
    path_id: &'a str,
    query: &'a Query,
    headers: &'a HeaderMap,
    /// A `HEAD` request: headers only, nothing fetched that is not needed for them.
    head: bool,
}

/// The policy's view of every stream of a video.
fn stream_metas(hub: &MediaHub, info: &VideoInfo) -> Vec<StreamMeta> {
    info.streams
        .iter()
        .filter_map(|(key, item)| {
            let itag = key.parse().ok()?;
            Some(item.meta(itag, hub.origin().can_fetch(item)))
        })
        .collect()
}

/// `GET|HEAD /video/...`: every local video route.
pub(super) async fn handle(State(s): State<AppState>, req: Request) -> Response {
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        return VideoError::Method.into_response();
    }
    let uri = req.uri().clone();
    let rest = uri.path().strip_prefix("/video/").unwrap_or_default();
    let query = Query::parse(uri.query());
    let route = match path::parse(rest) {
        Ok(route) => route,
        Err(e @ path::PathError::NoRoute(_)) => {
            return VideoError::NotFound(e.to_string()).into_response();
        }
        Err(e) => return VideoError::BadRequest(e.to_string()).into_response(),
    };
    let json = matches!(
        route,
        VideoPath::Info {
            format: InfoFormat::Json,
            ..
        }
    );
    match serve(&s, route, &query, req.headers(), head).await {
        Ok(resp) => resp,
        Err(e) if json => e.into_json_response(),
        Err(e) => e.into_response(),
    }
}

async fn serve(
    s: &super::Shared,
    route: VideoPath<'_>,
    query: &Query,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, VideoError> {
    let path_id = match route {
        VideoPath::Api(kind) => return api::serve(s, kind, query).await,
        VideoPath::Info { id, .. }
        | VideoPath::Stream { id, .. }
        | VideoPath::Part { id, .. }
        | VideoPath::Image { id, .. }
        | VideoPath::Auto { id } => id,
    };
    let vid = match s.config.code_pass {
        None => path_id.to_owned(),
        Some((r1, r2)) => ids::decode_vid(path_id, r1, r2)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                VideoError::Forbidden("bad request: the video id does not decode".into())
            })?,
    };
    if !s.policy.valid_video_id(&vid).await? {
        return Err(VideoError::BadRequest(
            path::PathError::BadId(vid).to_string(),
        ));
    }
    s.video.check_allowed(&s.hub, &vid).await?;
    let ctx = Ctx {
        vid,
        path_id,
        query,
        headers,
        head,
    };
    match route {
        VideoPath::Info { format, .. } => match format {
            InfoFormat::Json => info::json(s, &ctx).await,
            InfoFormat::Xml => captions::serve(s, &ctx).await,
            InfoFormat::Mpd => mpd::serve(s, &ctx).await,
        },
        VideoPath::Stream { itag, .. } => stream::stream(s, &ctx, parse_itag(s, itag).await?).await,
        VideoPath::Part { itag, range, .. } => {
            stream::part(s, &ctx, parse_itag(s, itag).await?, range).await
        }
        VideoPath::Image { format, .. } => image::serve(s, &ctx, format).await,
        VideoPath::Auto { .. } => stream::auto(s, &ctx).await,
        VideoPath::Api(_) => Err(VideoError::Internal("unreachable route".into())),
    }
}

/// An itag from a URL, as the policy reads it.
async fn parse_itag(s: &super::Shared, text: &str) -> Result<u32, VideoError> {
    s.policy
        .parse_itag(text)
        .await?
        .ok_or_else(|| VideoError::BadRequest(path::PathError::BadItag(text.into()).to_string()))
}

/// Reads a whole (small) upstream body, refusing more than `max` bytes.
async fn read_limited(
    mut resp: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Bytes, VideoError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(VideoError::BadGateway(format!(
            "{what} sent more than {max} bytes"
        )));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| VideoError::upstream(what, &e))?
    {
        if buf.len() + chunk.len() > max {
            return Err(VideoError::BadGateway(format!(
                "{what} sent more than {max} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
