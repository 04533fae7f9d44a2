//! Typed model of the signalling JSON (text frames).
//!
//! | direction | JSON |
//! |---|---|
//! | server → newcomer | `{"event":"init","ids":["…"]}` |
//! | server → others | `{"event":"online","id":"…"}` |
//! | peer → server → peer `to` | `{"event":"offer","from":"…","to":"…","data":{"type":"offer","sdp":"…"}}` |
//! | | `{"event":"answer",…,"data":{"type":"answer","sdp":"…"}}` |
//! | | `{"event":"candidate",…,"data":{"candidate":"…","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"…"}}` |
//!
//! Unknown fields are ignored when parsing. [`Message::parse`] never panics: bad JSON, a wrong
//! shape or an unknown event is a [`SignalError`].

use serde::{Deserialize, Serialize};

use super::SignalError;

/// Length of every peer id, in bytes.
pub const PEER_ID_LEN: usize = 36;

/// Whether `id` is a peer id the signalling server accepts: exactly 36 characters of
/// `[A-Za-z0-9_-]` (the original server matches `/uid\/([\w-]{36})$/`).
pub fn is_valid_peer_id(id: &str) -> bool {
    id.len() == PEER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// [`is_valid_peer_id`] as a `Result`, for configuration checks.
pub fn validate_peer_id(id: &str) -> Result<(), SignalError> {
    if is_valid_peer_id(id) {
        Ok(())
    } else {
        Err(SignalError::InvalidPeerId(id.to_owned()))
    }
}

/// One signalling message, tagged by its `event` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Message {
    /// Server → newcomer: the ids already online.
    Init {
        /// Ids online before the newcomer, in the order they joined, without duplicates.
        #[serde(default)]
        ids: Vec<String>,
    },
    /// Server → everyone else: a peer came online (or reconnected).
    Online {
        /// The id that came online.
        id: String,
    },
    /// A relayed SDP offer.
    Offer(Relay<SessionDescription>),
    /// A relayed SDP answer.
    Answer(Relay<SessionDescription>),
    /// A relayed ICE candidate.
    Candidate(Relay<IceCandidate>),
}

impl Message {
    /// Parses one text frame.
    ///
    /// Distinguishes bad JSON or a wrong shape ([`SignalError::Json`]), a missing `event`
    /// ([`SignalError::MissingEvent`]) and an unknown one ([`SignalError::UnknownEvent`]).
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        /// Just the tag, to classify errors.
        #[derive(Deserialize)]
        struct Head {
            event: Option<String>,
        }
        if !text.trim_start().starts_with('{') {
            return Err(SignalError::Json(serde::de::Error::custom(
                "expected a JSON object",
            )));
        }
        let head: Head = serde_json::from_str(text)?;
        match head.event.as_deref() {
            Some("init" | "online" | "offer" | "answer" | "candidate") => {
                Ok(serde_json::from_str(text)?)
            }
            Some(other) => Err(SignalError::UnknownEvent(other.to_owned())),
            None => Err(SignalError::MissingEvent),
        }
    }

    /// Serialises to the JSON text sent on the wire.
    pub fn to_json(&self) -> Result<String, SignalError> {
        Ok(serde_json::to_string(self)?)
    }
}

/// The envelope of a peer-to-peer message: the server relays it verbatim to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay<T> {
    /// Sender's peer id (filled in by the sender; the server does not add or check it).
    pub from: String,
    /// Recipient's peer id.
    pub to: String,
    /// The payload.
    pub data: T,
}

/// `RTCSessionDescriptionInit` JSON: `{"type":"offer","sdp":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer`, `answer`, `pranswer` or `rollback`.
    #[serde(rename = "type")]
    pub sdp_type: SdpType,
    /// The SDP text.
    pub sdp: String,
}

/// The `type` of a [`SessionDescription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// An offer.
    Offer,
    /// A provisional answer.
    Pranswer,
    /// A final answer.
    Answer,
    /// A rollback.
    Rollback,
}

/// `RTCIceCandidateInit` JSON (what `candidate.toJSON()` gives in a browser).
///
/// `sdpMid` and `sdpMLineIndex` may be `null` or absent; they are always serialised (as `null`
/// when `None`), `usernameFragment` only when present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute line (empty for end-of-candidates).
    pub candidate: String,
    /// Media stream id of the m-line.
    #[serde(rename = "sdpMid", default)]
    pub sdp_mid: Option<String>,
    /// Index of the m-line.
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_mline_index: Option<u16>,
    /// ICE username fragment.
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}
