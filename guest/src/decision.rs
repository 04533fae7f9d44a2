//! Whether to answer a query, and exactly what to send for a resolve (SPEC §4).
//!
//! One call decides everything the host needs: the `found` text for a query, or for a
//! resolve the byte range and every chunk header. The host executes the verdict as it is.

use crate::framing::{self, FrameError};
use crate::protocol;
use crate::selection::servable;
use crate::types::{ByteRange, SegmentRef, StreamMeta};

/// What the peer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `query`: answer found, or stay silent.
    Query,
    /// `resolve`: send the segment, or stay silent.
    Resolve,
}

/// One question from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Query or resolve.
    pub kind: RequestKind,
    /// The segment asked for.
    pub segment: SegmentRef,
    /// An opaque key of the asking peer.
    pub peer: String,
    /// The node's monotonic clock, in milliseconds.
    pub now_ms: u64,
}

/// A stream's segment table as the host lends it.
pub trait SegmentTable {
    /// Number of segments.
    fn count(&self) -> u32;
    /// The range of segment `index`, if it exists.
    fn get(&self, index: u32) -> Option<ByteRange>;
}

impl SegmentTable for Vec<ByteRange> {
    fn count(&self) -> u32 {
        u32::try_from(self.len()).unwrap_or(u32::MAX)
    }

    fn get(&self, index: u32) -> Option<ByteRange> {
        self.as_slice().get(usize::try_from(index).ok()?).copied()
    }
}

/// How far the host got with the stream's segment table.
#[derive(Clone, Copy)]
pub enum TableState<'a> {
    /// Not loaded yet.
    NotLoaded,
    /// Loading failed.
    Failed,
    /// Loaded.
    Loaded(&'a dyn SegmentTable),
}

impl std::fmt::Debug for TableState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableState::NotLoaded => f.write_str("NotLoaded"),
            TableState::Failed => f.write_str("Failed"),
            TableState::Loaded(t) => write!(f, "Loaded({} segments)", t.count()),
        }
    }
}

/// Exactly what to send for a resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPlan {
    /// The stream bytes to send.
    pub range: ByteRange,
    /// Payload bytes per chunk.
    pub payload_size: u32,
    /// Header bytes before each payload.
    pub header_size: u32,
    /// Every chunk header, concatenated.
    pub headers: Vec<u8>,
}

/// Why the node stays silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Silence {
    /// The video or the itag is unknown.
    UnknownStream,
    /// The stream lacks what segment serving needs.
    NotServable,
    /// The segment table could not be loaded.
    IndexUnavailable,
    /// The segment does not exist.
    IndexOutOfRange,
    /// The segment's chunk headers would not fit in 30 bytes.
    HeaderTooLong,
    /// The policy refuses this peer or request.
    Refused(String),
    /// Any other reason.
    Other(String),
}

/// The outcome of a query or resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send this text (a query's `found`).
    Reply(String),
    /// Send this segment.
    Send(SendPlan),
    /// Load the segment table, then ask again.
    NeedIndex,
    /// Say nothing.
    Silent(Silence),
}

fn frame_silence(e: &FrameError) -> Silence {
    match e {
        FrameError::HeaderTooLong(_) => Silence::HeaderTooLong,
        FrameError::EmptySegment | FrameError::ChunkOutOfRange => Silence::IndexOutOfRange,
        FrameError::InvalidId => Silence::UnknownStream,
    }
}

/// Decides a query or resolve for `req.segment`.
pub fn decide(req: &Request, stream: Option<&StreamMeta>, table: TableState<'_>) -> Verdict {
    let seg = &req.segment;
    let Some(stream) = stream else {
        return Verdict::Silent(Silence::UnknownStream);
    };
    if stream.itag != seg.itag {
        return Verdict::Silent(Silence::UnknownStream);
    }
    if !servable(stream) {
        return Verdict::Silent(Silence::NotServable);
    }
    // Even a one-chunk segment would not fit: no need to load the table.
    if let Err(e) = framing::plan(seg, 1) {
        return Verdict::Silent(frame_silence(&e));
    }
    let table = match table {
        TableState::NotLoaded => return Verdict::NeedIndex,
        TableState::Failed => return Verdict::Silent(Silence::IndexUnavailable),
        TableState::Loaded(t) => t,
    };
    let range = match table.get(seg.index) {
        Some(r) if seg.index < table.count() && !r.is_empty() => r,
        _ => return Verdict::Silent(Silence::IndexOutOfRange),
    };
    let plan = match framing::plan(seg, range.len()) {
        Ok(plan) => plan,
        Err(e) => return Verdict::Silent(frame_silence(&e)),
    };
    match req.kind {
        RequestKind::Query => Verdict::Reply(protocol::encode_found(seg)),
        RequestKind::Resolve => match framing::headers(seg, range.len()) {
            Ok(headers) => Verdict::Send(SendPlan {
                range,
                payload_size: plan.payload_size,
                header_size: plan.header_size,
                headers,
            }),
            Err(e) => Verdict::Silent(frame_silence(&e)),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::selection::tests::dash;

    fn req(kind: RequestKind, index: u32) -> Request {
        Request {
            kind,
            segment: SegmentRef {
                vid: "dQw4w9WgXcQ".into(),
                itag: 251,
                index,
            },
            peer: "peer".into(),
            now_ms: 0,
        }
    }

    fn query(index: u32) -> Request {
        req(RequestKind::Query, index)
    }

    /// `count` segments of `len` bytes each, from byte 1000.
    fn table(count: u64, len: u64) -> Vec<ByteRange> {
        (0..count)
            .map(|k| ByteRange {
                start: 1000 + k * len,
                end: 1000 + (k + 1) * len - 1,
            })
            .collect()
    }

    #[test]
    fn decides_queries() {
        let s = dash(251, "audio/webm");
        assert_eq!(
            decide(&query(0), None, TableState::NotLoaded),
            Verdict::Silent(Silence::UnknownStream)
        );
        assert_eq!(
            decide(
                &query(0),
                Some(&dash(140, "audio/mp4")),
                TableState::NotLoaded
            ),
            Verdict::Silent(Silence::UnknownStream)
        );
        let unservable = StreamMeta {
            index_range: None,
            ..s.clone()
        };
        assert_eq!(
            decide(&query(0), Some(&unservable), TableState::NotLoaded),
            Verdict::Silent(Silence::NotServable)
        );
        assert_eq!(
            decide(&query(0), Some(&s), TableState::NotLoaded),
            Verdict::NeedIndex
        );
        assert_eq!(
            decide(&query(0), Some(&s), TableState::Failed),
            Verdict::Silent(Silence::IndexUnavailable)
        );
        let t = table(5, 100);
        assert_eq!(
            decide(&query(4), Some(&s), TableState::Loaded(&t)),
            Verdict::Reply(r#"{"event":"found","data":{"id":"dQw4w9WgXcQ:251","index":4}}"#.into())
        );
        assert_eq!(
            decide(&query(5), Some(&s), TableState::Loaded(&t)),
            Verdict::Silent(Silence::IndexOutOfRange)
        );
        // `["dQw4w9WgXcQ:251|4",999,1000]` is 30 bytes: served
        let big = table(13, 51_200 * 1000);
        assert!(matches!(
            decide(&query(4), Some(&s), TableState::Loaded(&big)),
            Verdict::Reply(_)
        ));
        // index 12 makes it 31: silent
        assert_eq!(
            decide(&query(12), Some(&s), TableState::Loaded(&big)),
            Verdict::Silent(Silence::HeaderTooLong)
        );
        let mut long = query(100);
        long.segment.vid = "abcdefghijklmno".into();
        assert_eq!(
            decide(&long, Some(&s), TableState::NotLoaded),
            Verdict::Silent(Silence::HeaderTooLong)
        );
    }

    #[test]
    fn a_resolve_gets_the_range_and_every_header() {
        let s = dash(251, "audio/webm");
        let t = table(3, 120_000);
        let v = decide(
            &req(RequestKind::Resolve, 1),
            Some(&s),
            TableState::Loaded(&t),
        );
        let Verdict::Send(plan) = v else {
            panic!("{v:?}")
        };
        assert_eq!(plan.range, t[1]);
        assert_eq!((plan.payload_size, plan.header_size), (51_200, 30));
        assert_eq!(plan.headers.len(), 3 * 30);
        assert_eq!(&plan.headers[..30], b"[\"dQw4w9WgXcQ:251|1\",0,3]     ");
        assert_eq!(&plan.headers[60..], b"[\"dQw4w9WgXcQ:251|1\",2,3]     ");
        assert_eq!(
            decide(
                &req(RequestKind::Resolve, 3),
                Some(&s),
                TableState::Loaded(&t)
            ),
            Verdict::Silent(Silence::IndexOutOfRange)
        );
    }
}
