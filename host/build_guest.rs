//! Builds the policy guest (`../guest`) into a component. Shared by `host/build.rs` (the
//! embedded default policy) and `tests/build.rs` (the test-only `chaos` policy) through
//! `#[path]`, so there is one way to build a guest.
//!
//! The guest is compiled for `wasm32-unknown-unknown` with the workspace's `guest` profile by
//! a nested cargo in its own target directory (so it never waits on the outer build's lock),
//! then turned into a component with `wit-component`.

use std::env;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest's compilation target.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// One guest build.
pub struct GuestBuild<'a> {
    /// The policy crate: `videortc-guest`, or an example policy such as
    /// `videortc-policy-curated`.
    pub package: &'a str,
    /// The workspace root (holds `Cargo.toml`, `guest/`, `wit/`).
    pub root: &'a Path,
    /// Directory under the workspace target dir, e.g. `guest-wasm`. Builds with different
    /// features need different directories, or they would rebuild each other's output.
    pub target_subdir: &'a str,
    /// Cargo features of `videortc-guest` to enable.
    pub features: &'a [&'a str],
}

impl GuestBuild<'_> {
    /// Tells cargo which inputs invalidate the build script's output.
    pub fn rerun_if_changed(&self) {
        for p in [
            "guest/src",
            "guest/Cargo.toml",
            "wit",
            "Cargo.lock",
            "Cargo.toml",
        ] {
            println!("cargo:rerun-if-changed={}", self.root.join(p).display());
        }
        if self.package != "videortc-guest" {
            let examples = self.root.join("examples/policies");
            println!("cargo:rerun-if-changed={}", examples.display());
        }
        println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    }

    /// Runs the nested cargo build, componentises the result and writes
    /// `{out_dir}/{stem}.component.wasm` and the core module `{out_dir}/{stem}.core.wasm`.
    pub fn build(&self, out_dir: &Path, stem: &str) -> Result<(), Box<dyn Error>> {
        // One guest build per feature set, shared by every outer profile (dev, release, clippy).
        let target_dir = env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target"))
            .join(self.target_subdir);
        let route = Route::detect();
        if route == Route::Debian {
            println!("cargo:warning=building the policy guest with Debian's rustc and -Zbuild-std");
        }
        let target_dir = match route {
            Route::Rustup => target_dir,
            Route::Debian => target_dir.with_extension("debian"),
        };
        let mut cmd = route.cargo();
        cmd.args([
            "build",
            "--profile",
            "guest",
            "--target",
            TARGET,
            "-p",
            self.package,
        ]);
        if !self.features.is_empty() {
            cmd.arg("--features").arg(self.features.join(","));
        }
        let status = cmd
            .arg("--manifest-path")
            .arg(self.root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // The outer build's flags are not the guest's.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_MAKEFLAGS")
            .status()
            .map_err(|e| format!("cannot run cargo for the guest: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building the policy {} (features: {:?}) for {TARGET} with the {route:?} \
                 toolchain failed; is the target installed? Run scripts/setup.sh",
                self.package, self.features
            )
            .into());
        }
        let core_path = target_dir
            .join(TARGET)
            .join("guest")
            .join(format!("{}.wasm", self.package.replace('-', "_")));
        let core =
            std::fs::read(&core_path).map_err(|e| format!("{}: {e}", core_path.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&core)?
            .encode()?;
        let write = |name: String, bytes: &[u8]| {
            let path = out_dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(format!("{stem}.component.wasm"), &component)?;
        write(format!("{stem}.core.wasm"), &core)?;
        Ok(())
    }
}

/// Debian's wasm linker, matching rustc-web's LLVM.
const DEBIAN_WASM_LD: &str = "/usr/lib/llvm-22/bin/wasm-ld";
/// Debian's cargo and rustc (rustc-web, cargo-web).
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// Debian's std sources (rust-web-src), needed by `-Zbuild-std`.
const DEBIAN_STD_SRC: &str = "/usr/lib/rustlib/src/rust/library";

/// Which toolchain builds the guest (see the wasm recipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The current toolchain with rustup's prebuilt wasm32 std.
    Rustup,
    /// Debian's rustc-web with `-Zbuild-std` and wasm-ld (when rustup has no wasm32 std).
    Debian,
}

impl Route {
    /// `GUEST_ROUTE=rustup|debian`, else rustup when its wasm32 std is installed, else Debian
    /// when its toolchain is, else rustup (whose error then says what is missing).
    fn detect() -> Route {
        println!("cargo:rerun-if-env-changed=GUEST_ROUTE");
        match env::var("GUEST_ROUTE").as_deref() {
            Ok("debian") => return Route::Debian,
            Ok("rustup") => return Route::Rustup,
            _ => {}
        }
        if rustup_has_wasm_std() {
            return Route::Rustup;
        }
        let debian = [DEBIAN_CARGO, DEBIAN_RUSTC, DEBIAN_WASM_LD, DEBIAN_STD_SRC]
            .iter()
            .all(|p| Path::new(p).exists());
        if debian { Route::Debian } else { Route::Rustup }
    }

    fn cargo(self) -> Command {
        match self {
            Route::Rustup => Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
            Route::Debian => {
                let mut cmd = Command::new(DEBIAN_CARGO);
                cmd.env("RUSTC_BOOTSTRAP", "1")
                    .env("RUSTC", DEBIAN_RUSTC)
                    .env("RUSTDOC", "/usr/bin/rustdoc")
                    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", DEBIAN_WASM_LD)
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("RUSTC_WRAPPER")
                    .env_remove("RUSTC_WORKSPACE_WRAPPER");
                cmd.args(["-Z", "build-std=std,panic_abort"]);
                cmd
            }
        }
    }
}

/// Whether the compiler cargo uses has a wasm32-unknown-unknown std installed.
fn rustup_has_wasm_std() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .exists()
}
