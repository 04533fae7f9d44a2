//! Builds the test-only policy components for the tests to `include_bytes!`: `chaos` (the
//! guest with `--features chaos`: misbehaviour on magic messages, no YouTube parser) into
//! `$OUT_DIR/chaos.component.wasm` (and its core module, `chaos.core.wasm`), and `alt-client`
//! (the default policy with another YouTube client version) into
//! `$OUT_DIR/alt-client.component.wasm`, and the example policy `examples/policies/curated`
//! into `$OUT_DIR/curated.component.wasm`. Same build as the host's default policy
//! (`host/build_guest.rs`), each in its own target directory.

use std::env;
use std::error::Error;
use std::path::PathBuf;

#[path = "../host/build_guest.rs"]
mod build_guest;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("..");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let guest = build_guest::GuestBuild {
        root: &root,
        package: "videortc-guest",
        target_subdir: "guest-wasm-chaos",
        features: &["chaos"],
    };
    guest.rerun_if_changed();
    guest.build(&out_dir, "chaos")?;
    let alt = build_guest::GuestBuild {
        root: &root,
        package: "videortc-guest",
        target_subdir: "guest-wasm-alt-client",
        features: &["alt-client"],
    };
    alt.build(&out_dir, "alt-client")?;
    let curated = build_guest::GuestBuild {
        root: &root,
        package: "videortc-policy-curated",
        target_subdir: "guest-wasm-curated",
        features: &[],
    };
    curated.rerun_if_changed();
    curated.build(&out_dir, "curated")
}
