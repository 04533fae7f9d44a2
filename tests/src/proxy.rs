//! Small real proxies for tests, on 127.0.0.1: an HTTP proxy (absolute-form requests and
//! `CONNECT` tunnels) and a SOCKS5 server (RFC 1928, `CONNECT`, optional RFC 1929
//! username/password). Both count what went through them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a proxy saw.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: AtomicU64,
    /// Targets reached: `GET http://host:port/path` and `CONNECT host:port` for the HTTP
    /// proxy, `host:port` for SOCKS5.
    pub targets: Mutex<Vec<String>>,
    /// SOCKS5 usernames that authenticated, HTTP `Proxy-Authorization` values seen.
    pub users: Mutex<Vec<String>>,
    /// Failed SOCKS5 authentications.
    pub auth_failures: AtomicU64,
}

impl ProxyStats {
    /// Targets so far.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Users so far.
    pub fn users(&self) -> Vec<String> {
        self.users.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn target(&self, t: String) {
        if let Ok(mut v) = self.targets.lock() {
            v.push(t);
        }
    }

    fn user(&self, u: String) {
        if let Ok(mut v) = self.users.lock() {
            v.push(u);
        }
    }
}

/// A running proxy; stops on drop.
#[derive(Debug)]
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub stats: Arc<ProxyStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// An HTTP proxy: `GET http://...` is forwarded (one request per connection, with
    /// `Connection: close`), `CONNECT host:port` becomes a tunnel.
    pub async fn http() -> std::io::Result<Proxy> {
        Self::start(|stream, stats| Box::pin(http_conn(stream, stats))).await
    }

    /// A SOCKS5 server; with `auth`, only that username and password get through.
    pub async fn socks5(auth: Option<(&str, &str)>) -> std::io::Result<Proxy> {
        let auth = auth.map(|(u, p)| (u.to_owned(), p.to_owned()));
        Self::start(move |stream, stats| Box::pin(socks_conn(stream, stats, auth.clone()))).await
    }

    async fn start<F>(handler: F) -> std::io::Result<Proxy>
    where
        F: Fn(
                TcpStream,
                Arc<ProxyStats>,
            ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>
            + Send
            + Sync
            + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(ProxyStats::default());
        let s = stats.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                let fut = handler(stream, s.clone());
                tokio::spawn(async move {
                    let _ = fut.await;
                });
            }
        });
        Ok(Proxy { addr, stats, task })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:port` (the SOCKS5 form of `*_PROXY`).
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

/// Reads up to the end of an HTTP head; returns the head and any bytes after it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            let head = String::from_utf8(buf).map_err(std::io::Error::other)?;
            return Ok((head, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

async fn http_conn(mut client: TcpStream, stats: Arc<ProxyStats>) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    for h in &headers {
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("proxy-authorization")
        {
            stats.user(v.trim().to_owned());
        }
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        stats.target(format!("CONNECT {target}"));
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let Some(url) = target.strip_prefix("http://") else {
        client
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (authority, path) = match url.find('/') {
        Some(i) => url.split_at(i),
        None => (url, "/"),
    };
    let hostport = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    stats.target(format!("{method} {target}"));
    let mut upstream = TcpStream::connect(&hostport).await?;
    let mut out = format!("{method} {path} {version}\r\n");
    for h in headers {
        let name = h.split(':').next().unwrap_or_default().trim();
        if [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn socks_conn(
    mut client: TcpStream,
    stats: Arc<ProxyStats>,
    auth: Option<(String, String)>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Ok(());
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    let wanted = if auth.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        client.write_all(&[5, 0xFF]).await?;
        return Ok(());
    }
    client.write_all(&[5, wanted]).await?;
    if let Some((user, pass)) = auth {
        let mut ver_len = [0u8; 2];
        client.read_exact(&mut ver_len).await?;
        let mut u = vec![0u8; usize::from(ver_len[1])];
        client.read_exact(&mut u).await?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await?;
        let mut p = vec![0u8; usize::from(plen[0])];
        client.read_exact(&mut p).await?;
        if u != user.as_bytes() || p != pass.as_bytes() {
            stats.auth_failures.fetch_add(1, Ordering::SeqCst);
            client.write_all(&[1, 1]).await?;
            return Ok(());
        }
        stats.user(user);
        client.write_all(&[1, 0]).await?;
    }
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    if req[1] != 1 {
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    stats.target(target.clone());
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
