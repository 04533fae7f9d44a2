//! The policy runtime under real wasmtime with real components: hot swap, rejected loads,
//! deadline / memory / panic traps and recovery, concurrency during swaps, and the counters.
//!
//! The misbehaving component is the guest built with `--features chaos` by `tests/build.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use videortc::policy::{DEFAULT_COMPONENT, Message, Policy, PolicyConfig, PolicyError, SegmentRef};

/// The guest with the `chaos` feature, as a component.
static CHAOS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chaos.component.wasm"));
/// The same guest's core module: valid wasm, but not a component.
static CHAOS_CORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chaos.core.wasm"));

const SPIN: &str = r#"{"event":"chaos-spin"}"#;
const GROW: &str = r#"{"event":"chaos-grow"}"#;
const PANIC: &str = r#"{"event":"chaos-panic"}"#;
const PING: &str = r#"{"event":"ping"}"#;

/// A hang must fail the test, not stall it; generous for a dev-profile host on 2 cores.
const HANG_BOUND: Duration = Duration::from_secs(5);

fn stats(p: &Policy) -> [u64; 5] {
    let s = p.stats();
    [
        s.calls.load(Ordering::Relaxed),
        s.traps.load(Ordering::Relaxed),
        s.invalid.load(Ordering::Relaxed),
        s.reloads.load(Ordering::Relaxed),
        s.rejected.load(Ordering::Relaxed),
    ]
}

fn query(index: u32) -> (String, SegmentRef) {
    let text = format!(r#"{{"event":"query","data":{{"id":"dQw4w9WgXcQ:251","index":{index}}}}}"#);
    let seg = SegmentRef {
        vid: "dQw4w9WgXcQ".into(),
        itag: 251,
        index,
    };
    (text, seg)
}

/// One ordinary call of each kind answers correctly.
fn assert_works(p: &Policy) {
    assert_eq!(p.decode(PING).unwrap(), Message::Ping);
    let (text, seg) = query(7);
    assert_eq!(p.decode(&text).unwrap(), Message::Query(seg.clone()));
    assert_eq!(
        p.encode_found(&seg).unwrap(),
        r#"{"event":"found","data":{"id":"dQw4w9WgXcQ:251","index":7}}"#
    );
}

/// Calls `decode(text)` and expects a trap, returned well within [`HANG_BOUND`].
fn assert_traps(p: &Policy, text: &str) -> String {
    let t = Instant::now();
    let r = p.decode(text);
    let took = t.elapsed();
    assert!(took < HANG_BOUND, "{text} returned only after {took:?}");
    match r {
        Err(PolicyError::Trap(msg)) => {
            eprintln!("{text} trapped after {took:?}: {msg}");
            msg
        }
        other => panic!("{text}: expected a trap, got {other:?}"),
    }
}

fn chaos_policy(config: PolicyConfig) -> Policy {
    Policy::new(CHAOS, "chaos", config).unwrap()
}

#[test]
fn chaos_component_is_a_test_build() {
    assert_ne!(CHAOS, DEFAULT_COMPONENT);
    assert!(CHAOS.starts_with(b"\0asm"));
    assert!(!CHAOS_CORE.is_empty());
}

#[test]
fn hot_swap_changes_describe_and_keeps_serving() {
    let p = Policy::with_default(PolicyConfig::default()).unwrap();
    let original = p.describe();
    assert!(original.starts_with("videortc-guest "), "{original}");
    assert!(!original.contains("chaos"), "{original}");
    assert_eq!(p.source(), "embedded");
    assert_works(&p);

    let d = p.load(CHAOS, "chaos.wasm").unwrap();
    assert_eq!(d, format!("{original} +chaos"));
    assert_eq!(p.describe(), d);
    assert_eq!(p.source(), "chaos.wasm");
    assert_works(&p);

    let back = p.load(DEFAULT_COMPONENT, "embedded").unwrap();
    assert_eq!(back, original);
    assert_eq!(p.describe(), original);
    assert_eq!(p.source(), "embedded");
    assert_works(&p);

    let [_, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((traps, invalid, reloads, rejected), (0, 0, 2, 0));
}

#[test]
fn rejected_loads_keep_the_running_policy() {
    let p = chaos_policy(PolicyConfig::default());
    let running = p.describe();
    let truncated = &DEFAULT_COMPONENT[..DEFAULT_COMPONENT.len() / 2];
    let empty_component: &[u8] = b"\0asm\x0d\x00\x01\x00";
    let bad: [(&str, &[u8]); 5] = [
        ("garbage", b"this is not wasm at all"),
        ("nothing", b""),
        ("empty component", empty_component),
        ("core module", CHAOS_CORE),
        ("truncated component", truncated),
    ];
    for (k, (what, bytes)) in bad.iter().enumerate() {
        match p.load(bytes, what) {
            Err(PolicyError::Rejected(_)) => {}
            other => panic!("{what}: expected a rejection, got {other:?}"),
        }
        assert_eq!(p.describe(), running, "{what}");
        assert_eq!(p.source(), "chaos", "{what}");
        assert_eq!(p.stats().rejected.load(Ordering::Relaxed), k as u64 + 1);
        assert_works(&p);
    }
    let [_, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!(
        (traps, invalid, reloads, rejected),
        (0, 0, 0, bad.len() as u64)
    );
}

#[test]
fn spin_hits_the_deadline_and_the_next_call_works() {
    // One instance: the call after the trap must take the very slot the trap emptied.
    let p = chaos_policy(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        instances: 1,
        ..PolicyConfig::default()
    });
    let msg = assert_traps(&p, SPIN);
    assert!(msg.contains("interrupt"), "{msg}");
    assert_works(&p);
    // And again: every trapped instance is replaced.
    assert_traps(&p, SPIN);
    assert_eq!(p.decode(PING).unwrap(), Message::Ping);
    let [calls, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((calls, traps, invalid, reloads, rejected), (6, 2, 0, 0, 0));
}

#[test]
fn spin_with_a_pool_of_instances() {
    let p = chaos_policy(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        instances: 3,
        ..PolicyConfig::default()
    });
    for _ in 0..4 {
        assert_traps(&p, SPIN);
        for _ in 0..3 {
            assert_works(&p);
        }
    }
    let [calls, traps, ..] = stats(&p);
    assert_eq!((calls, traps), (4 * (1 + 3 * 3), 4));
}

#[test]
fn grow_hits_the_memory_limit_and_the_node_continues() {
    let p = chaos_policy(PolicyConfig {
        memory_limit: 32 << 20,
        instances: 1,
        ..PolicyConfig::default()
    });
    // Stopped by the memory limit (an allocation failure aborts), not by the deadline.
    let msg = assert_traps(&p, GROW);
    assert!(!msg.contains("interrupt"), "{msg}");
    assert_works(&p);
    assert_traps(&p, GROW);
    assert_works(&p);
    let [calls, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((calls, traps, invalid, reloads, rejected), (8, 2, 0, 0, 0));
}

#[test]
fn panic_traps_and_the_node_continues() {
    let p = chaos_policy(PolicyConfig {
        instances: 1,
        ..PolicyConfig::default()
    });
    assert_traps(&p, PANIC);
    assert_works(&p);
    let [calls, traps, ..] = stats(&p);
    assert_eq!((calls, traps), (4, 1));
}

#[test]
fn the_default_policy_has_no_chaos() {
    let p = Policy::with_default(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        memory_limit: 32 << 20,
        ..PolicyConfig::default()
    })
    .unwrap();
    for text in [SPIN, GROW, PANIC] {
        let t = Instant::now();
        assert!(
            matches!(p.decode(text).unwrap(), Message::Invalid(_)),
            "{text}"
        );
        assert!(t.elapsed() < HANG_BOUND);
    }
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}

/// 8 threads decode (at least 2,000 times each, and until the last swap is done) while
/// another thread swaps the chaos and the default component 20 times: no call fails, every
/// answer is right, and the counters add up.
#[test]
fn concurrent_calls_during_hot_swaps() {
    const THREADS: u32 = 8;
    const CALLS: u32 = 2000;
    const SWAPS: u64 = 20;

    let p = Arc::new(Policy::with_default(PolicyConfig::default()).unwrap());
    let original = p.describe();
    let start = Arc::new(Barrier::new(THREADS as usize + 1));
    let swapping = Arc::new(AtomicBool::new(true));

    let swapper = {
        let p = p.clone();
        let start = start.clone();
        let swapping = swapping.clone();
        std::thread::spawn(move || {
            start.wait();
            let describes: Vec<String> = (0..SWAPS)
                .map(|k| {
                    let (bytes, name) = if k % 2 == 0 {
                        (CHAOS, "chaos")
                    } else {
                        (DEFAULT_COMPONENT, "embedded")
                    };
                    p.load(bytes, name).unwrap()
                })
                .collect();
            swapping.store(false, Ordering::SeqCst);
            describes
        })
    };

    // Callers keep going until the swapper is done, so calls are in flight across every
    // compile and every swap; past their 2,000 they slow down to leave the CPU to it.
    let callers: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = p.clone();
            let start = start.clone();
            let swapping = swapping.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut i = 0u32;
                while i < CALLS || swapping.load(Ordering::SeqCst) {
                    let (text, seg) = query(t * 1_000_000 + i % 1_000_000);
                    let got = p.decode(&text).unwrap();
                    assert_eq!(got, Message::Query(seg), "thread {t} call {i}");
                    i += 1;
                    if i >= CALLS {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                u64::from(i)
            })
        })
        .collect();
    let made: u64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
    let describes = swapper.join().unwrap();
    eprintln!("{made} decodes by {THREADS} threads during {SWAPS} swaps");

    for (k, d) in describes.iter().enumerate() {
        let expect = if k % 2 == 0 {
            format!("{original} +chaos")
        } else {
            original.clone()
        };
        assert_eq!(*d, expect, "swap {k}");
    }
    // An even number of swaps ends on the default.
    assert_eq!(p.describe(), original);
    assert!(made >= u64::from(THREADS * CALLS));
    let [calls, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!(calls, made);
    assert_eq!((traps, invalid, reloads, rejected), (0, 0, SWAPS, 0));
}

#[test]
fn counters_follow_a_mixed_history() {
    let p = Policy::with_default(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        memory_limit: 32 << 20,
        instances: 2,
    })
    .unwrap();
    assert_eq!(stats(&p), [0; 5], "the self-check is not counted as calls");

    for i in 0..10 {
        let (text, seg) = query(i);
        assert_eq!(p.decode(&text).unwrap(), Message::Query(seg));
    }
    assert!(p.load(b"junk", "junk").is_err());
    p.load(CHAOS, "chaos").unwrap();
    for text in [SPIN, GROW, PANIC] {
        assert_traps(&p, text);
    }
    assert!(p.load(CHAOS_CORE, "core").is_err());
    p.load(DEFAULT_COMPONENT, "embedded").unwrap();
    assert_works(&p); // 3 calls
    assert_eq!(stats(&p), [10 + 3 + 3, 3, 0, 2, 2]);
}
