//! From bytes to a component this node can run: the one engine configuration, precompiled
//! components (`videortc compile-policy`), and the world-version and import checks that turn
//! a foreign component into one clear line instead of a linker error.

use wasmtime::component::Component;
use wasmtime::{Config, Engine, Precompiled};

use super::PolicyError;

/// The `videortc:policy` interfaces' name prefix.
const PACKAGE: &str = "videortc:policy/";
/// The world version this node runs: any `0.2.x` component (docs/policy.md).
pub const WORLD_MAJOR_MINOR: (u64, u64) = (0, 2);

fn rejected(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Rejected(one_line(&format!("{e:#}")))
}

/// Wasmtime's messages may span lines (byte dumps); a log line and an HTTP answer want one.
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The engine every policy runs in. `compile-policy` uses the same configuration, so that a
/// precompiled file matches the node that loads it.
pub fn engine() -> Result<Engine, PolicyError> {
    let mut wasm = Config::new();
    wasm.epoch_interruption(true);
    // Trap messages stay one line (the trap code) instead of a frame list per log line.
    wasm.wasm_backtrace_max_frames(None);
    wasm.wasm_component_model(true);
    Engine::new(&wasm).map_err(rejected)
}

/// Compiles a component into a wasmtime `.cwasm` for this node's engine.
pub fn precompile(bytes: &[u8]) -> Result<Vec<u8>, PolicyError> {
    if Engine::detect_precompiled(bytes).is_some() {
        return Err(PolicyError::Rejected(
            "the file is already precompiled".into(),
        ));
    }
    let engine = engine()?;
    let component = Component::new(&engine, bytes).map_err(rejected)?;
    check_world(&engine, &component)?;
    engine.precompile_component(bytes).map_err(rejected)
}

/// Compiles (or, for a `.cwasm`, deserialises) a component and checks that it is a
/// `videortc:policy@0.2.x` policy that imports nothing the node does not provide.
/// CPU-heavy for a `.wasm` (hundreds of milliseconds): run it off the async workers.
pub(super) fn component(engine: &Engine, bytes: &[u8]) -> Result<Component, PolicyError> {
    let component = match Engine::detect_precompiled(bytes) {
        None => Component::new(engine, bytes).map_err(rejected)?,
        Some(Precompiled::Module) => {
            return Err(PolicyError::Rejected(
                "the file is a precompiled core module, not a component".into(),
            ));
        }
        Some(Precompiled::Component) => deserialize(engine, bytes)?,
    };
    check_world(engine, &component)?;
    Ok(component)
}

/// Loads a precompiled component.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Component, PolicyError> {
    // SAFETY: a `.cwasm` holds native code that wasmtime maps and runs without validating it.
    // The file is the operator's (the `POLICY` path, or an admin upload): it is trusted as the
    // node binary itself is. Wasmtime still checks that it was compiled by this wasmtime build
    // with this engine configuration and refuses it otherwise.
    unsafe { Component::deserialize(engine, bytes) }.map_err(|e| {
        PolicyError::Rejected(format!(
            "precompiled for another wasmtime build or configuration ({}); \
             run `videortc compile-policy` of this node on the .wasm",
            one_line(&format!("{e:#}"))
        ))
    })
}

/// The `major.minor` of a `…@x.y.z` name.
fn version(name: &str) -> Option<(u64, u64)> {
    let (_, v) = name.rsplit_once('@')?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn accepted(name: &str) -> bool {
    name.starts_with(PACKAGE) && version(name) == Some(WORLD_MAJOR_MINOR)
}

/// The world-version and import checks.
fn check_world(engine: &Engine, component: &Component) -> Result<(), PolicyError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    let (major, minor) = WORLD_MAJOR_MINOR;
    if !exports.iter().any(|n| accepted(n)) {
        let other = exports
            .iter()
            .find(|n| n.starts_with(PACKAGE))
            .and_then(|n| n.rsplit_once('@'))
            .map(|(_, v)| v.to_owned());
        return Err(PolicyError::Rejected(match other {
            Some(v) => format!(
                "the component implements videortc:policy@{v}; this node runs \
                 videortc:policy@{major}.{minor}.x (see docs/policy.md)"
            ),
            None => format!(
                "not a videortc policy: it exports none of videortc:policy@{major}.{minor}.x"
            ),
        }));
    }
    for (name, _) in ty.imports(engine) {
        if !accepted(name) {
            return Err(PolicyError::Rejected(format!(
                "the component imports {name}, which a policy may not (the world is pure: \
                 only videortc:policy/host@{major}.{minor}.x)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version("videortc:policy/decision@0.2.0"), Some((0, 2)));
        assert_eq!(version("videortc:policy/decision@0.2.7-rc1"), Some((0, 2)));
        assert_eq!(version("videortc:policy/decision"), None);
        assert!(accepted("videortc:policy/host@0.2.3"));
        assert!(!accepted("videortc:policy/host@0.1.0"));
        assert!(!accepted("videortc:policy/host@0.3.0"));
        assert!(!accepted("wasi:io/streams@0.2.0"));
    }
}
