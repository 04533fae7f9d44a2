//! Direct mode (no `BASE_URL`): the real node parses YouTube through the policy's parser,
//! against a stand-in on loopback (`YOUTUBE_URL`) that answers from recorded responses
//! (`guest/tests/fixtures/youtube`, sources in its README), with media from the test origin.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_common::get;
use serde_json::Value;
use videortc::media::{Decision, HubConfig, MediaHub, Origin, http_client};
use videortc::policy::{Policy, PolicyConfig, Request, RequestKind, SegmentRef};
use videortc_tests::components::{ALT_CLIENT, CHAOS};
use videortc_tests::node::Node;
use videortc_tests::origin::{TITLE, TestOrigin, VID, fixture_streams};
use videortc_tests::youtube::{Scenario, YouTubeStandIn, fixture};

const BOT: &str = "Sign in to confirm you’re not a bot";

struct Direct {
    origin: TestOrigin,
    yt: YouTubeStandIn,
    node: Node,
}

async fn direct(env: &[(&str, &str)]) -> Direct {
    let origin = TestOrigin::start(fixture_streams().unwrap()).await.unwrap();
    let yt = YouTubeStandIn::start(origin.addr, origin.streams.clone())
        .await
        .unwrap();
    let url = yt.url();
    let mut all = vec![("YOUTUBE_URL", url.as_str())];
    all.extend_from_slice(env);
    let node = Node::start(&[], &all).await.unwrap();
    Direct { origin, yt, node }
}

impl Direct {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.url())
    }

    fn scenario(&self, id: &str, s: Scenario) {
        self.yt
            .control
            .scenarios
            .lock()
            .unwrap()
            .insert(id.into(), s);
    }

    fn segment(&self, itag: u32, k: usize) -> (u64, u64, &[u8]) {
        let s = self.origin.stream(itag).unwrap();
        let r = s.layout.segments[k];
        (r.start, r.end, &s.bytes[r.start as usize..=r.end as usize])
    }
}

#[tokio::test]
async fn info_in_the_videoproxy_shape_from_one_parse() {
    let d = direct(&[]).await;
    let got = get(&d.url(&format!("/video/{VID}.json")), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let info = got.json();
    assert_eq!(info["id"], VID);
    assert_eq!(info["title"], TITLE);
    assert_eq!(info["duration"], "6");
    let streams = info["streams"].as_object().unwrap();
    let itags: Vec<&str> = streams.keys().map(String::as_str).collect();
    assert_eq!(itags, ["137", "140", "248", "251"]);
    for s in d.origin.streams.iter() {
        let v = &streams[&s.itag.to_string()];
        assert_eq!(v["itag"], s.itag.to_string());
        assert_eq!(v["type"], s.mime);
        assert_eq!(v["len"], s.layout.len.to_string());
        assert_eq!(v["initRange"]["end"], s.layout.init.end.to_string());
        assert_eq!(v["indexRange"]["start"], s.layout.index.start.to_string());
        assert!(v.get("url").is_none(), "{v}");
    }
    assert_eq!(streams["140"]["quality"], "tiny");
    assert_eq!(streams["137"]["quality"], "360p");
    assert_eq!(info["captions"][0]["language"], "en");
    assert!(info["captions"][0].get("url").is_none());

    // With URLs, as the stand-in issued them; from the cache: one parse in all.
    let all = get(&d.url(&format!("/video/{VID}.json?info=all")), &[])
        .await
        .json();
    let url = all["streams"]["251"]["url"].as_str().unwrap();
    assert!(
        url.contains("/media/audio.webm?expire=") && url.ends_with("&gen=1"),
        "{url}"
    );
    assert_eq!(d.yt.player_hits(VID), 1);
    assert_eq!(d.yt.control.hits.exact("/visitor_id"), 1);
    // The client identity is the policy's: VISIONOS.
    let h = d.yt.last_headers("player").unwrap();
    assert_eq!(h["x-youtube-client-name"], "101");
    assert!(
        h["user-agent"].to_str().unwrap().contains("Safari"),
        "{h:?}"
    );
    assert_eq!(h["x-goog-visitor-id"], "CgtTdGFuZEluVmlzaXQ%3D");
}

#[tokio::test]
async fn media_byte_exact_with_the_players_user_agent() {
    let d = direct(&[]).await;
    let (a, b, want) = d.segment(137, 1);
    let got = get(&d.url(&format!("/video/{VID}/137/{a}-{b}.ts")), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(&got.body[..], want);
    let key = format!("/media/video.mp4?range={a}-{b}");
    let headers = d.origin.control.headers.lock().unwrap()[&key].clone();
    let ua = headers["user-agent"].to_str().unwrap();
    assert!(ua.contains("Version/26.0 Safari"), "media fetched as {ua}");

    let s = d.origin.stream(251).unwrap();
    let got = get(
        &d.url(&format!("/video/{VID}/251.webm")),
        &[("range", "bytes=100-2099")],
    )
    .await;
    assert_eq!(got.status, 206);
    assert_eq!(&got.body[..], &s.bytes[100..2100]);

    let mpd = get(&d.url(&format!("/video/{VID}.mpd")), &[]).await;
    assert_eq!(mpd.status, 200);
    assert!(mpd.text().contains("<Representation"), "{}", mpd.text());
    assert_eq!(d.yt.player_hits(VID), 1);
}

#[tokio::test]
async fn a_refused_media_url_is_parsed_again_once() {
    let d = direct(&[]).await;
    // The info is cached, then its URL is refused once: one re-parse, new URLs, success.
    assert_eq!(
        get(&d.url(&format!("/video/{VID}.json")), &[]).await.status,
        200
    );
    d.origin.control.refuse_next.store(1, Ordering::SeqCst);
    let (a, b, want) = d.segment(248, 0);
    let got = get(&d.url(&format!("/video/{VID}/248/{a}-{b}.ts")), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(&got.body[..], want);
    assert_eq!(d.yt.player_hits(VID), 2);
    let all = get(&d.url(&format!("/video/{VID}.json?info=all")), &[])
        .await
        .json();
    assert!(
        all["streams"]["248"]["url"]
            .as_str()
            .unwrap()
            .ends_with("&gen=2")
    );

    // Refused again after the re-parse: a clear failure, and no loop.
    d.origin.control.refuse_next.store(2, Ordering::SeqCst);
    let (a, b, _) = d.segment(248, 1);
    let got = get(&d.url(&format!("/video/{VID}/248/{a}-{b}.ts")), &[]).await;
    assert_eq!(got.status, 502, "{}", got.text());
    assert!(got.text().contains("403"), "{}", got.text());
    assert_eq!(d.yt.player_hits(VID), 3);
}

#[tokio::test]
async fn playability_errors_are_typed_and_remembered_briefly() {
    let d = direct(&[]).await;
    d.scenario(
        "botCheckVid1",
        Scenario::Status("LOGIN_REQUIRED".into(), BOT.into()),
    );
    d.scenario(
        "m8uHb5jIGN8",
        Scenario::Recorded("player_m8uHb5jIGN8.json".into()),
    );
    d.scenario(
        "irauhITDrsE",
        Scenario::Recorded("player_irauhITDrsE.json".into()),
    );
    d.scenario(
        "5YceQ8YqYMc",
        Scenario::Recorded("player_5YceQ8YqYMc.json".into()),
    );
    let cases = [
        ("botCheckVid1", 503, "bot"),
        ("m8uHb5jIGN8", 403, "private"),
        ("irauhITDrsE", 403, "age"),
        ("5YceQ8YqYMc", 403, "UNPLAYABLE"),
        ("unknownVid01", 404, "ERROR"),
    ];
    for (id, status, says) in cases {
        let got = get(&d.url(&format!("/video/{id}.json")), &[]).await;
        assert_eq!(got.status, status, "{id}: {}", got.text());
        let msg = got.json()["msg"].as_str().unwrap().to_owned();
        assert!(msg.contains(says), "{id}: {msg}");
        assert!(!msg.contains('\n'));
        assert_eq!(
            got.header("cache-control"),
            "",
            "{id}: errors are not cached downstream"
        );
    }
    // Remembered for a while: no second parse.
    for (id, status, _) in cases {
        assert_eq!(
            get(&d.url(&format!("/video/{id}.json")), &[]).await.status,
            status
        );
        assert_eq!(d.yt.player_hits(id), 1, "{id}");
    }
}

fn expected_urls(page: &str) -> BTreeMap<String, String> {
    let all: Value = serde_json::from_slice(&fixture("expected_signed_urls.json")).unwrap();
    all[page]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// The player API refuses; the watch page has ciphered formats; the (synthetic) player
/// script deciphers them — in both known script shapes.
#[tokio::test]
async fn the_watch_page_and_its_cipher() {
    let d = direct(&[]).await;
    for (id, page) in [
        ("WXxV9g7lsFE", "watch_WXxV9g7lsFE.html"),
        ("YQHsXMglC9A", "watch_YQHsXMglC9A.html"),
    ] {
        d.scenario(id, Scenario::Status("LOGIN_REQUIRED".into(), BOT.into()));
        let got = get(&d.url(&format!("/video/{id}.json?info=all")), &[]).await;
        assert_eq!(got.status, 200, "{id}: {}", got.text());
        let info = got.json();
        let urls: BTreeMap<String, String> = info["streams"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["url"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(urls, expected_urls(page), "{id}");
        assert_eq!(d.yt.control.hits.exact(&format!("/watch?v={id}")), 1);
    }
    assert_eq!(d.yt.control.hits.exact("/s/player/2840754e"), 1);
    assert_eq!(d.yt.control.hits.exact("/s/player/62f90c99"), 1);
}

#[tokio::test]
async fn a_live_video_answers_its_json() {
    let d = direct(&[]).await;
    d.scenario(
        "5qap5aO4i9A",
        Scenario::Status("UNPLAYABLE".into(), "try the page".into()),
    );
    let got = get(&d.url("/video/5qap5aO4i9A.json"), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let info = got.json();
    assert_eq!(info["duration"], "0");
    let streams = info["streams"].as_object().unwrap();
    assert!(!streams.is_empty());
    for (itag, s) in streams {
        // Never served by segment: no length, ranges as `{}` (the Go shape).
        assert_eq!(s["len"], "", "{itag}");
        assert_eq!(s["initRange"], serde_json::json!({}), "{itag}");
        assert_eq!(s["indexRange"], serde_json::json!({}), "{itag}");
    }
    let itag = streams.keys().next().unwrap();
    let got = get(&d.url(&format!("/video/5qap5aO4i9A/{itag}/0-99.ts")), &[]).await;
    assert!(got.status >= 400, "{}", got.status);
}

#[tokio::test]
async fn without_a_parser_in_the_policy_direct_mode_says_so() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("direct-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chaos.wasm");
    std::fs::write(&file, CHAOS).unwrap();
    let path = file.display().to_string();
    let d = direct(&[("POLICY", path.as_str())]).await;
    let got = get(&d.url(&format!("/video/{VID}.json")), &[]).await;
    assert_eq!(got.status, 503, "{}", got.text());
    assert!(got.text().contains("no YouTube parser"), "{}", got.text());
    assert_eq!(d.yt.player_hits(VID), 0);
}

/// The DataChannel side in direct mode: queries and resolves are decided on the parsed info
/// and served byte for byte from the stream URLs.
#[tokio::test]
async fn queries_and_resolves_in_direct_mode() {
    let origin = TestOrigin::start(fixture_streams().unwrap()).await.unwrap();
    let yt = YouTubeStandIn::start(origin.addr, origin.streams.clone())
        .await
        .unwrap();
    let policy = Arc::new(Policy::with_default(PolicyConfig::default()).await.unwrap());
    assert!(policy.has_youtube());
    let client = http_client(None, Duration::from_secs(10)).unwrap();
    let hub = MediaHub::new(
        policy,
        Origin::new(client, None),
        url::Url::parse(&yt.url()).unwrap(),
        &HubConfig::default(),
    );
    let request = |kind, vid: &str, itag, index| Request {
        kind,
        segment: SegmentRef {
            vid: vid.into(),
            itag,
            index,
        },
        peer: "p".into(),
        now_ms: 0,
    };
    for s in origin.streams.iter() {
        let last = s.layout.segments.len() as u32 - 1;
        let found = hub
            .decide(&request(RequestKind::Query, VID, s.itag, last))
            .await;
        assert!(matches!(found, Decision::Reply(_)), "{found:?}");
        let Decision::Send(plan) = hub
            .decide(&request(RequestKind::Resolve, VID, s.itag, last))
            .await
        else {
            panic!("no send plan for {}", s.itag)
        };
        let seg = request(RequestKind::Resolve, VID, s.itag, last).segment;
        let bytes = hub.segment_lease(&seg, plan.range).await.unwrap();
        let r = s.layout.segments[last as usize];
        assert_eq!(&bytes[..], &s.bytes[r.start as usize..=r.end as usize]);
    }
    // A video YouTube will not play: silence, not a found.
    let silent = hub
        .decide(&request(RequestKind::Query, "unknownVid01", 137, 0))
        .await;
    assert!(matches!(silent, Decision::Silent(_)), "{silent:?}");
    assert_eq!(yt.player_hits(VID), 1);
}

/// YouTube down: 502; YouTube slower than `ORIGIN_TIMEOUT`: 504 saying it timed out; once it
/// answers again (and the failure is forgotten, 5 s) the video parses.
#[tokio::test]
async fn a_youtube_that_is_down_or_slow_is_a_bad_or_timed_out_gateway() {
    let port = videortc_tests::node::free_port().unwrap();
    let nowhere = format!("http://127.0.0.1:{port}");
    let node = Node::start(&[], &[("YOUTUBE_URL", nowhere.as_str())])
        .await
        .unwrap();
    let got = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
    assert_eq!(got.status, 502, "{}", got.text());
    drop(node);

    let d = direct(&[("ORIGIN_TIMEOUT", "1")]).await;
    d.yt.control.delay_ms.store(2500, Ordering::SeqCst);
    let got = get(&d.url(&format!("/video/{VID}.json")), &[]).await;
    assert_eq!(got.status, 504, "{}", got.text());
    assert!(got.text().contains("timed out"), "{}", got.text());
    d.yt.control.delay_ms.store(0, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = get(&d.url(&format!("/video/{VID}.json")), &[]).await;
        if got.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", got.text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A parser change ships as a policy component: swapping in one with another client version
/// into the running node changes the requests YouTube sees, with no node change.
#[tokio::test]
async fn a_parser_change_ships_as_a_new_component() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("direct-alt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.wasm");
    std::fs::write(&file, videortc::policy::DEFAULT_COMPONENT).unwrap();
    let path = file.display().to_string();
    let d = direct(&[("POLICY", path.as_str())]).await;
    let version = |d: &Direct| {
        let h = d.yt.last_headers("player").unwrap();
        h.get("x-youtube-client-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let got = get(&d.url(&format!("/video/{VID}.json")), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(version(&d), "1.02");

    let staged = dir.join("policy.wasm.new");
    std::fs::write(&staged, ALT_CLIENT).unwrap();
    std::fs::rename(&staged, &file).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status: Value =
            serde_json::from_str(&get(&d.url("/status"), &[]).await.text()).unwrap();
        let describe = status["policy"]["describe"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if describe.ends_with("+alt-client") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never swapped: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next video is parsed by the new component.
    d.scenario(
        "otherVideo01",
        Scenario::Status("UNPLAYABLE".into(), "Not here".into()),
    );
    let got = get(&d.url("/video/otherVideo01.json"), &[]).await;
    assert_eq!(got.status, 403, "{}", got.text());
    assert_eq!(version(&d), "1.03");
}
