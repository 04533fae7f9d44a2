//! Known answers a component must give before it may serve: the wire protocol of SPEC §4
//! (which browsers in the field depend on) and a segment table from a sample index.
//!
//! Only what the protocol fixes is checked exactly; choices a policy may make differently
//! (chunk payload size, which segments it serves) are checked for consistency only.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Resource, ResourceTable};

use super::bindings::Policy as Bindings;
use super::imports::{LentTable, State};
use super::runtime::check_plan;
use super::{
    ByteRange, Description, IndexInput, Message, PolicyError, Request, RequestKind, SegmentRef,
    Silence, StreamMeta, Verdict,
};

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

/// Runs the checks on a fresh instance; returns the component's description and its ping.
pub(super) async fn run(
    store: &mut Store<State>,
    b: &Bindings,
) -> Result<(Description, String), PolicyError> {
    let description = b
        .videortc_policy_about()
        .call_describe(&mut *store)
        .await
        .map_err(trap)?;
    if description.name.is_empty() || description.name.len() > 200 {
        return Err(fail("describe().name must be 1 to 200 bytes"));
    }
    if description.world.len() > 40 || description.features.len() > 64 {
        return Err(fail("describe() world or features too long"));
    }

    let proto = b.videortc_policy_peer_protocol();
    let seg = SegmentRef {
        vid: "dQw4w9WgXcQ".into(),
        itag: 140,
        index: 1,
    };
    let ping = proto.call_encode_ping(&mut *store).await.map_err(trap)?;
    if ping != r#"{"event":"ping"}"# {
        return Err(fail(format!("ping is {ping:?}")));
    }
    let decoded = proto
        .call_decode(&mut *store, r#"{"event":"ping"}"#)
        .await
        .map_err(trap)?;
    if decoded != Message::Ping(r#"{"event":"pong"}"#.into()) {
        return Err(fail(format!("a ping decoded as {decoded:?}")));
    }
    let query = r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:140","index":1}}"#;
    let decoded = proto.call_decode(&mut *store, query).await.map_err(trap)?;
    if decoded != Message::Query(seg.clone()) {
        return Err(fail(format!("a query decoded as {decoded:?}")));
    }
    if !matches!(
        proto.call_decode(&mut *store, "{").await.map_err(trap)?,
        Message::Invalid(_)
    ) {
        return Err(fail("bad JSON was not invalid"));
    }

    // The sample stream: init 0-99, the sidx at 100-155, two segments after it.
    let meta = StreamMeta {
        itag: 140,
        mime: r#"audio/mp4; codecs="mp4a.40.2""#.into(),
        content_length: Some(1656),
        init_range: Some(ByteRange { start: 0, end: 99 }),
        index_range: Some(ByteRange {
            start: 100,
            end: 155,
        }),
        fetchable: true,
    };
    let index = b.videortc_policy_segment_index();
    let fetched = index
        .call_index_source(&mut *store, &meta)
        .await
        .map_err(trap)?
        .map_err(|e| fail(format!("the sample stream is unindexable: {e:?}")))?;
    if fetched.start > 100 || fetched.end != 155 {
        return Err(fail(format!(
            "index source {}-{} for the index 100-155",
            fetched.start, fetched.end
        )));
    }
    let mut bytes = vec![0u8; usize::try_from(100 - fetched.start).unwrap_or(0)];
    bytes.extend(sample_sidx());
    let input = IndexInput {
        meta: meta.clone(),
        fetched,
        bytes,
    };
    let table = index
        .call_parse_index(&mut *store, &input)
        .await
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
    if table.as_ref() != Ok(&expect) {
        return Err(fail(format!("the sample sidx parsed as {table:?}")));
    }

    let decide = |kind| Request {
        kind,
        segment: seg.clone(),
        peer: "selfcheck".into(),
        now_ms: 0,
    };
    let lent = Arc::new(expect);
    let found = r#"{"event":"found","data":{"id":"dQw4w9WgXcQ:140","index":1}}"#;
    for kind in [RequestKind::Query, RequestKind::Resolve] {
        let handle = store
            .data_mut()
            .table
            .push(LentTable(lent.clone()))
            .map_err(|e| fail(format!("lending a table: {e}")))?;
        let verdict = b
            .videortc_policy_decision()
            .call_decide(
                &mut *store,
                &decide(kind),
                Some(&meta),
                Ok(Resource::new_borrow(handle.rep())),
            )
            .await
            .map_err(trap)?;
        store.data_mut().table = ResourceTable::new();
        match (kind, &verdict) {
            (RequestKind::Query, Verdict::Reply(text)) if text == found => {}
            // Refusing is a policy's right (an allow-list, a rate limit): the check then
            // covers the mechanics only where the policy answers.
            (_, Verdict::Silent(Silence::Refused(_))) => {}
            (RequestKind::Resolve, Verdict::Send(plan)) => {
                check_plan(plan, meta.content_length).map_err(fail)?;
                let first = b"[\"dQw4w9WgXcQ:140|1\",0,";
                if Some(&plan.range) != lent.get(1) || !plan.headers.starts_with(first) {
                    return Err(fail(format!("segment 1 would be sent as {plan:?}")));
                }
            }
            _ => return Err(fail(format!("a {kind:?} for segment 1 got {verdict:?}"))),
        }
    }
    Ok((description, ping))
}
