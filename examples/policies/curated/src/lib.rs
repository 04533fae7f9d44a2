//! **curated**: an example videortc policy for a node that serves a fixed catalogue.
//!
//! It reuses the default policy (`videortc-guest`) as a library and changes three decisions:
//!
//! - **an allow-list of video ids**: only the ids in [`rules::ALLOWED`] (or, when built with
//!   `CURATED_VIDEOS=id1,id2,...` in the environment, those) are accepted, over HTTP and on
//!   the DataChannel; the node fetches nothing for any other id;
//! - **a cap on segment size**: segments over [`rules::MAX_SEGMENT`] are neither announced
//!   (`found`) nor sent, to spare peers on metered links;
//! - **other manifest defaults**: a DASH manifest without `?a=`/`?v=` prefers AAC audio and
//!   H.264 video (what every browser decodes) over Opus and VP9.
//!
//! The rules are plain Rust in [`rules`], unit-tested natively; `component` is the glue that
//! exports them as the world `videortc:policy/policy@0.2.1` (without the optional YouTube
//! parser, so this policy serves `BASE_URL` and `UPSTREAM` nodes only).

pub mod rules;

// The bindings wit-bindgen generates use unsafe ABI glue.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, missing_docs)]
mod component;
