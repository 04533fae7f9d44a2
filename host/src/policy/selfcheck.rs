//! Known answers a component must give before it may serve.

use wasmtime::Store;

use super::bindings::Policy as Bindings;
use super::{ByteRange, Container, FrameError, IndexInput, Message, PolicyError, SegmentRef};

fn fail(what: impl Into<String>) -> PolicyError {
    PolicyError::SelfCheck(what.into())
}

fn trap(e: wasmtime::Error) -> PolicyError {
    PolicyError::SelfCheck(format!("trapped: {e:#}"))
}

/// A version-0 `sidx` box with two references of 1000 and 500 bytes and first_offset 0.
fn sample_sidx() -> Vec<u8> {
    let mut b = Vec::with_capacity(56);
    b.extend(56u32.to_be_bytes());
    b.extend(*b"sidx");
    b.extend([0, 0, 0, 0]); // version 0, flags
    b.extend(1u32.to_be_bytes()); // reference_ID
    b.extend(1000u32.to_be_bytes()); // timescale
    b.extend(0u32.to_be_bytes()); // earliest_presentation_time
    b.extend(0u32.to_be_bytes()); // first_offset
    b.extend(0u16.to_be_bytes()); // reserved
    b.extend(2u16.to_be_bytes()); // reference_count
    for size in [1000u32, 500] {
        b.extend(size.to_be_bytes());
        b.extend(1000u32.to_be_bytes());
        b.extend(0x9000_0000u32.to_be_bytes());
    }
    b
}

/// Runs the checks on a fresh instance; returns the component's description.
pub(super) fn run(store: &mut Store<impl Send>, b: &Bindings) -> Result<String, PolicyError> {
    let describe = b.call_describe(&mut *store).map_err(trap)?;
    if describe.is_empty() || describe.len() > 200 {
        return Err(fail("describe() must be 1 to 200 bytes"));
    }

    let proto = b.videortc_policy_peer_protocol();
    let seg = SegmentRef {
        vid: "dQw4w9WgXcQ".into(),
        itag: 251,
        index: 3,
    };
    if proto
        .call_decode(&mut *store, r#"{"event":"ping"}"#)
        .map_err(trap)?
        != Message::Ping
    {
        return Err(fail("ping did not decode as ping"));
    }
    let query = r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":3}}"#;
    if proto.call_decode(&mut *store, query).map_err(trap)? != Message::Query(seg.clone()) {
        return Err(fail("a query did not decode"));
    }
    if !matches!(
        proto.call_decode(&mut *store, "{").map_err(trap)?,
        Message::Invalid(_)
    ) {
        return Err(fail("bad JSON was not invalid"));
    }
    if proto.call_encode_pong(&mut *store).map_err(trap)? != r#"{"event":"pong"}"# {
        return Err(fail("pong encoding"));
    }
    if proto.call_encode_ping(&mut *store).map_err(trap)? != r#"{"event":"ping"}"# {
        return Err(fail("ping encoding"));
    }
    let found = r#"{"event":"found","data":{"id":"dQw4w9WgXcQ:251","index":3}}"#;
    if proto.call_encode_found(&mut *store, &seg).map_err(trap)? != found {
        return Err(fail("found encoding"));
    }

    let framing = b.videortc_policy_framing();
    let header = framing
        .call_header(&mut *store, &seg, 0, 12)
        .map_err(trap)?;
    if header.as_deref() != Ok(b"[\"dQw4w9WgXcQ:251|3\",0,12]    ".as_slice()) {
        return Err(fail("chunk header bytes"));
    }
    if framing.call_plan(&mut *store, &seg, 0).map_err(trap)? != Err(FrameError::EmptySegment) {
        return Err(fail("an empty segment was framed"));
    }

    let input = IndexInput {
        container: Container::Mp4,
        index_range: ByteRange {
            start: 100,
            end: 155,
        },
        content_length: 2000,
        index_bytes: sample_sidx(),
        head_bytes: None,
    };
    let table = b
        .videortc_policy_segment_index()
        .call_parse(&mut *store, &input)
        .map_err(trap)?;
    let expect = vec![
        ByteRange {
            start: 156,
            end: 1155,
        },
        ByteRange {
            start: 1156,
            end: 1655,
        },
    ];
    if table != Ok(expect) {
        return Err(fail(format!("sidx sample parsed as {table:?}")));
    }
    Ok(describe)
}
