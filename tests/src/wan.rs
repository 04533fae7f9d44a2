//! An impaired network path for the WAN benchmark (`benches/wan.rs`), built in userspace (this
//! kernel has no `netem`).
//!
//! The node runs in a network namespace of its own whose only interface is loopback; this
//! process reaches into it with sockets made there (`setns` on a helper thread). Chromium stays
//! on the host's loopback, so the node's only way to a browser is a [`Forwarder`]: a UDP relay
//! that adds one-way delay, random loss and a shared bottleneck (rate plus a drop-tail queue)
//! on the way to the browser. Signalling and the origin reach the node through plain TCP relays
//! ([`relay_into`]). Needs root (`ip netns`).

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = StdCommand::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A network namespace with only `lo` up; deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    handle: File,
}

impl NetNs {
    /// Creates `name` (replacing a leftover of that name).
    pub fn create(name: &str) -> Result<NetNs, String> {
        let _ = run("ip", &["netns", "del", name]);
        run("ip", &["netns", "add", name])?;
        run("ip", &["-n", name, "link", "set", "lo", "up"])?;
        let path = format!("/run/netns/{name}");
        let handle = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        Ok(NetNs {
            name: name.to_owned(),
            handle,
        })
    }

    /// Runs `make` on a thread that has entered the namespace: sockets it creates live there.
    pub fn enter<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let handle = self.handle.try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            nix::sched::setns(handle.as_raw_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns: {e}"))?;
            make().map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| "namespace thread panicked".to_owned())?
    }

    /// `ip netns exec NAME program`.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Connects to 127.0.0.1:`port` inside the namespace.
    pub async fn connect(&self, port: u16) -> Result<TcpStream, String> {
        let std = self.enter(move || {
            let s = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })?;
        TcpStream::from_std(std).map_err(|e| e.to_string())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Relays TCP connections made to 127.0.0.1:`port` inside `ns` to `target` outside.
pub fn relay_into(ns: &NetNs, port: u16, target: SocketAddr) -> Result<JoinHandle<()>, String> {
    let std = ns.enter(move || {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })?;
    let listener = TcpListener::from_std(std).map_err(|e| e.to_string())?;
    Ok(tokio::spawn(async move {
        while let Ok((mut inside, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outside) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                }
            });
        }
    }))
}

/// One direction's impairments.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// One-way delay (half the round trip the link adds).
    pub delay: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
}

/// The node's uplink, shared by every browser: rate and a drop-tail queue.
#[derive(Debug, Clone, Copy)]
pub struct Bottleneck {
    /// Bytes per second (0: unlimited).
    pub rate: u64,
    /// Queue in bytes; a datagram that would wait behind more is dropped.
    pub queue: u64,
}

/// What the forwarder did.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Datagrams towards the browsers, forwarded.
    pub down: AtomicU64,
    /// Datagrams towards the node, forwarded.
    pub up: AtomicU64,
    /// Datagrams dropped by random loss (both directions).
    pub lost: AtomicU64,
    /// Datagrams dropped at the bottleneck's full queue.
    pub overflowed: AtomicU64,
}

impl LinkStats {
    /// `(down, up, lost, overflowed)` so far.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.down.load(Ordering::Relaxed),
            self.up.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.overflowed.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug)]
struct Shaper {
    bottleneck: Bottleneck,
    busy_until: Instant,
}

impl Shaper {
    /// When a datagram of `len` bytes leaves the bottleneck, or `None` if the queue is full.
    fn depart(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let rate = self.bottleneck.rate;
        if rate == 0 {
            return Some(now);
        }
        let start = self.busy_until.max(now);
        let backlog = (start - now).as_secs_f64() * rate as f64;
        if backlog + len as f64 > self.bottleneck.queue as f64 {
            return None;
        }
        self.busy_until = start + Duration::from_secs_f64(len as f64 / rate as f64);
        Some(self.busy_until)
    }
}

/// A delivery queue: datagrams go out at their due time, in order.
fn delivery<F>(send: F) -> mpsc::UnboundedSender<(Instant, Bytes)>
where
    F: Fn(Bytes) + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    tokio::spawn(async move {
        while let Some((due, datagram)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            send(datagram);
        }
    });
    tx
}

/// A UDP relay from 127.0.0.1:`port` on the host to 127.0.0.1:`port` inside a namespace, with
/// the impairments of a WAN path. Each browser socket (client address) gets the next of
/// `links` in turn, so peers can sit at different distances; the node's uplink is shared.
#[derive(Debug)]
pub struct Forwarder {
    /// Counters.
    pub stats: Arc<LinkStats>,
    task: JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    /// Towards the node.
    up: mpsc::UnboundedSender<(Instant, Bytes)>,
    link: Link,
    reader: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Forwarder {
    /// Starts relaying.
    pub async fn start(
        ns: &NetNs,
        port: u16,
        links: Vec<Link>,
        bottleneck: Bottleneck,
    ) -> Result<Forwarder, String> {
        if links.is_empty() {
            return Err("no link".into());
        }
        let front = Arc::new(
            UdpSocket::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(|e| format!("forwarder bind {port}: {e}"))?,
        );
        let stats = Arc::new(LinkStats::default());
        let shaper = Arc::new(Mutex::new(Shaper {
            bottleneck,
            busy_until: Instant::now(),
        }));
        let handle = ns.handle.try_clone().map_err(|e| e.to_string())?;
        let task = tokio::spawn(serve(front, port, links, shaper, stats.clone(), handle));
        Ok(Forwarder { stats, task })
    }
}

fn lost(loss: f64) -> bool {
    loss > 0.0 && rand::rng().random::<f64>() < loss
}

async fn serve(
    front: Arc<UdpSocket>,
    port: u16,
    links: Vec<Link>,
    shaper: Arc<Mutex<Shaper>>,
    stats: Arc<LinkStats>,
    ns: File,
) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = front.recv_from(&mut buf).await else {
            return;
        };
        let Some(datagram) = buf.get(..n).map(Bytes::copy_from_slice) else {
            continue;
        };
        if !sessions.contains_key(&client) {
            let link = links
                .get(sessions.len() % links.len())
                .copied()
                .unwrap_or(Link {
                    delay: Duration::ZERO,
                    loss: 0.0,
                });
            let Ok(session) = open_session(
                &ns,
                port,
                client,
                link,
                front.clone(),
                shaper.clone(),
                stats.clone(),
            ) else {
                continue;
            };
            sessions.insert(client, session);
        }
        let Some(session) = sessions.get(&client) else {
            continue;
        };
        if lost(session.link.loss) {
            stats.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let _ = session
            .up
            .send((Instant::now() + session.link.delay, datagram));
    }
}

fn open_session(
    ns: &File,
    port: u16,
    client: SocketAddr,
    link: Link,
    front: Arc<UdpSocket>,
    shaper: Arc<Mutex<Shaper>>,
    stats: Arc<LinkStats>,
) -> Result<Session, String> {
    let handle = ns.try_clone().map_err(|e| e.to_string())?;
    let std = std::thread::spawn(move || -> Result<std::net::UdpSocket, String> {
        nix::sched::setns(handle.as_raw_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        s.connect((Ipv4Addr::LOCALHOST, port))
            .map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(s)
    })
    .join()
    .map_err(|_| "namespace thread panicked".to_owned())??;
    let back = Arc::new(UdpSocket::from_std(std).map_err(|e| e.to_string())?);
    let up = {
        let back = back.clone();
        let stats = stats.clone();
        // Loopback sends do not block: `try_send` keeps the delivery loop on time.
        delivery(move |d| {
            stats.up.fetch_add(1, Ordering::Relaxed);
            let _ = back.try_send(&d);
        })
    };
    let down = {
        let stats = stats.clone();
        delivery(move |d| {
            stats.down.fetch_add(1, Ordering::Relaxed);
            let _ = front.try_send_to(&d, client);
        })
    };
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = back.recv(&mut buf).await {
            let Some(datagram) = buf.get(..n).map(Bytes::copy_from_slice) else {
                continue;
            };
            if lost(link.loss) {
                stats.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let depart = shaper
                .lock()
                .ok()
                .and_then(|mut s| s.depart(Instant::now(), n));
            let Some(depart) = depart else {
                stats.overflowed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let _ = down.send((depart + link.delay, datagram));
        }
    });
    Ok(Session { up, link, reader })
}
