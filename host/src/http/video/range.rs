//! The `Range` request header against a representation of known length (RFC 9110 §14).

use crate::policy::ByteRange;

/// What to send for a request, given its `Range` header and the content length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole representation, `200`.
    Full,
    /// One range, `206` with `Content-Range`.
    Partial(ByteRange),
    /// No byte of the range exists, `416` with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Resolves a `Range` header against `len` bytes. A header that is not one valid
/// `bytes=` range (another unit, bad syntax, several ranges) is ignored, as RFC 9110 allows:
/// the whole representation is sent.
pub fn resolve(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| {
        let (unit, spec) = h.trim().split_once('=')?;
        unit.trim()
            .eq_ignore_ascii_case("bytes")
            .then_some(spec.trim())
    }) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // bytes=-N: the last N bytes.
        let Some(n) = number(last) else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial(ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        });
    }
    // bytes=N- and bytes=N-M.
    let Some(start) = number(first) else {
        return RangeRequest::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) => end,
            None => return RangeRequest::Full,
        }
    };
    if end < start {
        RangeRequest::Full
    } else if start >= len {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial(ByteRange {
            start,
            end: end.min(len - 1),
        })
    }
}

/// A decimal number; one too large for `u64` saturates (it is past any end anyway).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{Full, Partial, Unsatisfiable};
    use super::*;

    fn p(start: u64, end: u64) -> RangeRequest {
        Partial(ByteRange { start, end })
    }

    #[test]
    fn single_ranges() {
        assert_eq!(resolve(None, 100), Full);
        assert_eq!(resolve(Some("bytes=0-0"), 100), p(0, 0));
        assert_eq!(resolve(Some("bytes=0-99"), 100), p(0, 99));
        assert_eq!(resolve(Some("bytes=10-20"), 100), p(10, 20));
        assert_eq!(resolve(Some("bytes=10-1000"), 100), p(10, 99));
        assert_eq!(
            resolve(Some("bytes=10-99999999999999999999999"), 100),
            p(10, 99)
        );
        assert_eq!(resolve(Some("Bytes = 5 - 6"), 100), p(5, 6));
    }

    #[test]
    fn open_and_suffix_ranges() {
        assert_eq!(resolve(Some("bytes=0-"), 100), p(0, 99));
        assert_eq!(resolve(Some("bytes=99-"), 100), p(99, 99));
        assert_eq!(resolve(Some("bytes=-1"), 100), p(99, 99));
        assert_eq!(resolve(Some("bytes=-30"), 100), p(70, 99));
        assert_eq!(resolve(Some("bytes=-100"), 100), p(0, 99));
        assert_eq!(resolve(Some("bytes=-500"), 100), p(0, 99));
        assert_eq!(
            resolve(Some("bytes=-99999999999999999999999"), 100),
            p(0, 99)
        );
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(resolve(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(
            resolve(Some("bytes=99999999999999999999999-"), 100),
            Unsatisfiable
        );
        assert_eq!(resolve(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-5"), 0), Unsatisfiable);
    }

    #[test]
    fn ignored_headers_mean_the_whole_body() {
        for h in [
            "items=0-5",
            "bytes=5-1",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-b",
            "bytes 0-5",
            "bytes=--5",
            "bytes=+1-2",
        ] {
            assert_eq!(resolve(Some(h), 100), Full, "{h}");
        }
        assert_eq!(resolve(None, 0), Full);
    }
}
