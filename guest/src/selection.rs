//! Which stream to use for a DASH manifest or a progressive download (SPEC §7).

use crate::types::StreamMeta;

/// What a stream is picked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The audio representation of a DASH manifest.
    MpdAudio,
    /// The video representation of a DASH manifest.
    MpdVideo,
    /// A single playable stream.
    Progressive,
}

const MPD_AUDIO: &[u32] = &[250, 249, 251, 600, 140, 599];
const MPD_VIDEO: &[u32] = &[
    247, 136, 302, 398, 244, 135, 397, 243, 134, 396, 242, 133, 395, 278, 598, 160, 597,
];
const PROGRESSIVE: &[u32] = &[
    18, 59, 22, 37, 243, 134, 396, 244, 135, 397, 247, 136, 302, 398, 248, 137, 242, 133, 395, 278,
    598, 160, 597,
];

/// The default itag preference list for a purpose.
pub fn default_preference(purpose: Purpose) -> &'static [u32] {
    match purpose {
        Purpose::MpdAudio => MPD_AUDIO,
        Purpose::MpdVideo => MPD_VIDEO,
        Purpose::Progressive => PROGRESSIVE,
    }
}

/// Most itags accepted in one preference list.
pub const MAX_PREFERENCES: usize = 64;

/// Parses a comma-separated itag list such as `18,22`; empty items are skipped.
pub fn parse_preference(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let itag = crate::types::parse_itag(item).ok_or_else(|| format!("bad itag {item:?}"))?;
        if out.len() == MAX_PREFERENCES {
            return Err(format!("more than {MAX_PREFERENCES} itags"));
        }
        out.push(itag);
    }
    Ok(out)
}

/// Whether a stream can be served segment by segment: fetchable, with a length, an init
/// range and a non-empty index range inside the stream.
pub fn servable(s: &StreamMeta) -> bool {
    servable_reason(s).is_ok()
}

/// [`servable`], with what is missing.
pub fn servable_reason(s: &StreamMeta) -> Result<(), &'static str> {
    let (Some(len), Some(init), Some(index)) = (s.content_length, s.init_range, s.index_range)
    else {
        return Err("no length, init range or index range");
    };
    if !s.fetchable {
        return Err("no way to fetch its bytes");
    }
    if len == 0 || init.start > init.end || index.start > index.end {
        return Err("empty stream or backwards range");
    }
    if init.end >= len || index.end >= len {
        return Err("init or index range outside the stream");
    }
    Ok(())
}

fn fits(purpose: Purpose, s: &StreamMeta) -> bool {
    let mime = s.mime.to_ascii_lowercase();
    match purpose {
        Purpose::MpdAudio => servable(s) && mime.starts_with("audio/"),
        Purpose::MpdVideo => servable(s) && mime.starts_with("video/"),
        Purpose::Progressive => s.fetchable,
    }
}

/// Picks a stream's itag: the caller's preferences first, then the defaults, then the
/// fitting stream with the lowest itag. `None` when no stream fits.
pub fn pick(purpose: Purpose, streams: &[StreamMeta], prefer: &[u32]) -> Option<u32> {
    let by_itag = |itag: u32| streams.iter().find(|s| s.itag == itag && fits(purpose, s));
    prefer
        .iter()
        .chain(default_preference(purpose))
        .find_map(|itag| by_itag(*itag))
        .or_else(|| {
            streams
                .iter()
                .filter(|s| fits(purpose, s))
                .min_by_key(|s| s.itag)
        })
        .map(|s| s.itag)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::types::ByteRange;

    pub(crate) fn dash(itag: u32, mime: &str) -> StreamMeta {
        StreamMeta {
            itag,
            mime: mime.into(),
            content_length: Some(10_000),
            init_range: Some(ByteRange { start: 0, end: 99 }),
            index_range: Some(ByteRange {
                start: 100,
                end: 199,
            }),
            fetchable: true,
        }
    }

    fn progressive(itag: u32) -> StreamMeta {
        StreamMeta {
            itag,
            mime: "video/mp4".into(),
            fetchable: true,
            ..Default::default()
        }
    }

    #[test]
    fn picks_by_preference_then_default_then_any() {
        let streams = vec![
            dash(140, "audio/mp4; codecs=\"mp4a.40.2\""),
            dash(251, "audio/webm; codecs=\"opus\""),
            dash(136, "video/mp4; codecs=\"avc1.4d401f\""),
            dash(999, "video/webm"),
            progressive(18),
        ];
        assert_eq!(pick(Purpose::MpdAudio, &streams, &[]), Some(251));
        assert_eq!(pick(Purpose::MpdAudio, &streams, &[140]), Some(140));
        // a video itag asked for as audio is skipped
        assert_eq!(pick(Purpose::MpdAudio, &streams, &[136]), Some(251));
        assert_eq!(pick(Purpose::MpdVideo, &streams, &[]), Some(136));
        assert_eq!(pick(Purpose::MpdVideo, &streams, &[5]), Some(136));
        assert_eq!(pick(Purpose::MpdVideo, &streams[3..4], &[]), Some(999));
        assert_eq!(pick(Purpose::Progressive, &streams, &[]), Some(18));
        assert_eq!(pick(Purpose::Progressive, &streams, &[251]), Some(251));
        assert_eq!(pick(Purpose::MpdAudio, &[progressive(18)], &[]), None);
        assert_eq!(pick(Purpose::Progressive, &[], &[18]), None);
    }

    #[test]
    fn servable_needs_everything() {
        let ok = dash(140, "audio/mp4");
        assert!(servable(&ok));
        assert!(!servable(&StreamMeta {
            content_length: None,
            ..ok.clone()
        }));
        assert!(!servable(&StreamMeta {
            init_range: None,
            ..ok.clone()
        }));
        assert!(!servable(&StreamMeta {
            index_range: None,
            ..ok.clone()
        }));
        assert!(!servable(&StreamMeta {
            fetchable: false,
            ..ok.clone()
        }));
        assert!(!servable(&StreamMeta {
            content_length: Some(150),
            ..ok.clone()
        }));
        let backwards = Some(ByteRange { start: 10, end: 5 });
        assert!(!servable(&StreamMeta {
            index_range: backwards,
            ..ok
        }));
    }

    #[test]
    fn parses_preferences() {
        assert_eq!(parse_preference("18,22"), Ok(vec![18, 22]));
        assert_eq!(parse_preference(""), Ok(vec![]));
        assert_eq!(parse_preference(" 18 , ,22,"), Ok(vec![18, 22]));
        assert!(parse_preference("18,x").is_err());
        assert!(parse_preference("1000").is_err());
        assert!(parse_preference(&"1,".repeat(65)).is_err());
    }
}
