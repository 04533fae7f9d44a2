#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

#[test]
fn embedded_component_loads_and_answers() {
    let p = Policy::with_default(PolicyConfig::default()).unwrap();
    assert!(p.describe().starts_with("videortc-guest "));
    assert_eq!(p.decode(r#"{"event":"pong"}"#).unwrap(), Message::Pong);
    assert_eq!(
        p.stats().traps.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
