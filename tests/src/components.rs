//! The policy components `tests/build.rs` makes besides the embedded default, one copy for
//! every test.

/// The guest with `--features chaos`: misbehaviour on magic messages, 16,000-byte chunks,
/// no YouTube parser.
pub static CHAOS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chaos.component.wasm"));

/// The default policy with another YouTube client version (`--features alt-client`).
pub static ALT_CLIENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/alt-client.component.wasm"));

/// The example policy `examples/policies/curated`: an allow-list of video ids (with the test
/// video on it), segments capped at 2 MiB, AAC and H.264 first in manifests.
pub static CURATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/curated.component.wasm"));
