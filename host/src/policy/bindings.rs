//! Host bindings generated from `wit/policy.wit`.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "policy",
    path: "../wit",
    additional_derives: [PartialEq, Eq],
    // Exports run async: a long guest call yields to tokio at every epoch tick instead of
    // holding a worker thread (see `runtime.rs`). The imports are cheap and stay sync.
    exports: { default: async },
    with: {
        "videortc:policy/host.segment-table": super::imports::LentTable,
    },
});

/// The optional YouTube parser (0.2.1): bound only when a component exports it.
pub mod youtube {
    wasmtime::component::bindgen!({
        world: "youtube-parser",
        path: "../wit",
        additional_derives: [PartialEq, Eq],
        exports: { default: async },
        with: {
            "videortc:policy/types": super::videortc::policy::types,
        },
    });
}
