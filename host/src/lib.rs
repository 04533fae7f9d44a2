//! videortc: a CDN cache node for YouTube-style DASH video.
//!
//! The host owns sockets, WebRTC, signalling and caches; every media decision goes through
//! the WebAssembly policy component in [`policy`].

pub mod budget;
pub mod config;
pub mod http;
pub mod media;
pub mod policy;
pub mod rtc;
pub mod signal;
