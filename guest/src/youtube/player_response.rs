//! A player response (innertube or the watch page's) → playability, then [`Parsed`] and
//! finally [`VideoInfo`] (YOUTUBE-NOTES §1, §3).
//!
//! [`Parsed`] is what the flow keeps in its state while it fetches the player script, so it
//! holds only what the VideoInfo needs (duplicates already dropped).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Caption, LoginKind, Playability, StreamInfo, VideoInfo, YoutubeError};
use crate::types::{ByteRange, valid_itag};

/// Longest JSON response parsed.
pub(crate) const MAX_JSON_RESPONSE: usize = 4 << 20;
/// Most formats and captions kept (more is not a real response).
const MAX_FORMATS: usize = 200;
const MAX_CAPTIONS: usize = 200;

/// Where a format's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Source {
    /// A usable URL.
    Url(String),
    /// `signatureCipher` (or `cipher`): the URL needs the deciphered `s` under `sp`.
    Cipher { s: String, sp: String, url: String },
}

/// One kept format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Format {
    pub(crate) itag: u32,
    pub(crate) quality: String,
    pub(crate) mime: String,
    pub(crate) source: Source,
    pub(crate) content_length: Option<u64>,
    pub(crate) init_range: Option<(u64, u64)>,
    pub(crate) index_range: Option<(u64, u64)>,
}

/// The parts of an OK player response that make a VideoInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Parsed {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) duration: String,
    pub(crate) author: String,
    pub(crate) captions: Vec<Caption>,
    pub(crate) live: bool,
    /// `streamingData.expiresInSeconds`.
    pub(crate) expires_in: Option<u64>,
    /// Unique itags, ascending.
    pub(crate) formats: Vec<Format>,
}

impl Parsed {
    pub(crate) fn has_cipher(&self) -> bool {
        self.formats
            .iter()
            .any(|f| matches!(f.source, Source::Cipher { .. }))
    }

    pub(crate) fn has_url(&self) -> bool {
        self.formats
            .iter()
            .any(|f| matches!(f.source, Source::Url(_)))
    }

    /// The VideoInfo; formats still ciphered are dropped.
    pub(crate) fn into_info(
        self,
        now_unix: u64,
        media_headers: Vec<(String, String)>,
        warnings: Vec<String>,
    ) -> VideoInfo {
        let streams: Vec<StreamInfo> = self
            .formats
            .into_iter()
            .filter_map(|f| {
                let Source::Url(url) = f.source else {
                    return None;
                };
                let range = |r: Option<(u64, u64)>| r.map(|(start, end)| ByteRange { start, end });
                Some(StreamInfo {
                    itag: f.itag,
                    quality: f.quality,
                    mime: f.mime,
                    url,
                    content_length: f.content_length,
                    init_range: range(f.init_range),
                    index_range: range(f.index_range),
                })
            })
            .collect();
        let url_expiry = streams
            .iter()
            .filter_map(|s| query_param(&s.url, "expire"))
            .filter_map(|e| e.parse::<u64>().ok())
            .map(|expire| expire.saturating_sub(now_unix));
        let expires_in_secs = self.expires_in.into_iter().chain(url_expiry).min();
        VideoInfo {
            id: self.id,
            title: self.title,
            duration: self.duration,
            author: self.author,
            captions: self.captions,
            streams,
            live: self.live,
            expires_in_secs,
            media_headers,
            warnings,
        }
    }
}

/// The first value of query parameter `name` in `url`.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Parses a JSON response body.
pub(crate) fn json(body: &[u8], what: &str) -> Result<Value, YoutubeError> {
    let bad = |message: String| YoutubeError::BadResponse {
        what: what.into(),
        message,
    };
    if body.len() > MAX_JSON_RESPONSE {
        return Err(bad(format!("longer than {MAX_JSON_RESPONSE} bytes")));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(bad("not a JSON object".into()))
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `simpleText`, or the concatenated `runs[].text`.
fn rendered_text(v: &Value) -> Option<String> {
    if let Some(s) = v.get("simpleText").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    let runs = v.get("runs")?.as_array()?;
    Some(
        runs.iter()
            .filter_map(|r| r.get("text")?.as_str())
            .collect(),
    )
}

/// `Ok` when `playabilityStatus.status` is OK; else why not.
pub(crate) fn playability(v: &Value, what: &str) -> Result<(), YoutubeError> {
    let Some(ps) = v.get("playabilityStatus") else {
        return Err(YoutubeError::BadResponse {
            what: what.into(),
            message: "no playabilityStatus".into(),
        });
    };
    let status = ps.get("status").and_then(Value::as_str).unwrap_or("");
    if status == "OK" {
        return Ok(());
    }
    let error = ps.pointer("/errorScreen/playerErrorMessageRenderer");
    let screen_reason = error.and_then(|e| rendered_text(e.get("reason")?));
    let reason = ps
        .get("reason")
        .and_then(Value::as_str)
        .map(String::from)
        .or(screen_reason.clone())
        .unwrap_or_default();
    let status = match status {
        "LOGIN_REQUIRED" => {
            // Every text the response gives, for the heuristics.
            let subreason = error.and_then(|e| rendered_text(e.get("subreason")?));
            let all = [Some(reason.clone()), screen_reason, subreason]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let kind = match LoginKind::classify(&all) {
                LoginKind::Other if ps.get("desktopLegacyAgeGateReason").is_some() => {
                    LoginKind::Age
                }
                kind => kind,
            };
            Playability::LoginRequired(kind)
        }
        "UNPLAYABLE" => Playability::Unplayable,
        "ERROR" => Playability::Error,
        "LIVE_STREAM_OFFLINE" => Playability::LiveStreamOffline,
        "AGE_CHECK_REQUIRED" => Playability::AgeCheckRequired,
        "AGE_VERIFICATION_REQUIRED" => Playability::AgeVerificationRequired,
        "CONTENT_CHECK_REQUIRED" => Playability::ContentCheckRequired,
        "" => {
            return Err(YoutubeError::BadResponse {
                what: what.into(),
                message: "no playabilityStatus.status".into(),
            });
        }
        other => Playability::Other(other.chars().take(64).collect()),
    };
    Err(YoutubeError::Unplayable { status, reason })
}

/// A number given as a string (or as a number).
fn number(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

fn range(v: Option<&Value>) -> Option<(u64, u64)> {
    let v = v?;
    let (start, end) = (number(v.get("start"))?, number(v.get("end"))?);
    (start <= end).then_some((start, end))
}

/// One format, or `None` for formats that cannot be used (SABR-only, bad itag).
fn format(f: &Value, live: bool, warnings: &mut Vec<String>) -> Option<(Format, bool)> {
    let itag = u32::try_from(f.get("itag")?.as_u64()?)
        .ok()
        .filter(|&i| valid_itag(i))?;
    let source = if let Some(url) = f.get("url").and_then(Value::as_str) {
        Source::Url(url.to_string())
    } else if let Some(cipher) = ["signatureCipher", "cipher"]
        .iter()
        .find_map(|k| f.get(*k)?.as_str())
    {
        let param = |name: &str| {
            form_urlencoded::parse(cipher.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let (Some(s), Some(url)) = (param("s"), param("url")) else {
            warnings.push(format!(
                "itag {itag}: signatureCipher without s or url, dropped"
            ));
            return None;
        };
        let sp = param("sp").unwrap_or_else(|| "signature".into());
        Source::Cipher { s, sp, url }
    } else {
        // SABR-only (`serverAbrStreamingUrl`): nothing to fetch by range.
        return None;
    };
    let quality = f
        .get("qualityLabel")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty())
        .or_else(|| f.get("quality")?.as_str())
        .unwrap_or_default()
        .to_string();
    // OTF and live streams have no fixed bytes to serve by segment.
    let segmented = f.get("type").and_then(Value::as_str) == Some("FORMAT_STREAM_TYPE_OTF")
        || f.get("targetDurationSec").is_some()
        || live;
    let (content_length, init_range, index_range) = if segmented {
        (None, None, None)
    } else {
        (
            number(f.get("contentLength")),
            range(f.get("initRange")),
            range(f.get("indexRange")),
        )
    };
    let is_default = f
        .pointer("/audioTrack/audioIsDefault")
        .and_then(Value::as_bool)
        == Some(true);
    Some((
        Format {
            itag,
            quality,
            mime: text(f.get("mimeType").unwrap_or(&Value::Null)),
            source,
            content_length,
            init_range,
            index_range,
        },
        is_default,
    ))
}

/// The parts of an OK player response; `video_id` is the one requested.
pub(crate) fn parse(
    v: &Value,
    video_id: &str,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Parsed, YoutubeError> {
    let bad = |message: String| YoutubeError::BadResponse {
        what: what.into(),
        message,
    };
    let details = v
        .get("videoDetails")
        .ok_or_else(|| bad("no videoDetails".into()))?;
    let id = text(details.get("videoId").unwrap_or(&Value::Null));
    if id != video_id {
        return Err(bad(format!(
            "response is for video {id:.20}, not {video_id}"
        )));
    }
    let live = details.get("isLive").and_then(Value::as_bool) == Some(true);
    let streaming = v.get("streamingData");

    // Unique itags: the default audio track wins, else the first seen.
    let mut by_itag: BTreeMap<u32, (Format, bool)> = BTreeMap::new();
    let all = ["formats", "adaptiveFormats"]
        .iter()
        .filter_map(|k| streaming?.get(*k)?.as_array())
        .flatten()
        .take(MAX_FORMATS);
    for f in all {
        let Some((format, is_default)) = format(f, live, warnings) else {
            continue;
        };
        match by_itag.get(&format.itag) {
            Some((_, true)) => {}
            Some((_, false)) if !is_default => {}
            _ => {
                by_itag.insert(format.itag, (format, is_default));
            }
        }
    }

    let captions = v
        .pointer("/captions/playerCaptionsTracklistRenderer/captionTracks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_CAPTIONS)
        .filter_map(|t| {
            Some(Caption {
                url: t.get("baseUrl")?.as_str()?.to_string(),
                language: t.get("languageCode")?.as_str()?.to_string(),
            })
        })
        .collect();

    Ok(Parsed {
        id,
        title: text(details.get("title").unwrap_or(&Value::Null)),
        duration: text(details.get("lengthSeconds").unwrap_or(&Value::Null)),
        author: text(details.get("author").unwrap_or(&Value::Null)),
        captions,
        live,
        expires_in: number(streaming.and_then(|s| s.get("expiresInSeconds"))),
        formats: by_itag.into_values().map(|(f, _)| f).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> (Parsed, Vec<String>) {
        let v: Value = serde_json::from_str(json).unwrap();
        playability(&v, "player").unwrap();
        let mut warnings = Vec::new();
        let p = parse(&v, "abcdefghijk", "player", &mut warnings).unwrap();
        (p, warnings)
    }

    const DETAILS: &str = r#""playabilityStatus":{"status":"OK"},"videoDetails":{"videoId":"abcdefghijk","title":"T","lengthSeconds":"61","author":"A"}"#;

    #[test]
    fn otf_sabr_and_duplicate_audio() {
        let json = format!(
            r#"{{{DETAILS},"streamingData":{{"expiresInSeconds":"21540","adaptiveFormats":[
            {{"itag":140,"url":"https://m/?itag=140&lang=de","mimeType":"audio/mp4","quality":"tiny","contentLength":"100","initRange":{{"start":"0","end":"9"}},"indexRange":{{"start":"10","end":"20"}},"audioTrack":{{"id":"de.3","audioIsDefault":false}}}},
            {{"itag":140,"url":"https://m/?itag=140&lang=en","mimeType":"audio/mp4","quality":"tiny","contentLength":"200","initRange":{{"start":"0","end":"9"}},"indexRange":{{"start":"10","end":"20"}},"audioTrack":{{"id":"en.4","audioIsDefault":true}}}},
            {{"itag":140,"url":"https://m/?itag=140&lang=fr","mimeType":"audio/mp4","quality":"tiny","audioTrack":{{"id":"fr.3","audioIsDefault":false}}}},
            {{"itag":251,"url":"https://m/?itag=251&n=1","mimeType":"audio/webm","quality":"tiny","contentLength":"300"}},
            {{"itag":251,"url":"https://m/?itag=251&n=2","mimeType":"audio/webm","quality":"tiny","contentLength":"301"}},
            {{"itag":137,"url":"https://m/?itag=137","mimeType":"video/mp4","quality":"hd1080","qualityLabel":"1080p","type":"FORMAT_STREAM_TYPE_OTF","contentLength":"5","initRange":{{"start":"0","end":"9"}},"indexRange":{{"start":"10","end":"20"}}}},
            {{"itag":248,"mimeType":"video/webm","quality":"hd1080","qualityLabel":"1080p"}},
            {{"itag":0,"url":"https://m/?itag=0"}},
            {{"itag":1000,"url":"https://m/?itag=1000"}},
            {{"itag":"18","url":"https://m/?itag=18"}},
            {{"itag":136,"url":"https://m/?itag=136","mimeType":"video/mp4","quality":"hd720","qualityLabel":"","initRange":{{"start":"9","end":"0"}},"indexRange":{{"start":"x","end":"20"}}}}
            ]}}}}"#
        );
        let (p, warnings) = parsed(&json);
        assert!(warnings.is_empty());
        assert_eq!(
            p.formats.iter().map(|f| f.itag).collect::<Vec<_>>(),
            [136, 137, 140, 251]
        );
        let [f136, f137, f140, f251] = &p.formats[..] else {
            panic!()
        };
        // Empty qualityLabel falls back to quality; bad ranges are dropped.
        assert_eq!(f136.quality, "hd720");
        assert_eq!((f136.init_range, f136.index_range), (None, None));
        // OTF keeps its URL but has no ranges and no length.
        assert_eq!(f137.source, Source::Url("https://m/?itag=137".into()));
        assert_eq!(f137.quality, "1080p");
        assert_eq!(
            (f137.content_length, f137.init_range, f137.index_range),
            (None, None, None)
        );
        // The default audio track wins over the first.
        assert_eq!(
            f140.source,
            Source::Url("https://m/?itag=140&lang=en".into())
        );
        assert_eq!(f140.content_length, Some(200));
        assert_eq!(
            (f140.init_range, f140.index_range),
            (Some((0, 9)), Some((10, 20)))
        );
        // Without a default, the first wins.
        assert_eq!(f251.content_length, Some(300));
        assert!(!p.live);
        assert_eq!(p.expires_in, Some(21540));
    }

    #[test]
    fn live_formats_have_no_ranges() {
        let json = r#"{"playabilityStatus":{"status":"OK"},"videoDetails":{"videoId":"abcdefghijk","title":"L","lengthSeconds":"0","author":"A","isLive":true},
            "streamingData":{"adaptiveFormats":[
            {"itag":136,"url":"https://m/?itag=136&expire=1000","mimeType":"video/mp4","quality":"hd720","qualityLabel":"720p","targetDurationSec":5,"contentLength":"9","initRange":{"start":"0","end":"9"},"indexRange":{"start":"10","end":"20"}}]}}"#;
        let (p, _) = parsed(json);
        assert!(p.live);
        let info = p.into_info(400, vec![], vec![]);
        assert!(info.live);
        assert_eq!(info.duration, "0");
        assert_eq!(info.streams.len(), 1);
        assert_eq!(info.streams[0].content_length, None);
        assert_eq!(info.streams[0].init_range, None);
        assert_eq!(info.expires_in_secs, Some(600));
    }

    #[test]
    fn ciphers_and_expiry() {
        let json = format!(
            r#"{{{DETAILS},"streamingData":{{"expiresInSeconds":"21540","formats":[
            {{"itag":18,"signatureCipher":"s=AB%3DC&sp=sig&url=https%3A%2F%2Fm%2F%3Fexpire%3D1100%26itag%3D18","mimeType":"video/mp4","quality":"medium","qualityLabel":"360p"}},
            {{"itag":22,"cipher":"s=XYZ&url=https%3A%2F%2Fm%2F%3Fitag%3D22"}},
            {{"itag":43,"signatureCipher":"sp=sig&url=https%3A%2F%2Fm%2F"}}
            ],"adaptiveFormats":[{{"itag":140,"url":"https://m/?expire=1000&itag=140","mimeType":"audio/mp4","quality":"tiny"}}]}}}}"#
        );
        let (p, warnings) = parsed(&json);
        assert_eq!(
            warnings,
            ["itag 43: signatureCipher without s or url, dropped"]
        );
        assert!(p.has_cipher() && p.has_url());
        assert_eq!(
            p.formats[0].source,
            Source::Cipher {
                s: "AB=C".into(),
                sp: "sig".into(),
                url: "https://m/?expire=1100&itag=18".into()
            }
        );
        assert_eq!(
            p.formats[1].source,
            Source::Cipher {
                s: "XYZ".into(),
                sp: "signature".into(),
                url: "https://m/?itag=22".into()
            }
        );
        // Still-ciphered formats are dropped; expiry is the soonest of all.
        let info = p.clone().into_info(990, vec![], vec![]);
        assert_eq!(info.streams.len(), 1);
        assert_eq!(info.expires_in_secs, Some(10));
        assert_eq!(
            p.clone().into_info(2000, vec![], vec![]).expires_in_secs,
            Some(0)
        );
        let mut no_urls = p;
        no_urls.formats.clear();
        no_urls.expires_in = None;
        assert_eq!(no_urls.into_info(0, vec![], vec![]).expires_in_secs, None);
    }

    #[test]
    fn playability_statuses() {
        let status = |ps: &str| {
            let v: Value =
                serde_json::from_str(&format!(r#"{{"playabilityStatus":{ps}}}"#)).unwrap();
            playability(&v, "player")
        };
        let unplayable = |status: Playability, reason: &str| {
            Err(YoutubeError::Unplayable {
                status,
                reason: reason.into(),
            })
        };
        assert_eq!(status(r#"{"status":"OK"}"#), Ok(()));
        assert_eq!(
            status(r#"{"status":"ERROR","reason":"Video unavailable"}"#),
            unplayable(Playability::Error, "Video unavailable")
        );
        assert_eq!(
            status(
                r#"{"status":"UNPLAYABLE","errorScreen":{"playerErrorMessageRenderer":{"reason":{"runs":[{"text":"This video is "},{"text":"not available"}]}}}}"#
            ),
            unplayable(Playability::Unplayable, "This video is not available")
        );
        assert_eq!(
            status(r#"{"status":"LIVE_STREAM_OFFLINE","reason":"Premieres in 2 hours"}"#),
            unplayable(Playability::LiveStreamOffline, "Premieres in 2 hours")
        );
        assert_eq!(
            status(r#"{"status":"AGE_CHECK_REQUIRED"}"#),
            unplayable(Playability::AgeCheckRequired, "")
        );
        assert_eq!(
            status(r#"{"status":"AGE_VERIFICATION_REQUIRED","reason":"r"}"#),
            unplayable(Playability::AgeVerificationRequired, "r")
        );
        assert_eq!(
            status(r#"{"status":"CONTENT_CHECK_REQUIRED","reason":"r"}"#),
            unplayable(Playability::ContentCheckRequired, "r")
        );
        assert_eq!(
            status(r#"{"status":"SOMETHING_NEW","reason":"r"}"#),
            unplayable(Playability::Other("SOMETHING_NEW".into()), "r")
        );
        assert_eq!(
            status(r#"{"status":"LOGIN_REQUIRED","reason":"Sign in to confirm you’re not a bot"}"#),
            unplayable(
                Playability::LoginRequired(LoginKind::Bot),
                "Sign in to confirm you’re not a bot"
            )
        );
        assert_eq!(
            status(
                r#"{"status":"LOGIN_REQUIRED","reason":"Sign in","errorScreen":{"playerErrorMessageRenderer":{"subreason":{"simpleText":"This video is private"}}}}"#
            ),
            unplayable(Playability::LoginRequired(LoginKind::Private), "Sign in")
        );
        assert_eq!(
            status(r#"{"status":"LOGIN_REQUIRED","desktopLegacyAgeGateReason":1}"#),
            unplayable(Playability::LoginRequired(LoginKind::Age), "")
        );
        assert_eq!(
            status(r#"{"status":"LOGIN_REQUIRED","reason":"Sign in"}"#),
            unplayable(Playability::LoginRequired(LoginKind::Other), "Sign in")
        );
        assert!(matches!(
            status("{}"),
            Err(YoutubeError::BadResponse { .. })
        ));
        let v: Value = serde_json::from_str("{}").unwrap();
        assert!(matches!(
            playability(&v, "x"),
            Err(YoutubeError::BadResponse { .. })
        ));
    }

    #[test]
    fn details_must_match_the_video() {
        let v: Value = serde_json::from_str(&format!("{{{DETAILS}}}")).unwrap();
        let mut w = Vec::new();
        assert!(parse(&v, "abcdefghijk", "player", &mut w).is_ok());
        assert_eq!(
            parse(&v, "zzzzzzzzzzz", "player", &mut w),
            Err(YoutubeError::BadResponse {
                what: "player".into(),
                message: "response is for video abcdefghijk, not zzzzzzzzzzz".into()
            })
        );
        let no_details: Value =
            serde_json::from_str(r#"{"playabilityStatus":{"status":"OK"}}"#).unwrap();
        assert!(parse(&no_details, "abcdefghijk", "player", &mut w).is_err());
        assert!(json(b"[1]", "player").is_err());
        assert!(json(b"nope", "player").is_err());
        assert!(json(br#"{"a":1}"#, "player").is_ok());
    }
}
