//! Where info and bytes come from: a BASE_URL videoproxy, or the stream URLs in the info.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::Url;

use super::info::{StreamItem, VideoInfo};
use crate::config::ProxySetting;
use crate::policy::ByteRange;

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
    /// The origin has no such video (or it is not allowed here).
    #[error("video {0} not available from the origin")]
    NotFound(String),
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
}

/// Builds an HTTP client that goes through `proxy` (or the `http(s)_proxy` environment).
pub fn http_client(
    proxy: Option<&ProxySetting>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("videortc/", env!("CARGO_PKG_VERSION")));
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
    b.build().map_err(|e| e.to_string())
}

fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// Fetches VideoInfo and byte ranges.
#[derive(Debug, Clone)]
pub struct Origin {
    client: reqwest::Client,
    base_url: Option<Url>,
}

impl Origin {
    /// An origin using `client`, with an optional BASE_URL.
    pub fn new(client: reqwest::Client, base_url: Option<Url>) -> Self {
        Origin { client, base_url }
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

    /// The VideoInfo of `vid` (`BASE_URL/{vid}.json`).
    pub async fn video_info(&self, vid: &str) -> Result<VideoInfo, OriginError> {
        let Some(url) = self.base_join(&format!("{vid}.json")) else {
            return Err(OriginError::Unavailable(
                "no BASE_URL set and YouTube parsing is not available in this build".into(),
            ));
        };
        let url = url?;
        let resp = self.get(&url).await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT
            || resp.status() == reqwest::StatusCode::NOT_FOUND
        {
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
        let resp = self.get(&url).await?;
        read_body(resp, &url, range.len(), Some(range.len())).await
    }

    async fn get(&self, url: &Url) -> Result<reqwest::Response, OriginError> {
        let resp =
            self.client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| OriginError::Transport {
                    url: redact(url),
                    msg: e.without_url().to_string(),
                })?;
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
        let chunk = resp.chunk().await.map_err(|e| OriginError::Transport {
            url: redact(url),
            msg: e.without_url().to_string(),
        })?;
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
