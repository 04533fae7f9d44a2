//! Builds the default policy component from `../guest` and leaves it in
//! `$OUT_DIR/policy.component.wasm`, where `policy::DEFAULT_COMPONENT` embeds it.
//!
//! The build itself is in `build_guest.rs` (shared with `tests/build.rs`): rustup's wasm32
//! std when installed, else Debian's rustc-web with `-Zbuild-std` (`scripts/setup.sh` installs
//! one or the other; `GUEST_ROUTE=rustup|debian` forces a route). Setting
//! `GUEST_COMPONENT=/path/x.wasm` embeds that component instead.

use std::env;
use std::error::Error;
use std::path::PathBuf;

mod build_guest;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("..");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    println!("cargo:rerun-if-env-changed=GUEST_COMPONENT");
    if let Ok(prebuilt) = env::var("GUEST_COMPONENT") {
        println!("cargo:rerun-if-changed={prebuilt}");
        std::fs::copy(&prebuilt, out_dir.join("policy.component.wasm"))
            .map_err(|e| format!("GUEST_COMPONENT={prebuilt}: {e}"))?;
        return Ok(());
    }
    // The default policy: no features, ever.
    let guest = build_guest::GuestBuild {
        root: &root,
        package: "videortc-guest",
        target_subdir: "guest-wasm",
        features: &[],
    };
    guest.rerun_if_changed();
    guest.build(&out_dir, "policy")
}
