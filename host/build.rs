//! Builds the default policy component from `../guest` and leaves it in
//! `$OUT_DIR/policy.component.wasm`, where `policy::DEFAULT_COMPONENT` embeds it.
//!
//! The guest is compiled for `wasm32-unknown-unknown` with the workspace's `guest` profile by
//! a nested cargo (own target directory, so it never waits on the outer build's lock), then
//! turned into a component with `wit-component`. Setting `GUEST_COMPONENT=/path/x.wasm`
//! embeds that component instead (for the Debian build-std route of `scripts/setup.sh`).

use std::env;
use std::error::Error;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("..");
    let out = PathBuf::from(env::var("OUT_DIR")?).join("policy.component.wasm");

    println!("cargo:rerun-if-env-changed=GUEST_COMPONENT");
    if let Ok(prebuilt) = env::var("GUEST_COMPONENT") {
        println!("cargo:rerun-if-changed={prebuilt}");
        std::fs::copy(&prebuilt, &out).map_err(|e| format!("GUEST_COMPONENT={prebuilt}: {e}"))?;
        return Ok(());
    }
    for p in [
        "guest/src",
        "guest/Cargo.toml",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    // One guest build shared by every host profile (dev, release, clippy).
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guest-wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--profile",
            "guest",
            "--target",
            TARGET,
            "-p",
            "videortc-guest",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The host build's flags are not the guest's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .status()
        .map_err(|e| format!("cannot run cargo for the guest: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest for {TARGET} failed; is the target installed? \
             Run scripts/setup.sh (rustup target add {TARGET}, or the Debian route with \
             GUEST_COMPONENT)"
        )
        .into());
    }
    let core_path = target_dir
        .join(TARGET)
        .join("guest")
        .join("videortc_guest.wasm");
    let core = std::fs::read(&core_path).map_err(|e| format!("{}: {e}", core_path.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&core)?
        .encode()?;
    std::fs::write(&out, component)?;
    Ok(())
}
