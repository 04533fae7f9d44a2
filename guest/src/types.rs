//! Vocabulary shared by the policy modules (mirrors `interface types` in the WIT file).

/// An inclusive byte range `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range (0 if `end < start`).
    pub fn len(&self) -> u64 {
        if self.end < self.start {
            0
        } else {
            (self.end - self.start).saturating_add(1)
        }
    }

    /// True when the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The container of a DASH stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// ISO BMFF (fragmented MP4) with a `sidx` index.
    Mp4,
    /// WebM (Matroska) with a `Cues` index.
    Webm,
}

impl Container {
    /// The container a VideoInfo `type` string names (`video/webm; ...` or anything with mp4).
    pub fn from_mime(mime: &str) -> Option<Self> {
        let mime = mime.to_ascii_lowercase();
        if mime.contains("webm") {
            Some(Container::Webm)
        } else if mime.contains("mp4") {
            Some(Container::Mp4)
        } else {
            None
        }
    }
}

/// What the host knows about one stream of a video.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamMeta {
    /// The stream's itag.
    pub itag: u32,
    /// The VideoInfo `type` field.
    pub mime: String,
    /// Content length, if known.
    pub content_length: Option<u64>,
    /// Initialisation range, if known.
    pub init_range: Option<ByteRange>,
    /// Index range, if known.
    pub index_range: Option<ByteRange>,
    /// Whether the host can fetch bytes of this stream.
    pub fetchable: bool,
}

/// One media segment of a stream: `VID:ITAG` and the segment number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentRef {
    /// Video id.
    pub vid: String,
    /// Itag.
    pub itag: u32,
    /// Segment number.
    pub index: u32,
}

impl SegmentRef {
    /// The stream id as it appears on the wire, `VID:ITAG`.
    pub fn stream_id(&self) -> String {
        format!("{}:{}", self.vid, self.itag)
    }
}

/// True for a valid video id: 6 to 15 characters of `[A-Za-z0-9_-]`.
pub fn valid_vid(vid: &str) -> bool {
    (6..=15).contains(&vid.len())
        && vid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses an itag: 1 to 3 decimal digits without a leading zero.
pub fn parse_itag(text: &str) -> Option<u32> {
    let canonical = (1..=3).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    if canonical { text.parse().ok() } else { None }
}

/// True for an itag that [`parse_itag`] accepts (1 to 999).
pub fn valid_itag(itag: u32) -> bool {
    (1..=999).contains(&itag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vid_rules() {
        assert!(valid_vid("dQw4w9WgXcQ"));
        assert!(valid_vid("a-b_c1"));
        assert!(valid_vid("abcdefghijklmno"));
        assert!(!valid_vid("abcde"));
        assert!(!valid_vid("abcdefghijklmnop"));
        assert!(!valid_vid("abc def"));
        assert!(!valid_vid("abc\"def"));
        assert!(!valid_vid("ábcdefg"));
    }

    #[test]
    fn itag_rules() {
        assert_eq!(parse_itag("18"), Some(18));
        assert_eq!(parse_itag("251"), Some(251));
        assert_eq!(parse_itag("0"), None);
        assert_eq!(parse_itag("018"), None);
        assert_eq!(parse_itag("1000"), None);
        assert_eq!(parse_itag(""), None);
        assert_eq!(parse_itag("+1"), None);
    }

    #[test]
    fn range_len() {
        assert_eq!(ByteRange { start: 0, end: 0 }.len(), 1);
        assert_eq!(ByteRange { start: 5, end: 4 }.len(), 0);
        assert_eq!(
            ByteRange {
                start: 0,
                end: u64::MAX
            }
            .len(),
            u64::MAX
        );
        assert_eq!(
            Container::from_mime("audio/webm; codecs=\"opus\""),
            Some(Container::Webm)
        );
        assert_eq!(
            Container::from_mime("video/mp4; codecs=\"avc1\""),
            Some(Container::Mp4)
        );
        assert_eq!(Container::from_mime("text/plain"), None);
    }
}
