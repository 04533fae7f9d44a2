//! videortc's media policy: every decision about media and the DataChannel wire format.
//!
//! The crate is pure logic (no I/O, no clocks, no threads). It compiles natively as an rlib,
//! so the logic is unit-tested with plain `cargo test`, and for `wasm32-unknown-unknown` as
//! a WebAssembly component implementing the `videortc:policy` world in `wit/policy.wit`.

pub mod decision;
pub mod framing;
pub mod index;
pub mod protocol;
mod reader;
pub mod selection;
pub mod types;

// Test-only misbehaviour; absent from the normal build.
#[cfg(feature = "chaos")]
pub mod chaos;

// The bindings wit-bindgen generates use unsafe ABI glue.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, missing_docs)]
mod component;

/// Name and version of this policy build.
pub fn describe() -> String {
    let name = format!("videortc-guest {}", env!("CARGO_PKG_VERSION"));
    #[cfg(feature = "chaos")]
    let name = format!("{name} {}", chaos::TAG);
    name
}
