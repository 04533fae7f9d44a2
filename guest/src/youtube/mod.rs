//! YouTube video info, sans-I/O: which HTTP request to make next, and what the responses mean.
//!
//! The guest never does I/O. [`start`] returns the first request; the host executes it and
//! calls [`resume`] with the response and the opaque `state` blob that came with the request.
//! All flow state lives in that blob (guest instances are pooled and keep no memory between
//! calls), so it holds only what later steps need: never a whole page.
//!
//! The flow (YOUTUBE-NOTES §2, §4): `visitor_id` → VISIONOS `player` → on failure the watch
//! page → for ciphered formats the player script. Every client string is in `client.rs`.

mod cipher;
mod client;
mod flow;
mod player_response;
mod watch_page;

use serde::{Deserialize, Serialize};

use crate::types::ByteRange;

/// One video to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job<'a> {
    /// The video id (`[A-Za-z0-9_-]{6,15}`).
    pub video_id: &'a str,
    /// Where every page, API and player-script request goes, e.g. `https://www.youtube.com`
    /// (a trailing slash is accepted). Media URLs are used as the responses give them.
    pub youtube_url: &'a str,
    /// The current time, for `expires_in_secs`.
    pub now_unix: u64,
}

/// HTTP method of a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST (with a JSON body).
    Post,
}

/// An HTTP request the host must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Every header to send; every client identity (User-Agent, client name and version,
    /// `X-YouTube-Client-*`, `Origin`, ...) lives here.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<String>,
    /// How long the host may cache a GET response (0 = never). Player scripts are cacheable.
    pub cache_secs: u32,
    /// Short name for logs and metrics: `visitor-id`, `player`, `watch-page`, `player-script`.
    pub label: String,
}

/// An HTTP response, as the host received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make `request`, then call [`resume`] with its response and `state`.
    Fetch {
        /// The request.
        request: Request,
        /// Opaque flow state: hand it back unchanged.
        state: Vec<u8>,
    },
    /// The video info.
    Done(VideoInfo),
    /// The video info cannot be had.
    Failed(YoutubeError),
}

/// A video's info (SPEC §5), from the first usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    /// Video id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `lengthSeconds` as given (`"0"` for live).
    pub duration: String,
    /// Channel name.
    pub author: String,
    /// Caption tracks.
    pub captions: Vec<Caption>,
    /// Streams with unique itags, ascending.
    pub streams: Vec<StreamInfo>,
    /// The video is live now.
    pub live: bool,
    /// Seconds until the URLs expire: the smaller of `streamingData.expiresInSeconds` and
    /// every URL's `expire` parameter minus now; `None` if neither is known.
    pub expires_in_secs: Option<u64>,
    /// Headers the host must send with media GETs (the User-Agent the URLs were issued to).
    pub media_headers: Vec<(String, String)>,
    /// Things the host should log; each names the player or client so the host can dedupe.
    pub warnings: Vec<String>,
}

/// One caption track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caption {
    /// `baseUrl`.
    pub url: String,
    /// `languageCode`.
    pub language: String,
}

/// One stream (format) of a video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Itag.
    pub itag: u32,
    /// `qualityLabel`, else `quality` (audio says `tiny`).
    pub quality: String,
    /// `mimeType`, e.g. `video/mp4; codecs="avc1.4d401e"`.
    pub mime: String,
    /// The media URL (deciphered if it was ciphered).
    pub url: String,
    /// `contentLength`; `None` for OTF and live streams.
    pub content_length: Option<u64>,
    /// `initRange`; `None` for OTF and live streams.
    pub init_range: Option<ByteRange>,
    /// `indexRange`; `None` for OTF and live streams.
    pub index_range: Option<ByteRange>,
}

/// Why there is no video info. Serialisable because the flow carries the first client's
/// error in its state while it tries the watch page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum YoutubeError {
    /// `playabilityStatus` is not OK.
    Unplayable {
        /// The status.
        status: Playability,
        /// `reason`, or `errorScreen...reason` (`simpleText` or `runs`).
        reason: String,
    },
    /// A response the parser cannot read.
    BadResponse {
        /// Which request (its label).
        what: String,
        /// Why.
        message: String,
    },
    /// The player script's signature transform is not understood (no URL is ever guessed).
    Cipher {
        /// Player id, e.g. `2840754e`.
        player: String,
        /// Why.
        message: String,
    },
    /// A request failed or returned a bad status.
    Http {
        /// Which request (its label).
        what: String,
        /// The status, if a response arrived.
        status: Option<u16>,
        /// Why.
        message: String,
    },
    /// The job itself is invalid (a bad video id or `youtube_url`): nothing was requested.
    /// Added to the brief's variants: no response is involved, so `BadResponse` would mislead.
    BadJob {
        /// Why.
        message: String,
    },
}

/// `playabilityStatus.status` values that are not OK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Playability {
    /// `LOGIN_REQUIRED`, with a guess at why.
    LoginRequired(LoginKind),
    /// `UNPLAYABLE` (geo, members, kids on VISIONOS, unavailable recording).
    Unplayable,
    /// `ERROR` (removed, unavailable).
    Error,
    /// `LIVE_STREAM_OFFLINE` (upcoming).
    LiveStreamOffline,
    /// `AGE_CHECK_REQUIRED`.
    AgeCheckRequired,
    /// `AGE_VERIFICATION_REQUIRED`.
    AgeVerificationRequired,
    /// `CONTENT_CHECK_REQUIRED`.
    ContentCheckRequired,
    /// Any other status, as given.
    Other(String),
}

/// Why a login is required, guessed from the reason texts (see [`LoginKind::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginKind {
    /// A private video.
    Private,
    /// An age gate.
    Age,
    /// "Sign in to confirm you're not a bot": about the requesting IP; do not retry in a loop.
    Bot,
    /// Anything else.
    Other,
}

impl LoginKind {
    /// Classifies the reason texts of a `LOGIN_REQUIRED` status (lower-cased substring
    /// heuristics, checked in this order): "bot" as a word → `Bot`; "private" → `Private`;
    /// "your age", "age-restricted", "age restricted", "age verification" or "inappropriate
    /// for some users" → `Age`; else `Other`.
    pub fn classify(text: &str) -> LoginKind {
        let text = text.to_lowercase();
        let has_word = |word: &str| {
            text.split(|c: char| !c.is_alphanumeric())
                .any(|w| w == word)
        };
        if has_word("bot") {
            LoginKind::Bot
        } else if text.contains("private") {
            LoginKind::Private
        } else if [
            "your age",
            "age-restricted",
            "age restricted",
            "age verification",
            "inappropriate for some users",
        ]
        .iter()
        .any(|p| text.contains(p))
        {
            LoginKind::Age
        } else {
            LoginKind::Other
        }
    }
}

impl std::fmt::Display for Playability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Playability::LoginRequired(kind) => {
                let why = match kind {
                    LoginKind::Private => "private video",
                    LoginKind::Age => "age gate",
                    LoginKind::Bot => "bot check of this IP",
                    LoginKind::Other => "login",
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
        let line = match self {
            YoutubeError::Unplayable { status, reason } => {
                format!("video not playable: {status}: {reason}")
            }
            YoutubeError::BadResponse { what, message } => {
                format!("unreadable {what} response: {message}")
            }
            YoutubeError::Cipher { player, message } => {
                format!("signature cipher of player {player} not understood: {message}")
            }
            YoutubeError::Http {
                what,
                status: Some(status),
                message,
            } => format!("{what} request failed with HTTP {status}: {message}"),
            YoutubeError::Http {
                what,
                status: None,
                message,
            } => format!("{what} request failed: {message}"),
            YoutubeError::BadJob { message } => format!("invalid job: {message}"),
        };
        // One log line, whatever the response texts hold.
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        f.write_str(&line)
    }
}

impl std::error::Error for YoutubeError {}

/// The first step for a job: the `visitor_id` request (or `Failed(BadJob)`).
pub fn start(job: &Job) -> Step {
    flow::start(job)
}

/// The next step, given the response to the last request (`Err` = transport failure or
/// timeout) and the state blob that came with it. A corrupt or foreign state gives
/// `Failed(BadResponse { what: "state", .. })`.
pub fn resume(state: &[u8], response: Result<Response, String>) -> Step {
    flow::resume(state, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_kinds() {
        assert_eq!(
            LoginKind::classify("Sign in to confirm you’re not a bot"),
            LoginKind::Bot
        );
        assert_eq!(
            LoginKind::classify(
                "Sign in to confirm you're not a bot. This helps protect our community."
            ),
            LoginKind::Bot
        );
        assert_eq!(
            LoginKind::classify("This video is private."),
            LoginKind::Private
        );
        assert_eq!(
            LoginKind::classify("Sign in to confirm your age"),
            LoginKind::Age
        );
        assert_eq!(
            LoginKind::classify("This video may be inappropriate for some users."),
            LoginKind::Age
        );
        // "age" inside other words is not an age gate; "robot" is not "bot".
        assert_eq!(
            LoginKind::classify("Please sign in to see this page, robot"),
            LoginKind::Other
        );
        assert_eq!(LoginKind::classify(""), LoginKind::Other);
    }

    #[test]
    fn errors_display_on_one_line() {
        let errors = [
            YoutubeError::Unplayable {
                status: Playability::LoginRequired(LoginKind::Bot),
                reason: "Sign in to confirm you’re not a bot".into(),
            },
            YoutubeError::BadResponse {
                what: "player".into(),
                message: "not JSON".into(),
            },
            YoutubeError::Cipher {
                player: "2840754e".into(),
                message: "no signature function".into(),
            },
            YoutubeError::Http {
                what: "watch-page".into(),
                status: Some(429),
                message: "unexpected status".into(),
            },
            YoutubeError::Http {
                what: "player".into(),
                status: None,
                message: "timeout".into(),
            },
            YoutubeError::BadJob {
                message: "bad video id".into(),
            },
            YoutubeError::Unplayable {
                status: Playability::Other("NEW\nSTATUS".into()),
                reason: "line one\nline two\r".into(),
            },
        ];
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "video not playable: LOGIN_REQUIRED (bot check of this IP): Sign in to confirm you’re not a bot",
                "unreadable player response: not JSON",
                "signature cipher of player 2840754e not understood: no signature function",
                "watch-page request failed with HTTP 429: unexpected status",
                "player request failed: timeout",
                "invalid job: bad video id",
                "video not playable: NEW STATUS: line one line two ",
            ]
        );
    }
}
