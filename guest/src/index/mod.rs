//! Segment tables from a stream's index: MP4 `sidx` or WebM `Cues` (SPEC §5).

mod cues;
mod ebml;
mod sidx;

use crate::selection::servable_reason;
use crate::types::{ByteRange, Container, StreamMeta};

/// Largest fetch (index, or head plus index) the policy asks the host for.
pub const MAX_INDEX_FETCH: u64 = 8 << 20;

/// Why a stream cannot have a segment table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unindexable {
    /// The stream lacks what segment serving needs.
    NotServable(String),
    /// A container this policy does not index.
    Unsupported(String),
}

impl std::fmt::Display for Unindexable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unindexable::NotServable(m) => write!(f, "not servable: {m}"),
            Unindexable::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

/// Which bytes the host must fetch to build a stream's segment table: the index range, or
/// for WebM the file from offset 0 through the index when that is small (the head holds the
/// Segment's data start, so clusters are placed exactly instead of assumed to follow the Cues).
pub fn source(meta: &StreamMeta) -> Result<ByteRange, Unindexable> {
    servable_reason(meta).map_err(|m| Unindexable::NotServable(m.into()))?;
    let (Some(init), Some(index)) = (meta.init_range, meta.index_range) else {
        return Err(Unindexable::NotServable("no init or index range".into()));
    };
    let container = Container::from_mime(&meta.mime)
        .ok_or_else(|| Unindexable::Unsupported(format!("container of {:?}", meta.mime)))?;
    if index.len() > MAX_INDEX_FETCH {
        return Err(Unindexable::NotServable(format!(
            "index of {} bytes is larger than {MAX_INDEX_FETCH}",
            index.len()
        )));
    }
    match container {
        Container::Webm if init.start == 0 && index.end < MAX_INDEX_FETCH => Ok(ByteRange {
            start: 0,
            end: index.end,
        }),
        _ => Ok(index),
    }
}

/// Parses the bytes the host fetched for [`source`] into the stream's segment table.
pub fn parse_fetched(
    meta: &StreamMeta,
    fetched: ByteRange,
    bytes: &[u8],
) -> Result<Vec<ByteRange>, IndexError> {
    let container = Container::from_mime(&meta.mime)
        .ok_or_else(|| IndexError::Unsupported(format!("container of {:?}", meta.mime)))?;
    let (Some(index_range), Some(content_length)) = (meta.index_range, meta.content_length) else {
        return Err(IndexError::Unsupported(
            "stream has no index range or length".into(),
        ));
    };
    if u64::try_from(bytes.len()).ok() != Some(fetched.len()) {
        return Err(IndexError::Truncated(format!(
            "fetched range holds {} bytes, got {}",
            fetched.len(),
            bytes.len()
        )));
    }
    let (head_bytes, index_bytes) = if fetched == index_range {
        (None, bytes)
    } else if fetched.start == 0 && fetched.end == index_range.end {
        let at = usize::try_from(index_range.start)
            .map_err(|_| IndexError::OutOfBounds("index starts beyond memory".into()))?;
        let (head, index) = bytes
            .split_at_checked(at)
            .ok_or_else(|| IndexError::Truncated("fetched bytes end before the index".into()))?;
        (Some(head), index)
    } else {
        return Err(IndexError::Malformed(format!(
            "fetched range {}-{} does not hold the index {}-{}",
            fetched.start, fetched.end, index_range.start, index_range.end
        )));
    };
    parse(&IndexInput {
        container,
        index_range,
        content_length,
        index_bytes,
        head_bytes,
    })
}

/// Everything needed to turn a stream's index into a segment table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInput<'a> {
    /// The stream's container.
    pub container: Container,
    /// The stream's `indexRange`.
    pub index_range: ByteRange,
    /// The stream's total length.
    pub content_length: u64,
    /// Exactly the bytes of `index_range`.
    pub index_bytes: &'a [u8],
    /// Bytes from offset 0 of the stream, if available (WebM: finds the Segment data start).
    pub head_bytes: Option<&'a [u8]>,
}

/// Why an index could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// The bytes end before the structure does.
    Truncated(String),
    /// The bytes are not the expected structure.
    Malformed(String),
    /// A valid structure this policy does not handle.
    Unsupported(String),
    /// The index points outside the stream.
    OutOfBounds(String),
    /// The index holds no segments.
    Empty,
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexError::Truncated(m) => write!(f, "truncated index: {m}"),
            IndexError::Malformed(m) => write!(f, "malformed index: {m}"),
            IndexError::Unsupported(m) => write!(f, "unsupported index: {m}"),
            IndexError::OutOfBounds(m) => write!(f, "index out of bounds: {m}"),
            IndexError::Empty => f.write_str("index holds no segments"),
        }
    }
}

impl std::error::Error for IndexError {}

/// Parses the index into the absolute, inclusive byte range of every segment, in order.
///
/// Every returned range is non-empty, ranges are ascending and do not overlap, and all lie
/// inside `0..content_length`.
pub fn parse(input: &IndexInput<'_>) -> Result<Vec<ByteRange>, IndexError> {
    let expected = input.index_range.len();
    if input.index_range.end < input.index_range.start {
        return Err(IndexError::Malformed(
            "index range ends before it starts".into(),
        ));
    }
    if u64::try_from(input.index_bytes.len()).ok() != Some(expected) {
        return Err(IndexError::Truncated(format!(
            "index range holds {expected} bytes, got {}",
            input.index_bytes.len()
        )));
    }
    if input.index_range.end >= input.content_length {
        return Err(IndexError::OutOfBounds(format!(
            "index range ends at {} but the stream is {} bytes",
            input.index_range.end, input.content_length
        )));
    }
    let table = match input.container {
        Container::Mp4 => sidx::segments(input)?,
        Container::Webm => cues::segments(input)?,
    };
    if table.is_empty() {
        return Err(IndexError::Empty);
    }
    if u32::try_from(table.len()).is_err() {
        return Err(IndexError::Unsupported("more than 2^32 segments".into()));
    }
    Ok(table)
}

/// Checks that segment ranges are non-empty, ascending, disjoint and inside the stream.
fn check_table(table: &[ByteRange], content_length: u64) -> Result<(), IndexError> {
    let mut next_free = 0u64;
    for (k, r) in table.iter().enumerate() {
        if r.end < r.start {
            return Err(IndexError::Malformed(format!("segment {k} is empty")));
        }
        if r.start < next_free {
            return Err(IndexError::Malformed(format!(
                "segment {k} overlaps the previous one"
            )));
        }
        if r.end >= content_length {
            return Err(IndexError::OutOfBounds(format!(
                "segment {k} ends at {} but the stream is {content_length} bytes",
                r.end
            )));
        }
        next_free = r.end.saturating_add(1);
    }
    Ok(())
}
