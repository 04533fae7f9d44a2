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

fn range(r: walk::Range) -> wasm::ByteRange {
    wasm::ByteRange {
        start: r.start,
        end: r.end,
    }
}

/// The stream as VideoInfo describes it.
fn meta(f: &Fixture) -> wasm::StreamMeta {
    wasm::StreamMeta {
        itag: 251,
        mime: match f.container {
            nt::Container::Mp4 => "video/mp4; codecs=\"avc1.4d401f\"".into(),
            nt::Container::Webm => "audio/webm; codecs=\"opus\"".into(),
        },
        content_length: Some(f.layout.len),
        init_range: Some(range(f.layout.init)),
        index_range: Some(range(f.layout.index)),
        fetchable: true,
    }
}

/// The bytes the policy asks for, with the head before the index (WebM) or without it.
fn wasm_input(f: &Fixture, with_head: bool) -> wasm::IndexInput {
    let fetched = if with_head {
        walk::Range {
            start: 0,
            end: f.layout.index.end,
        }
    } else {
        f.layout.index
    };
    wasm::IndexInput {
        meta: meta(f),
        fetched: range(fetched),
        bytes: slice(&f.bytes, fetched).to_vec(),
    }
}

fn expected(f: &Fixture) -> Vec<(u64, u64)> {
    f.layout.segments.iter().map(|r| (r.start, r.end)).collect()
}

async fn policy() -> Policy {
    Policy::with_default(PolicyConfig::default()).await.unwrap()
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

#[tokio::test]
async fn wasm_tables_match_the_files_and_segments_start_right() {
    let p = policy().await;
    for f in fixtures() {
        // The policy says which bytes it needs: the head too for WebM, the index for MP4.
        let fetched = p.index_source(&meta(&f)).await.unwrap().unwrap();
        let webm = f.container == nt::Container::Webm;
        assert_eq!(fetched.start, if webm { 0 } else { f.layout.index.start });
        assert_eq!(fetched.end, f.layout.index.end);
        let input = wasm::IndexInput {
            meta: meta(&f),
            fetched,
            bytes: f.bytes[fetched.start as usize..=fetched.end as usize].to_vec(),
        };
        let table = p.parse_index(&input).await.unwrap().unwrap();
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

#[tokio::test]
async fn webm_needs_the_segment_start_when_a_void_follows_the_cues() {
    let p = policy().await;
    let all = fixtures();
    let audio = all.iter().find(|f| f.name == "audio.webm").unwrap();
    let video = all.iter().find(|f| f.name == "video.webm").unwrap();
    // video.webm: the first Cluster follows the Cues, so the fallback is right too.
    let t = p
        .parse_index(&wasm_input(video, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t[0].start, video.layout.segments[0].start);
    // audio.webm has a Void after the Cues: the Go assumption would be wrong here, the
    // Segment data start from the head bytes is right.
    assert!(audio.layout.segments[0].start > audio.layout.index.end + 1);
    let with = p
        .parse_index(&wasm_input(audio, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(with[0].start, audio.layout.segments[0].start);
    let without = p.parse_index(&wasm_input(audio, false)).await.unwrap();
    assert_ne!(
        without.ok().map(|t| t[0].start),
        Some(audio.layout.segments[0].start)
    );
}

#[tokio::test]
async fn bad_input_is_an_error_never_a_trap() {
    let p = policy().await;
    for f in fixtures() {
        let good = wasm_input(&f, false);
        let n = good.bytes.len();
        // truncated at many lengths (with a range that matches, so the parser sees the cut)
        for cut in (7..n).step_by(7) {
            let mut inp = good.clone();
            inp.bytes.truncate(cut);
            inp.fetched.end = inp.fetched.start + cut as u64 - 1;
            let mut index = inp.meta.index_range.unwrap();
            index.end = inp.fetched.end;
            inp.meta.index_range = Some(index);
            assert!(
                p.parse_index(&inp).await.unwrap().is_err(),
                "{} cut {cut}",
                f.name
            );
        }
        // fewer bytes than the range says
        let mut short_bytes = good.clone();
        short_bytes.bytes.pop();
        assert!(p.parse_index(&short_bytes).await.unwrap().is_err());
        // garbage of the right length
        let mut garbage = good.clone();
        garbage.bytes = (0..n).map(|i| (i * 131 % 251) as u8).collect();
        assert!(
            p.parse_index(&garbage).await.unwrap().is_err(),
            "{}",
            f.name
        );
        // the other container's parser on these bytes
        let mut wrong = good.clone();
        wrong.meta.mime = if f.container == nt::Container::Mp4 {
            "video/webm".into()
        } else {
            "video/mp4".into()
        };
        assert!(p.parse_index(&wrong).await.unwrap().is_err(), "{}", f.name);
        // a length that cuts off the last segments
        let mut short = good.clone();
        short.meta.content_length = Some(f.layout.segments[1].end);
        assert!(p.parse_index(&short).await.unwrap().is_err(), "{}", f.name);
        // a container the policy does not know
        let mut unknown = meta(&f);
        unknown.mime = "video/x-flv".into();
        assert!(matches!(
            p.index_source(&unknown).await.unwrap(),
            Err(wasm::Unindexable::Unsupported(_))
        ));
    }
    // a 1 MB index of zeros and of 0xFF
    for byte in [0u8, 0xFF] {
        for mime in ["video/mp4", "video/webm"] {
            let inp = wasm::IndexInput {
                meta: wasm::StreamMeta {
                    itag: 1,
                    mime: mime.into(),
                    content_length: Some(1 << 21),
                    init_range: Some(wasm::ByteRange { start: 0, end: 99 }),
                    index_range: Some(wasm::ByteRange {
                        start: 0,
                        end: (1 << 20) - 1,
                    }),
                    fetchable: true,
                },
                fetched: wasm::ByteRange {
                    start: 0,
                    end: (1 << 20) - 1,
                },
                bytes: vec![byte; 1 << 20],
            };
            assert!(p.parse_index(&inp).await.unwrap().is_err());
        }
    }
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}
