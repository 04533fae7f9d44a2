//! An independent, deliberately simple walker over DASH-like media files.
//!
//! It computes what a YouTube-style DASH `VideoInfo` would say about a file (`initRange`,
//! `indexRange`) and the *true* segment table, found by walking the file's top-level structure
//! (`moof` boxes for MP4, `Cluster` elements for WebM). It never reads `sidx` or `Cues` contents,
//! so it can be used as an oracle for code that does.

use std::path::{Path, PathBuf};

/// Inclusive byte range, like DASH initRange/indexRange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte of the range.
    pub start: u64,
    /// Last byte of the range (inclusive).
    pub end: u64,
}

impl Range {
    /// Number of bytes covered by the range.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }

    /// Always false: an inclusive range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a YouTube-style VideoInfo says about a DASH file, plus the truth about its segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// File length in bytes.
    pub len: u64,
    /// MP4: `0 ..= end of moov`. WebM: `0 ..= byte before Cues`.
    pub init: Range,
    /// MP4: the whole `sidx` box. WebM: the whole `Cues` element (ID + size + data).
    pub index: Range,
    /// Absolute, inclusive segment ranges, in file order.
    ///
    /// MP4: each segment starts at a top-level `styp` directly preceding a `moof` if present,
    /// else at the `moof`, and ends right before the next segment start; the last one ends at
    /// the end of the file (or right before a trailing top-level `mfra`, which no index covers).
    ///
    /// WebM: each top-level `Cluster` inside the `Segment`, ending right before the next
    /// `Cluster`, or at the end of the `Segment` (the end of the file if its size is unknown).
    pub segments: Vec<Range>,
    /// WebM: absolute offset of the `Segment` element's data (what `CueClusterPosition` is
    /// relative to). MP4: 0.
    pub segment_data_start: u64,
}

/// The committed fixtures, relative to [`fixture_dir`].
pub const FIXTURES: [&str; 4] = ["video.mp4", "audio.m4a", "video.webm", "audio.webm"];

/// `CARGO_MANIFEST_DIR/fixtures/media`: where `fixtures/make-media.sh` writes its files.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("media")
}

/// Reads a file and computes its layout, choosing the walker by extension:
/// `.mp4`/`.m4a` → [`mp4_layout`], `.webm` → [`webm_layout`].
pub fn layout_for_path(path: &Path) -> Result<Layout, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let result = match ext.as_str() {
        "mp4" | "m4a" => mp4_layout(&bytes),
        "webm" => webm_layout(&bytes),
        other => Err(format!("unknown extension {other:?}")),
    };
    result.map_err(|e| format!("{}: {e}", path.display()))
}

fn u64_of(n: usize) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| format!("length {n} does not fit u64"))
}

fn usize_of(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("offset {n} does not fit usize"))
}

fn be(bytes: &[u8], at: u64, n: usize) -> Result<u64, String> {
    let start = usize_of(at)?;
    let end = start
        .checked_add(n)
        .ok_or_else(|| format!("offset overflow at {at}"))?;
    let field = bytes.get(start..end).ok_or_else(|| {
        format!(
            "truncated: need {n} bytes at {at}, file has {}",
            bytes.len()
        )
    })?;
    Ok(field.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Inclusive range `start ..= end_exclusive - 1`.
fn range(start: u64, end_exclusive: u64) -> Result<Range, String> {
    if end_exclusive <= start {
        return Err(format!("empty range {start}..{end_exclusive}"));
    }
    Ok(Range {
        start,
        end: end_exclusive - 1,
    })
}

/// A top-level ISO BMFF box.
#[derive(Debug, Clone, Copy)]
struct Mp4Box {
    kind: [u8; 4],
    start: u64,
    /// Exclusive end.
    end: u64,
}

fn mp4_boxes(bytes: &[u8]) -> Result<Vec<Mp4Box>, String> {
    let len = u64_of(bytes.len())?;
    let mut boxes = Vec::new();
    let mut at = 0u64;
    while at < len {
        let size32 = be(bytes, at, 4)?;
        let kind_at = usize_of(at)?.checked_add(4).ok_or("offset overflow")?;
        let kind: [u8; 4] = bytes
            .get(kind_at..kind_at.saturating_add(4))
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| format!("truncated box header at {at}"))?;
        let (size, header) = match size32 {
            0 => (len - at, 8),
            1 => (be(bytes, at + 8, 8)?, 16),
            s => (s, 8),
        };
        if size < header {
            return Err(format!(
                "box {:?} at {at}: size {size} smaller than its header",
                String::from_utf8_lossy(&kind)
            ));
        }
        let end = at
            .checked_add(size)
            .filter(|end| *end <= len)
            .ok_or_else(|| {
                format!(
                    "box {:?} at {at}: size {size} runs past the end of the file ({len})",
                    String::from_utf8_lossy(&kind)
                )
            })?;
        boxes.push(Mp4Box {
            kind,
            start: at,
            end,
        });
        at = end;
    }
    Ok(boxes)
}

/// Walks the top-level boxes of a fragmented MP4 (size 0 = to the end of the file,
/// size 1 = 64-bit largesize) and returns its DASH layout.
///
/// Requires a `moov`, a top-level `sidx` (the first one is the index) and at least one `moof`.
pub fn mp4_layout(bytes: &[u8]) -> Result<Layout, String> {
    let len = u64_of(bytes.len())?;
    let boxes = mp4_boxes(bytes)?;
    let moov = boxes
        .iter()
        .find(|b| &b.kind == b"moov")
        .ok_or("no top-level moov box")?;
    let sidx = boxes
        .iter()
        .find(|b| &b.kind == b"sidx")
        .ok_or("no top-level sidx box")?;

    let mut starts = Vec::new();
    let mut previous: Option<&Mp4Box> = None;
    for b in &boxes {
        if &b.kind == b"moof" {
            let start = match previous {
                Some(p) if &p.kind == b"styp" => p.start,
                _ => b.start,
            };
            starts.push(start);
        }
        previous = Some(b);
    }
    let first = *starts.first().ok_or("no top-level moof box")?;
    // The media ends at the file end, or before a trailing mfra (fragment random access).
    let media_end = boxes
        .iter()
        .find(|b| &b.kind == b"mfra" && b.start > first)
        .map_or(len, |b| b.start);

    let mut segments = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(media_end);
        segments.push(range(*start, next)?);
    }
    Ok(Layout {
        len,
        init: range(0, moov.end)?,
        index: range(sidx.start, sidx.end)?,
        segments,
        segment_data_start: 0,
    })
}

const EBML_HEADER: u64 = 0x1A45_DFA3;
const SEGMENT: u64 = 0x1853_8067;
const SEEK_HEAD: u64 = 0x114D_9B74;
const INFO: u64 = 0x1549_A966;
const TRACKS: u64 = 0x1654_AE6B;
const CUES: u64 = 0x1C53_BB6B;
const CLUSTER: u64 = 0x1F43_B675;
const CHAPTERS: u64 = 0x1043_A770;
const TAGS: u64 = 0x1254_C367;
const ATTACHMENTS: u64 = 0x1941_A469;

/// IDs that end an unknown-size Cluster (anything at Segment level or above).
const LEVEL_1: [u64; 10] = [
    EBML_HEADER,
    SEGMENT,
    SEEK_HEAD,
    INFO,
    TRACKS,
    CUES,
    CLUSTER,
    CHAPTERS,
    TAGS,
    ATTACHMENTS,
];

/// An EBML element header.
#[derive(Debug, Clone, Copy)]
struct Element {
    id: u64,
    start: u64,
    data: u64,
    /// `None` = unknown size.
    size: Option<u64>,
}

/// Reads a variable-length integer at `at`; returns (value, length). `keep_marker` keeps the
/// length-marker bit (EBML IDs); otherwise it is removed (sizes). `max_len` bounds the length.
fn vint(bytes: &[u8], at: u64, keep_marker: bool, max_len: u32) -> Result<(u64, u32), String> {
    let first = bytes
        .get(usize_of(at)?)
        .copied()
        .ok_or_else(|| format!("truncated: no EBML vint at {at}"))?;
    let lead = first.leading_zeros();
    let n = lead + 1;
    if n > max_len {
        return Err(format!(
            "invalid EBML vint at {at}: first byte {first:#04x}"
        ));
    }
    let raw = be(bytes, at, usize_of(u64::from(n))?)?;
    if keep_marker {
        return Ok((raw, n));
    }
    let marker = 1u64 << (7 * n);
    Ok((raw & (marker - 1), n))
}

fn element(bytes: &[u8], at: u64) -> Result<Element, String> {
    let (id, id_len) = vint(bytes, at, true, 4)?;
    let size_at = at + u64::from(id_len);
    let (size, size_len) = vint(bytes, size_at, false, 8)?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Ok(Element {
        id,
        start: at,
        data: size_at + u64::from(size_len),
        size: if unknown { None } else { Some(size) },
    })
}

/// Exclusive end of an element that must lie within `limit`.
fn known_end(e: &Element, size: u64, limit: u64) -> Result<u64, String> {
    e.data
        .checked_add(size)
        .filter(|end| *end <= limit)
        .ok_or_else(|| {
            format!(
                "element {:#x} at {}: size {size} runs past its parent's end ({limit})",
                e.id, e.start
            )
        })
}

/// Exclusive end of an unknown-size Cluster: skip its children until a Level-1 ID or `limit`.
fn unknown_cluster_end(bytes: &[u8], e: &Element, limit: u64) -> Result<u64, String> {
    let mut at = e.data;
    while at < limit {
        let child = element(bytes, at)?;
        if LEVEL_1.contains(&child.id) {
            return Ok(at);
        }
        let size = child.size.ok_or_else(|| {
            format!(
                "unknown-size element {:#x} at {at} inside a Cluster",
                child.id
            )
        })?;
        at = known_end(&child, size, limit)?;
    }
    Ok(limit)
}

/// Walks the EBML structure of a WebM file (EBML header, then the Segment's top-level
/// children; unknown sizes allowed for the Segment and for Clusters) and returns its
/// DASH layout.
///
/// Requires a `Cues` element before the first `Cluster` (the DASH on-demand layout).
pub fn webm_layout(bytes: &[u8]) -> Result<Layout, String> {
    let len = u64_of(bytes.len())?;
    let header = element(bytes, 0)?;
    if header.id != EBML_HEADER {
        return Err(format!("not EBML: first ID {:#x}", header.id));
    }
    let header_size = header.size.ok_or("EBML header with unknown size")?;
    let mut at = known_end(&header, header_size, len)?;

    // Find the Segment among the top-level elements (Void etc. may precede it).
    let segment = loop {
        if at >= len {
            return Err("no Segment element".into());
        }
        let e = element(bytes, at)?;
        if e.id == SEGMENT {
            break e;
        }
        let size = e
            .size
            .ok_or_else(|| format!("unknown-size top-level element {:#x} at {at}", e.id))?;
        at = known_end(&e, size, len)?;
    };
    let segment_end = match segment.size {
        Some(size) => known_end(&segment, size, len)?,
        None => len,
    };

    let mut cues: Option<Range> = None;
    let mut clusters: Vec<u64> = Vec::new();
    let mut at = segment.data;
    while at < segment_end {
        let e = element(bytes, at)?;
        let end = match (e.size, e.id) {
            (Some(size), _) => known_end(&e, size, segment_end)?,
            (None, CLUSTER) => unknown_cluster_end(bytes, &e, segment_end)?,
            (None, id) => {
                return Err(format!(
                    "unknown-size element {id:#x} at {at} in the Segment"
                ));
            }
        };
        match e.id {
            CUES if cues.is_none() => cues = Some(range(e.start, end)?),
            CLUSTER => clusters.push(e.start),
            SEGMENT | EBML_HEADER => {
                return Err(format!("nested or chained Segment at {at}"));
            }
            _ => {}
        }
        at = end;
    }

    let index = cues.ok_or("no Cues element in the Segment")?;
    let first = *clusters.first().ok_or("no Cluster in the Segment")?;
    if index.start > first {
        return Err(format!(
            "Cues at {} come after the first Cluster at {first}: not a DASH on-demand layout",
            index.start
        ));
    }
    let mut segments = Vec::with_capacity(clusters.len());
    for (i, start) in clusters.iter().enumerate() {
        let next = clusters.get(i + 1).copied().unwrap_or(segment_end);
        segments.push(range(*start, next)?);
    }
    Ok(Layout {
        len,
        init: range(0, index.start)?,
        index,
        segments,
        segment_data_start: segment.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Result<(Vec<u8>, Layout), String> {
        let path = fixture_dir().join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let layout = layout_for_path(&path)?;
        Ok((bytes, layout))
    }

    fn bytes_at(bytes: &[u8], at: u64, n: usize) -> Result<&[u8], String> {
        let start = usize_of(at)?;
        bytes
            .get(start..start.saturating_add(n))
            .ok_or_else(|| format!("no {n} bytes at {at}"))
    }

    fn check_common(name: &str, bytes: &[u8], l: &Layout) -> Result<(), String> {
        let ctx = |what: &str| format!("{name}: {what}: {l:?}");
        if l.len != u64_of(bytes.len())? {
            return Err(ctx("len"));
        }
        if l.init.start != 0 || l.init.end < l.init.start {
            return Err(ctx("init must start at 0"));
        }
        if l.index.start != l.init.end + 1 || l.index.end < l.index.start {
            return Err(ctx("index must directly follow init"));
        }
        if l.segments.len() < 5 {
            return Err(ctx("fewer than 5 segments"));
        }
        let first = l.segments.first().ok_or_else(|| ctx("no segments"))?;
        if first.start <= l.index.end {
            return Err(ctx("first segment overlaps the index"));
        }
        for pair in l.segments.windows(2) {
            if let [a, b] = pair
                && (a.end < a.start || a.end + 1 != b.start)
            {
                return Err(ctx("segments not contiguous"));
            }
        }
        let last = l.segments.last().ok_or_else(|| ctx("no segments"))?;
        if last.end + 1 != l.len {
            return Err(ctx("last segment must end at len-1"));
        }
        Ok(())
    }

    fn check_mp4(name: &str) -> Result<(), String> {
        let (bytes, l) = load(name)?;
        check_common(name, &bytes, &l)?;
        if bytes_at(&bytes, 4, 4)? != b"ftyp" || bytes_at(&bytes, l.index.start + 4, 4)? != b"sidx"
        {
            return Err(format!(
                "{name}: expected ftyp at 0 and sidx at the index: {l:?}"
            ));
        }
        let moov_ends_init = mp4_boxes(&bytes)?
            .iter()
            .any(|b| &b.kind == b"moov" && b.end == l.init.end + 1);
        if !moov_ends_init {
            return Err(format!("{name}: init must end at the end of moov: {l:?}"));
        }
        // sidx covers the fragments contiguously from its end (first_offset 0 in the fixtures).
        let first = l.segments.first().map(|s| s.start);
        if first != Some(l.index.end + 1) {
            return Err(format!("{name}: first segment must follow the sidx: {l:?}"));
        }
        for s in &l.segments {
            let kind = bytes_at(&bytes, s.start + 4, 4)?;
            if kind != b"styp" && kind != b"moof" {
                return Err(format!("{name}: segment {s:?} starts with {kind:?}"));
            }
        }
        if l.segment_data_start != 0 {
            return Err(format!("{name}: segment_data_start must be 0 for MP4"));
        }
        Ok(())
    }

    fn check_webm(name: &str) -> Result<(), String> {
        let (bytes, l) = load(name)?;
        check_common(name, &bytes, &l)?;
        if bytes_at(&bytes, 0, 4)? != [0x1A, 0x45, 0xDF, 0xA3] {
            return Err(format!("{name}: no EBML header"));
        }
        if bytes_at(&bytes, l.index.start, 4)? != [0x1C, 0x53, 0xBB, 0x6B] {
            return Err(format!("{name}: index is not a Cues element: {l:?}"));
        }
        for s in &l.segments {
            if bytes_at(&bytes, s.start, 4)? != [0x1F, 0x43, 0xB6, 0x75] {
                return Err(format!("{name}: segment {s:?} is not a Cluster"));
            }
        }
        if l.segment_data_start == 0 || l.segment_data_start >= l.index.start {
            return Err(format!("{name}: bad segment_data_start: {l:?}"));
        }
        Ok(())
    }

    #[test]
    fn video_mp4() -> Result<(), String> {
        check_mp4("video.mp4")
    }

    #[test]
    fn audio_m4a() -> Result<(), String> {
        check_mp4("audio.m4a")
    }

    #[test]
    fn video_webm() -> Result<(), String> {
        check_webm("video.webm")?;
        // Cues moved to the front: the first Cluster follows them directly.
        let (_, l) = load("video.webm")?;
        match l.segments.first() {
            Some(s) if s.start == l.index.end + 1 => Ok(()),
            _ => Err(format!(
                "video.webm: expected Cluster right after Cues: {l:?}"
            )),
        }
    }

    #[test]
    fn audio_webm() -> Result<(), String> {
        check_webm("audio.webm")?;
        // Reserved index space: a Void element sits between Cues and the first Cluster.
        let (bytes, l) = load("audio.webm")?;
        let first = l.segments.first().map_or(0, |s| s.start);
        if first <= l.index.end + 1 || bytes_at(&bytes, l.index.end + 1, 1)? != [0xEC] {
            return Err(format!("audio.webm: expected a Void after Cues: {l:?}"));
        }
        Ok(())
    }

    #[test]
    fn rejects_garbage() {
        assert!(mp4_layout(&[0, 0, 0, 4, b'f', b't']).is_err());
        assert!(mp4_layout(&[0, 0, 0, 16, b'f', b't', b'y', b'p']).is_err());
        assert!(webm_layout(&[0x1A, 0x45, 0xDF, 0xA3, 0x80]).is_err());
        assert!(webm_layout(&[0x00, 0x00]).is_err());
        assert!(webm_layout(&[]).is_err());
    }

    #[test]
    fn unknown_sizes() -> Result<(), String> {
        // EBML header (empty), Segment (unknown size) { Cues (empty), Cluster (unknown) { Timestamp 0 },
        // Cluster (unknown) { Timestamp 1 } }.
        let file = [
            0x1A, 0x45, 0xDF, 0xA3, 0x80, // EBML header, size 0
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, // Segment, unknown
            0x1C, 0x53, 0xBB, 0x6B, 0x80, // Cues, size 0
            0x1F, 0x43, 0xB6, 0x75, 0xFF, 0xE7, 0x81, 0x00, // Cluster, unknown; Timestamp 0
            0x1F, 0x43, 0xB6, 0x75, 0xFF, 0xE7, 0x81, 0x01, // Cluster, unknown; Timestamp 1
        ];
        let l = webm_layout(&file)?;
        let want = Layout {
            len: 38,
            init: Range { start: 0, end: 16 },
            index: Range { start: 17, end: 21 },
            segments: vec![Range { start: 22, end: 29 }, Range { start: 30, end: 37 }],
            segment_data_start: 17,
        };
        if l != want {
            return Err(format!("got {l:?}"));
        }
        Ok(())
    }

    #[test]
    fn mp4_styp_and_largesize() -> Result<(), String> {
        let mut file = Vec::new();
        file.extend_from_slice(&[0, 0, 0, 8, b'f', b't', b'y', b'p']);
        file.extend_from_slice(&[0, 0, 0, 8, b'm', b'o', b'o', b'v']);
        file.extend_from_slice(&[0, 0, 0, 8, b's', b'i', b'd', b'x']);
        file.extend_from_slice(&[0, 0, 0, 8, b's', b't', b'y', b'p']);
        file.extend_from_slice(&[0, 0, 0, 8, b'm', b'o', b'o', b'f']);
        file.extend_from_slice(&[
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 17, 0,
        ]);
        file.extend_from_slice(&[0, 0, 0, 8, b'm', b'o', b'o', b'f']);
        file.extend_from_slice(&[0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2, 3]);
        let l = mp4_layout(&file)?;
        let want = Layout {
            len: 76,
            init: Range { start: 0, end: 15 },
            index: Range { start: 16, end: 23 },
            segments: vec![Range { start: 24, end: 56 }, Range { start: 57, end: 75 }],
            segment_data_start: 0,
        };
        if l != want {
            return Err(format!("got {l:?}"));
        }
        Ok(())
    }
}
