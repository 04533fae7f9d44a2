//! Minimal EBML element reader (RFC 8794): element IDs, sizes and unsigned integers.

use crate::reader::{Reader, Short};

/// EBML header element.
pub(super) const EBML: u32 = 0x1A45_DFA3;
/// Matroska Segment.
pub(super) const SEGMENT: u32 = 0x1853_8067;
/// Cues.
pub(super) const CUES: u32 = 0x1C53_BB6B;
/// CuePoint.
pub(super) const CUE_POINT: u32 = 0xBB;
/// CueTrackPositions.
pub(super) const CUE_TRACK_POSITIONS: u32 = 0xB7;
/// CueClusterPosition.
pub(super) const CUE_CLUSTER_POSITION: u32 = 0xF1;
/// Void.
pub(super) const VOID: u32 = 0xEC;

/// An element header: its ID, its data size (`None` = unknown size) and the header length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub id: u32,
    pub size: Option<u64>,
    pub header_len: usize,
}

/// Why an element header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderError {
    Short,
    /// A first byte of zero or an ID longer than 4 bytes.
    BadVint,
}

impl From<Short> for HeaderError {
    fn from(_: Short) -> Self {
        HeaderError::Short
    }
}

/// Reads a variable-length integer; returns (value without marker, value with marker, length).
fn vint(r: &mut Reader<'_>, max_len: u32) -> Result<(u64, u64, u32), HeaderError> {
    let first = r.u8()?;
    let len = first.leading_zeros() + 1;
    if first == 0 || len > max_len {
        return Err(HeaderError::BadVint);
    }
    let mut raw = u64::from(first);
    for _ in 1..len {
        raw = (raw << 8) | u64::from(r.u8()?);
    }
    let marker = 1u64 << (7 * len);
    Ok((raw & !marker, raw, len))
}

/// Reads one element header.
pub(super) fn header(r: &mut Reader<'_>) -> Result<Header, HeaderError> {
    let start = r.pos();
    let (_, id, _) = vint(r, 4)?;
    let (size, _, len) = vint(r, 8)?;
    let unknown = size == (1u64 << (7 * len)) - 1;
    Ok(Header {
        id: u32::try_from(id).map_err(|_| HeaderError::BadVint)?,
        size: if unknown { None } else { Some(size) },
        header_len: r.pos() - start,
    })
}

/// Reads an unsigned integer element body of `len` bytes (0 to 8).
pub(super) fn uint(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers() {
        let mut r = Reader::new(&[0x1A, 0x45, 0xDF, 0xA3, 0x84, 1, 2, 3, 4]);
        let h = header(&mut r).unwrap();
        assert_eq!(
            h,
            Header {
                id: EBML,
                size: Some(4),
                header_len: 5
            }
        );
        let mut r = Reader::new(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        let h = header(&mut r).unwrap();
        assert_eq!(h.size, None);
        assert_eq!(h.header_len, 12);
        let mut r = Reader::new(&[0xEC, 0x40, 0x02]);
        assert_eq!(header(&mut r).unwrap().size, Some(2));
        assert_eq!(
            header(&mut Reader::new(&[0x00, 0x81])),
            Err(HeaderError::BadVint)
        );
        assert_eq!(
            header(&mut Reader::new(&[0x08, 1, 2, 3, 4, 0x81])),
            Err(HeaderError::BadVint)
        );
        assert_eq!(
            header(&mut Reader::new(&[0x1A, 0x45])),
            Err(HeaderError::Short)
        );
        assert_eq!(uint(&[1, 0]), Some(256));
        assert_eq!(uint(&[]), Some(0));
        assert_eq!(uint(&[0; 9]), None);
    }
}
