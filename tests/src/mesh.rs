//! End-to-end WebRTC setups: a signalling server process, the test origin, the node process and
//! browser peers in headless Chromium ([`crate::browser`]), plus a typed handle on the browser
//! peer's entry points ([`WebPeer`], `tests/browser/peer.js`).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::browser::{Browser, Page, PageServer, at};
use crate::node::{self, Node};
use crate::origin::{Stream, TestOrigin};
use crate::walk;

/// Itag under which [`big_stream`] is served (an MP4 video itag the fixtures do not use).
pub const BIG_ITAG: u32 = 299;

/// A valid 36-character peer id (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, like libwebrtc's),
/// derived from `tag` (first 8 characters, `[a-z0-9]`) and `n`.
pub fn peer_id(tag: &str, n: u64) -> String {
    let head: String = tag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .chain(std::iter::repeat('0'))
        .take(8)
        .collect();
    format!(
        "{head}-e2e0-{:04}-{:04}-{:012}",
        std::process::id() % 10_000,
        n % 10_000,
        n
    )
}

/// `["VID:ITAG|N",i,n]` for the last chunk fits in 30 bytes (the node offers nothing else).
pub fn chunk_count(len: u64) -> u64 {
    len.div_ceil(51_200)
}

/// The signalling server (`videortc signal`) as a child process on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct SignalServer {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Ids that connected, in order, read from its log ("signalling peer connected").
    joined: Arc<Mutex<Vec<String>>>,
}

impl SignalServer {
    /// Starts it on `port` (a free one if `None`) and waits until it accepts connections.
    pub async fn start(port: Option<u16>) -> Result<SignalServer, String> {
        let port = match port {
            Some(p) => p,
            None => node::free_port()?,
        };
        let mut child = Command::new(node::binary()?)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "signal"])
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("SIGNAL_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn videortc signal: {e}"))?;
        let joined = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let joined = joined.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[signal:{port}] {line}");
                    let id = line
                        .contains("signalling peer connected")
                        .then(|| line.split_once("peer=")?.1.get(..36))
                        .flatten();
                    if let (Some(id), Ok(mut j)) = (id, joined.lock()) {
                        j.push(id.to_owned());
                    }
                }
            });
        }
        node::wait_listening(&mut child, port, "videortc signal", Duration::from_secs(20)).await?;
        Ok(SignalServer {
            child,
            port,
            joined,
        })
    }

    /// Kills it (every WebSocket drops at once).
    pub async fn kill(&mut self) -> Result<(), String> {
        self.child
            .kill()
            .await
            .map_err(|e| format!("kill signal server: {e}"))
    }

    /// Waits until `id` has connected to this server (process) at least once.
    pub async fn wait_joined(&self, id: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.joined.lock().is_ok_and(|j| j.iter().any(|x| x == id)) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!(
            "{id} did not join the signalling server within {limit:?}"
        ))
    }

    /// `ws://127.0.0.1:PORT/uid/`: the `WS_ADDR` prefix.
    pub fn ws_base(&self) -> String {
        format!("ws://127.0.0.1:{}/uid/", self.port)
    }
}

/// `big.mp4` from `tests/fixtures/make-media.sh big` (~10.7 MB, 2 segments of ~5.4 MB) as
/// stream [`BIG_ITAG`]. Made once into `dir` by a copy of the script run there, so the committed
/// fixtures are never rewritten.
pub fn big_stream(dir: &Path) -> Result<Stream, String> {
    let file = dir.join("big.mp4");
    if !file.exists() {
        let work = dir.join(format!("make-big-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let script = work.join("make-media.sh");
        std::fs::copy(walk::fixture_dir().join("../make-media.sh"), &script)
            .map_err(|e| format!("copy make-media.sh: {e}"))?;
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("big")
            .env("OUT_DIR", &work)
            .output()
            .map_err(|e| format!("run make-media.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "make-media.sh big failed (is ffmpeg installed?): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::rename(work.join("big.mp4"), &file).map_err(|e| format!("big.mp4: {e}"))?;
        let _ = std::fs::remove_dir_all(&work);
    }
    let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Stream {
        itag: BIG_ITAG,
        file: "big.mp4".into(),
        mime: "video/mp4; codecs=\"avc1.64001e\"".into(),
        bytes: bytes.into(),
        layout: walk::layout_for_path(&file)?,
    })
}

/// What a completed `resolve` delivered, as the browser saw it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Bytes reassembled.
    pub len: u64,
    /// Their SHA-256, lower-case hex.
    pub sha256: String,
    /// Chunk count `n` from the headers.
    pub chunks: u64,
    /// Chunks received twice.
    pub dups: u64,
    /// Protocol problems seen (inconsistent `n`, chunks before the last of different sizes).
    pub problems: Vec<String>,
    /// Payload bytes of every chunk but the last (`None` for a one-chunk segment).
    pub payload: Option<u64>,
    /// Milliseconds from sending `resolve` to the first chunk.
    pub first_ms: f64,
    /// Milliseconds from sending `resolve` to the last chunk.
    pub total_ms: f64,
}

impl Resolved {
    fn from_json(v: &Value) -> Result<Resolved, String> {
        let num = |k: &str| {
            v.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("resolve result without {k}: {v}"))
        };
        Ok(Resolved {
            len: at(v, "/len").as_u64().ok_or("resolve result without len")?,
            sha256: at(v, "/sha256").as_str().unwrap_or_default().to_owned(),
            chunks: at(v, "/chunks").as_u64().unwrap_or(0),
            dups: at(v, "/dups").as_u64().unwrap_or(0),
            problems: at(v, "/problems")
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p.as_str().unwrap_or_default().to_owned())
                .collect(),
            payload: at(v, "/payload").as_u64(),
            first_ms: num("first_ms")?,
            total_ms: num("total_ms")?,
        })
    }
}

/// One browser peer (an id with its own signalling socket) in a page, talking to `remote`.
#[derive(Debug, Clone)]
pub struct WebPeer {
    /// The page it lives in.
    pub page: Page,
    /// Its peer id.
    pub me: String,
    /// The node's peer id.
    pub remote: String,
}

/// How long a resolve may take before it counts as failed.
pub const RESOLVE_LIMIT: Duration = Duration::from_secs(45);

impl WebPeer {
    async fn call(&self, method: &str, args: &[Value], limit: Duration) -> Result<Value, String> {
        let mut all = vec![json!(self.remote)];
        all.extend_from_slice(args);
        let args: Vec<String> = all.iter().map(Value::to_string).collect();
        let expr = format!("vt.peer({}).{method}({})", json!(self.me), args.join(","));
        self.page
            .eval_within(&expr, limit + Duration::from_secs(5))
            .await
            .map_err(|e| format!("{}: {e}", self.me))
    }

    /// Waits until the DataChannel to the node is open.
    pub async fn ready(&self, limit: Duration) -> Result<(), String> {
        self.call("ready", &[json!(limit.as_millis())], limit)
            .await
            .map(drop)
    }

    /// Sends `ping`, waits for `pong` (up to 5 s); the round trip in ms.
    pub async fn ping(&self) -> Result<f64, String> {
        let v = self
            .call("ping", &[json!(5000)], Duration::from_secs(5))
            .await?;
        Ok(at(&v, "/ms").as_f64().unwrap_or(0.0))
    }

    /// Sends `query`; true if `found` (with the same id and index) came within `limit`.
    pub async fn query(&self, id: &str, index: u32, limit: Duration) -> Result<bool, String> {
        let v = self
            .call(
                "query",
                &[json!(id), json!(index), json!(limit.as_millis())],
                limit,
            )
            .await?;
        Ok(at(&v, "/found").as_bool().unwrap_or(false))
    }

    /// Sends `resolve` and waits for the whole segment (up to [`RESOLVE_LIMIT`]).
    pub async fn resolve(&self, id: &str, index: u32) -> Result<Resolved, String> {
        self.start_resolve(id, index).await?;
        self.finish(id, index).await
    }

    /// Sends `resolve` without waiting.
    pub async fn start_resolve(&self, id: &str, index: u32) -> Result<(), String> {
        self.start_resolve_quitting(id, index, 0, false).await
    }

    /// Sends `resolve` without waiting; once `after` chunks have arrived (if `after` > 0) the
    /// page itself sends `quit` for this segment, or quit-all if `all`.
    pub async fn start_resolve_quitting(
        &self,
        id: &str,
        index: u32,
        after: u32,
        all: bool,
    ) -> Result<(), String> {
        let args = [json!(id), json!(index), json!(after), json!(all)];
        self.call("startResolve", &args, Duration::from_secs(5))
            .await
            .map(drop)
    }

    /// Sends several `resolve`s back to back (one page call): `(id, index, after, all)` as in
    /// [`WebPeer::start_resolve_quitting`].
    pub async fn start_resolves(&self, list: &[(&str, u32, u32, bool)]) -> Result<(), String> {
        let list: Vec<Value> = list
            .iter()
            .map(|(id, index, after, all)| {
                json!({"id": id, "index": index, "quitAfter": after, "quitAll": all})
            })
            .collect();
        self.call("startMany", &[json!(list)], Duration::from_secs(5))
            .await
            .map(drop)
    }

    /// Waits for a started resolve to complete.
    pub async fn finish(&self, id: &str, index: u32) -> Result<Resolved, String> {
        let args = [json!(id), json!(index), json!(RESOLVE_LIMIT.as_millis())];
        let v = self.call("finish", &args, RESOLVE_LIMIT).await?;
        Resolved::from_json(&v)
    }

    /// `{chunks, n, bytes, complete, received}` of a started resolve; `received` counts every
    /// payload byte that arrived under that segment's key.
    pub async fn progress(&self, id: &str, index: u32) -> Result<Value, String> {
        self.call(
            "progress",
            &[json!(id), json!(index)],
            Duration::from_secs(5),
        )
        .await
    }

    /// Sends `quit` for one segment.
    pub async fn quit(&self, id: &str, index: u32) -> Result<(), String> {
        self.call("quit", &[json!(id), json!(index)], Duration::from_secs(5))
            .await
            .map(drop)
    }

    /// Sends `quit` with `id:""`, `index:0` (everything).
    pub async fn quit_all(&self) -> Result<(), String> {
        self.call("quitAll", &[], Duration::from_secs(5))
            .await
            .map(drop)
    }

    /// Waits until no binary message has arrived for `idle` (bounded by `limit`).
    pub async fn quiet(&self, idle: Duration, limit: Duration) -> Result<(), String> {
        self.call(
            "quiet",
            &[json!(idle.as_millis()), json!(limit.as_millis())],
            limit,
        )
        .await
        .map(drop)
    }

    /// Sends a raw text message.
    pub async fn send_text(&self, text: &str) -> Result<(), String> {
        self.send_raw(json!({"text": text})).await
    }

    /// Sends `unit` repeated `times` as one text message.
    pub async fn send_repeat(&self, unit: &str, times: usize) -> Result<(), String> {
        self.send_raw(json!({"repeat": [unit, times]})).await
    }

    /// Sends a binary message of `len` bytes.
    pub async fn send_binary(&self, len: usize) -> Result<(), String> {
        self.send_raw(json!({"binary": len})).await
    }

    async fn send_raw(&self, spec: Value) -> Result<(), String> {
        self.call("sendRaw", &[spec], Duration::from_secs(5))
            .await
            .map(drop)
    }

    /// Signalling and link counters (see `stats` in peer.js).
    pub async fn stats(&self) -> Result<Value, String> {
        self.call("stats", &[], Duration::from_secs(5)).await
    }
}

/// Signalling server + origin + (optionally) the node + Chromium, all on loopback.
#[derive(Debug)]
pub struct Mesh {
    /// The media origin (`BASE_URL`).
    pub origin: TestOrigin,
    /// The signalling server.
    pub signal: SignalServer,
    /// The node, once started.
    pub node: Option<Node>,
    /// The node's peer id.
    pub node_id: String,
    /// Chromium.
    pub browser: Browser,
    pages: PageServer,
    peers: u64,
}

impl Mesh {
    /// Starts the origin with `streams`, a signalling server and Chromium (no node yet).
    pub async fn new(streams: Vec<Stream>) -> Result<Mesh, String> {
        let origin = TestOrigin::start(streams)
            .await
            .map_err(|e| format!("origin: {e}"))?;
        let signal = SignalServer::start(None).await?;
        let browser = Browser::launch().await?;
        let pages = PageServer::start()
            .await
            .map_err(|e| format!("page server: {e}"))?;
        Ok(Mesh {
            origin,
            signal,
            node: None,
            node_id: peer_id("node", 0),
            browser,
            pages,
            peers: 0,
        })
    }

    /// Starts the node with `ID`, `WS_ADDR`, `BASE_URL`, `RTC_LOOPBACK=1` and `extra` env.
    pub async fn start_node(&mut self, extra: &[(&str, &str)]) -> Result<(), String> {
        let base = self.origin.base_url();
        let mut env = vec![("BASE_URL", base.as_str())];
        env.extend_from_slice(extra);
        self.start_node_with(&env).await
    }

    /// Starts the node in direct mode: no `BASE_URL`, YouTube at `youtube_url` (a stand-in).
    pub async fn start_node_direct(
        &mut self,
        youtube_url: &str,
        extra: &[(&str, &str)],
    ) -> Result<(), String> {
        let mut env = vec![("YOUTUBE_URL", youtube_url)];
        env.extend_from_slice(extra);
        self.start_node_with(&env).await
    }

    async fn start_node_with(&mut self, extra: &[(&str, &str)]) -> Result<(), String> {
        let ws = self.signal.ws_base();
        let mut env = vec![
            ("ID", self.node_id.as_str()),
            ("WS_ADDR", ws.as_str()),
            ("RTC_LOOPBACK", "1"),
        ];
        // webrtc-rs is chatty at info (DTLS extension warnings, ICE state changes).
        let log = std::env::var("NODE_LOG")
            .unwrap_or_else(|_| "info,webrtc=warn,webrtc_ice=error,dtls=error".into());
        env.push(("RUST_LOG", log.as_str()));
        env.push(("NO_COLOR", "1"));
        env.extend_from_slice(extra);
        self.node = Some(Node::start(&[], &env).await?);
        Ok(())
    }

    /// The node's HTTP base URL.
    pub fn node_url(&self) -> Option<String> {
        self.node.as_ref().map(Node::url)
    }

    /// The node's process id.
    pub fn node_pid(&self) -> Option<u32> {
        self.node.as_ref().and_then(|n| n.child.id())
    }

    /// Opens a tab with `peer.js` loaded.
    pub async fn page(&self) -> Result<Page, String> {
        let page = self.browser.open(&self.pages.url()).await?;
        page.wait_for("typeof vt === 'object'", Duration::from_secs(20))
            .await?;
        Ok(page)
    }

    /// Starts a new browser peer in `page` that connects to the node only.
    pub async fn peer(&mut self, page: &Page) -> Result<WebPeer, String> {
        let node = self.node_id.clone();
        self.peer_to(page, &node).await
    }

    /// Starts a new browser peer in `page` that connects to `remote` only.
    pub async fn peer_to(&mut self, page: &Page, remote: &str) -> Result<WebPeer, String> {
        self.peers += 1;
        let me = peer_id("browser", self.peers);
        self.peer_as(page, &me, remote).await
    }

    /// Starts a browser peer with id `me` in `page` that connects to `remote` only (a page
    /// reload keeps its id: libwebrtc stores it in `sessionStorage`).
    pub async fn peer_as(&self, page: &Page, me: &str, remote: &str) -> Result<WebPeer, String> {
        let expr = format!(
            "vt.start({}, {}, [{}])",
            json!(me),
            json!(self.signal.ws_base()),
            json!(remote)
        );
        page.eval(&expr).await?;
        Ok(WebPeer {
            page: page.clone(),
            me: me.to_owned(),
            remote: remote.to_owned(),
        })
    }

    /// A page with one peer whose channel to the node is open (the node must be running).
    pub async fn connected_peer(&mut self) -> Result<WebPeer, String> {
        let page = self.page().await?;
        let peer = self.peer(&page).await?;
        peer.ready(Duration::from_secs(20)).await?;
        Ok(peer)
    }
}

/// Current and peak resident set size of a process in KiB (`VmRSS`, `VmHWM`).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU seconds of a process (clock ticks at 100 Hz).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
