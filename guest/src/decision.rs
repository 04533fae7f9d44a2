//! Whether to answer `found` to a query and serve a resolve (SPEC §4).

use crate::framing;
use crate::selection::servable;
use crate::types::{ByteRange, SegmentRef, StreamMeta};

/// What the host knows of a loaded segment table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLookup {
    /// Number of segments in the table.
    pub count: u32,
    /// The requested segment's range, if its index is in the table.
    pub range: Option<ByteRange>,
}

/// How far the host got with the stream's segment table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableState {
    /// Not loaded yet.
    NotLoaded,
    /// Loading failed.
    Failed,
    /// Loaded.
    Loaded(SegmentLookup),
}

/// Why the node stays silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// The outcome of a query or resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve the segment.
    Serve,
    /// Load the segment table, then ask again.
    NeedIndex,
    /// Say nothing.
    Silent(Silence),
}

/// Decides a query or resolve for `seg`.
pub fn found(seg: &SegmentRef, stream: Option<&StreamMeta>, table: TableState) -> Verdict {
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
    if framing::plan(seg, 1).is_err() {
        return Verdict::Silent(Silence::HeaderTooLong);
    }
    match table {
        TableState::NotLoaded => Verdict::NeedIndex,
        TableState::Failed => Verdict::Silent(Silence::IndexUnavailable),
        TableState::Loaded(lookup) => match lookup.range {
            Some(range) if seg.index < lookup.count && !range.is_empty() => {
                match framing::plan(seg, range.len()) {
                    Ok(_) => Verdict::Serve,
                    Err(_) => Verdict::Silent(Silence::HeaderTooLong),
                }
            }
            _ => Verdict::Silent(Silence::IndexOutOfRange),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::tests::dash;

    fn seg(index: u32) -> SegmentRef {
        SegmentRef {
            vid: "dQw4w9WgXcQ".into(),
            itag: 251,
            index,
        }
    }

    fn loaded(count: u32, len: u64) -> TableState {
        TableState::Loaded(SegmentLookup {
            count,
            range: Some(ByteRange {
                start: 1000,
                end: 1000 + len - 1,
            }),
        })
    }

    #[test]
    fn decides() {
        let s = dash(251, "audio/webm");
        assert_eq!(
            found(&seg(0), None, TableState::NotLoaded),
            Verdict::Silent(Silence::UnknownStream)
        );
        assert_eq!(
            found(
                &seg(0),
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
            found(&seg(0), Some(&unservable), TableState::NotLoaded),
            Verdict::Silent(Silence::NotServable)
        );
        assert_eq!(
            found(&seg(0), Some(&s), TableState::NotLoaded),
            Verdict::NeedIndex
        );
        assert_eq!(
            found(&seg(0), Some(&s), TableState::Failed),
            Verdict::Silent(Silence::IndexUnavailable)
        );
        assert_eq!(found(&seg(4), Some(&s), loaded(5, 100)), Verdict::Serve);
        assert_eq!(
            found(&seg(5), Some(&s), loaded(5, 100)),
            Verdict::Silent(Silence::IndexOutOfRange)
        );
        let none = TableState::Loaded(SegmentLookup {
            count: 5,
            range: None,
        });
        assert_eq!(
            found(&seg(1), Some(&s), none),
            Verdict::Silent(Silence::IndexOutOfRange)
        );
        // `["dQw4w9WgXcQ:251|4",999,1000]` is 30 bytes: served
        assert_eq!(
            found(&seg(4), Some(&s), loaded(5, 51_200 * 1000)),
            Verdict::Serve
        );
        // index 12 makes it 31: silent
        assert_eq!(
            found(&seg(12), Some(&s), loaded(13, 51_200 * 1000)),
            Verdict::Silent(Silence::HeaderTooLong)
        );
        let long = SegmentRef {
            vid: "abcdefghijklmno".into(),
            itag: 251,
            index: 100,
        };
        assert_eq!(
            found(&long, Some(&s), TableState::NotLoaded),
            Verdict::Silent(Silence::HeaderTooLong)
        );
    }
}
