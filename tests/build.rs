//! Builds the test-only `chaos` policy component (the guest with `--features chaos`) into
//! `$OUT_DIR/chaos.component.wasm` (and its core module, `chaos.core.wasm`), for the policy
//! runtime tests to `include_bytes!`. Same build as the host's default policy
//! (`host/build_guest.rs`), in its own target directory.

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
        target_subdir: "guest-wasm-chaos",
        features: &["chaos"],
    };
    guest.rerun_if_changed();
    guest.build(&out_dir, "chaos")
}
