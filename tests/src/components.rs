//! The test-only policy components `tests/build.rs` makes, one copy for every test.

/// The guest with `--features chaos`: misbehaviour on magic messages, 16,000-byte chunks,
/// no YouTube parser.
pub static CHAOS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chaos.component.wasm"));

/// The default policy with another YouTube client version (`--features alt-client`).
pub static ALT_CLIENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/alt-client.component.wasm"));
