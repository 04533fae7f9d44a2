//! Exports [`crate::rules`] and the default policy's logic as the world
//! `videortc:policy/policy`: WIT types in, crate types out, one call per export.

use videortc_guest::{decision, index, protocol, selection, types};

wit_bindgen::generate!({
    world: "policy",
    path: "../../../wit",
});

use exports::videortc::policy::about as wabout;
use exports::videortc::policy::decision as wdecision;
use exports::videortc::policy::peer_protocol as wprotocol;
use exports::videortc::policy::segment_index as windex;
use exports::videortc::policy::selection as wselection;
use videortc::policy::host;
use videortc::policy::types as wtypes;

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

impl wabout::Guest for Component {
    fn describe() -> wabout::Description {
        wabout::Description {
            name: format!("videortc-policy-curated {}", env!("CARGO_PKG_VERSION")),
            world: videortc_guest::WORLD.into(),
            features: vec!["allow-list".into(), "segment-cap".into()],
        }
    }
}

impl windex::Guest for Component {
    fn index_source(meta: wtypes::StreamMeta) -> Result<wtypes::ByteRange, windex::Unindexable> {
        index::source(&stream_in(meta))
            .map(range_out)
            .map_err(|e| match e {
                index::Unindexable::NotServable(m) => windex::Unindexable::NotServable(m),
                index::Unindexable::Unsupported(m) => windex::Unindexable::Unsupported(m),
            })
    }

    fn parse_index(
        input: windex::IndexInput,
    ) -> Result<Vec<wtypes::ByteRange>, windex::IndexError> {
        let parsed = index::parse_fetched(
            &stream_in(input.meta),
            range_in(input.fetched),
            &input.bytes,
        );
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
    fn parse_preference(text: String) -> Result<Vec<u32>, String> {
        selection::parse_preference(&text)
    }

    fn pick(
        purpose: wselection::Purpose,
        streams: Vec<wtypes::StreamMeta>,
        prefer: Vec<u32>,
    ) -> Option<u32> {
        let purpose = match purpose {
            wselection::Purpose::MpdAudio => selection::Purpose::MpdAudio,
            wselection::Purpose::MpdVideo => selection::Purpose::MpdVideo,
            wselection::Purpose::Progressive => selection::Purpose::Progressive,
        };
        let streams: Vec<types::StreamMeta> = streams.into_iter().map(stream_in).collect();
        crate::rules::pick(purpose, &streams, &prefer)
    }

    fn valid_video_id(id: String) -> bool {
        crate::rules::allowed(&id)
    }

    fn parse_itag(text: String) -> Option<u32> {
        types::parse_itag(&text)
    }
}

impl wprotocol::Guest for Component {
    fn decode(text: String) -> wprotocol::Message {
        match protocol::decode(&text) {
            protocol::Message::Ping(pong) => wprotocol::Message::Ping(pong),
            protocol::Message::Pong => wprotocol::Message::Pong,
            protocol::Message::Query(s) => wprotocol::Message::Query(seg_out(s)),
            protocol::Message::Resolve(s) => wprotocol::Message::Resolve(seg_out(s)),
            protocol::Message::Quit(s) => wprotocol::Message::Quit(seg_out(s)),
            protocol::Message::QuitAll => wprotocol::Message::QuitAll,
            protocol::Message::Ignored(e) => wprotocol::Message::Ignored(e),
            protocol::Message::Invalid(r) => wprotocol::Message::Invalid(r),
        }
    }

    fn encode_ping() -> String {
        protocol::encode_ping()
    }
}

/// The host's table, seen through the library's trait.
struct Lent<'a>(&'a host::SegmentTable);

impl decision::SegmentTable for Lent<'_> {
    fn count(&self) -> u32 {
        self.0.count()
    }

    fn get(&self, index: u32) -> Option<types::ByteRange> {
        self.0.get(index).map(range_in)
    }
}

fn silence_out(s: decision::Silence) -> wdecision::Silence {
    use decision::Silence as S;
    use wdecision::Silence as W;
    match s {
        S::UnknownStream => W::UnknownStream,
        S::NotServable => W::NotServable,
        S::IndexUnavailable => W::IndexUnavailable,
        S::IndexOutOfRange => W::IndexOutOfRange,
        S::HeaderTooLong => W::HeaderTooLong,
        S::Refused(m) => W::Refused(m),
        S::Other(m) => W::Other(m),
    }
}

impl wdecision::Guest for Component {
    fn decide(
        request: wdecision::Request,
        meta: Option<wtypes::StreamMeta>,
        table: Result<&host::SegmentTable, wdecision::TableMissing>,
    ) -> wdecision::Verdict {
        let lent;
        let table = match table {
            Err(wdecision::TableMissing::NotLoaded) => decision::TableState::NotLoaded,
            Err(wdecision::TableMissing::Failed) => decision::TableState::Failed,
            Ok(t) => {
                lent = Lent(t);
                decision::TableState::Loaded(&lent)
            }
        };
        let request = decision::Request {
            kind: match request.kind {
                wdecision::RequestKind::Query => decision::RequestKind::Query,
                wdecision::RequestKind::Resolve => decision::RequestKind::Resolve,
            },
            segment: seg_in(request.segment),
            peer: request.peer,
            now_ms: request.now_ms,
        };
        let stream = meta.map(stream_in);
        match crate::rules::decide(&request, stream.as_ref(), table) {
            decision::Verdict::Reply(text) => wdecision::Verdict::Reply(text),
            decision::Verdict::Send(p) => wdecision::Verdict::Send(wdecision::SendPlan {
                range: range_out(p.range),
                payload_size: p.payload_size,
                header_size: p.header_size,
                headers: p.headers,
            }),
            decision::Verdict::NeedIndex => wdecision::Verdict::NeedIndex,
            decision::Verdict::Silent(s) => wdecision::Verdict::Silent(silence_out(s)),
        }
    }
}

export!(Component);
