//! WebM `Cues`: one segment per distinct CueClusterPosition (SPEC §5).

use super::ebml::{self, Header, HeaderError};
use super::{IndexError, IndexInput, check_table};
use crate::reader::Reader;
use crate::types::ByteRange;

fn header_error(what: &str) -> impl Fn(HeaderError) -> IndexError + '_ {
    move |e| match e {
        HeaderError::Short => IndexError::Truncated(format!("bytes end inside {what}")),
        HeaderError::BadVint => IndexError::Malformed(format!("bad EBML number in {what}")),
    }
}

/// The body of the element whose header was just read, bounded by the reader.
fn body<'a>(r: &mut Reader<'a>, h: &Header, what: &str) -> Result<&'a [u8], IndexError> {
    let size = h
        .size
        .ok_or_else(|| IndexError::Unsupported(format!("{what} has unknown size")))?;
    let size = usize::try_from(size)
        .map_err(|_| IndexError::Truncated(format!("{what} larger than memory")))?;
    r.take(size)
        .map_err(|_| IndexError::Truncated(format!("bytes end inside {what}")))
}

/// Parses the segment table from a WebM Cues element.
pub(super) fn segments(input: &IndexInput<'_>) -> Result<Vec<ByteRange>, IndexError> {
    let mut positions = cluster_positions(input.index_bytes)?;
    positions.sort_unstable();
    positions.dedup();
    let Some(&first) = positions.first() else {
        return Err(IndexError::Empty);
    };
    let data_start = match input.head_bytes {
        Some(head) => segment_data_start(head)?,
        // Without the head bytes, assume the first Cluster directly follows the Cues.
        None => input
            .index_range
            .end
            .checked_add(1)
            .and_then(|after| after.checked_sub(first))
            .ok_or_else(|| {
                IndexError::OutOfBounds("first cluster position lies past the Cues".into())
            })?,
    };
    let starts = positions
        .iter()
        .map(|p| data_start.checked_add(*p))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| IndexError::OutOfBounds("cluster position overflows".into()))?;
    let mut table = Vec::with_capacity(starts.len());
    for (k, start) in starts.iter().enumerate() {
        let end = match starts.get(k + 1) {
            Some(next) => next.saturating_sub(1),
            // The last cluster ends at the Cues if they come after it, else at the end.
            None if input.index_range.start > *start => input.index_range.start - 1,
            None => input.content_length.saturating_sub(1),
        };
        if *start <= input.index_range.end && end >= input.index_range.start {
            return Err(IndexError::Malformed(format!(
                "cluster {k} overlaps the Cues"
            )));
        }
        table.push(ByteRange { start: *start, end });
    }
    check_table(&table, input.content_length)?;
    Ok(table)
}

/// Every CueClusterPosition inside the Cues element at (or after Voids at) the start of `bytes`.
fn cluster_positions(bytes: &[u8]) -> Result<Vec<u64>, IndexError> {
    let mut r = Reader::new(bytes);
    let cues = loop {
        let h = ebml::header(&mut r).map_err(header_error("the Cues header"))?;
        if h.id == ebml::CUES {
            break body(&mut r, &h, "Cues")?;
        }
        if h.id != ebml::VOID {
            return Err(IndexError::Malformed(format!(
                "index range starts with element {:#X}, not Cues",
                h.id
            )));
        }
        body(&mut r, &h, "Void")?;
    };
    let mut positions = Vec::new();
    let mut points = Reader::new(cues);
    while points.remaining() > 0 {
        let h = ebml::header(&mut points).map_err(header_error("a CuePoint"))?;
        let point = body(&mut points, &h, "a CuePoint")?;
        if h.id != ebml::CUE_POINT {
            continue;
        }
        let mut fields = Reader::new(point);
        while fields.remaining() > 0 {
            let h = ebml::header(&mut fields).map_err(header_error("a CuePoint child"))?;
            let track = body(&mut fields, &h, "a CuePoint child")?;
            if h.id != ebml::CUE_TRACK_POSITIONS {
                continue;
            }
            let mut pos = Reader::new(track);
            while pos.remaining() > 0 {
                let h = ebml::header(&mut pos).map_err(header_error("CueTrackPositions"))?;
                let value = body(&mut pos, &h, "CueTrackPositions")?;
                if h.id == ebml::CUE_CLUSTER_POSITION {
                    let p = ebml::uint(value).ok_or_else(|| {
                        IndexError::Malformed("CueClusterPosition longer than 8 bytes".into())
                    })?;
                    positions.push(p);
                }
            }
        }
    }
    Ok(positions)
}

/// Absolute offset of the Segment element's data: what CueClusterPosition counts from.
fn segment_data_start(head: &[u8]) -> Result<u64, IndexError> {
    let mut r = Reader::new(head);
    let h = ebml::header(&mut r).map_err(header_error("the EBML header"))?;
    if h.id != ebml::EBML {
        return Err(IndexError::Malformed(
            "stream does not start with an EBML header".into(),
        ));
    }
    body(&mut r, &h, "the EBML header")?;
    loop {
        let h = ebml::header(&mut r).map_err(header_error("the Segment header"))?;
        if h.id == ebml::SEGMENT {
            return u64::try_from(r.pos())
                .map_err(|_| IndexError::OutOfBounds("segment offset".into()));
        }
        if h.id != ebml::VOID {
            return Err(IndexError::Malformed(format!(
                "expected a Segment after the EBML header, found {:#X}",
                h.id
            )));
        }
        body(&mut r, &h, "Void")?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use crate::index::parse;
    use crate::types::Container;

    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        // 8-byte size: marker 0x01 then 7 bytes
        out.push(0x01);
        out.extend(&(body.len() as u64).to_be_bytes()[1..]);
        out.extend(body);
        out
    }

    /// A Cues element with one CuePoint per position.
    pub(crate) fn cues_element(positions: &[u64]) -> Vec<u8> {
        let mut points = Vec::new();
        for p in positions {
            let mut tp = element(&[0xF7], &[1]);
            tp.extend(element(&[0xF1], &p.to_be_bytes()));
            let mut cp = element(&[0xB3], &[0]);
            cp.extend(element(&[0xB7], &tp));
            points.extend(element(&[0xBB], &cp));
        }
        element(&[0x1C, 0x53, 0xBB, 0x6B], &points)
    }

    fn head(segment_offset_padding: usize) -> Vec<u8> {
        let mut h = element(&[0x1A, 0x45, 0xDF, 0xA3], &[0x42, 0x86, 0x81, 0x01]);
        if segment_offset_padding > 0 {
            h.extend(element(&[0xEC], &vec![0; segment_offset_padding]));
        }
        h.extend([
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        h
    }

    #[test]
    fn with_head_bytes_uses_segment_start() {
        let h = head(0);
        let data_start = h.len() as u64;
        let cues = cues_element(&[500, 1500, 1500, 4000]);
        let index_range = ByteRange {
            start: 200,
            end: 200 + cues.len() as u64 - 1,
        };
        let t = parse(&IndexInput {
            container: Container::Webm,
            index_range,
            content_length: 10_000,
            index_bytes: &cues,
            head_bytes: Some(&h),
        })
        .unwrap();
        assert_eq!(
            t,
            vec![
                ByteRange {
                    start: data_start + 500,
                    end: data_start + 1499
                },
                ByteRange {
                    start: data_start + 1500,
                    end: data_start + 3999
                },
                ByteRange {
                    start: data_start + 4000,
                    end: 9999
                },
            ]
        );
    }

    #[test]
    fn without_head_bytes_assumes_cluster_after_cues() {
        let cues = cues_element(&[300, 900]);
        let index_range = ByteRange {
            start: 1000,
            end: 1000 + cues.len() as u64 - 1,
        };
        let t = parse(&IndexInput {
            container: Container::Webm,
            index_range,
            content_length: 5_000,
            index_bytes: &cues,
            head_bytes: None,
        })
        .unwrap();
        assert_eq!(t[0].start, index_range.end + 1);
        assert_eq!(t[1].start, index_range.end + 601);
        assert_eq!(t[1].end, 4999);
    }

    #[test]
    fn cues_at_the_end_bound_the_last_cluster() {
        let h = head(0);
        let ds = h.len() as u64;
        let cues = cues_element(&[100, 600]);
        let index_range = ByteRange {
            start: 2000,
            end: 2000 + cues.len() as u64 - 1,
        };
        let t = parse(&IndexInput {
            container: Container::Webm,
            index_range,
            content_length: index_range.end + 1,
            index_bytes: &cues,
            head_bytes: Some(&h),
        })
        .unwrap();
        assert_eq!(
            t[1],
            ByteRange {
                start: ds + 600,
                end: 1999
            }
        );
    }

    #[test]
    fn rejects_bad_input() {
        let h = head(0);
        let cues = cues_element(&[500, 1500]);
        let mk = |bytes: &[u8], head: Option<&[u8]>, len: u64| {
            parse(&IndexInput {
                container: Container::Webm,
                index_range: ByteRange {
                    start: 100,
                    end: 100 + bytes.len() as u64 - 1,
                },
                content_length: len,
                index_bytes: bytes,
                head_bytes: head,
            })
        };
        for n in 1..cues.len() {
            assert!(mk(&cues[..n], Some(&h), 10_000).is_err(), "cut at {n}");
        }
        for n in 0..h.len() {
            assert!(mk(&cues, Some(&h[..n]), 10_000).is_err(), "head cut at {n}");
        }
        // cluster past the end
        assert!(matches!(
            mk(&cues, Some(&h), 600),
            Err(IndexError::OutOfBounds(_))
        ));
        // not Cues
        let mut wrong = cues.clone();
        wrong[0] = 0x1F;
        assert!(mk(&wrong, Some(&h), 10_000).is_err());
        // no cue points
        assert_eq!(
            mk(&cues_element(&[]), Some(&h), 10_000),
            Err(IndexError::Empty)
        );
        // cluster overlapping the Cues (position 0 relative to a segment start before the cues)
        assert!(matches!(
            mk(&cues_element(&[0, 5000]), Some(&h), 10_000),
            Err(IndexError::Malformed(_))
        ));
    }
}
