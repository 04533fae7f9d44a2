//! Components of other worlds, for the policy runtime's version and import checks: a WIT
//! world turned into a component whose functions all trap (`wit_component::dummy_module`).

use anyhow::Context;
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{ManglingAndAbi, Resolve};

/// A component implementing `world` of the WIT package `wit` (its functions trap).
pub fn dummy_component(wit: &str, world: &str) -> anyhow::Result<Vec<u8>> {
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("variant.wit", wit)
        .context("parse the WIT")?;
    let world = resolve
        .select_world(&[package], Some(world))
        .context("select the world")?;
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)?;
    ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}

/// The current WIT file with its package version replaced by `version`.
pub fn policy_wit_at(version: &str) -> String {
    include_str!("../../wit/policy.wit").replace(
        "package videortc:policy@0.2.1;",
        &format!("package videortc:policy@{version};"),
    )
}

/// A tiny world of package `videortc:policy@{version}` with one exported function.
pub fn tiny_policy_wit(version: &str) -> String {
    format!(
        "package videortc:policy@{version};\n\
         interface about {{ describe: func() -> string; }}\n\
         world policy {{ export about; }}\n"
    )
}
