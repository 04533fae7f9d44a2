//! Signalling tests: real sockets on 127.0.0.1, port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::*;

/// Bound on any single await in these tests.
const LIMIT: Duration = Duration::from_secs(5);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A valid 36-character id made of `c`.
fn pid(c: char) -> String {
    let part = |n| c.to_string().repeat(n);
    format!(
        "{}-{}-{}-{}-{}",
        part(8),
        part(4),
        part(4),
        part(4),
        part(12)
    )
}

// ---------------------------------------------------------------------------------------------
// Harness

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), SignalError>>,
}

impl TestServer {
    async fn start(config: ServerConfig) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config).await
    }

    async fn start_on(addr: SocketAddr, config: ServerConfig) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, config, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn prefix(&self) -> String {
        format!("ws://{}/uid/", self.addr)
    }

    /// Graceful shutdown; waits until the listener is closed.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        within("server stop", &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }

    /// Abrupt death: the task is aborted, sockets dropped without close frames.
    async fn kill(self) {
        self.task.abort();
        let _ = within("server abort", self.task).await;
    }
}

/// A plain WebSocket peer whose socket is always being read (so it answers pings).
struct RawPeer {
    out: mpsc::UnboundedSender<WsMessage>,
    inbox: mpsc::UnboundedReceiver<WsMessage>,
}

impl RawPeer {
    async fn connect(url: &str) -> Result<Self, tungstenite::Error> {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let (in_tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = out_rx.recv() => match msg {
                        Some(msg) => if ws.send(msg).await.is_err() { break },
                        None => { let _ = ws.close(None).await; break }
                    },
                    frame = ws.next() => match frame {
                        Some(Ok(msg @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                            let _ = in_tx.send(msg);
                        }
                        Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    }
                }
            }
        });
        Ok(Self { out, inbox })
    }

    async fn join(server: &TestServer, id: &str) -> Self {
        within(
            "raw connect",
            Self::connect(&format!("{}{id}", server.prefix())),
        )
        .await
        .unwrap()
    }

    fn send_text(&self, text: impl Into<String>) {
        self.out.send(WsMessage::text(text.into())).unwrap();
    }

    async fn recv(&mut self) -> WsMessage {
        within("a message", self.inbox.recv())
            .await
            .expect("connection closed")
    }

    async fn recv_text(&mut self) -> String {
        match self.recv().await {
            WsMessage::Text(text) => text.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    async fn recv_json(&mut self) -> Value {
        serde_json::from_str(&self.recv_text().await).unwrap()
    }

    /// Waits until the server closes this connection.
    async fn closed(&mut self) {
        while within("close", self.inbox.recv()).await.is_some() {}
    }
}

fn client_config(server: &TestServer, id: &str) -> ClientConfig {
    ClientConfig {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::new(server.prefix(), id)
    }
}

async fn next_event(events: &mut mpsc::Receiver<SignalEvent>) -> SignalEvent {
    within("a client event", events.recv())
        .await
        .expect("event stream ended")
}

/// `text` (a JSON object) as the server relays it from `from`.
fn relayed(text: &str, from: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap();
    v["from"] = json!(from);
    v
}

fn offer_json(from: &str, to: &str, sdp: &str) -> String {
    json!({"event": "offer", "from": from, "to": to, "data": {"type": "offer", "sdp": sdp}})
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Messages

#[test]
fn parses_browser_messages() {
    let init = Message::parse(r#"{"event":"init","ids":["a","b"]}"#).unwrap();
    assert_eq!(
        init,
        Message::Init {
            ids: vec!["a".into(), "b".into()]
        }
    );
    let online = Message::parse(r#"{"event":"online","id":"x"}"#).unwrap();
    assert_eq!(online, Message::Online { id: "x".into() });

    let offer = Message::parse(
        r#"{"event":"offer","to":"B","from":"A","data":{"type":"offer","sdp":"v=0\r\n"},"x":1}"#,
    )
    .unwrap();
    let Message::Offer(relay) = offer else {
        panic!("not an offer: {offer:?}")
    };
    assert_eq!((relay.from.as_str(), relay.to.as_str()), ("A", "B"));
    assert_eq!(relay.data.sdp_type, SdpType::Offer);
    assert_eq!(relay.data.sdp, "v=0\r\n");

    let candidate = Message::parse(
        r#"{"event":"candidate","from":"A","to":"B","data":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"uf"}}"#,
    )
    .unwrap();
    let Message::Candidate(relay) = candidate else {
        panic!("not a candidate")
    };
    assert_eq!(relay.data.sdp_mid.as_deref(), Some("0"));
    assert_eq!(relay.data.sdp_mline_index, Some(0));
    assert_eq!(relay.data.username_fragment.as_deref(), Some("uf"));

    // Browsers may send nulls.
    let nulls = Message::parse(
        r#"{"event":"candidate","from":"A","to":"B","data":{"candidate":"","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":null}}"#,
    )
    .unwrap();
    let Message::Candidate(relay) = nulls else {
        panic!("not a candidate")
    };
    assert_eq!(relay.data.sdp_mid, None);
    assert_eq!(relay.data.sdp_mline_index, None);
}

#[test]
fn serialises_wire_format() {
    let answer = Message::Answer(Relay {
        from: "A".into(),
        to: "B".into(),
        data: SessionDescription {
            sdp_type: SdpType::Answer,
            sdp: "v=0".into(),
        },
    });
    assert_eq!(
        answer.to_json().unwrap(),
        r#"{"event":"answer","from":"A","to":"B","data":{"type":"answer","sdp":"v=0"}}"#
    );
    let candidate = Message::Candidate(Relay {
        from: "A".into(),
        to: "B".into(),
        data: IceCandidate {
            candidate: "candidate:x".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        },
    });
    assert_eq!(
        candidate.to_json().unwrap(),
        r#"{"event":"candidate","from":"A","to":"B","data":{"candidate":"candidate:x","sdpMid":"0","sdpMLineIndex":0}}"#
    );
    assert_eq!(
        Message::Init { ids: vec![] }.to_json().unwrap(),
        r#"{"event":"init","ids":[]}"#
    );
}

#[test]
fn rejects_bad_messages_with_typed_errors() {
    for text in ["", "not json", "{", "[]", r#"["offer"]"#, "42", r#""x""#] {
        assert!(
            matches!(Message::parse(text), Err(SignalError::Json(_))),
            "{text}"
        );
    }
    assert!(matches!(
        Message::parse(r#"{"to":"B"}"#),
        Err(SignalError::MissingEvent)
    ));
    assert!(matches!(
        Message::parse(r#"{"event":"listen","to":"B"}"#),
        Err(SignalError::UnknownEvent(e)) if e == "listen"
    ));
    assert!(matches!(
        Message::parse(r#"{"event":7}"#),
        Err(SignalError::Json(_))
    ));
    for shape in [
        r#"{"event":"offer","from":"A","to":"B"}"#,
        r#"{"event":"offer","from":"A","to":"B","data":{"type":"offer","sdp":5}}"#,
        r#"{"event":"offer","from":"A","to":"B","data":{"type":"bogus","sdp":""}}"#,
        r#"{"event":"candidate","from":"A","data":{"candidate":""}}"#,
        r#"{"event":"online"}"#,
        r#"{"event":"init","ids":"x"}"#,
    ] {
        assert!(
            matches!(Message::parse(shape), Err(SignalError::Json(_))),
            "{shape}"
        );
    }
}

#[test]
fn validates_peer_ids_like_the_original() {
    assert!(is_valid_peer_id("zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r6r"));
    assert!(is_valid_peer_id(&"_".repeat(36)));
    assert!(!is_valid_peer_id(&"a".repeat(35)));
    assert!(!is_valid_peer_id(&"a".repeat(37)));
    assert!(!is_valid_peer_id("zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r6."));
    assert!(!is_valid_peer_id("zznj1q6h-2hmf-1fmc-2ajh-20mx2hxk1r/r"));
    // 36 bytes, but not 36 `\w` characters.
    assert!(!is_valid_peer_id(&format!("{}é", "a".repeat(34))));
    assert!(matches!(
        validate_peer_id("short"),
        Err(SignalError::InvalidPeerId(id)) if id == "short"
    ));
}

// ---------------------------------------------------------------------------------------------
// Server

#[tokio::test]
async fn server_sends_init_and_online_in_join_order() {
    let server = TestServer::start(ServerConfig::default()).await;
    let (a, b, c) = (pid('a'), pid('b'), pid('c'));

    let mut pa = RawPeer::join(&server, &a).await;
    assert_eq!(pa.recv_json().await, json!({"event": "init", "ids": []}));

    let mut pb = RawPeer::join(&server, &b).await;
    assert_eq!(pb.recv_json().await, json!({"event": "init", "ids": [a]}));
    assert_eq!(pa.recv_json().await, json!({"event": "online", "id": b}));

    let mut pc = RawPeer::join(&server, &c).await;
    assert_eq!(
        pc.recv_json().await,
        json!({"event": "init", "ids": [a, b]})
    );
    assert_eq!(pa.recv_json().await, json!({"event": "online", "id": c}));
    assert_eq!(pb.recv_json().await, json!({"event": "online", "id": c}));

    // Nothing else was queued for anyone: a marker sent to each is the next thing it gets.
    for (peer, id) in [(&mut pa, &a), (&mut pb, &b), (&mut pc, &c)] {
        let marker = json!({"to": id, "marker": true}).to_string();
        peer.send_text(marker.clone());
        assert_eq!(peer.recv_json().await, relayed(&marker, id));
    }
    server.stop().await;
}

#[tokio::test]
async fn server_relays_by_to_with_the_senders_from() {
    let server = TestServer::start(ServerConfig::default()).await;
    let (a, b, c) = (pid('a'), pid('b'), pid('c'));
    let mut pa = RawPeer::join(&server, &a).await;
    pa.recv_json().await;
    let mut pb = RawPeer::join(&server, &b).await;
    pb.recv_json().await;
    pa.recv_json().await;

    // Odd spacing, key order, escapes and extra fields keep their values; `from` is added.
    let text = format!(
        "  {{ \"data\" : {{\"type\":\"offer\",\"sdp\":\"v=0\\r\\na=x:\\u00e9\"}}, \"to\":\"{b}\",\"event\":\"offer\", \"extra\":[1,2.50,null] }}\n"
    );
    pa.send_text(text.clone());
    assert_eq!(pb.recv_json().await, relayed(&text, &a));

    // A forged `from` is overwritten with the sender's id: nobody can speak for another.
    pa.send_text(offer_json(&b, &b, "forged"));
    assert_eq!(
        pb.recv_json().await,
        relayed(&offer_json(&b, &b, "forged"), &a)
    );

    // Binary frames are relayed as binary.
    let binary = format!(r#"{{"event":"candidate","to":"{a}","from":"{c}","data":{{}}}}"#);
    pb.out
        .send(WsMessage::binary(binary.clone().into_bytes()))
        .unwrap();
    match pa.recv().await {
        WsMessage::Binary(bytes) => {
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got, relayed(&binary, &b));
        }
        other => panic!("expected binary, got {other:?}"),
    }

    // To an id nobody has: dropped. To oneself: relayed back, like the original.
    pa.send_text(offer_json(&a, &c, "lost"));
    let own = offer_json(&a, &a, "own");
    pa.send_text(own.clone());
    assert_eq!(pa.recv_text().await, own);
    server.stop().await;
}

#[tokio::test]
async fn server_rejects_bad_paths_in_handshake() {
    let server = TestServer::start(ServerConfig::default()).await;
    let base = format!("ws://{}", server.addr);
    let id = pid('a');
    for path in [
        "/".to_owned(),
        "/uid/".to_owned(),
        "/uid/short".to_owned(),
        format!("/uid/{id}x"),
        format!("/uid/{}", &id[1..]),
        format!("/uid/{}.", &id[1..]),
        format!("/peer/{id}"),
        format!("/uid/{id}/"),
    ] {
        match within(
            "handshake",
            tokio_tungstenite::connect_async(format!("{base}{path}")),
        )
        .await
        {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 404, "{path}");
            }
            other => panic!("{path}: expected HTTP 404, got {other:?}"),
        }
    }
    // The original's regex is `uid\/([\w-]{36})$`: any prefix is fine; we ignore a query.
    for path in [
        format!("/uid/{id}"),
        format!("/ws/uid/{id}"),
        format!("/uid/{id}?v=1"),
    ] {
        let mut peer = within("connect", RawPeer::connect(&format!("{base}{path}")))
            .await
            .unwrap();
        assert_eq!(peer.recv_json().await["event"], "init", "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn server_survives_bad_input() {
    let server = TestServer::start(ServerConfig::default()).await;
    let (a, b) = (pid('a'), pid('b'));
    let mut pa = RawPeer::join(&server, &a).await;
    pa.recv_json().await;
    let mut pb = RawPeer::join(&server, &b).await;
    pb.recv_json().await;
    pa.recv_json().await;

    for junk in [
        "not json",
        "",
        "[]",
        "null",
        "{\"to\":5}",
        "{\"to\":\"\"}",
        "{\"event\":\"offer\"}",
        "{\"listen\":true,\"event\":\"rtc:x\"}",
        "{\"to\":",
    ] {
        pa.send_text(junk);
    }
    pa.out
        .send(WsMessage::binary(vec![0xff, 0x00, 0x7b]))
        .unwrap();
    // A raw TCP client speaking garbage instead of HTTP.
    let mut garbage = TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut garbage, b"\x16\x03\x01 hello\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    within("garbage rejected", garbage.read_to_end(&mut sink))
        .await
        .unwrap();

    // Both still connected and relaying.
    let offer = offer_json(&a, &b, "still here");
    pa.send_text(offer.clone());
    assert_eq!(pb.recv_text().await, offer);
    let back = offer_json(&b, &a, "me too");
    pb.send_text(back.clone());
    assert_eq!(pa.recv_text().await, back);
    server.stop().await;
}

#[tokio::test]
async fn server_refuses_a_second_socket_for_a_live_id() {
    let config = ServerConfig {
        probe_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let (a, b) = (pid('a'), pid('b'));
    let mut first = RawPeer::join(&server, &a).await;
    first.recv_json().await;
    let mut other = RawPeer::join(&server, &b).await;
    other.recv_json().await;
    first.recv_json().await;

    // The first `a` answers the probe: the second is closed without an init.
    let mut second = RawPeer::join(&server, &a).await;
    second.closed().await;

    // Nobody saw `a` come online again, and `a`'s signalling still reaches the first only.
    let offer = offer_json(&b, &a, "to the first");
    other.send_text(offer.clone());
    assert_eq!(first.recv_text().await, offer);
    let marker = json!({"to": b, "marker": 1}).to_string();
    other.send_text(marker.clone());
    assert_eq!(other.recv_json().await, relayed(&marker, &b));

    // A third peer sees `a` once.
    let mut late = RawPeer::join(&server, &pid('c')).await;
    assert_eq!(
        late.recv_json().await,
        json!({"event": "init", "ids": [a, b]})
    );
    server.stop().await;
}

#[tokio::test]
async fn server_replaces_a_socket_that_does_not_answer() {
    let config = ServerConfig {
        probe_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let (a, b) = (pid('a'), pid('b'));
    // `a` handshakes, then never reads: it cannot answer a ping.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let url = format!("{}{a}", server.prefix());
    let (ws, _) = within("handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap();
    let mut dead = ws.into_inner();
    let mut other = RawPeer::join(&server, &b).await;
    assert_eq!(
        other.recv_json().await,
        json!({"event": "init", "ids": [a]})
    );

    // A new socket for `a` takes over once the old one failed the probe.
    let mut second = RawPeer::join(&server, &a).await;
    assert_eq!(
        second.recv_json().await,
        json!({"event": "init", "ids": [b]})
    );
    assert_eq!(other.recv_json().await, json!({"event": "online", "id": a}));
    let offer = offer_json(&b, &a, "to the second");
    other.send_text(offer.clone());
    assert_eq!(second.recv_text().await, offer);
    let mut bytes = Vec::new();
    within("the old socket is closed", dead.read_to_end(&mut bytes))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn server_drops_sockets_that_do_not_pong() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(150),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let (dead, live) = (pid('d'), pid('l'));

    let mut alive = RawPeer::join(&server, &live).await;
    alive.recv_json().await;

    // Handshake, then never read again through tungstenite, so no pong is ever sent.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let url = format!("{}{dead}", server.prefix());
    let (ws, _) = within("handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap();
    let mut tcp = ws.into_inner();
    assert_eq!(
        alive.recv_json().await,
        json!({"event": "online", "id": dead})
    );

    // Reading raw bytes answers nothing: the server must give up and close.
    let mut bytes = Vec::new();
    within("server drops the dead socket", tcp.read_to_end(&mut bytes))
        .await
        .unwrap();

    // It is gone from the registry; the live peer (which answers pings) is still there.
    let mut late = RawPeer::join(&server, &pid('n')).await;
    assert_eq!(
        late.recv_json().await,
        json!({"event": "init", "ids": [live]})
    );
    let marker = json!({"to": live}).to_string();
    alive.recv_json().await; // online of `late`
    alive.send_text(marker.clone());
    assert_eq!(alive.recv_json().await, relayed(&marker, &live));
    server.stop().await;
}

/// A flood aimed at a peer that does not read: what does not fit its queue is dropped, the
/// flooder and the rest of the room go on, and the stuck reader itself is dropped by the
/// heartbeat (not by the burst).
#[tokio::test]
async fn server_sheds_for_a_reader_that_falls_behind_and_drops_it_when_stuck() {
    let config = ServerConfig {
        queue_capacity: 4,
        max_message_size: 1 << 20,
        ping_interval: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let (slow, flood) = (pid('s'), pid('f'));

    // Handshake, then never read: its (small) TCP buffers fill, then its queue.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let url = format!("{}{slow}", server.prefix());
    let (_slow_ws, _) = within("handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap();

    let mut flooder = RawPeer::join(&server, &flood).await;
    assert_eq!(
        flooder.recv_json().await,
        json!({"event": "init", "ids": [slow]})
    );
    let filler = "x".repeat(128 * 1024);
    for _ in 0..160 {
        flooder.send_text(json!({"to": slow, "data": filler}).to_string());
    }
    // The server handles one connection's frames in order: once the marker is back, every
    // flood message has been queued or has overflowed the slow queue.
    let marker = json!({"to": flood, "marker": 1}).to_string();
    flooder.send_text(marker.clone());
    assert_eq!(
        within("marker", flooder.recv_json()).await,
        relayed(&marker, &flood)
    );

    // Right after the burst the stuck reader is still in the room...
    let mut early = RawPeer::join(&server, &pid('e')).await;
    assert_eq!(
        early.recv_json().await,
        json!({"event": "init", "ids": [slow, flood]})
    );
    // ...and within a few heartbeats it is gone; the flooder never was.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut late = RawPeer::join(&server, &pid('n')).await;
    assert_eq!(
        late.recv_json().await,
        json!({"event": "init", "ids": [flood, pid('e')]})
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Client

#[tokio::test]
async fn client_reports_events_and_sends_with_from() {
    let server = TestServer::start(ServerConfig::default()).await;
    let (me, early, late) = (pid('m'), pid('e'), pid('l'));
    let mut pe = RawPeer::join(&server, &early).await;
    pe.recv_json().await;

    let (client, mut events) = SignalClient::spawn(client_config(&server, &me)).unwrap();
    assert_eq!(client.id(), me);
    assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Init {
            ids: vec![early.clone()]
        }
    );
    assert_eq!(pe.recv_json().await, json!({"event": "online", "id": me}));

    let mut pl = RawPeer::join(&server, &late).await;
    pl.recv_json().await;
    assert_eq!(pe.recv_json().await, json!({"event": "online", "id": late}));
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Online { id: late.clone() }
    );

    client.send_offer(&late, "v=0\r\n").unwrap();
    assert_eq!(
        pl.recv_json().await,
        json!({"event": "offer", "from": me, "to": late, "data": {"type": "offer", "sdp": "v=0\r\n"}})
    );
    let candidate = IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: Some("abcd".into()),
    };
    client.send_candidate(&early, candidate.clone()).unwrap();
    assert_eq!(
        pe.recv_json().await,
        json!({"event": "candidate", "from": me, "to": early, "data": {
            "candidate": candidate.candidate, "sdpMid": "0", "sdpMLineIndex": 0,
            "usernameFragment": "abcd"}})
    );

    pl.send_text(offer_json(&late, &me, "remote offer"));
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Offer {
            from: late.clone(),
            sdp: "remote offer".into()
        }
    );
    pe.send_text(
        json!({"event": "answer", "from": early, "to": me,
               "data": {"type": "answer", "sdp": "remote answer"}})
        .to_string(),
    );
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Answer {
            from: early.clone(),
            sdp: "remote answer".into()
        }
    );
    pe.send_text(
        json!({"event": "candidate", "from": early, "to": me, "data": {
            "candidate": candidate.candidate, "sdpMid": "0", "sdpMLineIndex": 0,
            "usernameFragment": "abcd"}})
        .to_string(),
    );
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Candidate {
            from: early.clone(),
            candidate
        }
    );

    // Dropping the handle stops the task: the stream reports the drop and ends.
    drop(client);
    assert_eq!(next_event(&mut events).await, SignalEvent::Disconnected);
    assert_eq!(within("stream end", events.recv()).await, None);
    server.stop().await;
}

/// A server that relays verbatim (like the original, or any third-party one) may hand the
/// client messages from itself, with bad ids or of bad shapes: all ignored.
#[tokio::test]
async fn client_ignores_itself_and_junk() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let prefix = format!("ws://{}/uid/", listener.local_addr().unwrap());
    let (me, peer) = (pid('m'), pid('p'));
    let (client, mut events) = SignalClient::spawn(ClientConfig {
        backoff_min: Duration::from_millis(20),
        ..ClientConfig::new(prefix, &me)
    })
    .unwrap();
    let (tcp, _) = within("accept", listener.accept()).await.unwrap();
    let mut ws = within("handshake", tokio_tungstenite::accept_async(tcp))
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
    let mut send = async |text: String| ws.send(WsMessage::text(text)).await.unwrap();
    send(json!({"event": "init", "ids": []}).to_string()).await;
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Init { ids: vec![] }
    );
    // All to be ignored.
    send(offer_json(&me, &me, "from myself")).await;
    send(json!({"event": "online", "id": me, "to": me}).to_string()).await;
    send(offer_json("short-id", &me, "bad from")).await;
    send(json!({"event": "listen", "to": me}).to_string()).await;
    send(json!({"event": "offer", "to": me, "from": peer, "data": 1}).to_string()).await;
    send(format!(r#"{{"to":"{me}", "event": "offer""#)).await;
    // Then real ones: they must be the next events.
    send(json!({"event": "init", "ids": [me, peer, "bad"], "to": me}).to_string()).await;
    send(offer_json(&peer, &me, "real")).await;
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Init {
            ids: vec![peer.clone()]
        }
    );
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Offer {
            from: peer.clone(),
            sdp: "real".into()
        }
    );

    client.shutdown();
    assert_eq!(next_event(&mut events).await, SignalEvent::Disconnected);
    assert_eq!(within("stream end", events.recv()).await, None);
    assert!(matches!(
        client.send_offer(&peer, "late"),
        Err(SignalError::Closed)
    ));
}

#[tokio::test]
async fn client_rejects_bad_configuration() {
    let bad_id = SignalClient::spawn(ClientConfig::new("ws://127.0.0.1:1/uid/", "short"));
    assert!(matches!(bad_id, Err(SignalError::InvalidPeerId(_))));
    for addr in [
        "http://127.0.0.1:1/uid/",
        "127.0.0.1:1/uid/",
        "ws:///uid/",
        "ws:// bad/",
    ] {
        let result = SignalClient::spawn(ClientConfig::new(addr, pid('a')));
        assert!(
            matches!(result, Err(SignalError::InvalidAddress(_))),
            "{addr}"
        );
    }
}

/// Server restart (graceful or killed) on the same port: the client comes back with
/// `Connected` + `Init`, and messages sent while it was down are dropped, not replayed.
async fn client_survives_restart(kill: bool) {
    let server = TestServer::start(ServerConfig::default()).await;
    let addr = server.addr;
    let (me, peer) = (pid('m'), pid('p'));
    let (client, mut events) = SignalClient::spawn(client_config(&server, &me)).unwrap();
    assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Init { ids: vec![] }
    );
    let mut old_peer = RawPeer::join(&server, &peer).await;
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Online { id: peer.clone() }
    );

    if kill {
        server.kill().await;
    } else {
        server.stop().await;
    }
    assert_eq!(next_event(&mut events).await, SignalEvent::Disconnected);
    old_peer.closed().await;
    // Dropped while disconnected (the queue accepts it, the task discards it).
    client.send_offer(&peer, "stale").unwrap();

    let server = TestServer::start_on(addr, ServerConfig::default()).await;
    // The peer is usually back before the client (which is in backoff), so a replayed
    // "stale" offer would reach it; either order is accepted.
    let mut new_peer = RawPeer::join(&server, &peer).await;
    assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
    match next_event(&mut events).await {
        SignalEvent::Init { ids } if ids == [peer.clone()] => {
            assert_eq!(
                new_peer.recv_json().await,
                json!({"event": "init", "ids": []})
            );
            assert_eq!(
                new_peer.recv_json().await,
                json!({"event": "online", "id": me})
            );
        }
        SignalEvent::Init { ids } if ids.is_empty() => {
            assert_eq!(
                new_peer.recv_json().await,
                json!({"event": "init", "ids": [me]})
            );
            assert_eq!(
                next_event(&mut events).await,
                SignalEvent::Online { id: peer.clone() }
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    client.send_offer(&peer, "fresh").unwrap();
    assert_eq!(new_peer.recv_json().await["data"]["sdp"], "fresh");
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn client_reconnects_after_server_restart() {
    client_survives_restart(false).await;
}

#[tokio::test]
async fn client_reconnects_after_server_killed() {
    client_survives_restart(true).await;
}

#[tokio::test]
async fn client_detects_missing_pong() {
    // A server that completes handshakes, sends `init`, then never reads (so never pongs).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    let mute = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.send(WsMessage::text(r#"{"event":"init","ids":[]}"#))
                .await
                .unwrap();
            held.push(ws);
            let _ = accepted_tx.send(());
        }
    });

    let config = ClientConfig {
        ping_interval: Duration::from_millis(50),
        pong_timeout: Duration::from_millis(150),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..ClientConfig::new(format!("ws://{addr}/uid/"), pid('m'))
    };
    let (_client, mut events) = SignalClient::spawn(config).unwrap();
    for _ in 0..2 {
        assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
        assert_eq!(
            next_event(&mut events).await,
            SignalEvent::Init { ids: vec![] }
        );
        within("accept", accepted.recv()).await.unwrap();
        assert_eq!(next_event(&mut events).await, SignalEvent::Disconnected);
    }
    mute.abort();
}

/// An offer flood while the node's peer manager reads nothing: the client keeps reading the
/// socket and sheds what does not fit its queue, so the server never drops the node as a slow
/// reader; the manager gets the first offers, the rest are counted, and a message after the
/// flood arrives on the same connection.
#[tokio::test]
async fn client_sheds_events_instead_of_falling_behind() {
    // A server queue that holds the whole flood, so every offer reaches the client: what the
    // client does with them is all this test sees.
    let server = TestServer::start(ServerConfig {
        queue_capacity: 8192,
        ..ServerConfig::default()
    })
    .await;
    let (me, flood) = (pid('m'), pid('f'));
    let config = ClientConfig {
        queue_capacity: 8,
        ..client_config(&server, &me)
    };
    let (client, mut events) = SignalClient::spawn(config).unwrap();
    assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Init { ids: vec![] }
    );
    let mut flooder = RawPeer::join(&server, &flood).await;
    flooder.recv_json().await;
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Online { id: flood.clone() }
    );

    // 5,000 offers of 1 KiB. A client that waited for its consumer would read 8 and leave
    // the rest in the socket and the server's queue.
    let sdp = "x".repeat(1024);
    for _ in 0..5000 {
        flooder.send_text(offer_json(&flood, &me, &sdp));
    }
    let shed = client.shed_counter();
    let read = async {
        while shed.load(std::sync::atomic::Ordering::Relaxed) < 5000 - 8 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "only {} shed",
                shed.load(std::sync::atomic::Ordering::Relaxed)
            )
        });
    for _ in 0..8 {
        let e = next_event(&mut events).await;
        assert!(matches!(e, SignalEvent::Offer { .. }), "{}", e.kind());
    }
    flooder.send_text(offer_json(&flood, &me, "after"));
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Offer {
            from: flood,
            sdp: "after".into()
        },
        "the connection was never dropped"
    );
    assert_eq!(shed.load(std::sync::atomic::Ordering::Relaxed), 4992);
    server.stop().await;
}

#[tokio::test]
async fn client_keepalive_holds_a_healthy_connection() {
    let server = TestServer::start(ServerConfig {
        ping_interval: Duration::from_millis(150),
        ..ServerConfig::default()
    })
    .await;
    let (me, peer) = (pid('m'), pid('p'));
    let config = ClientConfig {
        ping_interval: Duration::from_millis(30),
        pong_timeout: Duration::from_millis(400),
        ..client_config(&server, &me)
    };
    let (client, mut events) = SignalClient::spawn(config).unwrap();
    assert_eq!(next_event(&mut events).await, SignalEvent::Connected);
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Init { ids: vec![] }
    );
    // Many ping rounds on both sides pass while we wait for messages; none may drop us.
    let mut pp = RawPeer::join(&server, &peer).await;
    pp.recv_json().await;
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Online { id: peer.clone() }
    );
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.send_answer(&peer, format!("round {round}")).unwrap();
        assert_eq!(
            pp.recv_json().await["data"]["sdp"],
            format!("round {round}")
        );
    }
    // Still the first connection: the next event is the peer's message, not a reconnect.
    pp.send_text(offer_json(&peer, &me, "end"));
    assert_eq!(
        next_event(&mut events).await,
        SignalEvent::Offer {
            from: peer,
            sdp: "end".into()
        }
    );
    server.stop().await;
}
