//! A "browser" for the tests: a webrtc-rs peer that speaks the browser side of SPEC §3/§4 the
//! way `suconghou/libwebrtc` does: it joins the signalling server, waits for offers from the
//! peers in `init`, offers to peers that come `online`, answers `ping` with `pong`, and hands
//! everything else it receives on its DataChannel to the test.
//!
//! It talks to one remote only (the node under test) and ignores other browsers.
//! It deliberately uses the non-detached webrtc-rs API (`on_message`), so it shares no
//! DataChannel code with the node under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use crate::signal::{ClientConfig, IceCandidate, SignalClient, SignalEvent};

/// A message the browser received on its DataChannel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Incoming {
    Text(String),
    Binary(Bytes),
}

/// The browser-side peer.
pub(super) struct Browser {
    /// Ids in the `init` the browser got when it joined.
    pub(super) init_ids: Vec<String>,
    shared: Arc<Shared>,
    inbox: mpsc::UnboundedReceiver<Incoming>,
    task: JoinHandle<()>,
}

struct Shared {
    api: API,
    signal: SignalClient,
    inbox: mpsc::UnboundedSender<Incoming>,
    channel: watch::Sender<Option<Arc<RTCDataChannel>>>,
    pc: tokio::sync::Mutex<Option<Arc<RTCPeerConnection>>>,
    initiated: AtomicBool,
    /// Candidates the remote sent us.
    remote_candidates: Mutex<Vec<IceCandidate>>,
}

impl Browser {
    /// Joins the signalling server at `ws_addr` as `id` to talk to `remote`; returns once
    /// `init` arrived.
    pub(super) async fn join(ws_addr: &str, id: &str, remote: &str) -> Self {
        let mut engine = SettingEngine::default();
        engine.set_include_loopback_candidate(true);
        engine.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        engine.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
        let api = APIBuilder::new().with_setting_engine(engine).build();
        let (signal, events) = SignalClient::spawn(ClientConfig::new(ws_addr, id)).unwrap();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            api,
            signal,
            inbox: inbox_tx,
            channel: watch::Sender::new(None),
            pc: tokio::sync::Mutex::new(None),
            initiated: AtomicBool::new(false),
            remote_candidates: Mutex::default(),
        });
        let (init_tx, init_rx) = oneshot::channel();
        let task = tokio::spawn(run(shared.clone(), events, init_tx, remote.to_owned()));
        let init_ids = timeout(Duration::from_secs(5), init_rx)
            .await
            .expect("no init from the signalling server")
            .unwrap();
        Self {
            init_ids,
            shared,
            inbox,
            task,
        }
    }

    /// Whether this browser sent the offer.
    pub(super) fn initiated(&self) -> bool {
        self.shared.initiated.load(Ordering::SeqCst)
    }

    /// Candidates received from the remote.
    pub(super) fn remote_candidates(&self) -> Vec<IceCandidate> {
        self.shared.remote_candidates.lock().unwrap().clone()
    }

    /// The open DataChannel (waits up to `within`).
    pub(super) async fn channel(&self, within: Duration) -> Arc<RTCDataChannel> {
        let mut rx = self.shared.channel.subscribe();
        let got = timeout(within, rx.wait_for(Option::is_some))
            .await
            .expect("data channel did not open in time")
            .unwrap();
        got.clone().unwrap()
    }

    /// Opens another DataChannel on the connection; returns it once open.
    pub(super) async fn extra_channel(&self, label: &str) -> Arc<RTCDataChannel> {
        let pc = self.shared.pc.lock().await.clone().unwrap();
        let dc = pc.create_data_channel(label, None).await.unwrap();
        let (open_tx, open_rx) = oneshot::channel();
        let open_tx = Mutex::new(Some(open_tx));
        dc.on_open(Box::new(move || {
            if let Some(tx) = open_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            Box::pin(async {})
        }));
        timeout(Duration::from_secs(10), open_rx)
            .await
            .expect("extra channel did not open")
            .unwrap();
        dc
    }

    /// Sends a text message.
    pub(super) async fn send_text(&self, text: &str) {
        let dc = self.channel(Duration::from_secs(10)).await;
        dc.send_text(text.to_owned()).await.unwrap();
    }

    /// Sends a binary message.
    pub(super) async fn send_binary(&self, data: Bytes) {
        let dc = self.channel(Duration::from_secs(10)).await;
        dc.send(&data).await.unwrap();
    }

    /// The next message, or `None` if nothing arrives within `within`.
    pub(super) async fn next(&mut self, within: Duration) -> Option<Incoming> {
        timeout(within, self.inbox.recv()).await.ok().flatten()
    }

    /// The next message, which must be text.
    pub(super) async fn next_text(&mut self, within: Duration) -> String {
        match self.next(within).await {
            Some(Incoming::Text(text)) => text,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Closes the connection and leaves signalling.
    pub(super) async fn close(self) {
        self.shared.signal.shutdown();
        if let Some(pc) = self.shared.pc.lock().await.take() {
            let _ = pc.close().await;
        }
        self.task.abort();
    }
}

async fn run(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<SignalEvent>,
    init_tx: oneshot::Sender<Vec<String>>,
    remote: String,
) {
    let mut init_tx = Some(init_tx);
    let mut early: Vec<RTCIceCandidateInit> = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            SignalEvent::Init { ids } => {
                if let Some(tx) = init_tx.take() {
                    let _ = tx.send(ids);
                }
            }
            SignalEvent::Online { id } if id == remote => {
                shared.initiated.store(true, Ordering::SeqCst);
                let pc = shared.new_pc(&id).await;
                let dc = pc
                    .create_data_channel(
                        "dc",
                        Some(RTCDataChannelInit {
                            max_packet_life_time: Some(2000),
                            ..Default::default()
                        }),
                    )
                    .await
                    .unwrap();
                shared.setup_channel(&dc);
                let offer = pc.create_offer(None).await.unwrap();
                pc.set_local_description(offer.clone()).await.unwrap();
                shared.signal.send_offer(&id, offer.sdp).unwrap();
            }
            SignalEvent::Offer { from, sdp } if from == remote => {
                let pc = shared.new_pc(&from).await;
                pc.set_remote_description(RTCSessionDescription::offer(sdp).unwrap())
                    .await
                    .unwrap();
                for c in early.drain(..) {
                    pc.add_ice_candidate(c).await.unwrap();
                }
                let answer = pc.create_answer(None).await.unwrap();
                pc.set_local_description(answer.clone()).await.unwrap();
                shared.signal.send_answer(&from, answer.sdp).unwrap();
            }
            SignalEvent::Answer { from, sdp } if from == remote => {
                let pc = shared.pc.lock().await.clone().unwrap();
                pc.set_remote_description(RTCSessionDescription::answer(sdp).unwrap())
                    .await
                    .unwrap();
                for c in early.drain(..) {
                    pc.add_ice_candidate(c).await.unwrap();
                }
            }
            SignalEvent::Candidate { from, candidate } if from == remote => {
                shared
                    .remote_candidates
                    .lock()
                    .unwrap()
                    .push(candidate.clone());
                let init = RTCIceCandidateInit {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_mline_index: candidate.sdp_mline_index,
                    username_fragment: candidate.username_fragment,
                };
                let pc = shared.pc.lock().await.clone();
                match pc {
                    Some(pc) if pc.remote_description().await.is_some() => {
                        pc.add_ice_candidate(init).await.unwrap();
                    }
                    _ => early.push(init),
                }
            }
            _ => {}
        }
    }
}

impl Shared {
    async fn new_pc(self: &Arc<Self>, remote: &str) -> Arc<RTCPeerConnection> {
        let pc = Arc::new(
            self.api
                .new_peer_connection(RTCConfiguration::default())
                .await
                .unwrap(),
        );
        let (signal, to) = (self.signal.clone(), remote.to_owned());
        pc.on_ice_candidate(Box::new(move |c| {
            if let Some(c) = c {
                let json = c.to_json().unwrap();
                // As a browser does: the real mid.
                let candidate = IceCandidate {
                    candidate: json.candidate,
                    sdp_mid: Some("0".to_owned()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                };
                signal.send_candidate(&to, candidate).unwrap();
            }
            Box::pin(async {})
        }));
        let weak = Arc::downgrade(self);
        pc.on_data_channel(Box::new(move |dc| {
            if let Some(shared) = weak.upgrade() {
                shared.setup_channel(&dc);
            }
            Box::pin(async {})
        }));
        if let Some(old) = self.pc.lock().await.replace(pc.clone()) {
            let _ = old.close().await;
        }
        pc
    }

    fn setup_channel(self: &Arc<Self>, dc: &Arc<RTCDataChannel>) {
        let inbox = self.inbox.clone();
        let weak = Arc::downgrade(dc);
        dc.on_message(Box::new(move |msg| {
            let incoming = if msg.is_string {
                Incoming::Text(String::from_utf8(msg.data.to_vec()).unwrap())
            } else {
                Incoming::Binary(msg.data)
            };
            let reply = matches!(&incoming, Incoming::Text(t) if t == r#"{"event":"ping"}"#);
            let _ = inbox.send(incoming);
            let weak = weak.clone();
            Box::pin(async move {
                if let (true, Some(dc)) = (reply, weak.upgrade()) {
                    let _ = dc.send_text(r#"{"event":"pong"}"#.to_owned()).await;
                }
            })
        }));
        let weak = Arc::downgrade(self);
        let weak_dc = Arc::downgrade(dc);
        dc.on_open(Box::new(move || {
            if let (Some(shared), Some(dc)) = (weak.upgrade(), weak_dc.upgrade()) {
                shared.channel.send_replace(Some(dc));
            }
            Box::pin(async {})
        }));
    }
}
