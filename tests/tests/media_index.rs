//! Segment tables of real ffmpeg media, parsed by the policy natively and through wasmtime,
//! against an independent walker of the files' real structure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::Ordering;

use videortc::policy::{self as wasm, Policy, PolicyConfig};
use videortc_guest::{index as native, types as nt};
use videortc_tests::walk::{self, FIXTURES, Layout};

struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    layout: Layout,
    container: nt::Container,
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .iter()
        .map(|name| {
            let path = walk::fixture_dir().join(name);
            let bytes = std::fs::read(&path).unwrap();
            let layout = walk::layout_for_path(&path).unwrap();
            let container = if name.ends_with(".webm") {
                nt::Container::Webm
            } else {
                nt::Container::Mp4
            };
            Fixture {
                name,
                bytes,
                layout,
                container,
            }
        })
        .collect()
}

fn slice(bytes: &[u8], r: walk::Range) -> &[u8] {
    &bytes[r.start as usize..=r.end as usize]
}

fn wasm_input(f: &Fixture, with_head: bool) -> wasm::IndexInput {
    wasm::IndexInput {
        container: match f.container {
            nt::Container::Mp4 => wasm::Container::Mp4,
            nt::Container::Webm => wasm::Container::Webm,
        },
        index_range: wasm::ByteRange {
            start: f.layout.index.start,
            end: f.layout.index.end,
        },
        content_length: f.layout.len,
        index_bytes: slice(&f.bytes, f.layout.index).to_vec(),
        head_bytes: with_head.then(|| slice(&f.bytes, f.layout.init).to_vec()),
    }
}

fn expected(f: &Fixture) -> Vec<(u64, u64)> {
    f.layout.segments.iter().map(|r| (r.start, r.end)).collect()
}

fn policy() -> Policy {
    Policy::with_default(PolicyConfig::default()).unwrap()
}

#[test]
fn native_tables_match_the_files() {
    for f in fixtures() {
        let input = native::IndexInput {
            container: f.container,
            index_range: nt::ByteRange {
                start: f.layout.index.start,
                end: f.layout.index.end,
            },
            content_length: f.layout.len,
            index_bytes: slice(&f.bytes, f.layout.index),
            head_bytes: Some(slice(&f.bytes, f.layout.init)),
        };
        let table = native::parse(&input).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let got: Vec<(u64, u64)> = table.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(got, expected(&f), "{}", f.name);
        assert!(got.len() >= 5, "{}", f.name);
    }
}

#[test]
fn wasm_tables_match_the_files_and_segments_start_right() {
    let p = policy();
    for f in fixtures() {
        let table = p.parse_index(&wasm_input(&f, true)).unwrap().unwrap();
        let got: Vec<(u64, u64)> = table.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(got, expected(&f), "{}", f.name);
        for r in &table {
            let seg = &f.bytes[r.start as usize..=r.end as usize];
            match f.container {
                nt::Container::Mp4 => {
                    assert!(matches!(&seg[4..8], b"moof" | b"styp"), "{} {r:?}", f.name)
                }
                nt::Container::Webm => {
                    assert_eq!(&seg[..4], &[0x1F, 0x43, 0xB6, 0x75], "{}", f.name)
                }
            }
        }
    }
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}

#[test]
fn webm_needs_the_segment_start_when_a_void_follows_the_cues() {
    let p = policy();
    let all = fixtures();
    let audio = all.iter().find(|f| f.name == "audio.webm").unwrap();
    let video = all.iter().find(|f| f.name == "video.webm").unwrap();
    // video.webm: the first Cluster follows the Cues, so the fallback is right too.
    let t = p.parse_index(&wasm_input(video, false)).unwrap().unwrap();
    assert_eq!(t[0].start, video.layout.segments[0].start);
    // audio.webm has a Void after the Cues: the Go assumption would be wrong here, the
    // Segment data start from the head bytes is right.
    assert!(audio.layout.segments[0].start > audio.layout.index.end + 1);
    let with = p.parse_index(&wasm_input(audio, true)).unwrap().unwrap();
    assert_eq!(with[0].start, audio.layout.segments[0].start);
    let without = p.parse_index(&wasm_input(audio, false)).unwrap();
    assert_ne!(
        without.ok().map(|t| t[0].start),
        Some(audio.layout.segments[0].start)
    );
}

#[test]
fn bad_input_is_an_error_never_a_trap() {
    let p = policy();
    for f in fixtures() {
        let good = wasm_input(&f, true);
        let n = good.index_bytes.len();
        // truncated at many lengths (with a range that matches, so the parser sees the cut)
        for cut in (0..n).step_by(7) {
            let mut inp = good.clone();
            inp.index_bytes.truncate(cut);
            if cut == 0 {
                continue;
            }
            inp.index_range.end = inp.index_range.start + cut as u64 - 1;
            assert!(
                p.parse_index(&inp).unwrap().is_err(),
                "{} cut {cut}",
                f.name
            );
        }
        // garbage of the right length
        let mut garbage = good.clone();
        garbage.index_bytes = (0..n).map(|i| (i * 131 % 251) as u8).collect();
        assert!(p.parse_index(&garbage).unwrap().is_err(), "{}", f.name);
        // the other container's parser on these bytes
        let mut wrong = good.clone();
        wrong.container = match good.container {
            wasm::Container::Mp4 => wasm::Container::Webm,
            wasm::Container::Webm => wasm::Container::Mp4,
        };
        assert!(p.parse_index(&wrong).unwrap().is_err(), "{}", f.name);
        // a length that cuts off the last segments
        let mut short = good.clone();
        short.content_length = f.layout.segments[1].end;
        assert!(p.parse_index(&short).unwrap().is_err(), "{}", f.name);
    }
    // a 1 MB index of zeros and of 0xFF
    for byte in [0u8, 0xFF] {
        let inp = wasm::IndexInput {
            container: wasm::Container::Mp4,
            index_range: wasm::ByteRange {
                start: 0,
                end: (1 << 20) - 1,
            },
            content_length: 1 << 21,
            index_bytes: vec![byte; 1 << 20],
            head_bytes: Some(vec![byte; 1 << 20]),
        };
        assert!(p.parse_index(&inp).unwrap().is_err());
        let webm = wasm::IndexInput {
            container: wasm::Container::Webm,
            ..inp
        };
        assert!(p.parse_index(&webm).unwrap().is_err());
    }
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}
