//! Runs the real `videortc` binary as a child process for black-box tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of the `videortc` binary next to the running test, built on demand.
pub fn binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/<test>-<hash> → target/<profile>/videortc
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot locate the target directory")?;
    let bin = profile_dir.join("videortc");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let target_dir = profile_dir
        .parent()
        .ok_or("cannot locate the target directory")?;
    // Always ask cargo: it is a no-op when the binary is fresh. In the debug profile the
    // request resolves features like `cargo test --workspace` does (every test target), so
    // the dependencies that run built are reused and only the binary is linked.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-q"])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => cmd.args(["--workspace", "--tests", "--bins"]),
        "release" => cmd.args(["-p", "videortc", "--bin", "videortc", "--release"]),
        other => cmd.args(["-p", "videortc", "--bin", "videortc", "--profile", other]),
    };
    let status = cmd.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() || !bin.exists() {
        return Err(format!("building {} failed", bin.display()));
    }
    Ok(bin)
}

/// The node program to run: `VIDEORTC_NODE` if set (a wrapper, or a binary built elsewhere;
/// nothing is built then), else [`binary`].
pub fn program() -> Result<PathBuf, String> {
    match std::env::var_os("VIDEORTC_NODE") {
        Some(path) => Ok(PathBuf::from(path)),
        None => binary(),
    }
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Waits until `child` (called `what` in errors) accepts TCP connections on 127.0.0.1:`port`;
/// an error if it exits first or `limit` passes.
pub async fn wait_listening(
    child: &mut Child,
    port: u16,
    what: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited early: {status}"));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what} not listening on {port} within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A running node; killed on drop. Its stderr is echoed with a prefix.
#[derive(Debug)]
pub struct Node {
    /// The child process.
    pub child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

impl Node {
    /// Starts `videortc -h 127.0.0.1 -p PORT [args]` with exactly `env` (plus PATH/HOME and
    /// RUST_LOG), waits until its HTTP port answers. `VIDEORTC_NODE`, if set, is run instead
    /// of the built binary (`scripts/docker-image.sh` points it at a wrapper that runs the
    /// node in its Docker image).
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Result<Node, String> {
        let bin = program()?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("spawn videortc: {e}"))?;
        if let Some(err) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[node:{port}] {line}");
                }
            });
        }
        wait_listening(&mut child, port, "videortc", Duration::from_secs(30)).await?;
        Ok(Node { child, port })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
