//! The WebAssembly component glue: WIT types ⇄ crate types, one call per export.

use crate::{decision, framing, index, protocol, selection, types};

wit_bindgen::generate!({
    world: "policy",
    path: "../wit",
});

use exports::videortc::policy::decision as wdecision;
use exports::videortc::policy::framing as wframing;
use exports::videortc::policy::peer_protocol as wprotocol;
use exports::videortc::policy::segment_index as windex;
use exports::videortc::policy::selection as wselection;
use exports::videortc::policy::types as wtypes;

struct Component;

fn range_in(r: wtypes::ByteRange) -> types::ByteRange {
    types::ByteRange {
        start: r.start,
        end: r.end,
    }
}

fn range_out(r: types::ByteRange) -> wtypes::ByteRange {
    wtypes::ByteRange {
        start: r.start,
        end: r.end,
    }
}

fn stream_in(s: wtypes::StreamMeta) -> types::StreamMeta {
    types::StreamMeta {
        itag: s.itag,
        mime: s.mime,
        content_length: s.content_length,
        init_range: s.init_range.map(range_in),
        index_range: s.index_range.map(range_in),
        fetchable: s.fetchable,
    }
}

fn seg_in(s: wtypes::SegmentRef) -> types::SegmentRef {
    types::SegmentRef {
        vid: s.vid,
        itag: s.itag,
        index: s.index,
    }
}

fn seg_out(s: types::SegmentRef) -> wtypes::SegmentRef {
    wtypes::SegmentRef {
        vid: s.vid,
        itag: s.itag,
        index: s.index,
    }
}

fn purpose_in(p: wselection::Purpose) -> selection::Purpose {
    match p {
        wselection::Purpose::MpdAudio => selection::Purpose::MpdAudio,
        wselection::Purpose::MpdVideo => selection::Purpose::MpdVideo,
        wselection::Purpose::Progressive => selection::Purpose::Progressive,
    }
}

fn frame_error_out(e: framing::FrameError) -> wframing::FrameError {
    match e {
        framing::FrameError::EmptySegment => wframing::FrameError::EmptySegment,
        framing::FrameError::HeaderTooLong(n) => wframing::FrameError::HeaderTooLong(n),
        framing::FrameError::ChunkOutOfRange => wframing::FrameError::ChunkOutOfRange,
        framing::FrameError::InvalidId => wframing::FrameError::InvalidId,
    }
}

impl Guest for Component {
    fn describe() -> String {
        crate::describe()
    }
}

impl windex::Guest for Component {
    fn parse(input: windex::IndexInput) -> Result<Vec<wtypes::ByteRange>, windex::IndexError> {
        let container = match input.container {
            wtypes::Container::Mp4 => types::Container::Mp4,
            wtypes::Container::Webm => types::Container::Webm,
        };
        let parsed = index::parse(&index::IndexInput {
            container,
            index_range: range_in(input.index_range),
            content_length: input.content_length,
            index_bytes: &input.index_bytes,
            head_bytes: input.head_bytes.as_deref(),
        });
        match parsed {
            Ok(table) => Ok(table.into_iter().map(range_out).collect()),
            Err(e) => Err(match e {
                index::IndexError::Truncated(m) => windex::IndexError::Truncated(m),
                index::IndexError::Malformed(m) => windex::IndexError::Malformed(m),
                index::IndexError::Unsupported(m) => windex::IndexError::Unsupported(m),
                index::IndexError::OutOfBounds(m) => windex::IndexError::OutOfBounds(m),
                index::IndexError::Empty => windex::IndexError::Empty,
            }),
        }
    }
}

impl wselection::Guest for Component {
    fn default_preference(purpose: wselection::Purpose) -> Vec<u32> {
        selection::default_preference(purpose_in(purpose)).to_vec()
    }

    fn parse_preference(text: String) -> Result<Vec<u32>, String> {
        selection::parse_preference(&text)
    }

    fn servable(meta: wtypes::StreamMeta) -> bool {
        selection::servable(&stream_in(meta))
    }

    fn pick(
        purpose: wselection::Purpose,
        streams: Vec<wtypes::StreamMeta>,
        prefer: Vec<u32>,
    ) -> Option<u32> {
        let streams: Vec<types::StreamMeta> = streams.into_iter().map(stream_in).collect();
        selection::pick(purpose_in(purpose), &streams, &prefer)
    }
}

impl wframing::Guest for Component {
    fn plan(
        segment: wtypes::SegmentRef,
        length: u64,
    ) -> Result<wframing::ChunkPlan, wframing::FrameError> {
        framing::plan(&seg_in(segment), length)
            .map(|p| wframing::ChunkPlan {
                count: p.count,
                payload_size: p.payload_size,
                header_size: p.header_size,
            })
            .map_err(frame_error_out)
    }

    fn header(
        segment: wtypes::SegmentRef,
        chunk: u32,
        count: u32,
    ) -> Result<Vec<u8>, wframing::FrameError> {
        framing::header(&seg_in(segment), chunk, count).map_err(frame_error_out)
    }

    fn headers(segment: wtypes::SegmentRef, length: u64) -> Result<Vec<u8>, wframing::FrameError> {
        framing::headers(&seg_in(segment), length).map_err(frame_error_out)
    }
}

impl wprotocol::Guest for Component {
    fn decode(text: String) -> wprotocol::Message {
        #[cfg(feature = "chaos")]
        crate::chaos::on_decode(&text);
        match protocol::decode(&text) {
            protocol::Message::Ping => wprotocol::Message::Ping,
            protocol::Message::Pong => wprotocol::Message::Pong,
            protocol::Message::Query(s) => wprotocol::Message::Query(seg_out(s)),
            protocol::Message::Resolve(s) => wprotocol::Message::Resolve(seg_out(s)),
            protocol::Message::Quit(s) => wprotocol::Message::Quit(seg_out(s)),
            protocol::Message::QuitAll => wprotocol::Message::QuitAll,
            protocol::Message::Invalid(r) => wprotocol::Message::Invalid(r),
        }
    }

    fn encode_ping() -> String {
        protocol::encode_ping()
    }

    fn encode_pong() -> String {
        protocol::encode_pong()
    }

    fn encode_found(segment: wtypes::SegmentRef) -> String {
        protocol::encode_found(&seg_in(segment))
    }
}

impl wdecision::Guest for Component {
    fn found(
        segment: wtypes::SegmentRef,
        meta: Option<wtypes::StreamMeta>,
        table: wdecision::TableState,
    ) -> wdecision::Verdict {
        let table = match table {
            wdecision::TableState::NotLoaded => decision::TableState::NotLoaded,
            wdecision::TableState::Failed => decision::TableState::Failed,
            wdecision::TableState::Loaded(l) => {
                decision::TableState::Loaded(decision::SegmentLookup {
                    count: l.count,
                    range: l.range.map(range_in),
                })
            }
        };
        let stream = meta.map(stream_in);
        match decision::found(&seg_in(segment), stream.as_ref(), table) {
            decision::Verdict::Serve => wdecision::Verdict::Serve,
            decision::Verdict::NeedIndex => wdecision::Verdict::NeedIndex,
            decision::Verdict::Silent(s) => wdecision::Verdict::Silent(match s {
                decision::Silence::UnknownStream => wdecision::Silence::UnknownStream,
                decision::Silence::NotServable => wdecision::Silence::NotServable,
                decision::Silence::IndexUnavailable => wdecision::Silence::IndexUnavailable,
                decision::Silence::IndexOutOfRange => wdecision::Silence::IndexOutOfRange,
                decision::Silence::HeaderTooLong => wdecision::Silence::HeaderTooLong,
            }),
        }
    }
}

export!(Component);
