//! Engine, instance pool, deadlines, hot swap and the typed call surface.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};

use super::bindings::{Policy as Bindings, PolicyPre};
use super::{
    ByteRange, ChunkPlan, Container, FrameError, HEADER_SIZE, IndexError, IndexInput, Message,
    Purpose, SegmentRef, StreamMeta, TableState, Verdict, selfcheck,
};

/// Errors of the policy runtime.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The bytes are not a component, or not one for the `videortc:policy` world.
    #[error("policy component rejected: {0}")]
    Rejected(String),
    /// The component failed its self-check.
    #[error("policy self-check failed: {0}")]
    SelfCheck(String),
    /// A call trapped, ran past its deadline or exceeded its memory.
    #[error("policy call failed: {0}")]
    Trap(String),
    /// The guest returned something the host cannot use.
    #[error("policy returned an invalid result: {0}")]
    Invalid(String),
}

/// Limits for guest execution.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Longest a single call may run before it is interrupted.
    pub call_timeout: Duration,
    /// Most linear memory one instance may grow to.
    pub memory_limit: usize,
    /// Instances kept per component (calls beyond this wait for a free one).
    pub instances: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            call_timeout: Duration::from_millis(500),
            memory_limit: 64 << 20,
            instances: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Counters for `/metrics` and `/status`.
#[derive(Debug, Default)]
pub struct PolicyStats {
    /// Calls into the guest.
    pub calls: AtomicU64,
    /// Calls that trapped or timed out.
    pub traps: AtomicU64,
    /// Results the host rejected.
    pub invalid: AtomicU64,
    /// Successful swaps.
    pub reloads: AtomicU64,
    /// Rejected components.
    pub rejected: AtomicU64,
}

/// Per-instance store state: just the memory limiter.
struct State {
    limits: StoreLimits,
}

/// One reusable instance.
struct Slot {
    store: Store<State>,
    bindings: Bindings,
}

/// A compiled, checked component and its instance pool.
struct Loaded {
    pre: PolicyPre<State>,
    describe: String,
    source: String,
    first: Mutex<Option<Slot>>,
    rest: Vec<Mutex<Option<Slot>>>,
    next: AtomicUsize,
}

impl Loaded {
    fn slots(&self) -> impl Iterator<Item = &Mutex<Option<Slot>>> + Clone {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// Takes a free instance slot, starting at a rotating position; waits if all are busy.
    fn lock_free_slot(&self) -> MutexGuard<'_, Option<Slot>> {
        let n = 1 + self.rest.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for m in self.slots().cycle().skip(start).take(n) {
            if let Ok(g) = m.try_lock() {
                return g;
            }
        }
        let m = self.slots().nth(start).unwrap_or(&self.first);
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ticks the engine's epoch so that guest calls can be interrupted.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

const TICK: Duration = Duration::from_millis(5);

impl Ticker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Ticker { stop, handle }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The running policy: a hot-swappable component with a typed call surface.
pub struct Policy {
    engine: Engine,
    config: PolicyConfig,
    current: ArcSwap<Loaded>,
    stats: PolicyStats,
    _ticker: Ticker,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("describe", &self.describe())
            .finish()
    }
}

fn rejected(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Rejected(format!("{e:#}"))
}

impl Policy {
    /// Starts the runtime with the embedded default component.
    pub fn with_default(config: PolicyConfig) -> Result<Self, PolicyError> {
        Self::new(super::DEFAULT_COMPONENT, "embedded", config)
    }

    /// Starts the runtime with the given component bytes.
    pub fn new(bytes: &[u8], source: &str, config: PolicyConfig) -> Result<Self, PolicyError> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        // Trap messages stay one line (the trap code) instead of a frame list per log line.
        wasm.wasm_backtrace_max_frames(None);
        wasm.wasm_component_model(true);
        let engine = Engine::new(&wasm).map_err(rejected)?;
        let ticker = Ticker::start(engine.clone());
        let loaded = Self::prepare(&engine, &config, bytes, source)?;
        Ok(Policy {
            engine,
            config,
            current: ArcSwap::from_pointee(loaded),
            stats: PolicyStats::default(),
            _ticker: ticker,
        })
    }

    /// Compiles, links and self-checks a component.
    fn prepare(
        engine: &Engine,
        config: &PolicyConfig,
        bytes: &[u8],
        source: &str,
    ) -> Result<Loaded, PolicyError> {
        let component = Component::new(engine, bytes).map_err(rejected)?;
        // The guest has no imports: an empty linker. A component that imports anything,
        // or lacks an export of the world, fails here.
        let linker: Linker<State> = Linker::new(engine);
        let pre = linker.instantiate_pre(&component).map_err(rejected)?;
        let pre = PolicyPre::new(pre).map_err(rejected)?;
        let mut slot = instantiate(engine, config, &pre)?;
        let describe = selfcheck::run(&mut slot.store, &slot.bindings)?;
        Ok(Loaded {
            pre,
            describe,
            source: source.to_owned(),
            first: Mutex::new(Some(slot)),
            rest: (1..config.instances).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// Replaces the running component with `bytes` after checking it. On error the running
    /// component stays. Returns the new component's description.
    pub fn load(&self, bytes: &[u8], source: &str) -> Result<String, PolicyError> {
        match Self::prepare(&self.engine, &self.config, bytes, source) {
            Ok(loaded) => {
                let describe = loaded.describe.clone();
                self.current.store(Arc::new(loaded));
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%source, %describe, "policy loaded");
                Ok(describe)
            }
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%source, error = %e, "policy rejected; keeping the running one");
                Err(e)
            }
        }
    }

    /// The running component's self-description.
    pub fn describe(&self) -> String {
        self.current.load().describe.clone()
    }

    /// Where the running component came from (`embedded` or a path).
    pub fn source(&self) -> String {
        self.current.load().source.clone()
    }

    /// Call counters.
    pub fn stats(&self) -> &PolicyStats {
        &self.stats
    }

    /// Runs `f` on a free instance of the current component.
    fn call<R>(
        &self,
        f: impl FnOnce(&Bindings, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let loaded = self.current.load_full();
        let mut guard = loaded.lock_free_slot();
        let mut slot = match guard.take() {
            Some(slot) => slot,
            None => instantiate(&self.engine, &self.config, &loaded.pre)?,
        };
        slot.store.set_epoch_deadline(deadline_ticks(&self.config));
        match f(&slot.bindings, &mut slot.store) {
            Ok(r) => {
                *guard = Some(slot);
                Ok(r)
            }
            Err(e) => {
                // A trapped instance cannot be entered again: drop it, a fresh one replaces it.
                self.stats.traps.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %format!("{e:#}"), "policy call trapped");
                Err(PolicyError::Trap(format!("{e:#}")))
            }
        }
    }

    fn invalid(&self, what: String) -> PolicyError {
        self.stats.invalid.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%what, "policy returned an invalid result");
        PolicyError::Invalid(what)
    }

    /// Decodes one DataChannel text message.
    pub fn decode(&self, text: &str) -> Result<Message, PolicyError> {
        self.call(|b, s| b.videortc_policy_peer_protocol().call_decode(s, text))
    }

    /// `{"event":"ping"}`.
    pub fn encode_ping(&self) -> Result<String, PolicyError> {
        self.call(|b, s| b.videortc_policy_peer_protocol().call_encode_ping(s))
    }

    /// `{"event":"pong"}`.
    pub fn encode_pong(&self) -> Result<String, PolicyError> {
        self.call(|b, s| b.videortc_policy_peer_protocol().call_encode_pong(s))
    }

    /// The `found` reply for a segment.
    pub fn encode_found(&self, seg: &SegmentRef) -> Result<String, PolicyError> {
        self.call(|b, s| b.videortc_policy_peer_protocol().call_encode_found(s, seg))
    }

    /// Decides a query or resolve.
    pub fn found(
        &self,
        seg: &SegmentRef,
        meta: Option<&StreamMeta>,
        table: TableState,
    ) -> Result<Verdict, PolicyError> {
        self.call(|b, s| b.videortc_policy_decision().call_found(s, seg, meta, table))
    }

    /// Parses a stream index into its segment table. The outer error is the runtime's, the
    /// inner one the policy's verdict on the bytes. The table is checked to be ascending,
    /// non-overlapping and inside the stream.
    pub fn parse_index(
        &self,
        input: &IndexInput,
    ) -> Result<Result<Vec<ByteRange>, IndexError>, PolicyError> {
        let result = self.call(|b, s| b.videortc_policy_segment_index().call_parse(s, input))?;
        if let Ok(table) = &result {
            check_table(table, input.content_length).map_err(|e| self.invalid(e))?;
        }
        Ok(result)
    }

    /// The chunk plan for a segment of `length` bytes.
    pub fn plan(
        &self,
        seg: &SegmentRef,
        length: u64,
    ) -> Result<Result<ChunkPlan, FrameError>, PolicyError> {
        let result = self.call(|b, s| b.videortc_policy_framing().call_plan(s, seg, length))?;
        if let Ok(p) = &result {
            let expect = length.div_ceil(u64::from(p.payload_size.max(1)));
            if p.header_size as usize != HEADER_SIZE
                || p.payload_size == 0
                || expect != u64::from(p.count)
            {
                return Err(self.invalid(format!("chunk plan {p:?} for {length} bytes")));
            }
        }
        Ok(result)
    }

    /// The header of one chunk, exactly [`HEADER_SIZE`] bytes.
    pub fn header(
        &self,
        seg: &SegmentRef,
        chunk: u32,
        count: u32,
    ) -> Result<Result<Vec<u8>, FrameError>, PolicyError> {
        let result = self.call(|b, s| {
            b.videortc_policy_framing()
                .call_header(s, seg, chunk, count)
        })?;
        if let Ok(h) = &result
            && h.len() != HEADER_SIZE
        {
            return Err(self.invalid(format!("header of {} bytes", h.len())));
        }
        Ok(result)
    }

    /// Every header of a segment of `length` bytes, `count * HEADER_SIZE` bytes in all.
    pub fn headers(
        &self,
        seg: &SegmentRef,
        length: u64,
    ) -> Result<Result<Vec<u8>, FrameError>, PolicyError> {
        let result = self.call(|b, s| b.videortc_policy_framing().call_headers(s, seg, length))?;
        if let Ok(h) = &result
            && (h.is_empty() || h.len() % HEADER_SIZE != 0)
        {
            return Err(self.invalid(format!("{} header bytes", h.len())));
        }
        Ok(result)
    }

    /// The default itag preference list for a purpose.
    pub fn default_preference(&self, purpose: Purpose) -> Result<Vec<u32>, PolicyError> {
        self.call(|b, s| {
            b.videortc_policy_selection()
                .call_default_preference(s, purpose)
        })
    }

    /// Parses a comma-separated itag list.
    pub fn parse_preference(&self, text: &str) -> Result<Result<Vec<u32>, String>, PolicyError> {
        self.call(|b, s| b.videortc_policy_selection().call_parse_preference(s, text))
    }

    /// Whether a stream can be served segment by segment.
    pub fn servable(&self, meta: &StreamMeta) -> Result<bool, PolicyError> {
        self.call(|b, s| b.videortc_policy_selection().call_servable(s, meta))
    }

    /// Picks a stream for a purpose; the returned itag is one of `streams`.
    pub fn pick(
        &self,
        purpose: Purpose,
        streams: &[StreamMeta],
        prefer: &[u32],
    ) -> Result<Option<u32>, PolicyError> {
        let itag = self.call(|b, s| {
            b.videortc_policy_selection()
                .call_pick(s, purpose, streams, prefer)
        })?;
        if let Some(i) = itag
            && !streams.iter().any(|m| m.itag == i)
        {
            return Err(self.invalid(format!("picked itag {i}, not offered")));
        }
        Ok(itag)
    }

    /// The container named by a VideoInfo `type` string.
    pub fn container_of(mime: &str) -> Option<Container> {
        let mime = mime.to_ascii_lowercase();
        if mime.contains("webm") {
            Some(Container::Webm)
        } else if mime.contains("mp4") {
            Some(Container::Mp4)
        } else {
            None
        }
    }
}

fn deadline_ticks(config: &PolicyConfig) -> u64 {
    let ticks = config.call_timeout.as_micros() / TICK.as_micros().max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

fn instantiate(
    engine: &Engine,
    config: &PolicyConfig,
    pre: &PolicyPre<State>,
) -> Result<Slot, PolicyError> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(config.memory_limit)
        .instances(4)
        .tables(8)
        .memories(2)
        .build();
    let mut store = Store::new(engine, State { limits });
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(deadline_ticks(config));
    let bindings = pre
        .instantiate(&mut store)
        .map_err(|e| PolicyError::Trap(format!("instantiate: {e:#}")))?;
    Ok(Slot { store, bindings })
}

/// A segment table must be ascending, non-overlapping, non-empty ranges inside the stream.
fn check_table(table: &[ByteRange], content_length: u64) -> Result<(), String> {
    if table.is_empty() {
        return Err("empty segment table".into());
    }
    if u32::try_from(table.len()).is_err() {
        return Err("segment table longer than u32".into());
    }
    let mut next_free = 0u64;
    for (k, r) in table.iter().enumerate() {
        if r.end < r.start || r.start < next_free || r.end >= content_length {
            return Err(format!(
                "segment {k} {r:?} is out of order or outside the stream"
            ));
        }
        next_free = r.end.saturating_add(1);
    }
    Ok(())
}
