//! The binary chunk format (SPEC §4): a JSON header `["VID:ITAG|N",i,n]` right-padded with
//! spaces to exactly [`HEADER_SIZE`] bytes, then up to [`PAYLOAD_SIZE`] payload bytes.

use crate::types::{SegmentRef, valid_itag, valid_vid};

/// Bytes of header before each payload.
pub const HEADER_SIZE: u32 = 30;
/// Payload bytes per chunk (the last chunk may be shorter).
#[cfg(not(feature = "chaos"))]
pub const PAYLOAD_SIZE: u32 = 51_200;
/// The test-only chaos build cuts smaller chunks, so that a swap to it shows on the wire.
#[cfg(feature = "chaos")]
pub const PAYLOAD_SIZE: u32 = crate::chaos::PAYLOAD_SIZE;

/// How a segment is cut into DataChannel messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Number of chunks.
    pub count: u32,
    /// Payload bytes per chunk.
    pub payload_size: u32,
    /// Header bytes per chunk.
    pub header_size: u32,
}

/// Why a segment cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A zero-length segment has no chunks.
    EmptySegment,
    /// The header would need this many bytes.
    HeaderTooLong(u32),
    /// The chunk number is not below the chunk count.
    ChunkOutOfRange,
    /// The segment's video id or itag cannot appear in a header.
    InvalidId,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::EmptySegment => f.write_str("segment is empty"),
            FrameError::HeaderTooLong(n) => {
                write!(f, "chunk header needs {n} bytes, more than {HEADER_SIZE}")
            }
            FrameError::ChunkOutOfRange => f.write_str("chunk number not below chunk count"),
            FrameError::InvalidId => f.write_str("invalid video id or itag"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Number of decimal digits of `n`.
fn digits(n: u64) -> u32 {
    n.checked_ilog10().unwrap_or(0) + 1
}

/// Length of the unpadded header for chunk `chunk` of `count`.
fn header_len(seg: &SegmentRef, chunk: u32, count: u32) -> u64 {
    // ["  vid  :  itag  |  index  ",  chunk  ,  count  ]
    let fixed = 2 + 1 + 1 + 2 + 1 + 1;
    fixed
        + seg.vid.len() as u64
        + u64::from(digits(u64::from(seg.itag)))
        + u64::from(digits(u64::from(seg.index)))
        + u64::from(digits(u64::from(chunk)))
        + u64::from(digits(u64::from(count)))
}

fn check_id(seg: &SegmentRef) -> Result<(), FrameError> {
    if valid_vid(&seg.vid) && valid_itag(seg.itag) {
        Ok(())
    } else {
        Err(FrameError::InvalidId)
    }
}

/// The chunk plan for a segment of `length` bytes; fails if any of its headers would not fit.
pub fn plan(seg: &SegmentRef, length: u64) -> Result<ChunkPlan, FrameError> {
    check_id(seg)?;
    if length == 0 {
        return Err(FrameError::EmptySegment);
    }
    let count = length.div_ceil(u64::from(PAYLOAD_SIZE));
    let count32 = u32::try_from(count).map_err(|_| {
        FrameError::HeaderTooLong(
            u32::try_from(header_len(seg, u32::MAX, u32::MAX)).unwrap_or(u32::MAX),
        )
    })?;
    // The last chunk has the longest header: its number has the most digits below `count`.
    let longest = header_len(seg, count32 - 1, count32);
    if longest > u64::from(HEADER_SIZE) {
        return Err(FrameError::HeaderTooLong(
            u32::try_from(longest).unwrap_or(u32::MAX),
        ));
    }
    Ok(ChunkPlan {
        count: count32,
        payload_size: PAYLOAD_SIZE,
        header_size: HEADER_SIZE,
    })
}

/// Appends the exact header of chunk `chunk` of `count` to `out`.
pub fn write_header(
    seg: &SegmentRef,
    chunk: u32,
    count: u32,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    check_id(seg)?;
    if chunk >= count {
        return Err(FrameError::ChunkOutOfRange);
    }
    let len = header_len(seg, chunk, count);
    if len > u64::from(HEADER_SIZE) {
        return Err(FrameError::HeaderTooLong(
            u32::try_from(len).unwrap_or(u32::MAX),
        ));
    }
    let start = out.len();
    let text = format!(
        "[\"{}:{}|{}\",{chunk},{count}]",
        seg.vid, seg.itag, seg.index
    );
    out.extend_from_slice(text.as_bytes());
    out.resize(start + HEADER_SIZE as usize, b' ');
    Ok(())
}

/// The exact header of chunk `chunk` of `count`.
pub fn header(seg: &SegmentRef, chunk: u32, count: u32) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(HEADER_SIZE as usize);
    write_header(seg, chunk, count, &mut out)?;
    Ok(out)
}

/// All headers of a segment of `length` bytes, concatenated.
pub fn headers(seg: &SegmentRef, length: u64) -> Result<Vec<u8>, FrameError> {
    let p = plan(seg, length)?;
    let mut out = Vec::with_capacity(p.count as usize * HEADER_SIZE as usize);
    for chunk in 0..p.count {
        write_header(seg, chunk, p.count, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(vid: &str, itag: u32, index: u32) -> SegmentRef {
        SegmentRef {
            vid: vid.into(),
            itag,
            index,
        }
    }

    #[test]
    fn exact_bytes() {
        let h = header(&seg("dQw4w9WgXcQ", 251, 3), 0, 12).unwrap();
        assert_eq!(&h, b"[\"dQw4w9WgXcQ:251|3\",0,12]    ");
        assert_eq!(h.len(), 30);
        let p = plan(&seg("dQw4w9WgXcQ", 251, 3), 51_200 * 11 + 1).unwrap();
        assert_eq!(p.count, 12);
        assert_eq!(plan(&seg("dQw4w9WgXcQ", 251, 3), 51_200).unwrap().count, 1);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        // 11-char vid, 3-digit itag, 2-digit index: 28 bytes with 1-digit chunk numbers
        let s = seg("dQw4w9WgXcQ", 251, 12);
        assert!(plan(&s, 51_200 * 9).is_ok());
        // 10 chunks: `",9,10]` makes 29 bytes, still fine
        assert!(plan(&s, 51_200 * 10).is_ok());
        // `["dQw4w9WgXcQ:251|12",99,100]` is 29 bytes, `...",999,1000]` 31
        assert!(plan(&s, 51_200 * 100).is_ok());
        assert_eq!(plan(&s, 51_200 * 1000), Err(FrameError::HeaderTooLong(31)));
        let long = seg("abcdefghijklmno", 251, 100);
        assert!(matches!(plan(&long, 10), Err(FrameError::HeaderTooLong(_))));
        assert_eq!(plan(&s, 0), Err(FrameError::EmptySegment));
        assert!(plan(&s, u64::MAX).is_err());
        assert_eq!(header(&s, 5, 5), Err(FrameError::ChunkOutOfRange));
        assert_eq!(
            header(&seg("bad\"vid!", 1, 0), 0, 1),
            Err(FrameError::InvalidId)
        );
        assert_eq!(
            header(&seg("goodvid", 1000, 0), 0, 1),
            Err(FrameError::InvalidId)
        );
    }

    fn vid_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{6,15}"
    }

    proptest! {
        #[test]
        fn headers_are_exact_json(vid in vid_strategy(), itag in 1u32..1000, index in any::<u32>(), length in 1u64..50_000_000) {
            let s = seg(&vid, itag, index);
            match plan(&s, length) {
                Ok(p) => {
                    prop_assert_eq!(u64::from(p.count), length.div_ceil(51_200));
                    let all = headers(&s, length).unwrap();
                    prop_assert_eq!(all.len(), p.count as usize * 30);
                    for (i, h) in all.chunks(30).enumerate() {
                        let text = std::str::from_utf8(h).unwrap();
                        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
                        prop_assert_eq!(&v[0], &serde_json::json!(format!("{vid}:{itag}|{index}")));
                        prop_assert_eq!(&v[1], &serde_json::json!(i));
                        prop_assert_eq!(&v[2], &serde_json::json!(p.count));
                        prop_assert!(!text.trim_end().ends_with(' '));
                    }
                }
                Err(FrameError::HeaderTooLong(n)) => {
                    prop_assert!(n > 30);
                    let count = u32::try_from(length.div_ceil(51_200)).unwrap();
                    let t = format!("[\"{vid}:{itag}|{index}\",{},{count}]", count - 1);
                    prop_assert_eq!(t.len() as u32, n);
                }
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}
