//! The DataChannel text protocol (SPEC §4): strict decoding and exact encoding.

use serde::{Deserialize, Serialize};

use crate::types::{SegmentRef, parse_itag, valid_vid};

/// One decoded DataChannel text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `{"event":"ping"}`: send this text back (the pong).
    Ping(String),
    /// `{"event":"pong"}`: nothing to do.
    Pong,
    /// Can the node serve this segment?
    Query(SegmentRef),
    /// Send this segment.
    Resolve(SegmentRef),
    /// Stop sending this segment.
    Quit(SegmentRef),
    /// Stop everything on this channel.
    QuitAll,
    /// A well-formed event this node does not act on (e.g. `chat`), by name.
    Ignored(String),
    /// Anything else, with the reason.
    Invalid(String),
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Data {
    id: String,
    index: Index,
}

/// A segment number as browsers send it: an integer, or (in some `quit`s) a decimal string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Index {
    Number(u64),
    Text(String),
}

impl Index {
    /// The number, if it is a non-negative integer or a decimal string that fits `u32`.
    fn value(&self) -> Result<u32, String> {
        match self {
            Index::Number(n) => u32::try_from(*n).map_err(|_| format!("index {n} out of range")),
            Index::Text(t)
                if (1..=10).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) =>
            {
                t.parse().map_err(|_| format!("index {t:?} out of range"))
            }
            Index::Text(t) => Err(format!("index {:?} is not a decimal number", truncate(t))),
        }
    }
}

fn truncate(t: &str) -> &str {
    let mut cut = t.len().min(20);
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.get(..cut).unwrap_or_default()
}

#[derive(Serialize)]
struct Found {
    id: String,
    index: u32,
}

/// Longest reason text kept for an invalid message.
const REASON_MAX: usize = 160;

fn invalid(reason: impl Into<String>) -> Message {
    let mut reason = reason.into();
    if reason.len() > REASON_MAX {
        let mut cut = REASON_MAX;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    Message::Invalid(reason)
}

/// Splits and validates a wire stream id `VID:ITAG`.
pub fn parse_stream_id(id: &str) -> Option<(&str, u32)> {
    let (vid, itag) = id.split_once(':')?;
    if !valid_vid(vid) {
        return None;
    }
    Some((vid, parse_itag(itag)?))
}

fn segment(data: Option<serde_json::Value>, event: &str) -> Result<Data, Message> {
    let value = data.ok_or_else(|| invalid(format!("{event} without data")))?;
    serde_json::from_value::<Data>(value).map_err(|e| invalid(format!("{event} data: {e}")))
}

fn segment_ref(d: Data, event: &str) -> Message {
    let index = match d.index.value() {
        Ok(index) => index,
        Err(e) => return invalid(format!("{event}: {e}")),
    };
    if event == "quit" && d.id.is_empty() && index == 0 {
        return Message::QuitAll;
    }
    let Some((vid, itag)) = parse_stream_id(&d.id) else {
        return invalid(format!("{event}: bad stream id {:?}", d.id));
    };
    let seg = SegmentRef {
        vid: vid.to_owned(),
        itag,
        index,
    };
    match event {
        "query" => Message::Query(seg),
        "resolve" => Message::Resolve(seg),
        _ => Message::Quit(seg),
    }
}

/// Longest event name kept for an ignored message.
const EVENT_MAX: usize = 40;

/// Decodes one text message. Events other than ping, pong, query, resolve and quit are
/// [`Message::Ignored`] (pages send e.g. `chat` to every peer); bad JSON, wrong types,
/// negative or non-integer indexes and malformed ids are [`Message::Invalid`].
pub fn decode(text: &str) -> Message {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) => return invalid(format!("not a message: {e}")),
    };
    match env.event.as_str() {
        "ping" => Message::Ping(encode_pong()),
        "pong" => Message::Pong,
        event @ ("query" | "resolve" | "quit") => match segment(env.data, event) {
            Ok(d) => segment_ref(d, event),
            Err(m) => m,
        },
        other => {
            let mut cut = other.len().min(EVENT_MAX);
            while !other.is_char_boundary(cut) {
                cut -= 1;
            }
            Message::Ignored(other.get(..cut).unwrap_or_default().to_owned())
        }
    }
}

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// `{"event":"ping"}`.
pub fn encode_ping() -> String {
    String::from(r#"{"event":"ping"}"#)
}

/// `{"event":"pong"}`.
pub fn encode_pong() -> String {
    String::from(r#"{"event":"pong"}"#)
}

/// `{"event":"found","data":{"id":"VID:ITAG","index":N}}`.
pub fn encode_found(seg: &SegmentRef) -> String {
    let event = Event {
        event: "found",
        data: Some(Found {
            id: seg.stream_id(),
            index: seg.index,
        }),
    };
    // Serialising a string and an integer cannot fail; never panic if it somehow did.
    serde_json::to_string(&event).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(vid: &str, itag: u32, index: u32) -> SegmentRef {
        SegmentRef {
            vid: vid.into(),
            itag,
            index,
        }
    }

    #[test]
    fn decodes_the_protocol() {
        assert_eq!(
            decode(r#"{"event":"ping"}"#),
            Message::Ping(r#"{"event":"pong"}"#.into())
        );
        assert_eq!(decode(r#"{"event":"pong","data":null}"#), Message::Pong);
        assert_eq!(
            decode(r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":3}}"#),
            Message::Query(seg("dQw4w9WgXcQ", 251, 3))
        );
        assert_eq!(
            decode(r#"{"data":{"index":0,"id":"abc-_DEF:18","extra":1},"event":"resolve"}"#),
            Message::Resolve(seg("abc-_DEF", 18, 0))
        );
        assert_eq!(
            decode(r#"{"event":"quit","data":{"id":"dQw4w9WgXcQ:251","index":4294967295}}"#),
            Message::Quit(seg("dQw4w9WgXcQ", 251, u32::MAX))
        );
        assert_eq!(
            decode(r#"{"event":"quit","data":{"id":"","index":0}}"#),
            Message::QuitAll
        );
    }

    #[test]
    fn accepts_decimal_string_indexes() {
        assert_eq!(
            decode(r#"{"event":"quit","data":{"id":"dQw4w9WgXcQ:251","index":"5"}}"#),
            Message::Quit(seg("dQw4w9WgXcQ", 251, 5))
        );
        assert_eq!(
            decode(r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"4294967295"}}"#),
            Message::Query(seg("dQw4w9WgXcQ", 251, u32::MAX))
        );
        assert_eq!(
            decode(r#"{"event":"resolve","data":{"id":"dQw4w9WgXcQ:251","index":"007"}}"#),
            Message::Resolve(seg("dQw4w9WgXcQ", 251, 7))
        );
        assert_eq!(
            decode(r#"{"event":"quit","data":{"id":"","index":"0"}}"#),
            Message::QuitAll
        );
    }

    #[test]
    fn ignores_other_events_by_name() {
        assert_eq!(
            decode(r#"{"event":"chat","data":{"text":"hi"}}"#),
            Message::Ignored("chat".into())
        );
        assert_eq!(
            decode(r#"{"event":"PING"}"#),
            Message::Ignored("PING".into())
        );
        let long = format!(r#"{{"event":"{}"}}"#, "é".repeat(60_000));
        match decode(&long) {
            Message::Ignored(name) => assert!(name.len() <= EVENT_MAX),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn rejects_everything_else() {
        let bad = [
            "",
            "null",
            "[]",
            "{",
            r#"{"event":1}"#,
            r#"{"data":{}}"#,
            r#"{"event":"query"}"#,
            r#"{"event":"query","data":null}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251"}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":-5}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":1.5}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"-1"}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"+1"}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":" 1"}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":""}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"4294967296"}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":"1.5"}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":null}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":4294967296}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251","index":1e2}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ","index":1}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:0251","index":1}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:2510","index":1}}"#,
            r#"{"event":"query","data":{"id":"dQw:251","index":1}}"#,
            r#"{"event":"query","data":{"id":"dQw4w9WgXcQ:251:1","index":1}}"#,
            r#"{"event":"query","data":{"id":12,"index":1}}"#,
            r#"{"event":"quit","data":{"id":"","index":1}}"#,
            r#"{"event":"ping"} trailing"#,
        ];
        for text in bad {
            assert!(matches!(decode(text), Message::Invalid(_)), "{text}");
        }
        let huge = format!(
            r#"{{"event":"query","data":{{"id":"{}","index":1}}}}"#,
            "x".repeat(60_000)
        );
        match decode(&huge) {
            Message::Invalid(r) => assert!(r.len() <= REASON_MAX + 3),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn encodes_exactly() {
        assert_eq!(encode_ping(), r#"{"event":"ping"}"#);
        assert_eq!(encode_pong(), r#"{"event":"pong"}"#);
        assert_eq!(
            encode_found(&seg("dQw4w9WgXcQ", 251, 7)),
            r#"{"event":"found","data":{"id":"dQw4w9WgXcQ:251","index":7}}"#
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,300}") {
            let _ = decode(&text);
        }

        #[test]
        fn valid_messages_round_trip(vid in "[A-Za-z0-9_-]{6,15}", itag in 1u32..1000, index in any::<u32>(), kind in 0..3) {
            let event = ["query", "resolve", "quit"][kind as usize];
            let text = format!(r#"{{"event":"{event}","data":{{"id":"{vid}:{itag}","index":{index}}}}}"#);
            let s = seg(&vid, itag, index);
            let expect = match kind { 0 => Message::Query(s.clone()), 1 => Message::Resolve(s.clone()), _ => Message::Quit(s.clone()) };
            prop_assert_eq!(decode(&text), expect);
            let found: serde_json::Value = serde_json::from_str(&encode_found(&s)).unwrap();
            prop_assert_eq!(found, serde_json::json!({"event":"found","data":{"id":format!("{vid}:{itag}"),"index":index}}));
        }
    }
}
