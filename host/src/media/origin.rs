//! Where info and bytes come from: a BASE_URL videoproxy, or the stream URLs in the info.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::Url;

use super::info::{StreamItem, VideoInfo};
use crate::config::ProxySetting;
use crate::policy::{ByteRange, LoginKind, Playability, YoutubeError};

/// Largest VideoInfo document accepted.
const MAX_INFO_BYTES: usize = 4 << 20;

/// Errors talking to the origin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OriginError {
    /// Connecting, sending or reading failed.
    #[error("origin request to {url} failed: {msg}")]
    Transport {
        /// The URL (without query).
        url: String,
        /// What went wrong.
        msg: String,
    },
    /// The origin answered with an error status.
    #[error("origin answered {status} for {url}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The URL (without query).
        url: String,
    },
    /// The origin has no such video.
    #[error("video {0} not available from the origin")]
    NotFound(String),
    /// The origin's allow-list refuses the video (`BASE_URL/{vid}.json` answered 204).
    #[error("video {0} is not allowed by the origin")]
    Denied(String),
    /// The origin did not answer in time.
    #[error("origin request to {url} timed out")]
    Timeout {
        /// The URL (without query).
        url: String,
    },
    /// The info document is not valid.
    #[error("bad video info: {0}")]
    BadInfo(String),
    /// The origin sent a different number of bytes than asked for.
    #[error("origin sent {got} bytes for a {expected}-byte range")]
    Length {
        /// Bytes received (so far).
        got: u64,
        /// Bytes asked for.
        expected: u64,
    },
    /// No way to get this from here.
    #[error("{0}")]
    Unavailable(String),
    /// Direct mode: YouTube's answer, as the policy's parser read it.
    #[error("YouTube: {0}")]
    YouTube(YoutubeError),
}

impl OriginError {
    /// A video that cannot be had for a while (it does not exist, is refused, private, not
    /// playable here): remembered longer than a passing failure.
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            OriginError::NotFound(_)
                | OriginError::Denied(_)
                | OriginError::YouTube(YoutubeError::Unplayable(_))
        )
    }

    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            OriginError::NotFound(_) => 404,
            OriginError::Denied(_) => 204,
            OriginError::Timeout { .. } => 504,
            OriginError::Unavailable(_) => 503,
            OriginError::Transport { .. }
            | OriginError::Status { .. }
            | OriginError::BadInfo(_)
            | OriginError::Length { .. } => 502,
            OriginError::YouTube(e) => match e {
                YoutubeError::Unplayable(u) => match u.status {
                    Playability::Error | Playability::LiveStreamOffline => 404,
                    // The node's IP is asked to sign in: a state of this node, not the video.
                    Playability::LoginRequired(LoginKind::Bot) => 503,
                    _ => 403,
                },
                YoutubeError::BadJob(_) => 400,
                YoutubeError::BadResponse(_) | YoutubeError::Cipher(_) | YoutubeError::Http(_) => {
                    502
                }
            },
        }
    }
}

/// Builds an HTTP client that goes through `proxy` (or the `http(s)_proxy` environment).
/// `timeout` bounds each whole request, body included.
pub fn http_client(
    proxy: Option<&ProxySetting>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    with_proxy(client_builder().timeout(timeout), proxy)?
        .build()
        .map_err(|e| e.to_string())
}

/// Builds an HTTP client for long bodies: no limit on the whole request, but every read
/// must make progress within `idle`. Goes through `proxy` like [`http_client`].
pub fn stream_client(
    proxy: Option<&ProxySetting>,
    idle: Duration,
) -> Result<reqwest::Client, String> {
    with_proxy(client_builder().read_timeout(idle), proxy)?
        .build()
        .map_err(|e| e.to_string())
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("videortc/", env!("CARGO_PKG_VERSION")))
}

fn with_proxy(
    mut b: reqwest::ClientBuilder,
    proxy: Option<&ProxySetting>,
) -> Result<reqwest::ClientBuilder, String> {
    match proxy {
        Some(ProxySetting::Http(url)) => {
            b = b.proxy(reqwest::Proxy::all(url.as_str()).map_err(|e| e.to_string())?);
        }
        Some(ProxySetting::Socks5 { addr, auth }) => {
            let mut p =
                reqwest::Proxy::all(format!("socks5h://{addr}")).map_err(|e| e.to_string())?;
            if let Some((user, pass)) = auth {
                p = p.basic_auth(user, pass);
            }
            b = b.proxy(p);
        }
        None => {}
    }
    Ok(b)
}

/// The error for a failed request or body read.
pub(crate) fn transport_error(url: &Url, e: &reqwest::Error) -> OriginError {
    if e.is_timeout() {
        OriginError::Timeout { url: redact(url) }
    } else {
        OriginError::Transport {
            url: redact(url),
            msg: error_chain(e),
        }
    }
}

/// An error and its sources on one line (reqwest's own message hides the cause).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The URL without its query (stream URLs carry signatures).
pub(crate) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// Fetches VideoInfo and byte ranges.
///
/// This is the one source of video information: `BASE_URL/{vid}.json` today, a YouTube
/// parser later. Everything else asks it for info and for the URL of a byte range.
#[derive(Debug, Clone)]
pub struct Origin {
    client: reqwest::Client,
    stream_client: reqwest::Client,
    base_url: Option<Url>,
}

impl Origin {
    /// An origin using `client`, with an optional BASE_URL.
    pub fn new(client: reqwest::Client, base_url: Option<Url>) -> Self {
        Origin {
            stream_client: client.clone(),
            client,
            base_url,
        }
    }

    /// Uses `client` for streamed bodies ([`Origin::open_range`]); by default they share the
    /// client given to [`Origin::new`], whose whole-request timeout also bounds them.
    #[must_use]
    pub fn with_stream_client(mut self, client: reqwest::Client) -> Self {
        self.stream_client = client;
        self
    }

    /// The client for whole requests (`VIDEO_PROXY`, `ORIGIN_TIMEOUT`).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The client for streamed bodies.
    pub fn stream_client(&self) -> &reqwest::Client {
        &self.stream_client
    }

    /// The BASE_URL, if set.
    pub fn base_url(&self) -> Option<&Url> {
        self.base_url.as_ref()
    }

    /// Whether a stream's bytes can be fetched: it has a URL, or a BASE_URL serves ranges.
    pub fn can_fetch(&self, stream: &StreamItem) -> bool {
        stream.url.is_some() || self.base_url.is_some()
    }

    fn base_join(&self, tail: &str) -> Option<Result<Url, OriginError>> {
        let base = self.base_url.as_ref()?;
        let text = format!("{}/{tail}", base.as_str().trim_end_matches('/'));
        Some(Url::parse(&text).map_err(|e| OriginError::Unavailable(format!("{text}: {e}"))))
    }

    /// The VideoInfo of `vid` from `BASE_URL/{vid}.json` (without BASE_URL the hub parses
    /// YouTube through the policy instead).
    pub async fn video_info(&self, vid: &str) -> Result<VideoInfo, OriginError> {
        let Some(url) = self.base_join(&format!("{vid}.json")) else {
            return Err(OriginError::Unavailable("no BASE_URL".into()));
        };
        let url = url?;
        let resp = self.get(&url).await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Err(OriginError::Denied(vid.to_owned()));
        }
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(OriginError::NotFound(vid.to_owned()));
        }
        let body = read_body(resp, &url, MAX_INFO_BYTES as u64, None).await?;
        let info: VideoInfo =
            serde_json::from_slice(&body).map_err(|e| OriginError::BadInfo(e.to_string()))?;
        Ok(info)
    }

    /// The URL for an inclusive byte range of a stream.
    pub fn range_url(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<Url, OriginError> {
        if let Some(u) = &stream.url {
            let text = format!("{u}&range={}-{}", range.start, range.end);
            return Url::parse(&text).map_err(|e| OriginError::BadInfo(format!("stream url: {e}")));
        }
        self.base_join(&format!("{vid}/{itag}/{}-{}.ts", range.start, range.end))
            .unwrap_or_else(|| Err(OriginError::Unavailable("stream has no URL".into())))
    }

    /// Exactly the bytes of `range`.
    pub async fn fetch_range(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<Bytes, OriginError> {
        let url = self.range_url(vid, itag, stream, range)?;
        let resp = self.get_with(&self.client, &url, stream).await?;
        read_body(resp, &url, range.len(), Some(range.len())).await
    }

    /// Starts fetching exactly the bytes of `range` and returns the response with its body
    /// unread, for streaming. Fails unless the origin answers 2xx with the right length (when
    /// it states one).
    pub async fn open_range(
        &self,
        vid: &str,
        itag: u32,
        stream: &StreamItem,
        range: ByteRange,
    ) -> Result<reqwest::Response, OriginError> {
        let url = self.range_url(vid, itag, stream, range)?;
        let resp = self.get_with(&self.stream_client, &url, stream).await?;
        if !resp.status().is_success() {
            return Err(OriginError::Status {
                status: resp.status().as_u16(),
                url: redact(&url),
            });
        }
        if let Some(len) = resp.content_length()
            && len != range.len()
        {
            return Err(OriginError::Length {
                got: len,
                expected: range.len(),
            });
        }
        Ok(resp)
    }

    /// A GET of a stream's bytes, with the stream's media headers.
    async fn get_with(
        &self,
        client: &reqwest::Client,
        url: &Url,
        stream: &StreamItem,
    ) -> Result<reqwest::Response, OriginError> {
        let mut rb = client.get(url.clone());
        for (name, value) in stream.media_headers.iter() {
            rb = rb.header(name.as_str(), value.as_str());
        }
        let resp = rb.send().await.map_err(|e| transport_error(url, &e))?;
        check_status(resp, url)
    }

    async fn get(&self, url: &Url) -> Result<reqwest::Response, OriginError> {
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(url, &e))?;
        check_status(resp, url)
    }
}

/// 2xx and 404 pass (404 means "no such video" to the callers); other statuses are errors.
fn check_status(resp: reqwest::Response, url: &Url) -> Result<reqwest::Response, OriginError> {
    let status = resp.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
        Ok(resp)
    } else {
        Err(OriginError::Status {
            status: status.as_u16(),
            url: redact(url),
        })
    }
}

/// Reads a body of at most `max` bytes; with `exact`, exactly that many.
async fn read_body(
    mut resp: reqwest::Response,
    url: &Url,
    max: u64,
    exact: Option<u64>,
) -> Result<Bytes, OriginError> {
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(OriginError::Status {
            status: 404,
            url: redact(url),
        });
    }
    if let (Some(len), Some(want)) = (resp.content_length(), exact)
        && len != want
    {
        return Err(OriginError::Length {
            got: len,
            expected: want,
        });
    }
    let cap = usize::try_from(exact.unwrap_or(0).min(max)).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(cap);
    loop {
        let chunk = resp.chunk().await.map_err(|e| transport_error(url, &e))?;
        let Some(chunk) = chunk else { break };
        if (buf.len() + chunk.len()) as u64 > max {
            return Err(OriginError::Length {
                got: (buf.len() + chunk.len()) as u64,
                expected: max,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    if let Some(want) = exact
        && buf.len() as u64 != want
    {
        return Err(OriginError::Length {
            got: buf.len() as u64,
            expected: want,
        });
    }
    Ok(buf.freeze())
}
