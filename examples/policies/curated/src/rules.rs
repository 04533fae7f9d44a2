//! The decisions this policy makes differently from the default one.

use videortc_guest::decision::{self, Request, Silence, TableState, Verdict};
use videortc_guest::selection::{self, Purpose};
use videortc_guest::types::{self, StreamMeta};

/// The video ids this node serves unless the build sets `CURATED_VIDEOS` (comma-separated).
/// `fixtureVid01` is the video of videortc's test suite.
pub const ALLOWED: &str = match option_env!("CURATED_VIDEOS") {
    Some(list) => list,
    None => "fixtureVid01,aqz-KE-bpKQ,YE7VzlLtp-4",
};

/// Largest segment this policy announces or sends.
pub const MAX_SEGMENT: u64 = 2 << 20;

/// Manifest audio: AAC first (then Opus, for videos without AAC).
const MPD_AUDIO: &[u32] = &[140, 139, 141, 599, 251, 250, 249, 600];
/// Manifest video: H.264 from 720p down (then VP9).
const MPD_VIDEO: &[u32] = &[136, 135, 134, 133, 160, 137, 247, 244, 243, 242, 278, 248];

/// Whether `vid` is a well-formed id on the list.
pub fn allowed(vid: &str) -> bool {
    types::valid_vid(vid) && ALLOWED.split(',').any(|v| v.trim() == vid)
}

/// The default decision, refused for ids off the list and for segments over the cap.
pub fn decide(req: &Request, stream: Option<&StreamMeta>, table: TableState<'_>) -> Verdict {
    let seg = &req.segment;
    if !allowed(&seg.vid) {
        return Verdict::Silent(Silence::Refused(format!(
            "video {} is not on this node's list",
            seg.vid
        )));
    }
    if let TableState::Loaded(t) = table
        && let Some(range) = t.get(seg.index)
        && range.len() > MAX_SEGMENT
    {
        return Verdict::Silent(Silence::Refused(format!(
            "segment of {} bytes is over the {MAX_SEGMENT}-byte cap",
            range.len()
        )));
    }
    decision::decide(req, stream, table)
}

/// The default pick, with this policy's manifest preferences after the caller's own.
pub fn pick(purpose: Purpose, streams: &[StreamMeta], prefer: &[u32]) -> Option<u32> {
    let defaults = match purpose {
        Purpose::MpdAudio => MPD_AUDIO,
        Purpose::MpdVideo => MPD_VIDEO,
        Purpose::Progressive => &[],
    };
    let mut order = prefer.to_vec();
    order.extend_from_slice(defaults);
    selection::pick(purpose, streams, &order)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use videortc_guest::decision::RequestKind;
    use videortc_guest::types::{ByteRange, SegmentRef};

    fn stream(itag: u32, mime: &str) -> StreamMeta {
        StreamMeta {
            itag,
            mime: mime.into(),
            content_length: Some(10 << 20),
            init_range: Some(ByteRange { start: 0, end: 99 }),
            index_range: Some(ByteRange {
                start: 100,
                end: 199,
            }),
            fetchable: true,
        }
    }

    fn req(kind: RequestKind, vid: &str, index: u32) -> Request {
        Request {
            kind,
            segment: SegmentRef {
                vid: vid.into(),
                itag: 140,
                index,
            },
            peer: "p".into(),
            now_ms: 0,
        }
    }

    /// Segment 0 is 1 MiB, segment 1 is 3 MiB.
    fn table() -> Vec<ByteRange> {
        vec![
            ByteRange {
                start: 200,
                end: 200 + (1 << 20) - 1,
            },
            ByteRange {
                start: 200 + (1 << 20),
                end: 200 + (4 << 20) - 1,
            },
        ]
    }

    #[test]
    fn only_listed_ids_are_accepted() {
        assert!(allowed("fixtureVid01"));
        assert!(!allowed("dQw4w9WgXcQ"));
        assert!(!allowed("fixtureVid0"));
        assert!(!allowed(""));
        let meta = stream(140, "audio/mp4");
        let v = decide(
            &req(RequestKind::Query, "dQw4w9WgXcQ", 0),
            Some(&meta),
            TableState::NotLoaded,
        );
        assert!(matches!(v, Verdict::Silent(Silence::Refused(_))), "{v:?}");
    }

    #[test]
    fn segments_over_the_cap_are_neither_found_nor_sent() {
        let (meta, t) = (stream(140, "audio/mp4"), table());
        for kind in [RequestKind::Query, RequestKind::Resolve] {
            let small = decide(
                &req(kind, "fixtureVid01", 0),
                Some(&meta),
                TableState::Loaded(&t),
            );
            let big = decide(
                &req(kind, "fixtureVid01", 1),
                Some(&meta),
                TableState::Loaded(&t),
            );
            assert!(
                matches!(small, Verdict::Reply(_) | Verdict::Send(_)),
                "{small:?}"
            );
            assert!(
                matches!(big, Verdict::Silent(Silence::Refused(_))),
                "{big:?}"
            );
        }
        // Before the table is loaded the size is unknown: the default asks for it.
        let v = decide(
            &req(RequestKind::Resolve, "fixtureVid01", 1),
            Some(&meta),
            TableState::NotLoaded,
        );
        assert_eq!(v, Verdict::NeedIndex);
    }

    #[test]
    fn manifests_prefer_aac_and_h264() {
        let streams = [
            stream(251, "audio/webm; codecs=\"opus\""),
            stream(140, "audio/mp4; codecs=\"mp4a.40.2\""),
            stream(248, "video/webm; codecs=\"vp9\""),
            stream(137, "video/mp4; codecs=\"avc1.640028\""),
            stream(136, "video/mp4; codecs=\"avc1.4d401f\""),
        ];
        assert_eq!(pick(Purpose::MpdAudio, &streams, &[]), Some(140));
        assert_eq!(pick(Purpose::MpdVideo, &streams, &[]), Some(136));
        // The default policy picks Opus here.
        assert_eq!(selection::pick(Purpose::MpdAudio, &streams, &[]), Some(251));
        // The caller's own preference still comes first.
        assert_eq!(pick(Purpose::MpdAudio, &streams, &[251]), Some(251));
    }
}
