//! WebRTC signalling over WebSocket (SPEC §3).
//!
//! - [`message`]: the typed JSON model ([`Message`]) and the peer-id rule
//!   ([`is_valid_peer_id`]).
//! - [`server`]: a server compatible with `suconghou/signalserver` ([`serve`]), used by the
//!   tests and usable stand-alone.
//! - [`client`]: the node's client ([`SignalClient`]): dials `WS_ADDR + ID`, keeps the socket
//!   alive, reconnects with backoff and turns frames into [`SignalEvent`]s.

pub mod client;
mod error;
pub mod message;
pub mod server;

pub use client::{ClientConfig, SignalClient, SignalEvent};
pub use error::SignalError;
pub use message::{
    IceCandidate, Message, PEER_ID_LEN, Relay, SdpType, SessionDescription, is_valid_peer_id,
    validate_peer_id,
};
pub use server::{ServerConfig, serve, serve_with};

#[cfg(test)]
mod tests;
