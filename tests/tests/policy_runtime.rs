//! The policy runtime under real wasmtime with real components: hot swap, rejected loads
//! (other world versions, foreign imports, precompiled files of another engine), deadline /
//! memory / panic traps and recovery, a slow policy not holding a worker thread, concurrency
//! during swaps, and the counters.
//!
//! The misbehaving component is the guest built with `--features chaos` by `tests/build.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use videortc::policy::{
    DEFAULT_COMPONENT, Message, Policy, PolicyConfig, PolicyError, RollbackConfig, SegmentRef,
};
use videortc_tests::worlds;

use videortc_tests::components::CHAOS;
/// The same guest's core module: valid wasm, but not a component.
static CHAOS_CORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chaos.core.wasm"));

const SPIN: &str = r#"{"event":"chaos-spin"}"#;
const GROW: &str = r#"{"event":"chaos-grow"}"#;
const PANIC: &str = r#"{"event":"chaos-panic"}"#;
const PING: &str = r#"{"event":"ping"}"#;
const PONG: &str = r#"{"event":"pong"}"#;

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

/// Two ordinary calls answer correctly.
async fn assert_works(p: &Policy) {
    assert_eq!(p.decode(PING).await.unwrap(), Message::Ping(PONG.into()));
    let (text, seg) = query(7);
    assert_eq!(p.decode(&text).await.unwrap(), Message::Query(seg));
}

/// Calls `decode(text)` and expects a trap, returned well within [`HANG_BOUND`].
async fn assert_traps(p: &Policy, text: &str) -> String {
    let t = Instant::now();
    let r = p.decode(text).await;
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

async fn chaos_policy(config: PolicyConfig) -> Policy {
    Policy::new(CHAOS, "chaos", config).await.unwrap()
}

async fn default_policy() -> Policy {
    Policy::with_default(PolicyConfig::default()).await.unwrap()
}

#[tokio::test]
async fn chaos_component_is_a_test_build() {
    assert_ne!(CHAOS, DEFAULT_COMPONENT);
    assert!(CHAOS.starts_with(b"\0asm"));
    assert!(!CHAOS_CORE.is_empty());
}

#[tokio::test]
async fn hot_swap_changes_describe_and_keeps_serving() {
    let p = default_policy().await;
    let original = p.describe();
    assert!(original.starts_with("videortc-guest "), "{original}");
    assert!(!original.contains("chaos"), "{original}");
    assert_eq!(p.source(), "embedded");
    assert_eq!(p.generation(), 1);
    assert_works(&p).await;

    let d = p.load(CHAOS.to_vec(), "chaos.wasm").await.unwrap();
    assert_eq!(d.name, format!("{original} +chaos"));
    assert_eq!(d.world, "0.2.1");
    assert!(
        d.features.is_empty(),
        "the chaos build has no YouTube parser"
    );
    assert_eq!(p.describe(), d.name);
    assert_eq!(p.source(), "chaos.wasm");
    assert_eq!(p.generation(), 2);
    assert_works(&p).await;

    let back = p
        .load(DEFAULT_COMPONENT.to_vec(), "embedded")
        .await
        .unwrap();
    assert_eq!(back.name, original);
    assert_eq!(p.describe(), original);
    assert_eq!(p.source(), "embedded");
    assert_eq!(p.generation(), 3);
    assert_works(&p).await;

    let [_, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((traps, invalid, reloads, rejected), (0, 0, 2, 0));
}

#[tokio::test]
async fn rejected_loads_keep_the_running_policy() {
    let p = chaos_policy(PolicyConfig::default()).await;
    let running = p.describe();
    let truncated = DEFAULT_COMPONENT[..DEFAULT_COMPONENT.len() / 2].to_vec();
    let empty_component = b"\0asm\x0d\x00\x01\x00".to_vec();
    // Only the running policy's own world is accepted, with one clear line for the others.
    let old_world = worlds::dummy_component(&worlds::tiny_policy_wit("0.1.0"), "policy").unwrap();
    let next_world = worlds::dummy_component(&worlds::tiny_policy_wit("0.3.0"), "policy").unwrap();
    let foreign = worlds::dummy_component(
        "package other:thing@1.0.0; interface about { describe: func() -> string; } \
         world policy { export about; }",
        "policy",
    )
    .unwrap();
    let wasi = worlds::dummy_component(
        &format!(
            "{}\npackage wasi:cli@0.2.0 {{ interface environment {{ get-arguments: func() -> list<string>; }} }}",
            worlds::policy_wit_at("0.2.0").replace(
                "world policy {\n    import host;",
                "world policy {\n    import host;\n    import wasi:cli/environment@0.2.0;"
            )
        ),
        "policy",
    )
    .unwrap();
    let bad: [(&str, Vec<u8>, &str); 9] = [
        ("garbage", b"this is not wasm at all".to_vec(), ""),
        ("nothing", Vec::new(), ""),
        ("empty component", empty_component, ""),
        ("core module", CHAOS_CORE.to_vec(), ""),
        ("truncated component", truncated, ""),
        (
            "a 0.1 policy",
            old_world,
            "implements videortc:policy@0.1.0; this node runs videortc:policy@0.2.x",
        ),
        (
            "a 0.3 policy",
            next_world,
            "implements videortc:policy@0.3.0; this node runs videortc:policy@0.2.x",
        ),
        ("not a policy", foreign, "not a videortc policy"),
        (
            "a policy with WASI",
            wasi,
            "imports wasi:cli/environment@0.2.0",
        ),
    ];
    for (k, (what, bytes, says)) in bad.into_iter().enumerate() {
        match p.load(bytes, what).await {
            Err(PolicyError::Rejected(msg)) => {
                assert!(msg.contains(says), "{what}: {msg}");
                assert!(!msg.contains('\n'), "{what}: {msg}");
            }
            other => panic!("{what}: expected a rejection, got {other:?}"),
        }
        assert_eq!(p.describe(), running, "{what}");
        assert_eq!(p.source(), "chaos", "{what}");
        assert_eq!(p.stats().rejected.load(Ordering::Relaxed), k as u64 + 1);
        assert_works(&p).await;
    }
    let [_, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((traps, invalid, reloads, rejected), (0, 0, 0, 9));
}

/// A component of a later 0.2 minor (here: the same interfaces and one more) passes the
/// version gate and links; this one is a dummy whose functions trap, so the self-check,
/// not the version check, refuses it.
#[tokio::test]
async fn a_later_minor_passes_the_version_gate() {
    let p = default_policy().await;
    let wit = worlds::policy_wit_at("0.2.9").replace(
        "world policy {",
        "interface extra { hello: func() -> string; }\nworld policy {\n    export extra;",
    );
    let later = worlds::dummy_component(&wit, "policy").unwrap();
    match p.load(later, "later").await {
        Err(PolicyError::SelfCheck(msg)) => assert!(msg.contains("trapped"), "{msg}"),
        other => panic!("expected a self-check failure, got {other:?}"),
    }
}

/// `compile-policy` output loads (and skips compilation); one compiled by an engine of
/// another configuration is refused with a clear message.
#[tokio::test]
async fn precompiled_components() {
    let p = default_policy().await;
    let cwasm = videortc::policy::precompile(CHAOS).unwrap();
    let d = p.load(cwasm.clone(), "chaos.cwasm").await.unwrap();
    assert!(d.name.ends_with("+chaos"));
    assert_works(&p).await;
    assert!(
        videortc::policy::precompile(&cwasm).is_err(),
        "precompiling twice"
    );

    let mut other = wasmtime::Config::new();
    other.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&other).unwrap();
    let foreign = engine.precompile_component(CHAOS).unwrap();
    match p.load(foreign, "foreign.cwasm").await {
        Err(PolicyError::Rejected(msg)) => {
            assert!(
                msg.contains("another wasmtime build or configuration"),
                "{msg}"
            )
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(p.describe().ends_with("+chaos"));
}

/// A policy that runs to its deadline does not hold the thread: on a single-threaded
/// runtime, other calls and tasks go on while it spins.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_call_does_not_hold_the_worker() {
    let p = Arc::new(
        chaos_policy(PolicyConfig {
            call_timeout: Duration::from_secs(2),
            instances: 2,
            ..PolicyConfig::default()
        })
        .await,
    );
    let spinning = Arc::new(AtomicBool::new(true));
    let spin = tokio::spawn({
        let (p, spinning) = (p.clone(), spinning.clone());
        async move {
            let r = p.decode(SPIN).await;
            spinning.store(false, Ordering::SeqCst);
            r
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(spinning.load(Ordering::SeqCst), "the spin ended early");
    // A timer and another call both complete while the spin is still running.
    assert_eq!(p.decode(PING).await.unwrap(), Message::Ping(PONG.into()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        spinning.load(Ordering::SeqCst),
        "the spin ended before the ping"
    );
    let r = spin.await.unwrap();
    assert!(
        matches!(r, Err(PolicyError::Trap(ref m)) if m.contains("deadline")),
        "{r:?}"
    );
}

#[tokio::test]
async fn spin_hits_the_deadline_and_the_next_call_works() {
    // One instance: the call after the trap must take the very slot the trap emptied.
    let p = chaos_policy(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        instances: 1,
        ..PolicyConfig::default()
    })
    .await;
    let msg = assert_traps(&p, SPIN).await;
    assert!(msg.contains("deadline"), "{msg}");
    assert_works(&p).await;
    // And again: every trapped instance is replaced.
    assert_traps(&p, SPIN).await;
    assert_eq!(p.decode(PING).await.unwrap(), Message::Ping(PONG.into()));
    let [calls, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((calls, traps, invalid, reloads, rejected), (5, 2, 0, 0, 0));
}

#[tokio::test]
async fn spin_with_a_pool_of_instances() {
    let p = chaos_policy(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        instances: 3,
        ..PolicyConfig::default()
    })
    .await;
    for _ in 0..4 {
        assert_traps(&p, SPIN).await;
        for _ in 0..3 {
            assert_works(&p).await;
        }
    }
    let [calls, traps, ..] = stats(&p);
    assert_eq!((calls, traps), (4 * (1 + 3 * 2), 4));
}

#[tokio::test]
async fn grow_hits_the_memory_limit_and_the_node_continues() {
    let p = chaos_policy(PolicyConfig {
        memory_limit: 32 << 20,
        instances: 1,
        ..PolicyConfig::default()
    })
    .await;
    // Stopped by the memory limit (an allocation failure aborts), not by the deadline.
    let msg = assert_traps(&p, GROW).await;
    assert!(!msg.contains("deadline"), "{msg}");
    assert_works(&p).await;
    assert_traps(&p, GROW).await;
    assert_works(&p).await;
    let [calls, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!((calls, traps, invalid, reloads, rejected), (6, 2, 0, 0, 0));
}

#[tokio::test]
async fn panic_traps_and_the_node_continues() {
    let p = chaos_policy(PolicyConfig {
        instances: 1,
        ..PolicyConfig::default()
    })
    .await;
    assert_traps(&p, PANIC).await;
    assert_works(&p).await;
    let [calls, traps, ..] = stats(&p);
    assert_eq!((calls, traps), (3, 1));
}

#[tokio::test]
async fn the_default_policy_has_no_chaos() {
    let p = Policy::with_default(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        memory_limit: 32 << 20,
        ..PolicyConfig::default()
    })
    .await
    .unwrap();
    for text in [SPIN, GROW, PANIC] {
        let t = Instant::now();
        assert!(
            matches!(p.decode(text).await.unwrap(), Message::Ignored(_)),
            "{text}"
        );
        assert!(t.elapsed() < HANG_BOUND);
    }
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 0);
}

/// 8 tasks on a 2-thread runtime decode (at least 2,000 times each, and until the last swap
/// is done) while another task swaps the chaos and the default component 20 times: no call
/// fails, every answer is right, and the counters add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_during_hot_swaps() {
    const TASKS: u32 = 8;
    const CALLS: u32 = 2000;
    const SWAPS: u64 = 20;

    let p = Arc::new(default_policy().await);
    let original = p.describe();
    let swapping = Arc::new(AtomicBool::new(true));

    let swapper = tokio::spawn({
        let (p, swapping) = (p.clone(), swapping.clone());
        async move {
            let mut names = Vec::new();
            for k in 0..SWAPS {
                let (bytes, name) = if k % 2 == 0 {
                    (CHAOS, "chaos")
                } else {
                    (DEFAULT_COMPONENT, "embedded")
                };
                names.push(p.load(bytes.to_vec(), name).await.unwrap().name);
            }
            swapping.store(false, Ordering::SeqCst);
            names
        }
    });

    // Callers keep going until the swapper is done, so calls are in flight across every
    // compile and every swap; past their 2,000 they slow down to leave the CPU to it.
    let callers: Vec<_> = (0..TASKS)
        .map(|t| {
            let (p, swapping) = (p.clone(), swapping.clone());
            tokio::spawn(async move {
                let mut i = 0u32;
                while i < CALLS || swapping.load(Ordering::SeqCst) {
                    let (text, seg) = query(t * 1_000_000 + i % 1_000_000);
                    let got = p.decode(&text).await.unwrap();
                    assert_eq!(got, Message::Query(seg), "task {t} call {i}");
                    i += 1;
                    if i >= CALLS {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                u64::from(i)
            })
        })
        .collect();
    let mut made = 0;
    for c in callers {
        made += c.await.unwrap();
    }
    let names = swapper.await.unwrap();
    eprintln!("{made} decodes by {TASKS} tasks during {SWAPS} swaps");

    for (k, d) in names.iter().enumerate() {
        let expect = if k % 2 == 0 {
            format!("{original} +chaos")
        } else {
            original.clone()
        };
        assert_eq!(*d, expect, "swap {k}");
    }
    // An even number of swaps ends on the default.
    assert_eq!(p.describe(), original);
    assert!(made >= u64::from(TASKS * CALLS));
    let [calls, traps, invalid, reloads, rejected] = stats(&p);
    assert_eq!(calls, made);
    assert_eq!((traps, invalid, reloads, rejected), (0, 0, SWAPS, 0));
}

#[tokio::test]
async fn counters_follow_a_mixed_history() {
    let p = Policy::with_default(PolicyConfig {
        call_timeout: Duration::from_millis(200),
        memory_limit: 32 << 20,
        instances: 2,
        rollback: RollbackConfig::default(),
    })
    .await
    .unwrap();
    assert_eq!(stats(&p), [0; 5], "the self-check is not counted as calls");

    for i in 0..10 {
        let (text, seg) = query(i);
        assert_eq!(p.decode(&text).await.unwrap(), Message::Query(seg));
    }
    assert!(p.load(b"junk".to_vec(), "junk").await.is_err());
    p.load(CHAOS.to_vec(), "chaos").await.unwrap();
    for text in [SPIN, GROW, PANIC] {
        assert_traps(&p, text).await;
    }
    assert!(p.load(CHAOS_CORE.to_vec(), "core").await.is_err());
    p.load(DEFAULT_COMPONENT.to_vec(), "embedded")
        .await
        .unwrap();
    assert_works(&p).await; // 2 calls
    assert_eq!(stats(&p), [10 + 3 + 2, 3, 0, 2, 2]);
}

/// Rollback after 3 failures within a minute, one instance (so traps come quickly).
fn rolling(failures: u32) -> PolicyConfig {
    PolicyConfig {
        call_timeout: Duration::from_millis(200),
        instances: 1,
        rollback: RollbackConfig {
            failures,
            window: Duration::from_secs(60),
        },
        ..PolicyConfig::default()
    }
}

fn rollbacks(p: &Policy) -> u64 {
    p.stats().rollbacks.load(Ordering::Relaxed)
}

/// A policy that keeps failing (panics, deadlines, memory) is replaced by the one that
/// served before it; the record says from what to what, and the policy serves again.
#[tokio::test]
async fn a_failing_policy_is_rolled_back_to_the_one_before() {
    let p = Policy::with_default(rolling(3)).await.unwrap();
    let embedded = (p.sha256(), p.describe());
    p.load(CHAOS.to_vec(), "chaos.wasm").await.unwrap();
    let chaos_generation = p.generation();
    assert!(p.describe().ends_with("+chaos"));
    assert_traps(&p, PANIC).await;
    assert_traps(&p, SPIN).await;
    assert_eq!((rollbacks(&p), p.recent_failures()), (0, 2));
    // The third failure rolls back; the call itself still fails.
    assert_traps(&p, GROW).await;
    assert_eq!(rollbacks(&p), 1);
    assert_eq!((p.sha256(), p.describe()), embedded);
    assert_eq!(p.source(), "embedded");
    assert!(p.generation() > chaos_generation, "tables must be rebuilt");
    let r = p.last_rollback().unwrap();
    assert!(r.from.name.ends_with("+chaos"), "{r:?}");
    assert_eq!(r.from.source, "chaos.wasm");
    assert_eq!(r.to.sha256, embedded.0);
    assert!(
        r.reason.contains("memory") || r.reason.contains("unreachable"),
        "{r:?}"
    );
    // The default policy answers the magic texts like any other event.
    for text in [PANIC, SPIN, GROW] {
        assert!(matches!(p.decode(text).await.unwrap(), Message::Ignored(_)));
    }
    assert_works(&p).await;
    assert_eq!(p.stats().traps.load(Ordering::Relaxed), 3);
}

/// A policy the node started with rolls back to the embedded default, which is compiled
/// for the occasion; failures below the threshold, or with rollback off, change nothing.
#[tokio::test]
async fn a_failing_startup_policy_rolls_back_to_the_embedded_one() {
    let off = chaos_policy(rolling(0)).await;
    for _ in 0..5 {
        assert_traps(&off, PANIC).await;
    }
    assert_eq!(rollbacks(&off), 0);
    assert!(off.describe().ends_with("+chaos"));

    let p = chaos_policy(rolling(4)).await;
    for _ in 0..3 {
        assert_traps(&p, PANIC).await;
        assert_works(&p).await;
    }
    assert_eq!(rollbacks(&p), 0);
    assert_traps(&p, PANIC).await;
    assert_eq!(rollbacks(&p), 1);
    assert_eq!(p.source(), "embedded");
    assert!(!p.describe().contains("chaos"));
    let r = p.last_rollback().unwrap();
    assert_eq!(
        (r.from.source.as_str(), r.to.source.as_str()),
        ("chaos", "embedded")
    );
    assert_works(&p).await;
}

/// Each rollback steps back one policy in the history: the second chaos load, then the
/// first, then the embedded default.
#[tokio::test]
async fn rollbacks_walk_back_through_the_history_to_the_embedded_floor() {
    let p = Policy::with_default(rolling(2)).await.unwrap();
    p.load(CHAOS.to_vec(), "first").await.unwrap();
    p.load(CHAOS.to_vec(), "second").await.unwrap();
    for _ in 0..2 {
        assert_traps(&p, PANIC).await;
    }
    assert_eq!((rollbacks(&p), p.source()), (1, "first".to_string()));
    for _ in 0..2 {
        assert_traps(&p, PANIC).await;
    }
    assert_eq!((rollbacks(&p), p.source()), (2, "embedded".to_string()));
    assert_works(&p).await;
}
