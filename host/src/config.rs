//! Node configuration from the environment (SPEC §2). Every value is validated up front so a
//! bad setting stops the node with one clear line instead of failing later.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::budget::{self, BudgetError, DEFAULT_MEMORY_BUDGET, Shares};
use crate::policy::PolicyConfig;
use crate::signal::is_valid_peer_id;

/// A configuration error: the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {msg}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong.
    pub msg: String,
}

fn err(var: &'static str, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        msg: msg.into(),
    }
}

/// A proxy for outgoing requests: `http://host:port` or SOCKS5 `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySetting {
    /// An HTTP(S) proxy URL.
    Http(Url),
    /// A SOCKS5 proxy with optional credentials.
    Socks5 {
        /// `host:port`.
        addr: String,
        /// Username and password.
        auth: Option<(String, String)>,
    },
}

/// An ICE server: its URLs and optional credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    pub username: Option<String>,
    /// TURN credential.
    pub credential: Option<String>,
}

/// `PUBLICIP`: the address to announce, and optionally the one UDP port for all ICE traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicIp {
    /// Announced as the host candidate (NAT 1:1).
    pub ip: IpAddr,
    /// With a port, every peer shares one UDP socket on it (ICE UDP mux).
    pub port: Option<u16>,
}

/// WebRTC settings; present when both `ID` and `WS_ADDR` are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcSettings {
    /// This peer's 36-character id.
    pub id: String,
    /// Signalling prefix; the node dials `ws_addr + id`.
    pub ws_addr: String,
    /// ICE servers (`ICE_SERVERS`), none by default.
    pub ice_servers: Vec<IceServer>,
    /// `PUBLICIP`.
    pub public_ip: Option<PublicIp>,
    /// The floor of each DataChannel's send window (`RTC_WINDOW`), 64 KiB by default.
    pub window: usize,
    /// Its ceiling (`RTC_WINDOW_MAX`), 4 MiB by default; `RTC_WINDOW_MAX=RTC_WINDOW` fixes
    /// the window.
    pub window_max: usize,
    /// Offer loopback ICE candidates (`RTC_LOOPBACK=1`): for peers on the same host (tests).
    pub include_loopback: bool,
    /// Admission limits for a node in a public room.
    pub limits: PeerLimits,
}

impl RtcSettings {
    /// What the peers the limits admit may hold at most: the memory budget reserves it.
    pub fn reservation(&self) -> u64 {
        let read_buffer = crate::rtc::RtcConfig::default().read_buffer as u64;
        let channel = budget::per_channel(read_buffer, self.window as u64);
        let peer = budget::PER_PEER
            .saturating_add(channel.saturating_mul(self.limits.max_channels as u64));
        peer.saturating_mul(self.limits.max_peers as u64)
    }
}

/// How much strangers in the room may make the node hold (the defaults fit a 200 MB node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// `MAX_PEERS`: peer connections at once (default 64).
    pub max_peers: usize,
    /// `MAX_CHANNELS`: DataChannels per peer (default 4).
    pub max_channels: usize,
    /// `MAX_QUEUED`: `resolve`s queued per channel (default 64).
    pub max_queued: usize,
    /// `OFFERS_PER_MINUTE`: offers accepted per peer id per minute (default 12).
    pub offers_per_minute: u32,
    /// `MAX_SIGNAL_MESSAGE`: largest signalling message accepted, in bytes (default 64 KiB).
    pub max_signal_message: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_peers: 64,
            max_channels: 4,
            max_queued: 64,
            offers_per_minute: 12,
            max_signal_message: 64 << 10,
        }
    }
}

/// A byte count: digits with an optional binary suffix (`K`, `M`, `G`, also as `KiB`, `MB`…).
fn parse_bytes(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(digits);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => {
            return Err(err(
                var,
                format!("{v:?} is not a byte count (like 134217728 or 128M)"),
            ));
        }
    };
    n.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| {
            err(
                var,
                format!("{v:?} is not a byte count (like 134217728 or 128M)"),
            )
        })
}

/// A positive integer at most `max`.
fn parse_limit<T: std::str::FromStr + PartialOrd + Default>(
    var: &'static str,
    v: &str,
    max: T,
) -> Result<T, ConfigError> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() && n <= max => Ok(n),
        _ => Err(err(var, format!("{v:?} is not a positive number in range"))),
    }
}

/// Everything the node reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// WebRTC mode, if enabled.
    pub rtc: Option<RtcSettings>,
    /// `BASE_URL`: info and bytes come from this videoproxy-compatible server.
    pub base_url: Option<Url>,
    /// `VIDEO_PROXY` for parsing and media fetches.
    pub video_proxy: Option<ProxySetting>,
    /// `IMAGE_PROXY` for thumbnails.
    pub image_proxy: Option<ProxySetting>,
    /// `API_PROXY` for the data API.
    pub api_proxy: Option<ProxySetting>,
    /// `UPSTREAM`: `/video/...` is reverse-proxied to these.
    pub upstreams: Vec<Url>,
    /// `YOUTUBE_API_KEY`.
    pub youtube_api_key: Option<String>,
    /// `CODE_PASS`: the two numbers that de-obfuscate video ids.
    pub code_pass: Option<(u64, u64)>,
    /// `MEMORY_BUDGET` carved up (`CACHE_BYTES`, if set, is the segment cache's share).
    pub memory: Shares,
    /// `SEGMENT_TTL`: how long fetched segment bytes stay cached (seconds, 120 by default).
    pub segment_ttl: Duration,
    /// `ORIGIN_TIMEOUT`: limit of one info, caption, thumbnail or data-API request (seconds,
    /// 60 by default); streamed media fails after `stream_idle_timeout` without data.
    pub origin_timeout: Duration,
    /// `YOUTUBE_API_URL`: base of the YouTube Data API (requests go to `{base}/v3/...`).
    pub youtube_api_url: Url,
    /// `YOUTUBE_IMAGE_URL`: base of the thumbnail host (requests go to `{base}/vi/...`).
    pub youtube_image_url: Url,
    /// `YOUTUBE_URL`: where direct mode (no `BASE_URL`) sends every page, API and
    /// player-script request; media URLs are used as the responses give them.
    pub youtube_url: Url,
    /// `PUBLIC_DIR`: where static files are served from (`./public` by default).
    pub public_dir: PathBuf,
    /// `ADMIN_TOKEN`: the bearer token that admits `POST /admin/policy` from other hosts
    /// than this one (loopback needs none).
    pub admin_token: Option<String>,
    /// `POLICY_TIMEOUT_MS`, `POLICY_MEMORY_MB`, `POLICY_INSTANCES`: the policy runtime's
    /// per-call deadline (500 ms), memory per instance (64 MiB) and instances (2 per core);
    /// `POLICY_ROLLBACK_FAILURES` within `POLICY_ROLLBACK_WINDOW` seconds (10 in 60; 0 is
    /// off) roll a failing policy back to the one before it.
    pub policy: PolicyConfig,
}

/// Default floor of the send window per DataChannel (WEBRTC-NOTES: best on one host).
pub const DEFAULT_WINDOW: usize = 64 * 1024;
/// Default ceiling of the send window per DataChannel: 8 MB/s at up to 250 ms.
pub const DEFAULT_WINDOW_MAX: usize = 4 << 20;
/// Default limit of one origin request.
pub const DEFAULT_ORIGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for data of a streamed origin body.
const STREAM_IDLE_MAX: Duration = Duration::from_secs(30);

/// Default base of the YouTube Data API.
pub const DEFAULT_YOUTUBE_API_URL: &str = "https://www.googleapis.com/youtube";
/// Default base of the thumbnail host.
pub const DEFAULT_YOUTUBE_IMAGE_URL: &str = "https://i.ytimg.com";
/// Default base of YouTube's pages and APIs (direct mode).
pub const DEFAULT_YOUTUBE_URL: &str = "https://www.youtube.com";

impl Config {
    /// How long a streamed origin body may go without data: 30 s, or less with a shorter
    /// `ORIGIN_TIMEOUT`.
    pub fn stream_idle_timeout(&self) -> Duration {
        self.origin_timeout.min(STREAM_IDLE_MAX)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests). Empty values
    /// count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let rtc = match (get("ID"), get("WS_ADDR")) {
            (None, None) => None,
            (Some(id), Some(ws_addr)) => {
                if !is_valid_peer_id(&id) {
                    return Err(err("ID", format!("{id:?} is not a 36-character peer id")));
                }
                let parsed = Url::parse(&ws_addr).map_err(|e| err("WS_ADDR", e.to_string()))?;
                if !matches!(parsed.scheme(), "ws" | "wss") {
                    return Err(err("WS_ADDR", "must start with ws:// or wss://"));
                }
                Some(RtcSettings {
                    id,
                    ws_addr,
                    ice_servers: get("ICE_SERVERS")
                        .map(|v| parse_ice_servers(&v))
                        .transpose()?
                        .unwrap_or_default(),
                    public_ip: get("PUBLICIP").map(|v| parse_public_ip(&v)).transpose()?,
                    window: match get("RTC_WINDOW") {
                        Some(v) => parse_window("RTC_WINDOW", &v)?,
                        None => DEFAULT_WINDOW,
                    },
                    window_max: match get("RTC_WINDOW_MAX") {
                        Some(v) => parse_window("RTC_WINDOW_MAX", &v)?,
                        None => DEFAULT_WINDOW_MAX,
                    },
                    include_loopback: match get("RTC_LOOPBACK").as_deref() {
                        None | Some("0") | Some("false") => false,
                        Some("1") | Some("true") => true,
                        Some(v) => return Err(err("RTC_LOOPBACK", format!("{v:?}: use 1 or 0"))),
                    },
                    limits: {
                        let d = PeerLimits::default();
                        PeerLimits {
                            max_peers: get("MAX_PEERS")
                                .map(|v| parse_limit("MAX_PEERS", &v, 100_000))
                                .transpose()?
                                .unwrap_or(d.max_peers),
                            max_channels: get("MAX_CHANNELS")
                                .map(|v| parse_limit("MAX_CHANNELS", &v, 1024))
                                .transpose()?
                                .unwrap_or(d.max_channels),
                            max_queued: get("MAX_QUEUED")
                                .map(|v| parse_limit("MAX_QUEUED", &v, 100_000))
                                .transpose()?
                                .unwrap_or(d.max_queued),
                            offers_per_minute: get("OFFERS_PER_MINUTE")
                                .map(|v| parse_limit("OFFERS_PER_MINUTE", &v, 100_000))
                                .transpose()?
                                .unwrap_or(d.offers_per_minute),
                            max_signal_message: get("MAX_SIGNAL_MESSAGE")
                                .map(|v| parse_limit("MAX_SIGNAL_MESSAGE", &v, 16 << 20))
                                .transpose()?
                                .unwrap_or(d.max_signal_message),
                        }
                    },
                })
            }
            (Some(_), None) => return Err(err("WS_ADDR", "required when ID is set")),
            (None, Some(_)) => return Err(err("ID", "required when WS_ADDR is set")),
        };
        let proxy = |var: &'static str, user: &'static str, pass: &'static str| {
            get(var)
                .map(|v| parse_proxy(var, &v, get(user).zip(get(pass))))
                .transpose()
        };
        let memory = {
            let total = match get("MEMORY_BUDGET") {
                Some(v) => parse_bytes("MEMORY_BUDGET", &v)?,
                None => DEFAULT_MEMORY_BUDGET,
            };
            let segments = get("CACHE_BYTES")
                .map(|v| parse_bytes("CACHE_BYTES", &v))
                .transpose()?;
            let peers = rtc.as_ref().map_or(0, RtcSettings::reservation);
            Shares::carve(total, peers, segments).map_err(|e| {
                let var = match e {
                    BudgetError::TooSmall { .. } => "MEMORY_BUDGET",
                    BudgetError::SegmentsTooLarge { .. } => "CACHE_BYTES",
                };
                err(var, e.to_string())
            })?
        };
        let mut policy = PolicyConfig::default();
        if let Some(v) = get("POLICY_TIMEOUT_MS") {
            policy.call_timeout =
                Duration::from_millis(parse_limit("POLICY_TIMEOUT_MS", &v, 60_000u64)?);
        }
        if let Some(v) = get("POLICY_MEMORY_MB") {
            policy.memory_limit = parse_limit("POLICY_MEMORY_MB", &v, 4096usize)? << 20;
        }
        if let Some(v) = get("POLICY_INSTANCES") {
            policy.instances = parse_limit("POLICY_INSTANCES", &v, 256usize)?;
        }
        if let Some(v) = get("POLICY_ROLLBACK_FAILURES") {
            // 0 turns automatic rollback off.
            policy.rollback.failures = match v.trim() {
                "0" => 0,
                v => parse_limit("POLICY_ROLLBACK_FAILURES", v, 1_000_000u32)?,
            };
        }
        if let Some(v) = get("POLICY_ROLLBACK_WINDOW") {
            policy.rollback.window =
                Duration::from_secs(parse_limit("POLICY_ROLLBACK_WINDOW", &v, 86_400u64)?);
        }
        Ok(Config {
            policy,
            rtc,
            base_url: get("BASE_URL")
                .map(|v| parse_http_url("BASE_URL", &v))
                .transpose()?,
            video_proxy: proxy("VIDEO_PROXY", "VIDEO_PROXY_USER", "VIDEO_PROXY_PASSWORD")?,
            image_proxy: proxy("IMAGE_PROXY", "IMAGE_PROXY_USER", "IMAGE_PROXY_PASSWORD")?,
            api_proxy: proxy("API_PROXY", "API_PROXY_USER", "API_PROXY_PASSWORD")?,
            upstreams: get("UPSTREAM")
                .map(|v| {
                    v.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| parse_http_url("UPSTREAM", s))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            youtube_api_key: get("YOUTUBE_API_KEY"),
            code_pass: get("CODE_PASS").map(|v| parse_code_pass(&v)).transpose()?,
            memory,
            segment_ttl: match get("SEGMENT_TTL") {
                Some(v) => Duration::from_secs(
                    v.parse()
                        .map_err(|_| err("SEGMENT_TTL", format!("{v:?} is not seconds")))?,
                ),
                None => Duration::from_secs(120),
            },
            origin_timeout: match get("ORIGIN_TIMEOUT") {
                Some(v) => match v.parse::<u64>() {
                    Ok(s) if s > 0 => Duration::from_secs(s),
                    _ => {
                        return Err(err(
                            "ORIGIN_TIMEOUT",
                            format!("{v:?} is not seconds (1 or more)"),
                        ));
                    }
                },
                None => DEFAULT_ORIGIN_TIMEOUT,
            },
            youtube_api_url: parse_http_url(
                "YOUTUBE_API_URL",
                get("YOUTUBE_API_URL")
                    .as_deref()
                    .unwrap_or(DEFAULT_YOUTUBE_API_URL),
            )?,
            youtube_image_url: parse_http_url(
                "YOUTUBE_IMAGE_URL",
                get("YOUTUBE_IMAGE_URL")
                    .as_deref()
                    .unwrap_or(DEFAULT_YOUTUBE_IMAGE_URL),
            )?,
            youtube_url: parse_http_url(
                "YOUTUBE_URL",
                get("YOUTUBE_URL").as_deref().unwrap_or(DEFAULT_YOUTUBE_URL),
            )?,
            public_dir: PathBuf::from(get("PUBLIC_DIR").as_deref().unwrap_or("./public")),
            admin_token: match get("ADMIN_TOKEN") {
                Some(t) if t.len() < 16 => {
                    return Err(err("ADMIN_TOKEN", "must be at least 16 characters"));
                }
                t => t,
            },
        })
    }
}

fn parse_http_url(var: &'static str, v: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(v).map_err(|e| err(var, format!("{v:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(err(var, format!("{v:?} is not an http(s) URL")));
    }
    Ok(url)
}

fn parse_proxy(
    var: &'static str,
    v: &str,
    auth: Option<(String, String)>,
) -> Result<ProxySetting, ConfigError> {
    if v.contains("://") {
        let url = Url::parse(v).map_err(|e| err(var, format!("{v:?}: {e}")))?;
        return match url.scheme() {
            "http" | "https" if url.host_str().is_some() => Ok(ProxySetting::Http(url)),
            "socks5" | "socks5h" => Ok(ProxySetting::Socks5 {
                addr: format!(
                    "{}:{}",
                    url.host_str().unwrap_or_default(),
                    url.port().unwrap_or(1080)
                ),
                auth,
            }),
            _ => Err(err(
                var,
                format!("{v:?}: use http://host:port or host:port"),
            )),
        };
    }
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| err(var, format!("{v:?}: expected host:port")))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(err(var, format!("{v:?}: expected host:port")));
    }
    Ok(ProxySetting::Socks5 {
        addr: v.to_owned(),
        auth,
    })
}

/// `ICE_SERVERS`: `;`-separated servers, each `url[,url...][|username|credential]`.
pub fn parse_ice_servers(v: &str) -> Result<Vec<IceServer>, ConfigError> {
    v.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let mut parts = entry.split('|');
            let urls: Vec<String> = parts
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            if urls.is_empty()
                || urls.iter().any(|u| {
                    !(u.starts_with("stun:") || u.starts_with("turn:") || u.starts_with("turns:"))
                })
            {
                return Err(err(
                    "ICE_SERVERS",
                    format!("{entry:?}: URLs must start with stun:, turn: or turns:"),
                ));
            }
            let username = parts.next().map(str::to_owned);
            let credential = parts.next().map(str::to_owned);
            if parts.next().is_some() || username.is_some() != credential.is_some() {
                return Err(err(
                    "ICE_SERVERS",
                    format!("{entry:?}: expected urls|username|credential"),
                ));
            }
            Ok(IceServer {
                urls,
                username,
                credential,
            })
        })
        .collect()
}

/// `PUBLICIP`: `ip` or `ip:port` (`[v6]:port` for IPv6 with a port).
pub fn parse_public_ip(v: &str) -> Result<PublicIp, ConfigError> {
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(PublicIp { ip, port: None });
    }
    match v.parse::<std::net::SocketAddr>() {
        Ok(sa) if sa.port() != 0 => Ok(PublicIp {
            ip: sa.ip(),
            port: Some(sa.port()),
        }),
        _ => Err(err("PUBLICIP", format!("{v:?}: expected ip or ip:port"))),
    }
}

fn parse_window(var: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.parse::<usize>() {
        Ok(n) if (16 * 1024..=64 << 20).contains(&n) => Ok(n),
        _ => Err(err(var, format!("{v:?}: bytes between 16384 and 67108864"))),
    }
}

fn parse_code_pass(v: &str) -> Result<(u64, u64), ConfigError> {
    let bad = || {
        err(
            "CODE_PASS",
            format!("{v:?}: expected two positive numbers r1,r2"),
        )
    };
    let (a, b) = v.split_once(',').ok_or_else(bad)?;
    match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
        (Ok(a), Ok(b)) if a > 0 && b > 0 => Ok((a, b)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ID: &str = "zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r6r";

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn plain_proxy_mode() {
        let c = cfg(&[]).unwrap();
        assert!(c.rtc.is_none());
        assert!(c.base_url.is_none());
        assert_eq!(c.memory.total, DEFAULT_MEMORY_BUDGET);
        assert_eq!(c.memory.peers, 0);
        assert_eq!(c.policy.call_timeout, PolicyConfig::default().call_timeout);
        let c = cfg(&[
            ("POLICY_TIMEOUT_MS", "50"),
            ("POLICY_MEMORY_MB", "16"),
            ("POLICY_INSTANCES", "3"),
            ("POLICY_ROLLBACK_FAILURES", "0"),
            ("POLICY_ROLLBACK_WINDOW", "5"),
        ])
        .unwrap();
        assert_eq!(c.policy.call_timeout, Duration::from_millis(50));
        assert_eq!((c.policy.memory_limit, c.policy.instances), (16 << 20, 3));
        assert_eq!(c.policy.rollback.failures, 0);
        assert_eq!(c.policy.rollback.window, Duration::from_secs(5));
        assert_eq!(c.youtube_api_url.as_str(), DEFAULT_YOUTUBE_API_URL);
        assert_eq!(c.youtube_image_url.as_str(), "https://i.ytimg.com/");
        assert_eq!(c.public_dir, PathBuf::from("./public"));
        assert_eq!(c.origin_timeout, DEFAULT_ORIGIN_TIMEOUT);
        assert_eq!(c.stream_idle_timeout(), STREAM_IDLE_MAX);
    }

    #[test]
    fn origin_timeout() {
        let c = cfg(&[("ORIGIN_TIMEOUT", "2")]).unwrap();
        assert_eq!(c.origin_timeout, Duration::from_secs(2));
        assert_eq!(c.stream_idle_timeout(), Duration::from_secs(2));
        for bad in ["0", "-1", "1.5", "soon"] {
            assert_eq!(
                cfg(&[("ORIGIN_TIMEOUT", bad)]).unwrap_err().var,
                "ORIGIN_TIMEOUT"
            );
        }
    }

    #[test]
    fn endpoints_and_public_dir() {
        let c = cfg(&[
            ("YOUTUBE_API_URL", "http://127.0.0.1:9/yt"),
            ("YOUTUBE_IMAGE_URL", "http://127.0.0.1:9/img"),
            ("PUBLIC_DIR", "/srv/www"),
        ])
        .unwrap();
        assert_eq!(c.youtube_api_url.as_str(), "http://127.0.0.1:9/yt");
        assert_eq!(c.youtube_image_url.as_str(), "http://127.0.0.1:9/img");
        assert_eq!(c.public_dir, PathBuf::from("/srv/www"));
        assert_eq!(c.admin_token, None);
        assert_eq!(c.youtube_url.as_str(), "https://www.youtube.com/");
        for var in ["YOUTUBE_API_URL", "YOUTUBE_IMAGE_URL", "YOUTUBE_URL"] {
            assert_eq!(cfg(&[(var, "ftp://x/")]).unwrap_err().var, var);
            assert_eq!(cfg(&[(var, "not a url")]).unwrap_err().var, var);
        }
    }

    #[test]
    fn peer_limits() {
        let base = [
            ("ID", "zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r6r"),
            ("WS_ADDR", "ws://h/uid/"),
        ];
        let c = cfg(&base).unwrap();
        assert_eq!(c.rtc.unwrap().limits, PeerLimits::default());
        let mut set = base.to_vec();
        set.extend([
            ("MAX_PEERS", "8"),
            ("MAX_CHANNELS", "2"),
            ("OFFERS_PER_MINUTE", "3"),
        ]);
        let l = cfg(&set).unwrap().rtc.unwrap().limits;
        assert_eq!(
            (l.max_peers, l.max_channels, l.offers_per_minute),
            (8, 2, 3)
        );
        for var in [
            "MAX_PEERS",
            "MAX_CHANNELS",
            "MAX_QUEUED",
            "OFFERS_PER_MINUTE",
            "MAX_SIGNAL_MESSAGE",
        ] {
            for bad in ["0", "-1", "x", "99999999999"] {
                let mut set = base.to_vec();
                set.push((var, bad));
                assert_eq!(cfg(&set).unwrap_err().var, var, "{var}={bad}");
            }
        }
    }

    #[test]
    fn admin_token_is_long_enough() {
        let c = cfg(&[("ADMIN_TOKEN", "0123456789abcdef")]).unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            cfg(&[("ADMIN_TOKEN", "short")]).unwrap_err().var,
            "ADMIN_TOKEN"
        );
    }

    #[test]
    fn rtc_mode_needs_both() {
        let c = cfg(&[("ID", ID), ("WS_ADDR", "wss://ws.example/uid/")]).unwrap();
        let rtc = c.rtc.unwrap();
        assert_eq!(rtc.id, ID);
        assert_eq!(rtc.window, DEFAULT_WINDOW);
        assert_eq!(rtc.window_max, DEFAULT_WINDOW_MAX);
        let fixed = cfg(&[
            ("ID", ID),
            ("WS_ADDR", "ws://x/uid/"),
            ("RTC_WINDOW", "65536"),
            ("RTC_WINDOW_MAX", "65536"),
        ])
        .unwrap()
        .rtc
        .unwrap();
        assert_eq!((fixed.window, fixed.window_max), (65_536, 65_536));
        assert_eq!(cfg(&[("ID", ID)]).unwrap_err().var, "WS_ADDR");
        assert_eq!(cfg(&[("WS_ADDR", "ws://x/uid/")]).unwrap_err().var, "ID");
        assert_eq!(
            cfg(&[("ID", "short"), ("WS_ADDR", "ws://x/")])
                .unwrap_err()
                .var,
            "ID"
        );
        assert_eq!(
            cfg(&[("ID", ID), ("WS_ADDR", "http://x/")])
                .unwrap_err()
                .var,
            "WS_ADDR"
        );
    }

    #[test]
    fn values() {
        let c = cfg(&[
            ("ID", ID),
            ("WS_ADDR", "ws://127.0.0.1:1/uid/"),
            ("PUBLICIP", "1.2.3.4:5000"),
            ("ICE_SERVERS", "stun:a:3478;turn:b:3478,turns:b:5349|u|p"),
            ("BASE_URL", "https://video.example/video"),
            ("VIDEO_PROXY", "127.0.0.1:1080"),
            ("VIDEO_PROXY_USER", "u"),
            ("VIDEO_PROXY_PASSWORD", "p"),
            ("IMAGE_PROXY", "http://127.0.0.1:3128"),
            ("UPSTREAM", "http://a.example; https://b.example/"),
            ("CODE_PASS", "3,7"),
        ])
        .unwrap();
        let rtc = c.rtc.unwrap();
        assert_eq!(
            rtc.public_ip,
            Some(PublicIp {
                ip: [1, 2, 3, 4].into(),
                port: Some(5000)
            })
        );
        assert_eq!(rtc.ice_servers.len(), 2);
        assert_eq!(rtc.ice_servers[1].username.as_deref(), Some("u"));
        assert_eq!(
            c.video_proxy,
            Some(ProxySetting::Socks5 {
                addr: "127.0.0.1:1080".into(),
                auth: Some(("u".into(), "p".into()))
            })
        );
        assert!(matches!(c.image_proxy, Some(ProxySetting::Http(_))));
        assert_eq!(c.upstreams.len(), 2);
        assert_eq!(c.code_pass, Some((3, 7)));
    }

    #[test]
    fn rejects_bad_values() {
        for (k, v) in [
            ("PUBLICIP", "1.2.3"),
            ("PUBLICIP", "1.2.3.4:0"),
            ("ICE_SERVERS", "http://x"),
            ("ICE_SERVERS", "stun:x|user"),
            ("RTC_WINDOW", "12"),
            ("RTC_WINDOW_MAX", "lots"),
        ] {
            let e = cfg(&[("ID", ID), ("WS_ADDR", "ws://x/uid/"), (k, v)]).unwrap_err();
            assert_eq!(e.var, k, "{v}");
        }
        for (k, v) in [
            ("BASE_URL", "ftp://x"),
            ("BASE_URL", "not a url"),
            ("VIDEO_PROXY", "nohostport"),
            ("UPSTREAM", "http://ok;bad"),
            ("CODE_PASS", "3"),
            ("CACHE_BYTES", "lots"),
            ("CACHE_BYTES", "1G"),
            ("MEMORY_BUDGET", "12M"),
            ("POLICY_TIMEOUT_MS", "0"),
            ("POLICY_MEMORY_MB", "lots"),
            ("POLICY_INSTANCES", "100000"),
            ("POLICY_ROLLBACK_FAILURES", "-1"),
            ("POLICY_ROLLBACK_WINDOW", "0"),
            ("MEMORY_BUDGET", "99999999999G"),
        ] {
            assert_eq!(cfg(&[(k, v)]).unwrap_err().var, k, "{v}");
        }
    }
}
