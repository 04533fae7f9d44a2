//! The WIT contract stays compatible within 0.2 (docs/policy.md): the current `wit/policy.wit`
//! must be a semver-compatible evolution of every released 0.2.x, checked the way the
//! component model checks it (`wit_component::semver_check`: a component of the new world
//! must stand in for one of the old). `tests/fixtures/wit/` keeps the released files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use wit_parser::Resolve;

const RELEASED: &[(&str, &str)] = &[("0.2.0", include_str!("../fixtures/wit/policy-0.2.0.wit"))];
const CURRENT: &str = include_str!("../../wit/policy.wit");

#[test]
fn the_current_wit_extends_every_released_0_2() {
    // The world every policy implements. (`policy-with-youtube` is `policy` plus an optional
    // export, by `include`; a node never requires it.)
    for (version, old) in RELEASED {
        let mut resolve = Resolve::default();
        let old_pkg = resolve.push_str("old.wit", old).unwrap();
        let new_pkg = resolve.push_str("new.wit", CURRENT).unwrap();
        let prev = resolve.select_world(&[old_pkg], Some("policy")).unwrap();
        let new = resolve.select_world(&[new_pkg], Some("policy")).unwrap();
        wit_component::semver_check(resolve, prev, new).unwrap_or_else(|e| {
            panic!("world policy is not compatible with released {version}: {e:#}")
        });
    }
}

/// The check can fail: a change to an existing type is caught.
#[test]
fn an_incompatible_change_is_caught() {
    let (_, old) = RELEASED[0];
    let changed = CURRENT.replace(
        "        /// Any other reason.\n        other(string),\n    }",
        "        /// Any other reason.\n        other(string),\n        /// A new case.\n        busy,\n    }",
    );
    assert_ne!(changed, CURRENT, "the edit must apply");
    let mut resolve = Resolve::default();
    let old_pkg = resolve.push_str("old.wit", old).unwrap();
    let new_pkg = resolve.push_str("new.wit", &changed).unwrap();
    let prev = resolve.select_world(&[old_pkg], Some("policy")).unwrap();
    let new = resolve.select_world(&[new_pkg], Some("policy")).unwrap();
    assert!(wit_component::semver_check(resolve, prev, new).is_err());
}
