//! The error type shared by the signalling message model, server and client.

use tokio_tungstenite::tungstenite;

/// Everything that can go wrong in signalling.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The text is not JSON, or a known event has the wrong shape (missing or mistyped fields).
    #[error("malformed signalling message: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON object has no string `event` field.
    #[error("signalling message has no `event`")]
    MissingEvent,
    /// The `event` is not one this protocol knows.
    #[error("unknown signalling event {0:?}")]
    UnknownEvent(String),
    /// A peer id that is not exactly 36 characters of `[A-Za-z0-9_-]`.
    #[error("invalid peer id {0:?}: expected 36 characters of [A-Za-z0-9_-]")]
    InvalidPeerId(String),
    /// The signalling address cannot be dialled (`WS_ADDR + ID` is not a `ws://` or `wss://` URL).
    #[error("invalid signalling address {0:?}")]
    InvalidAddress(String),
    /// The client's outgoing queue is full; the message was dropped.
    #[error("signalling send queue is full")]
    QueueFull,
    /// The client has stopped; the message was dropped.
    #[error("signalling client is closed")]
    Closed,
    /// A WebSocket protocol or transport error.
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tungstenite::Error>),
    /// An I/O error, e.g. from the listener.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<tungstenite::Error> for SignalError {
    fn from(err: tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(err))
    }
}
