//! Test-only misbehaviour, compiled only with the `chaos` feature.
//!
//! The host's runtime tests load a component built with this feature to prove that a policy
//! which hangs, exhausts its memory or panics cannot take the node down. Each misbehaviour
//! is triggered by one exact DataChannel text; every other input behaves normally, so the
//! component passes the host's self-check. Its chunks are smaller ([`PAYLOAD_SIZE`]), so a
//! test can tell on the wire which policy framed a segment.

/// Appended to [`crate::describe`] in a chaos build.
pub const TAG: &str = "+chaos";

/// Payload bytes per chunk in a chaos build (the default policy sends 51,200).
pub const PAYLOAD_SIZE: u32 = 16_000;

/// Loops forever (the host's epoch deadline must interrupt it).
pub const SPIN: &str = r#"{"event":"chaos-spin"}"#;
/// Allocates until memory runs out (the host's memory limit must stop it).
pub const GROW: &str = r#"{"event":"chaos-grow"}"#;
/// Panics (an abort, hence a trap, in the component).
pub const PANIC: &str = r#"{"event":"chaos-panic"}"#;

/// Called by the component's `decode` before the real decoder: misbehaves on the magic
/// texts and returns for everything else.
pub fn on_decode(text: &str) {
    match text {
        SPIN => spin(),
        GROW => grow(),
        PANIC => panic!("chaos-panic requested"),
        _ => {}
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn grow() -> ! {
    const BLOCK: usize = 16 << 20;
    let hoard: &'static mut Vec<Vec<u8>> = Box::leak(Box::default());
    loop {
        // Touch the block so it cannot be elided; allocation failure aborts (a trap).
        let mut block = vec![0u8; BLOCK];
        if let Some(b) = block.last_mut() {
            *b = 1;
        }
        hoard.push(std::hint::black_box(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_texts_pass_through_and_describe_is_tagged() {
        for text in [r#"{"event":"ping"}"#, r#"{"event":"chaos"}"#, "", "{"] {
            on_decode(text);
        }
        assert!(crate::describe().name.ends_with(" +chaos"));
    }
}
