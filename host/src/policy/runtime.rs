//! The running policy: instance pool, deadlines, hot swap and the typed call surface.
//!
//! Calls are async. A guest call runs on the calling tokio task and yields back to the
//! executor at every epoch tick (5 ms), so a slow policy delays decisions but never holds a
//! worker thread: sockets, signalling and segments already decided keep moving. A call that
//! runs past its deadline traps. Instances are pooled: any call may run on any instance, and
//! an instance that trapped (or whose call was abandoned) is thrown away and rebuilt.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, OwnedMutexGuard};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};

use super::bindings::youtube::{YoutubeParser, YoutubeParserIndices};
use super::bindings::{Policy as Bindings, PolicyPre};
use super::imports::{LentTable, PolicyLog, State};
use super::rollback::{FailureWindow, PolicyRef, RollbackConfig, RollbackRecord};
use super::{
    ByteRange, Description, IndexError, IndexInput, Message, Purpose, Request, RequestKind,
    SendPlan, StreamMeta, TableMissing, Unindexable, Verdict, YtHttpResponse, YtJob, YtStep, load,
    selfcheck,
};

/// Errors of the policy runtime.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The bytes are not a component for this node's `videortc:policy` world.
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
    /// The running policy does not export an optional interface.
    #[error("the running policy has no {0}")]
    Missing(&'static str),
}

/// Limits for guest execution.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Longest a single call may run before it is interrupted.
    pub call_timeout: Duration,
    /// Most linear memory one instance may grow to.
    pub memory_limit: usize,
    /// Instances kept per component: calls beyond this wait (asynchronously) for a free one.
    pub instances: usize,
    /// When a failing policy is rolled back.
    pub rollback: RollbackConfig,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PolicyConfig {
            call_timeout: Duration::from_millis(500),
            memory_limit: 64 << 20,
            // Calls yield while they run, so more instances than cores keep short calls
            // from queueing behind a long one.
            instances: (2 * cores).max(2),
            rollback: RollbackConfig::default(),
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
    /// Automatic rollbacks of a failing policy.
    pub rollbacks: AtomicU64,
}

/// Largest reply text a decision may ask the host to send.
pub const MAX_REPLY: usize = 16 << 10;
/// Largest binary message (header plus payload) a send plan may make.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Largest segment a send plan may name (a resource limit of the host).
pub const MAX_SEGMENT: u64 = 256 << 20;
/// Largest index fetch the host makes for a policy.
pub const MAX_INDEX_FETCH: u64 = 16 << 20;

/// One reusable instance.
struct Slot {
    store: Store<State>,
    bindings: Bindings,
    /// The optional YouTube parser, when the component exports it.
    youtube: Option<YoutubeParser>,
}

/// A compiled, checked component and its instance pool.
struct Loaded {
    pre: PolicyPre<State>,
    youtube: Option<YoutubeParserIndices>,
    description: Description,
    ping: String,
    source: String,
    generation: u64,
    /// SHA-256 of the component's bytes, hex: which build is serving.
    sha256: String,
    /// When it started serving, seconds since the Unix epoch.
    loaded_at: u64,
    slots: Vec<Arc<Mutex<Option<Slot>>>>,
    next: AtomicUsize,
}

impl Loaded {
    /// The same component with no instances, to keep as a rollback target: instances (and
    /// their linear memory) are made again only if it serves again.
    fn retired(&self, config: &PolicyConfig) -> Loaded {
        Loaded {
            pre: self.pre.clone(),
            youtube: self.youtube.clone(),
            description: self.description.clone(),
            ping: self.ping.clone(),
            source: self.source.clone(),
            generation: self.generation,
            sha256: self.sha256.clone(),
            loaded_at: self.loaded_at,
            slots: empty_slots(config.instances),
            next: AtomicUsize::new(0),
        }
    }

    fn reference(&self) -> PolicyRef {
        PolicyRef {
            name: self.description.name.clone(),
            source: self.source.clone(),
            sha256: self.sha256.clone(),
        }
    }

    /// A free instance slot, starting at a rotating position; waits if all are busy.
    async fn lock_free_slot(&self) -> Option<OwnedMutexGuard<Option<Slot>>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n.max(1);
        for m in self.slots.iter().cycle().skip(start).take(n) {
            if let Ok(g) = m.clone().try_lock_owned() {
                return Some(g);
            }
        }
        Some(self.slots.get(start)?.clone().lock_owned().await)
    }
}

/// Ticks the engine's epoch so that guest calls yield and can be interrupted.
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

/// The running policy: a hot-swappable component with a typed, validated call surface.
pub struct Policy {
    engine: Engine,
    config: PolicyConfig,
    current: ArcSwap<Loaded>,
    stats: PolicyStats,
    log: Arc<PolicyLog>,
    generations: AtomicU64,
    /// One load at a time: a reload waits for the one in progress.
    loading: Mutex<()>,
    /// Policies that served before the current one, newest last: rollback targets.
    history: std::sync::Mutex<Vec<Arc<Loaded>>>,
    /// Recent failures of the serving policy.
    failures: std::sync::Mutex<FailureWindow>,
    last_rollback: std::sync::Mutex<Option<RollbackRecord>>,
    _ticker: Ticker,
}

/// Rollback targets kept besides the embedded default (which is compiled again if needed).
const HISTORY: usize = 3;

/// The source name of the embedded default policy.
const EMBEDDED: &str = "embedded";

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("describe", &self.describe())
            .finish()
    }
}

/// A borrowed instance for one call; put back by [`Lease::finish`], thrown away otherwise
/// (a call whose future was dropped may have left the instance mid-call).
struct Lease<'p> {
    policy: &'p Policy,
    guard: OwnedMutexGuard<Option<Slot>>,
    slot: Option<Slot>,
    /// The generation of the component the instance belongs to.
    generation: u64,
}

impl Lease<'_> {
    fn parts(&mut self) -> Result<(&Bindings, &mut Store<State>), PolicyError> {
        let slot = self
            .slot
            .as_mut()
            .ok_or_else(|| PolicyError::Trap("instance already returned".into()))?;
        Ok((&slot.bindings, &mut slot.store))
    }

    /// The YouTube parser of this instance, if the component has one.
    fn youtube(&mut self) -> Result<(&YoutubeParser, &mut Store<State>), PolicyError> {
        let slot = self
            .slot
            .as_mut()
            .ok_or_else(|| PolicyError::Trap("instance already returned".into()))?;
        let parser = slot.youtube.as_ref().ok_or(PolicyError::Missing(YOUTUBE))?;
        Ok((parser, &mut slot.store))
    }

    /// Returns the instance to the pool on success; on a trap counts it, drops it, and
    /// notes the failure (which may roll the policy back).
    async fn finish<R>(self, result: wasmtime::Result<R>) -> Result<R, PolicyError> {
        let Lease {
            policy,
            mut guard,
            slot,
            generation,
        } = self;
        match result {
            Ok(r) => {
                if let Some(mut slot) = slot {
                    // Lent tables end with the call.
                    slot.store.data_mut().table = ResourceTable::new();
                    *guard = Some(slot);
                }
                Ok(r)
            }
            Err(e) => {
                drop((slot, guard));
                policy.stats.traps.fetch_add(1, Ordering::Relaxed);
                let msg = format!("{e:#}");
                tracing::warn!(error = %msg, "policy call trapped");
                policy.failed(generation, &msg).await;
                Err(PolicyError::Trap(msg))
            }
        }
    }
}

impl Policy {
    /// Starts the runtime with the embedded default component.
    pub async fn with_default(config: PolicyConfig) -> Result<Self, PolicyError> {
        Self::new(super::DEFAULT_COMPONENT, EMBEDDED, config).await
    }

    /// Starts the runtime with the given component bytes (a `.wasm` component or a `.cwasm`
    /// made by `videortc compile-policy`).
    pub async fn new(
        bytes: &[u8],
        source: &str,
        config: PolicyConfig,
    ) -> Result<Self, PolicyError> {
        let engine = load::engine()?;
        let ticker = Ticker::start(engine.clone());
        let log = Arc::new(PolicyLog::default());
        let loaded = prepare(&engine, &config, &log, bytes.to_vec(), source, 1).await?;
        Ok(Policy {
            engine,
            config,
            current: ArcSwap::from_pointee(loaded),
            stats: PolicyStats::default(),
            log,
            generations: AtomicU64::new(1),
            loading: Mutex::new(()),
            history: std::sync::Mutex::new(Vec::new()),
            failures: std::sync::Mutex::new(FailureWindow::default()),
            last_rollback: std::sync::Mutex::new(None),
            _ticker: ticker,
        })
    }

    /// Replaces the running component with `bytes` after checking it (world version,
    /// instantiation, self-check). On error the running component stays. Calls already in
    /// progress finish on the old one; every call after the swap uses the new one.
    pub async fn load(&self, bytes: Vec<u8>, source: &str) -> Result<Description, PolicyError> {
        let _one_at_a_time = self.loading.lock().await;
        let generation = self.generations.load(Ordering::Relaxed) + 1;
        match prepare(
            &self.engine,
            &self.config,
            &self.log,
            bytes,
            source,
            generation,
        )
        .await
        {
            Ok(loaded) => {
                let description = loaded.description.clone();
                let previous = self.current.swap(Arc::new(loaded));
                self.remember(&previous);
                self.generations.store(generation, Ordering::Relaxed);
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%source, policy = %description.name, world = %description.world, "policy loaded");
                Ok(description)
            }
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%source, error = %e, "policy rejected; keeping the running one");
                Err(e)
            }
        }
    }

    /// The running component's self-description.
    pub fn description(&self) -> Description {
        self.current.load().description.clone()
    }

    /// The running component's name, for logs and `/status`.
    pub fn describe(&self) -> String {
        self.current.load().description.name.clone()
    }

    /// Where the running component came from (`embedded` or a path).
    pub fn source(&self) -> String {
        self.current.load().source.clone()
    }

    /// Counts loads: changes whenever another component starts serving, so that caches of
    /// the policy's outputs (segment tables) know they are stale.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// SHA-256 (hex) of the running component's bytes.
    pub fn sha256(&self) -> String {
        self.current.load().sha256.clone()
    }

    /// When the running component started serving (seconds since the Unix epoch).
    pub fn loaded_at(&self) -> u64 {
        self.current.load().loaded_at
    }

    /// The limits the runtime runs components with.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Call counters.
    pub fn stats(&self) -> &PolicyStats {
        &self.stats
    }

    /// The policy's log counters.
    pub fn log(&self) -> &PolicyLog {
        &self.log
    }

    /// A free instance of the current component.
    async fn lease(&self) -> Result<Lease<'_>, PolicyError> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let loaded = self.current.load_full();
        let mut guard = loaded
            .lock_free_slot()
            .await
            .ok_or_else(|| PolicyError::Trap("no instance slots".into()))?;
        let mut slot = match guard.take() {
            Some(slot) => slot,
            None => instantiate(&self.engine, &self.config, &self.log, &loaded).await?,
        };
        arm(&mut slot.store, &self.config);
        Ok(Lease {
            policy: self,
            guard,
            slot: Some(slot),
            generation: loaded.generation,
        })
    }

    async fn invalid(&self, what: String) -> PolicyError {
        self.stats.invalid.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%what, "policy returned an invalid result");
        let why = format!("invalid result: {what}");
        self.failed(self.generation(), &why).await;
        PolicyError::Invalid(what)
    }

    /// Keeps the policy that stopped serving as a rollback target (its instances go).
    fn remember(&self, previous: &Arc<Loaded>) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.push(Arc::new(previous.retired(&self.config)));
        if history.len() > HISTORY {
            history.remove(0);
        }
    }

    /// Notes a failure of the policy of `generation`; rolls back when the serving policy
    /// has failed too often within the window.
    async fn failed(&self, generation: u64, why: &str) {
        let due = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .note(&self.config.rollback, generation, std::time::Instant::now());
        if due {
            self.roll_back(generation, why).await;
        }
    }

    /// Replaces the serving policy (if it is still generation `failed`) with the last one
    /// that served before it, or with the embedded default. Skipped while an operator's load
    /// is in progress: that replaces the failing policy anyway.
    async fn roll_back(&self, failed: u64, why: &str) {
        let Ok(_one_at_a_time) = self.loading.try_lock() else {
            return;
        };
        let failing = self.current.load_full();
        if failing.generation != failed {
            // Another policy started serving since the failure.
            return;
        }
        let previous = self
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let generation = self.generations.load(Ordering::Relaxed) + 1;
        let target = match previous {
            Some(p) => Loaded {
                generation,
                loaded_at: unix_now(),
                ..p.retired(&self.config)
            },
            None if failing.source == EMBEDDED => {
                tracing::error!(reason = %why, "the embedded policy keeps failing; nothing to roll back to");
                return;
            }
            None => match prepare(
                &self.engine,
                &self.config,
                &self.log,
                super::DEFAULT_COMPONENT.to_vec(),
                EMBEDDED,
                generation,
            )
            .await
            {
                Ok(embedded) => embedded,
                Err(e) => {
                    tracing::error!(error = %e, "rolling back to the embedded policy failed");
                    return;
                }
            },
        };
        let record = RollbackRecord {
            at: unix_now(),
            from: failing.reference(),
            to: target.reference(),
            reason: why.to_owned(),
        };
        self.current.store(Arc::new(target));
        self.generations.store(generation, Ordering::Relaxed);
        self.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            from = %record.from.name, from_source = %record.from.source,
            to = %record.to.name, to_source = %record.to.source,
            reason = %why,
            "policy rolled back: it failed {} times within {:?}",
            self.config.rollback.failures, self.config.rollback.window
        );
        *self
            .last_rollback
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(record);
    }

    /// The last automatic rollback, if any.
    pub fn last_rollback(&self) -> Option<RollbackRecord> {
        self.last_rollback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Failures of the serving policy in the current rollback window.
    pub fn recent_failures(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count(self.generation())
    }

    /// The text that asks a peer for a sign of life (no guest call: read once at load).
    pub fn ping_text(&self) -> String {
        self.current.load().ping.clone()
    }

    /// Decodes one DataChannel text message.
    pub async fn decode(&self, text: &str) -> Result<Message, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b.videortc_policy_peer_protocol().call_decode(s, text).await;
        let message = lease.finish(r).await?;
        match &message {
            Message::Ping(pong) if pong.len() > MAX_REPLY => Err(self
                .invalid(format!("a pong of {} bytes", pong.len()))
                .await),
            _ => Ok(message),
        }
    }

    /// Decides a query or resolve. A `send` plan is checked to be consistent and inside the
    /// stream; a `send` for a query, or a table asked for again once given, is invalid.
    pub async fn decide(
        &self,
        request: &Request,
        meta: Option<&StreamMeta>,
        table: TableArg<'_>,
    ) -> Result<Verdict, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let state = match table {
            TableArg::NotLoaded => Err(TableMissing::NotLoaded),
            TableArg::Failed => Err(TableMissing::Failed),
            // Lent as a borrow for this call only: an owned handle would be entered in the
            // store's handle table and stay there (the store caps those).
            TableArg::Loaded(t) => match s.data_mut().table.push(LentTable(t.clone())) {
                Ok(handle) => Ok(Resource::new_borrow(handle.rep())),
                Err(e) => return Err(PolicyError::Trap(format!("lending a table: {e}"))),
            },
        };
        let r = b
            .videortc_policy_decision()
            .call_decide(s, request, meta, state)
            .await;
        let verdict = lease.finish(r).await?;
        let given = !matches!(table, TableArg::NotLoaded);
        if let Err(e) = check_verdict(&verdict, request.kind, meta, given) {
            return Err(self.invalid(e).await);
        }
        Ok(verdict)
    }

    /// Which bytes to fetch to build a stream's segment table, or why it has none. The range
    /// is checked to lie inside the stream and to be at most [`MAX_INDEX_FETCH`] bytes.
    pub async fn index_source(
        &self,
        meta: &StreamMeta,
    ) -> Result<Result<ByteRange, Unindexable>, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b
            .videortc_policy_segment_index()
            .call_index_source(s, meta)
            .await;
        let result = lease.finish(r).await?;
        if let Ok(range) = &result {
            let inside = meta.content_length.is_some_and(|len| range.end < len);
            if range.is_empty() || !inside || range.len() > MAX_INDEX_FETCH {
                let what = format!(
                    "index source {}-{} for a stream of {:?} bytes",
                    range.start, range.end, meta.content_length
                );
                return Err(self.invalid(what).await);
            }
        }
        Ok(result)
    }

    /// Parses fetched index bytes into a segment table. The outer error is the runtime's,
    /// the inner one the policy's verdict on the bytes. The table is checked to be
    /// ascending, non-overlapping and inside the stream.
    pub async fn parse_index(
        &self,
        input: &IndexInput,
    ) -> Result<Result<Vec<ByteRange>, IndexError>, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b
            .videortc_policy_segment_index()
            .call_parse_index(s, input)
            .await;
        let result = lease.finish(r).await?;
        if let Ok(table) = &result {
            let len = input.meta.content_length.unwrap_or(0);
            if let Err(e) = check_table(table, len) {
                return Err(self.invalid(e).await);
            }
        }
        Ok(result)
    }

    /// Parses a comma-separated itag list.
    pub async fn parse_preference(
        &self,
        text: &str,
    ) -> Result<Result<Vec<u32>, String>, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b
            .videortc_policy_selection()
            .call_parse_preference(s, text)
            .await;
        lease.finish(r).await
    }

    /// Picks a stream for a purpose; the returned itag is one of `streams`.
    pub async fn pick(
        &self,
        purpose: Purpose,
        streams: &[StreamMeta],
        prefer: &[u32],
    ) -> Result<Option<u32>, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b
            .videortc_policy_selection()
            .call_pick(s, purpose, streams, prefer)
            .await;
        let itag = lease.finish(r).await?;
        if let Some(i) = itag
            && !streams.iter().any(|m| m.itag == i)
        {
            return Err(self.invalid(format!("picked itag {i}, not offered")).await);
        }
        Ok(itag)
    }

    /// Whether `id` is a video id the node accepts.
    pub async fn valid_video_id(&self, id: &str) -> Result<bool, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b
            .videortc_policy_selection()
            .call_valid_video_id(s, id)
            .await;
        lease.finish(r).await
    }

    /// Parses an itag as written in a URL.
    pub async fn parse_itag(&self, text: &str) -> Result<Option<u32>, PolicyError> {
        let mut lease = self.lease().await?;
        let (b, s) = lease.parts()?;
        let r = b.videortc_policy_selection().call_parse_itag(s, text).await;
        lease.finish(r).await
    }
}

/// The name of the optional YouTube interface, for messages.
const YOUTUBE: &str = "YouTube parser (videortc:policy/youtube@0.2.1)";

/// Largest request URL, header value, body or flow state the YouTube parser may hand over.
const MAX_YT_FIELD: usize = 1 << 20;

impl Policy {
    /// Whether the running policy has the YouTube parser (direct mode).
    pub fn has_youtube(&self) -> bool {
        self.current.load().youtube.is_some()
    }

    /// The first step of resolving a video's info (direct mode).
    pub async fn youtube_start(&self, job: &YtJob) -> Result<YtStep, PolicyError> {
        if !self.has_youtube() {
            return Err(PolicyError::Missing(YOUTUBE));
        }
        let mut lease = self.lease().await?;
        let (yt, s) = lease.youtube()?;
        let r = yt.videortc_policy_youtube().call_start(s, job).await;
        let step = lease.finish(r).await?;
        if let Err(e) = check_step(&step) {
            return Err(self.invalid(e).await);
        }
        Ok(step)
    }

    /// The next step, given the response to the last request and the state it came with.
    pub async fn youtube_resume(
        &self,
        state: &[u8],
        response: &Result<YtHttpResponse, String>,
    ) -> Result<YtStep, PolicyError> {
        let mut lease = self.lease().await?;
        let (yt, s) = lease.youtube()?;
        let r = yt
            .videortc_policy_youtube()
            .call_resume(s, state, response.as_ref().map_err(String::as_str))
            .await;
        let step = lease.finish(r).await?;
        if let Err(e) = check_step(&step) {
            return Err(self.invalid(e).await);
        }
        Ok(step)
    }
}

/// What the host will execute of a parser step: bounded requests and states.
fn check_step(step: &YtStep) -> Result<(), String> {
    let YtStep::Fetch(f) = step else {
        return Ok(());
    };
    let r = &f.request;
    let too_big = r.url.len() > 8 << 10
        || r.headers.len() > 64
        || r.headers.iter().any(|(k, v)| k.len() + v.len() > 8 << 10)
        || r.body.as_ref().is_some_and(|b| b.len() > MAX_YT_FIELD)
        || f.state.len() > MAX_YT_FIELD;
    if too_big {
        return Err(format!("an oversized {} request or state", r.label));
    }
    Ok(())
}

/// A segment table as the host passes it to [`Policy::decide`].
#[derive(Debug, Clone, Copy)]
pub enum TableArg<'a> {
    /// Not loaded yet.
    NotLoaded,
    /// Loading failed recently.
    Failed,
    /// Loaded.
    Loaded(&'a Arc<Vec<ByteRange>>),
}

/// Compiles, links, instantiates and self-checks a component.
async fn prepare(
    engine: &Engine,
    config: &PolicyConfig,
    log: &Arc<PolicyLog>,
    bytes: Vec<u8>,
    source: &str,
    generation: u64,
) -> Result<Loaded, PolicyError> {
    let sha256 = sha256_hex(&bytes);
    // Compiling takes hundreds of milliseconds of CPU: not on an async worker.
    let e = engine.clone();
    let component = tokio::task::spawn_blocking(move || load::component(&e, &bytes))
        .await
        .map_err(|e| PolicyError::Rejected(format!("compile task: {e}")))??;
    let mut linker: Linker<State> = Linker::new(engine);
    let rejected = |e: wasmtime::Error| PolicyError::Rejected(load::one_line(&format!("{e:#}")));
    Bindings::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |s| s)
        .map_err(rejected)?;
    let pre = linker.instantiate_pre(&component).map_err(rejected)?;
    // The optional interfaces: present if the component exports them (any 0.2.x name).
    let youtube = YoutubeParserIndices::new(&pre).ok();
    let pre = PolicyPre::new(pre).map_err(rejected)?;
    let mut loaded = Loaded {
        pre,
        youtube,
        description: Description {
            name: String::new(),
            world: String::new(),
            features: Vec::new(),
        },
        ping: String::new(),
        source: source.to_owned(),
        generation,
        sha256,
        loaded_at: unix_now(),
        slots: Vec::new(),
        next: AtomicUsize::new(0),
    };
    let mut slot = instantiate(engine, config, log, &loaded).await?;
    arm(&mut slot.store, config);
    let (description, ping) = selfcheck::run(&mut slot.store, &slot.bindings).await?;
    loaded.slots = empty_slots(config.instances);
    if let Some(first) = loaded.slots.first_mut() {
        *first = Arc::new(Mutex::new(Some(slot)));
    }
    loaded.description = description;
    loaded.ping = ping;
    Ok(loaded)
}

/// SHA-256 of a component's bytes, lower-case hex: how `/status` names a build.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `instances` (at least one) free slots, each instantiated on first use.
fn empty_slots(instances: usize) -> Vec<Arc<Mutex<Option<Slot>>>> {
    (0..instances.max(1))
        .map(|_| Arc::new(Mutex::new(None)))
        .collect()
}

fn deadline_ticks(config: &PolicyConfig) -> u64 {
    let ticks = config.call_timeout.as_micros() / TICK.as_micros().max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Gives the next call its deadline: it yields at every tick and traps after the last.
fn arm(store: &mut Store<State>, config: &PolicyConfig) {
    store.data_mut().ticks_left = deadline_ticks(config);
    store.set_epoch_deadline(1);
}

async fn instantiate(
    engine: &Engine,
    config: &PolicyConfig,
    log: &Arc<PolicyLog>,
    loaded: &Loaded,
) -> Result<Slot, PolicyError> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(config.memory_limit)
        .instances(4)
        .tables(8)
        .memories(2)
        .build();
    let state = State {
        limits,
        table: ResourceTable::new(),
        log: log.clone(),
        ticks_left: deadline_ticks(config),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_callback(|mut cx| {
        let s = cx.data_mut();
        if s.ticks_left == 0 {
            return Err(wasmtime::Error::msg("policy call ran past its deadline"));
        }
        s.ticks_left -= 1;
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    let failed = |e: wasmtime::Error| PolicyError::Trap(format!("instantiate: {e:#}"));
    let instance = loaded
        .pre
        .instance_pre()
        .instantiate_async(&mut store)
        .await
        .map_err(failed)?;
    let bindings = Bindings::new(&mut store, &instance).map_err(failed)?;
    let youtube = match &loaded.youtube {
        Some(indices) => Some(indices.load(&mut store, &instance).map_err(failed)?),
        None => None,
    };
    Ok(Slot {
        store,
        bindings,
        youtube,
    })
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

/// What the host will and will not execute of a verdict.
fn check_verdict(
    verdict: &Verdict,
    kind: RequestKind,
    meta: Option<&StreamMeta>,
    table_given: bool,
) -> Result<(), String> {
    match verdict {
        Verdict::Reply(text) if text.len() > MAX_REPLY => {
            Err(format!("a reply of {} bytes", text.len()))
        }
        Verdict::Reply(_) | Verdict::Silent(_) => Ok(()),
        Verdict::NeedIndex if table_given => Err("asked again for a table it was given".into()),
        Verdict::NeedIndex => Ok(()),
        Verdict::Send(_) if kind == RequestKind::Query => Err("a send plan for a query".into()),
        Verdict::Send(plan) => check_plan(plan, meta.and_then(|m| m.content_length)),
    }
}

/// A send plan must name bytes inside the stream and cut them into messages of at most
/// [`MAX_MESSAGE`] bytes, with exactly one header per chunk.
pub(super) fn check_plan(plan: &SendPlan, content_length: Option<u64>) -> Result<(), String> {
    let r = plan.range;
    if r.is_empty() || content_length.is_none_or(|len| r.end >= len) {
        return Err(format!(
            "range {}-{} outside a stream of {content_length:?} bytes",
            r.start, r.end
        ));
    }
    if r.len() > MAX_SEGMENT {
        return Err(format!("a segment of {} bytes", r.len()));
    }
    let (payload, header) = (u64::from(plan.payload_size), u64::from(plan.header_size));
    if payload == 0 || payload + header > MAX_MESSAGE as u64 {
        return Err(format!(
            "chunks of {payload} payload and {header} header bytes"
        ));
    }
    let count = r.len().div_ceil(payload);
    if plan.headers.len() as u64 != count * header {
        return Err(format!(
            "{} header bytes for {count} chunks of {header}",
            plan.headers.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan(start: u64, end: u64, payload: u32, header: u32, headers: usize) -> SendPlan {
        SendPlan {
            range: ByteRange { start, end },
            payload_size: payload,
            header_size: header,
            headers: vec![b' '; headers],
        }
    }

    #[test]
    fn send_plans_are_checked() {
        assert!(check_plan(&plan(0, 99, 50, 30, 60), Some(100)).is_ok());
        assert!(check_plan(&plan(0, 100, 50, 30, 90), Some(100)).is_err());
        assert!(check_plan(&plan(0, 99, 50, 30, 60), None).is_err());
        assert!(check_plan(&plan(0, 99, 50, 30, 30), Some(100)).is_err());
        assert!(check_plan(&plan(0, 99, 0, 30, 0), Some(100)).is_err());
        assert!(check_plan(&plan(0, 99, 65_536, 30, 30), Some(100)).is_err());
        assert!(check_plan(&plan(10, 9, 50, 30, 0), Some(100)).is_err());
    }
}
