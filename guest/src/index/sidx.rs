//! MP4 Segment Index Box (`sidx`, ISO/IEC 14496-12 §8.16.3), versions 0 and 1.

use super::{IndexError, IndexInput, check_table};
use crate::reader::{Reader, Short};
use crate::types::ByteRange;

fn truncated(what: &str) -> impl Fn(Short) -> IndexError + '_ {
    move |_| IndexError::Truncated(format!("sidx ends inside {what}"))
}

/// Finds the first top-level `sidx` box in the index bytes and returns its segment table.
pub(super) fn segments(input: &IndexInput<'_>) -> Result<Vec<ByteRange>, IndexError> {
    let bytes = input.index_bytes;
    let mut r = Reader::new(bytes);
    loop {
        let box_start = r.pos();
        if r.remaining() == 0 {
            return Err(IndexError::Malformed(
                "no sidx box in the index range".into(),
            ));
        }
        let size32 = r.u32().map_err(truncated("a box header"))?;
        let kind = r.take(4).map_err(truncated("a box header"))?;
        let size = match size32 {
            0 => u64::try_from(bytes.len() - box_start).unwrap_or(u64::MAX),
            1 => r.u64().map_err(truncated("a box header"))?,
            n => u64::from(n),
        };
        let header = u64::try_from(r.pos() - box_start).unwrap_or(u64::MAX);
        if size < header {
            return Err(IndexError::Malformed(format!(
                "box size {size} is below its header"
            )));
        }
        if kind == b"sidx" {
            let body_len = usize::try_from(size - header)
                .map_err(|_| IndexError::Truncated("sidx larger than memory".into()))?;
            let body = r.take(body_len).map_err(truncated("its declared size"))?;
            // first_offset counts from the first byte after the sidx box.
            let box_end = input
                .index_range
                .start
                .checked_add(u64::try_from(r.pos()).unwrap_or(u64::MAX))
                .ok_or_else(|| IndexError::OutOfBounds("sidx end overflows".into()))?;
            return references(body, box_end, input.content_length);
        }
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(IndexError::Malformed(
                "index range does not hold MP4 boxes".into(),
            ));
        }
        r.skip(size - header)
            .map_err(truncated("a box before the sidx"))?;
    }
}

/// Parses a `sidx` body (after size and type) into absolute segment ranges.
fn references(body: &[u8], anchor: u64, content_length: u64) -> Result<Vec<ByteRange>, IndexError> {
    let mut r = Reader::new(body);
    let version = r.u8().map_err(truncated("the version"))?;
    r.skip(3).map_err(truncated("the flags"))?;
    let _reference_id = r.u32().map_err(truncated("reference_ID"))?;
    let timescale = r.u32().map_err(truncated("the timescale"))?;
    if timescale == 0 {
        return Err(IndexError::Malformed("sidx timescale is 0".into()));
    }
    let first_offset = match version {
        0 => {
            let _earliest = r.u32().map_err(truncated("earliest_presentation_time"))?;
            u64::from(r.u32().map_err(truncated("first_offset"))?)
        }
        1 => {
            let _earliest = r.u64().map_err(truncated("earliest_presentation_time"))?;
            r.u64().map_err(truncated("first_offset"))?
        }
        v => return Err(IndexError::Unsupported(format!("sidx version {v}"))),
    };
    let _reserved = r.u16().map_err(truncated("reserved"))?;
    let count = r.u16().map_err(truncated("reference_count"))?;
    if r.remaining() < usize::from(count) * 12 {
        return Err(IndexError::Truncated(format!(
            "sidx declares {count} references but holds {} bytes of them",
            r.remaining()
        )));
    }
    let mut start = anchor
        .checked_add(first_offset)
        .ok_or_else(|| IndexError::OutOfBounds("first_offset overflows".into()))?;
    let mut table = Vec::with_capacity(usize::from(count));
    for k in 0..count {
        let word = r.u32().map_err(truncated("a reference"))?;
        let _duration = r.u32().map_err(truncated("a reference"))?;
        let _sap = r.u32().map_err(truncated("a reference"))?;
        if word & 0x8000_0000 != 0 {
            return Err(IndexError::Unsupported(format!(
                "reference {k} points to another sidx (hierarchical index)"
            )));
        }
        let size = u64::from(word & 0x7FFF_FFFF);
        if size == 0 {
            return Err(IndexError::Malformed(format!("reference {k} has size 0")));
        }
        let end = start
            .checked_add(size - 1)
            .ok_or_else(|| IndexError::OutOfBounds("segment end overflows".into()))?;
        table.push(ByteRange { start, end });
        start = end.saturating_add(1);
    }
    check_table(&table, content_length)?;
    Ok(table)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use crate::index::parse;
    use crate::types::Container;

    /// Builds a sidx box with the given version, first_offset and reference sizes.
    pub(crate) fn sidx_box(version: u8, first_offset: u64, sizes: &[u32]) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        body.extend(1u32.to_be_bytes());
        body.extend(90_000u32.to_be_bytes());
        if version == 0 {
            body.extend(0u32.to_be_bytes());
            body.extend(u32::try_from(first_offset).unwrap().to_be_bytes());
        } else {
            body.extend(0u64.to_be_bytes());
            body.extend(first_offset.to_be_bytes());
        }
        body.extend(0u16.to_be_bytes());
        body.extend(u16::try_from(sizes.len()).unwrap().to_be_bytes());
        for s in sizes {
            body.extend(s.to_be_bytes());
            body.extend(90_000u32.to_be_bytes());
            body.extend(0x9000_0000u32.to_be_bytes());
        }
        let mut out = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        out.extend(b"sidx");
        out.extend(body);
        out
    }

    fn input(bytes: &[u8], start: u64, len: u64) -> IndexInput<'_> {
        IndexInput {
            container: Container::Mp4,
            index_range: ByteRange {
                start,
                end: start + bytes.len() as u64 - 1,
            },
            content_length: len,
            index_bytes: bytes,
            head_bytes: None,
        }
    }

    #[test]
    fn version0_and_1_agree() {
        for v in [0, 1] {
            let b = sidx_box(v, 10, &[100, 200, 50]);
            let end = 1000 + b.len() as u64 - 1;
            let t = parse(&input(&b, 1000, 10_000)).unwrap();
            assert_eq!(
                t,
                vec![
                    ByteRange {
                        start: end + 11,
                        end: end + 110
                    },
                    ByteRange {
                        start: end + 111,
                        end: end + 310
                    },
                    ByteRange {
                        start: end + 311,
                        end: end + 360
                    },
                ]
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        let b = sidx_box(0, 0, &[100, 200]);
        // truncated at every length
        for n in 1..b.len() {
            let cut = &b[..n];
            let err = parse(&input(cut, 100, 10_000)).unwrap_err();
            assert!(
                matches!(err, IndexError::Truncated(_) | IndexError::Malformed(_)),
                "{n}: {err:?}"
            );
        }
        // segment past the end of the stream
        let err = parse(&input(&b, 100, 300)).unwrap_err();
        assert!(matches!(err, IndexError::OutOfBounds(_)), "{err:?}");
        // wrong box
        let mut moov = b.clone();
        moov[4..8].copy_from_slice(b"moov");
        assert!(parse(&input(&moov, 100, 10_000)).is_err());
        // hierarchical reference
        let mut h = b.clone();
        let first_ref = 8 + 4 + 4 + 4 + 8 + 4;
        h[first_ref] |= 0x80;
        assert!(matches!(
            parse(&input(&h, 100, 10_000)),
            Err(IndexError::Unsupported(_))
        ));
        // unknown version
        let mut v2 = b.clone();
        v2[8] = 2;
        assert!(matches!(
            parse(&input(&v2, 100, 10_000)),
            Err(IndexError::Unsupported(_))
        ));
        // zero references
        let z = sidx_box(0, 0, &[]);
        assert_eq!(parse(&input(&z, 100, 10_000)), Err(IndexError::Empty));
        // wrong byte count for the range
        let mut inp = input(&b, 100, 10_000);
        inp.index_range.end += 1;
        assert!(matches!(parse(&inp), Err(IndexError::Truncated(_))));
    }

    #[test]
    fn skips_leading_boxes_and_handles_large_size() {
        let mut b = vec![0, 0, 0, 8];
        b.extend(b"free");
        b.extend(sidx_box(1, 0, &[10]));
        let t = parse(&input(&b, 0, 10_000)).unwrap();
        assert_eq!(
            t,
            vec![ByteRange {
                start: b.len() as u64,
                end: b.len() as u64 + 9
            }]
        );
        // 64-bit largesize header
        let inner = sidx_box(0, 0, &[10]);
        let mut large = vec![0, 0, 0, 1];
        large.extend(b"sidx");
        large.extend((inner.len() as u64 + 8).to_be_bytes());
        large.extend(&inner[8..]);
        let t = parse(&input(&large, 0, 10_000)).unwrap();
        assert_eq!(t[0].start, large.len() as u64);
    }

    #[test]
    fn thousand_references() {
        let sizes: Vec<u32> = (0..1000).map(|k| 1000 + k).collect();
        let b = sidx_box(1, 0, &sizes);
        let t = parse(&input(&b, 0, 10_000_000)).unwrap();
        assert_eq!(t.len(), 1000);
        assert_eq!(t[999].len(), 1999);
    }
}
