//! The VideoInfo JSON model shared with videoproxy (SPEC §5): numbers are strings.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::{ByteRange, StreamMeta};

/// Information about one video: metadata, captions and streams by itag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// Video id.
    #[serde(default)]
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Duration in seconds, as a string.
    #[serde(default)]
    pub duration: String,
    /// Author.
    #[serde(default)]
    pub author: String,
    /// Caption tracks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<Caption>,
    /// Streams keyed by itag.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamItem>,
    /// When the stream URLs expire (direct mode): the info is kept until a little before.
    #[serde(skip)]
    pub expires_in: Option<Duration>,
}

/// One caption track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caption {
    /// Where to fetch it (omitted unless asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Language code.
    #[serde(default)]
    pub language: String,
}

/// One stream of a video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamItem {
    /// Quality label.
    #[serde(default)]
    pub quality: String,
    /// MIME type with codecs, e.g. `video/mp4; codecs="avc1.4d401f"`.
    #[serde(rename = "type", default)]
    pub mime: String,
    /// Direct URL (omitted unless asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Itag.
    #[serde(default)]
    pub itag: String,
    /// Content length in bytes.
    #[serde(rename = "len", default)]
    pub len: String,
    /// Initialisation range.
    #[serde(rename = "initRange", default)]
    pub init_range: Option<RangeItem>,
    /// Index range.
    #[serde(rename = "indexRange", default)]
    pub index_range: Option<RangeItem>,
    /// Headers to send with requests for the URL (direct mode: the User-Agent it was issued to).
    #[serde(skip)]
    pub media_headers: Arc<[(String, String)]>,
}

/// A `{"start","end"}` pair of decimal strings, inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeItem {
    /// First byte.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// Last byte.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
}

impl RangeItem {
    /// The range as numbers, if both parse.
    pub fn range(&self) -> Option<ByteRange> {
        Some(ByteRange {
            start: self.start.parse().ok()?,
            end: self.end.parse().ok()?,
        })
    }
}

impl StreamItem {
    /// Content length, if it parses.
    pub fn content_length(&self) -> Option<u64> {
        self.len.parse().ok()
    }

    /// What the policy needs to know about this stream. `fetchable` says whether the host
    /// can get its bytes (a URL or a BASE_URL origin).
    pub fn meta(&self, itag: u32, fetchable: bool) -> StreamMeta {
        StreamMeta {
            itag,
            mime: self.mime.clone(),
            content_length: self.content_length(),
            init_range: self.init_range.as_ref().and_then(RangeItem::range),
            index_range: self.index_range.as_ref().and_then(RangeItem::range),
            fetchable,
        }
    }
}

impl VideoInfo {
    /// The same info without stream and caption URLs (what `/video/{id}.json` shows).
    pub fn without_urls(&self) -> VideoInfo {
        let mut out = self.clone();
        for s in out.streams.values_mut() {
            s.url = None;
        }
        for c in &mut out.captions {
            c.url = None;
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_videoproxy_shape() {
        let text = r#"{"id":"dQw4w9WgXcQ","title":"t","duration":"6","author":"a",
            "captions":[{"url":"http://c","language":"en"}],
            "streams":{"251":{"quality":"tiny","type":"audio/webm; codecs=\"opus\"","url":"http://x",
            "itag":"251","len":"53846","initRange":{"start":"0","end":"438"},
            "indexRange":{"start":"439","end":"568"}},
            "18":{"quality":"medium","type":"video/mp4","itag":"18","len":"","initRange":null,"indexRange":null}}}"#;
        let info: VideoInfo = serde_json::from_str(text).unwrap();
        let s = &info.streams["251"];
        let meta = s.meta(251, true);
        assert_eq!(meta.content_length, Some(53846));
        assert_eq!(
            meta.index_range,
            Some(ByteRange {
                start: 439,
                end: 568
            })
        );
        assert_eq!(info.streams["18"].meta(18, true).content_length, None);
        let stripped = serde_json::to_value(info.without_urls()).unwrap();
        assert!(stripped["streams"]["251"].get("url").is_none());
        assert!(stripped["captions"][0].get("url").is_none());
        assert_eq!(stripped["streams"]["251"]["initRange"]["end"], "438");
    }
}
