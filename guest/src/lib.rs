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
pub mod youtube;

// Test-only misbehaviour; absent from the normal build.
#[cfg(feature = "chaos")]
pub mod chaos;

// The bindings wit-bindgen generates use unsafe ABI glue.
#[cfg(all(target_arch = "wasm32", feature = "component"))]
#[allow(unsafe_code, missing_docs)]
mod component;

/// The `videortc:policy` version this crate implements (`wit/policy.wit`).
pub const WORLD: &str = "0.2.1";

/// What this policy says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// Name and version of this policy build.
    pub name: String,
    /// The `videortc:policy` version it was built against.
    pub world: String,
    /// Optional capabilities it offers.
    pub features: Vec<String>,
}

/// Name and version of this policy build.
pub fn describe() -> Description {
    let name = format!("videortc-guest {}", env!("CARGO_PKG_VERSION"));
    #[cfg(feature = "chaos")]
    let name = format!("{name} {}", chaos::TAG);
    #[cfg(feature = "alt-client")]
    let name = format!("{name} +alt-client");
    // The optional interfaces this build exports (the chaos build leaves the parser out).
    let features = if cfg!(feature = "chaos") {
        Vec::new()
    } else {
        vec!["youtube".into()]
    };
    Description {
        name,
        world: WORLD.into(),
        features,
    }
}
