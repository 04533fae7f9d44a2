//! Host bindings generated from `wit/policy.wit`.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "policy",
    path: "../wit",
    additional_derives: [PartialEq, Eq],
});
