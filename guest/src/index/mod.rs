//! Segment tables from a stream's index: MP4 `sidx` or WebM `Cues` (SPEC §5).

mod cues;
mod ebml;
mod sidx;

use crate::types::{ByteRange, Container};

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
