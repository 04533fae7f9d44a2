//! The `videortc` binary: configuration at the edge, then the node.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgAction, Parser, Subcommand};
use videortc::policy::reload::Reloader;
use videortc::policy::{Policy, PolicyConfig};

mod node;

/// A CDN cache node for DASH video: a video proxy over HTTP and a WebRTC DataChannel peer.
#[derive(Debug, Parser)]
#[command(name = "videortc", version, disable_help_flag = true)]
struct Cli {
    /// Port to listen on.
    #[arg(short = 'p', long = "port", default_value_t = 6060, global = true)]
    port: u16,
    /// Address to bind (all interfaces by default).
    #[arg(short = 'h', long = "host", default_value = "0.0.0.0", global = true)]
    host: IpAddr,
    /// A policy component (`.wasm`, or `.cwasm` from `compile-policy`) to use instead of the
    /// embedded one; watched, and reloaded when it changes or on SIGHUP.
    #[arg(long, env = "POLICY", global = true)]
    policy: Option<PathBuf>,
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a signalling server compatible with suconghou/signalserver (`/uid/{id}`).
    Signal,
    /// Load and self-check a policy component, print its description and exit.
    CheckPolicy {
        /// The component file (`.wasm` or `.cwasm`).
        file: PathBuf,
    },
    /// Compile a policy component for this node's wasmtime, so that loading it skips
    /// compilation (a `.cwasm` runs only on a node of the same build).
    CompilePolicy {
        /// The component (`.wasm`).
        input: PathBuf,
        /// Where to write the precompiled component (`.cwasm`).
        output: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,webrtc_ice=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("videortc: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let addr = SocketAddr::new(cli.host, cli.port);
    match cli.command {
        Some(Command::CheckPolicy { file }) => {
            let bytes = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            let source = file.display().to_string();
            tokio_main(async move {
                let policy = Policy::new(&bytes, &source, PolicyConfig::default()).await?;
                let d = policy.description();
                println!("{} (videortc:policy@{})", d.name, d.world);
                Ok(())
            })
        }
        Some(Command::CompilePolicy { input, output }) => {
            let bytes = std::fs::read(&input).with_context(|| format!("{}", input.display()))?;
            let compiled = videortc::policy::precompile(&bytes)?;
            std::fs::write(&output, &compiled).with_context(|| format!("{}", output.display()))?;
            println!("{} ({} bytes)", output.display(), compiled.len());
            Ok(())
        }
        Some(Command::Signal) => tokio_main(async move {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind {addr}"))?;
            tracing::info!(%addr, "signalling server listening");
            videortc::signal::serve(listener, shutdown_signal()).await?;
            Ok(())
        }),
        None => {
            let config = match videortc::config::Config::from_env() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("videortc: bad configuration: {e}");
                    std::process::exit(2);
                }
            };
            let file = cli.policy.clone();
            let limits = config.policy.clone();
            tokio_main(async move {
                let policy = match &file {
                    Some(path) => {
                        let bytes =
                            std::fs::read(path).with_context(|| format!("{}", path.display()))?;
                        let source = path.display().to_string();
                        Policy::new(&bytes, &source, limits).await?
                    }
                    None => Policy::with_default(limits).await?,
                };
                tracing::info!(policy = %policy.describe(), source = %policy.source(), "policy ready");
                let reloader = Reloader::new(Arc::new(policy), file);
                node::run(addr, config, reloader, shutdown_signal()).await
            })
        }
    }
}

fn tokio_main(f: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?
        .block_on(f)
}

/// Completes at the first SIGINT or SIGTERM (a graceful shutdown begins); a second one
/// ends the process at once.
async fn shutdown_signal() {
    first_signal().await;
    tracing::info!("shutting down (a second signal exits at once)");
    tokio::spawn(async {
        first_signal().await;
        eprintln!("videortc: second signal; exiting now");
        std::process::exit(130);
    });
}

async fn first_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
