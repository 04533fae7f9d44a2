//! Headless Chromium for end-to-end tests: launch, a minimal Chrome DevTools Protocol client
//! (flat sessions over one WebSocket, `Runtime.evaluate` only) and a tiny page server for
//! `tests/browser/`.
//!
//! Chromium is `$CHROMIUM`, else `/usr/bin/chromium`, else `chromium` on `PATH`; not finding it
//! is an error (the tests fail rather than skip). It is killed and its profile removed on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// The browser peer (`tests/browser/peer.js`).
pub const PEER_JS: &str = include_str!("../browser/peer.js");
/// The page that loads it (`tests/browser/index.html`).
pub const INDEX_HTML: &str = include_str!("../browser/index.html");

/// Flags for Chromium on this kind of machine, plus what loopback WebRTC needs.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-crash-reporter",
    "--disable-breakpad",
    "--remote-debugging-port=0",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
];

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// `v` at a JSON pointer (`"/a/b"`), or `null`.
pub fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    v.pointer(pointer).unwrap_or(&NULL)
}

/// Where Chromium is, or why it cannot be used.
pub fn chromium_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        let p = PathBuf::from(p);
        return match p.exists() {
            true => Ok(p),
            false => Err(format!("CHROMIUM={} does not exist", p.display())),
        };
    }
    let default = Path::new("/usr/bin/chromium");
    if default.exists() {
        return Ok(default.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            "Chromium not found: install it (`apt-get install -y chromium`, or \
             `scripts/setup.sh --test`) or set CHROMIUM=/path/to/chromium"
                .to_owned()
        })
}

/// A running headless Chromium with a CDP connection; killed on drop.
#[derive(Debug)]
pub struct Browser {
    proc: Proc,
    cdp: Arc<Cdp>,
}

/// The Chromium process and its profile directory: killed and removed on drop.
#[derive(Debug)]
struct Proc {
    child: Child,
    profile: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[derive(Debug)]
struct Cdp {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next: AtomicU64,
}

impl Browser {
    /// Launches Chromium with a fresh profile and connects to its DevTools endpoint.
    pub async fn launch() -> Result<Browser, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let exe = chromium_path()?;
        let profile = std::env::temp_dir().join(format!(
            "videortc-chromium-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        let verbose = std::env::var_os("BROWSER_LOG").is_some();
        let child = Command::new(&exe)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("launch {}: {e}", exe.display()))?;
        // From here on, dropping `proc` cleans up whatever fails.
        let mut proc = Proc { child, profile };
        let ws_url = devtools_url(&mut proc).await?;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .map_err(|e| format!("CDP connect {ws_url}: {e}"))?;
        let (out, rx) = mpsc::unbounded_channel();
        let pending = Pending::default();
        tokio::spawn(pump(ws, rx, pending.clone()));
        let cdp = Arc::new(Cdp {
            out,
            pending,
            next: AtomicU64::new(1),
        });
        Ok(Browser { proc, cdp })
    }

    /// Process id of Chromium's browser process.
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// Opens a new tab at `url`, attached with its own CDP session. Its console output and
    /// uncaught exceptions go to stderr.
    pub async fn open(&self, url: &str) -> Result<Page, String> {
        let target = self
            .cdp
            .call(None, "Target.createTarget", json!({"url": url}))
            .await?;
        let target_id = at(&target, "/targetId")
            .as_str()
            .ok_or("createTarget: no targetId")?;
        let attached = self
            .cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        let session = at(&attached, "/sessionId")
            .as_str()
            .ok_or("attachToTarget: no sessionId")?;
        let page = Page {
            cdp: self.cdp.clone(),
            session: session.to_owned(),
        };
        page.call("Runtime.enable", json!({})).await?;
        Ok(page)
    }
}

/// Waits for `DevToolsActivePort` in the profile: the port, then the browser target's path.
async fn devtools_url(proc: &mut Proc) -> Result<String, String> {
    let file = proc.profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some((port, path)) = text.split_once('\n')
            && !path.trim().is_empty()
        {
            return Ok(format!("ws://127.0.0.1:{}{}", port.trim(), path.trim()));
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!(
                "Chromium exited at start-up: {status} (BROWSER_LOG=1 shows why)"
            ));
        }
        if Instant::now() > deadline {
            return Err("Chromium wrote no DevToolsActivePort within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Cdp {
    async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let (Some(s), Some(obj)) = (session, msg.as_object_mut()) {
            obj.insert("sessionId".into(), s.into());
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|e| e.to_string())?
            .insert(id, tx);
        self.out
            .send(msg.to_string())
            .map_err(|_| "CDP connection closed".to_owned())?;
        rx.await
            .map_err(|_| format!("{method}: CDP connection closed"))?
    }
}

/// Moves CDP frames both ways; answers go to their waiters, console events to stderr.
async fn pump<S>(ws: S, mut rx: mpsc::UnboundedReceiver<String>, pending: Pending)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => if sink.send(Message::text(text)).await.is_err() { break },
                None => break,
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => dispatch(&text, &pending),
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    // Dropping the senders fails every waiter with "connection closed".
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}

fn dispatch(text: &str, pending: &Pending) {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(id) = at(&msg, "/id").as_u64() {
        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(w) = waiter {
            let result = match msg.get("error") {
                Some(e) => Err(format!("CDP error: {e}")),
                None => Ok(at(&msg, "/result").clone()),
            };
            let _ = w.send(result);
        }
        return;
    }
    let page = at(&msg, "/sessionId").as_str().unwrap_or_default();
    let name = page.get(..8).unwrap_or(page);
    match at(&msg, "/method").as_str() {
        Some("Runtime.consoleAPICalled") => {
            let args: Vec<String> = at(&msg, "/params/args")
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match at(a, "/value") {
                    Value::String(s) => s.clone(),
                    Value::Null => at(a, "/description").as_str().unwrap_or("").to_owned(),
                    v => v.to_string(),
                })
                .collect();
            eprintln!("[page {name}] {}", args.join(" "));
        }
        Some("Runtime.exceptionThrown") => {
            eprintln!(
                "[page {name}] uncaught: {}",
                at(&msg, "/params/exceptionDetails")
            );
        }
        _ => {}
    }
}

/// One tab with its own CDP session.
#[derive(Debug, Clone)]
pub struct Page {
    cdp: Arc<Cdp>,
    session: String,
}

impl Page {
    async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.cdp.call(Some(&self.session), method, params).await
    }

    /// Evaluates `expr` (awaiting a promise) and returns its value as JSON; a thrown
    /// exception is an `Err` with its description. Bounded by `limit`.
    pub async fn eval_within(&self, expr: &str, limit: Duration) -> Result<Value, String> {
        let params = json!({"expression": expr, "awaitPromise": true, "returnByValue": true});
        let reply = tokio::time::timeout(limit, self.call("Runtime.evaluate", params))
            .await
            .map_err(|_| format!("evaluation did not finish within {limit:?}: {expr:.200}"))??;
        if let Some(ex) = reply.get("exceptionDetails") {
            let what = at(ex, "/exception/description")
                .as_str()
                .unwrap_or("exception");
            return Err(format!("{what} (in {expr:.200})"));
        }
        Ok(at(&reply, "/result/value").clone())
    }

    /// Closes the tab, as a user would (its peer connections close with it).
    pub async fn close(&self) -> Result<(), String> {
        let info = self.call("Target.getTargetInfo", json!({})).await?;
        let target = at(&info, "/targetInfo/targetId")
            .as_str()
            .unwrap_or_default();
        let params = json!({ "targetId": target });
        self.cdp
            .call(None, "Target.closeTarget", params)
            .await
            .map(drop)
    }

    /// [`Page::eval_within`] with a 60 s limit.
    pub async fn eval(&self, expr: &str) -> Result<Value, String> {
        self.eval_within(expr, Duration::from_secs(60)).await
    }

    /// Polls `expr` until it is `true`, for at most `limit`.
    pub async fn wait_for(&self, expr: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.eval_within(expr, Duration::from_secs(5)).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(v) => last = v.to_string(),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!("`{expr}` not true within {limit:?} (last: {last})"))
    }
}

/// Serves `tests/browser/` (`/` and `/peer.js`) on 127.0.0.1; stops on drop.
#[derive(Debug)]
pub struct PageServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PageServer {
    /// Starts the server.
    pub async fn start() -> std::io::Result<PageServer> {
        use axum::http::header::CONTENT_TYPE;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async { ([(CONTENT_TYPE, "text/html")], INDEX_HTML) }),
            )
            .route(
                "/peer.js",
                axum::routing::get(|| async { ([(CONTENT_TYPE, "text/javascript")], PEER_JS) }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(PageServer { addr, task })
    }

    /// `http://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}
