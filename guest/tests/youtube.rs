//! The YouTube state machine driven end to end on recorded responses
//! (`tests/fixtures/youtube/README.md` names their sources).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;
use videortc_guest::types::ByteRange;
use videortc_guest::youtube::{
    self, Caption, Job, LoginKind, Method, Playability, Request, Response, Step, StreamInfo,
    VideoInfo, YoutubeError,
};

const BASE: &str = "http://127.0.0.1:8080/";
const VISIONOS_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 15_7_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Safari/605.1.15";
const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";
const VISITOR: &str = "CgtUXzYyX3M2S0JwVSj_jqeIBg%3D%3D";
const BOT: &str = r#"{"playabilityStatus":{"status":"LOGIN_REQUIRED","reason":"Sign in to confirm you’re not a bot","errorScreen":{"playerErrorMessageRenderer":{"subreason":{"runs":[{"text":"This helps protect our community. "},{"text":"Learn more"}]}}}}}"#;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/youtube/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ok(body: impl Into<Vec<u8>>) -> Result<Response, String> {
    Ok(Response {
        status: 200,
        body: body.into(),
    })
}

fn status(code: u16) -> Result<Response, String> {
    Ok(Response {
        status: code,
        body: b"<html>error</html>".to_vec(),
    })
}

fn job(video_id: &str, now_unix: u64) -> Job<'_> {
    Job {
        video_id,
        youtube_url: BASE,
        now_unix,
    }
}

#[track_caller]
fn fetch(step: Step) -> (Request, Vec<u8>) {
    match step {
        Step::Fetch { request, state } => (request, state),
        other => panic!("expected a fetch, got {other:?}"),
    }
}

#[track_caller]
fn done(step: Step) -> VideoInfo {
    match step {
        Step::Done(info) => info,
        other => panic!("expected video info, got {other:?}"),
    }
}

#[track_caller]
fn failed(step: Step) -> YoutubeError {
    match step {
        Step::Failed(e) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn visitor_response() -> Vec<u8> {
    format!(r#"{{"responseContext":{{"visitorData":"{VISITOR}"}}}}"#).into_bytes()
}

/// Runs start → visitor id → player and returns the player step.
fn through_player(video_id: &str, now: u64, player: Result<Response, String>) -> Step {
    let (_, state) = fetch(youtube::start(&job(video_id, now)));
    let (_, state) = fetch(youtube::resume(&state, ok(visitor_response())));
    youtube::resume(&state, player)
}

/// Runs the flow to the watch page request, the player request failing with `player`.
fn to_watch_page(video_id: &str, now: u64, player: Result<Response, String>) -> (Request, Vec<u8>) {
    fetch(through_player(video_id, now, player))
}

fn range(start: u64, end: u64) -> Option<ByteRange> {
    Some(ByteRange { start, end })
}

fn expected_urls(page: &str) -> BTreeMap<u32, String> {
    let all: Value = serde_json::from_slice(&fixture("expected_signed_urls.json")).unwrap();
    all[page]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn visionos_flow() {
    // The fixture's URLs expire at 1628052447.
    let now = 1_628_052_447 - 30_000;
    let (request, state) = fetch(youtube::start(&job("QRS8MkLhQmM", now)));
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "http://127.0.0.1:8080/youtubei/v1/visitor_id?prettyPrint=false"
    );
    assert_eq!(request.label, "visitor-id");
    assert_eq!(request.cache_secs, 0);
    assert_eq!(header(&request, "X-YouTube-Client-Name"), Some("101"));
    assert_eq!(header(&request, "X-YouTube-Client-Version"), Some("1.02"));
    assert_eq!(header(&request, "User-Agent"), Some(VISIONOS_UA));
    assert_eq!(header(&request, "X-Goog-Visitor-Id"), None);
    let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"context":{"client":{"clientName":"VISIONOS","clientVersion":"1.02",
            "deviceMake":"Apple","deviceModel":"RealityDevice17,1","osName":"visionOS",
            "osVersion":"26.5.23O471","hl":"en","gl":"US","utcOffsetMinutes":0}}})
    );
    assert!(state.len() < 300, "state of {} bytes", state.len());

    let (request, state) = fetch(youtube::resume(&state, ok(visitor_response())));
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "http://127.0.0.1:8080/youtubei/v1/player?prettyPrint=false"
    );
    assert_eq!(request.label, "player");
    assert_eq!(header(&request, "X-Goog-Visitor-Id"), Some(VISITOR));
    assert_eq!(header(&request, "X-Goog-Api-Format-Version"), Some("2"));
    assert_eq!(header(&request, "Origin"), Some("https://www.youtube.com"));
    assert_eq!(header(&request, "Content-Type"), Some("application/json"));
    let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["videoId"], "QRS8MkLhQmM");
    assert_eq!(body["contentCheckOk"], true);
    assert_eq!(body["racyCheckOk"], true);
    assert_eq!(body["context"]["client"]["visitorData"], VISITOR);
    assert_eq!(body["context"]["client"]["clientName"], "VISIONOS");

    let info = done(youtube::resume(
        &state,
        ok(fixture("visionos_player_QRS8MkLhQmM.json")),
    ));
    assert_eq!(info.id, "QRS8MkLhQmM");
    assert_eq!(info.title, "YouTube Captions and Subtitles");
    assert_eq!(info.duration, "97");
    assert_eq!(info.author, "YouTube");
    assert!(!info.live);
    assert_eq!(info.expires_in_secs, Some(21_540));
    assert_eq!(
        info.media_headers,
        [("User-Agent".to_string(), VISIONOS_UA.to_string())]
    );
    assert_eq!(info.warnings, Vec::<String>::new());
    let caption = |lang: &str| Caption {
        url: format!(
            "https://www.youtube.com/api/timedtext?v=QRS8MkLhQmM&exp=xftt,xctw&xorp=true&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0&expire=1628056047&sparams=ip,ipbits,expire,v,exp,xorp,xoaf&signature=1402E3CBC0B785C5AEEFB4AC5D1D796153AFB765.7C4ADFC3F377D979585FB5B641F3E047E7548EEB&key=yt8&lang={lang}&fmt=srv3"
        ),
        language: lang.into(),
    };
    assert_eq!(
        info.captions,
        [caption("zh-Hant"), caption("nl"), caption("en")]
    );
    let summary: Vec<(u32, &str, &str)> = info
        .streams
        .iter()
        .map(|s| (s.itag, s.quality.as_str(), s.mime.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (133, "240p", "video/mp4; codecs=\"avc1.4d4015\""),
            (134, "360p", "video/mp4; codecs=\"avc1.4d401e\""),
            (139, "tiny", "audio/mp4; codecs=\"mp4a.40.5\""),
            (140, "tiny", "audio/mp4; codecs=\"mp4a.40.2\""),
            (160, "144p", "video/mp4; codecs=\"avc1.4d400c\""),
            (242, "240p", "video/webm; codecs=\"vp9\""),
            (243, "360p", "video/webm; codecs=\"vp9\""),
            (249, "tiny", "audio/webm; codecs=\"opus\""),
            (250, "tiny", "audio/webm; codecs=\"opus\""),
            (251, "tiny", "audio/webm; codecs=\"opus\""),
            (278, "144p", "video/webm; codecs=\"vp9\""),
        ]
    );
    let s140 = info.streams.iter().find(|s| s.itag == 140).unwrap();
    assert_eq!(
        *s140,
        StreamInfo {
            itag: 140,
            quality: "tiny".into(),
            mime: "audio/mp4; codecs=\"mp4a.40.2\"".into(),
            url: "https://r1---sn-p5qs7nee.googlevideo.com/videoplayback?expire=1628052447&ei=f8cJYYTRI5ThgwOJ9Jr4CQ&ip=73.86.141.82&id=o-AGmVtQysmZjuxRF3WhXHVHjXQzde6GJfxhrZzc5wZ7N2&itag=140&source=youtube&requiressl=yes&mh=Kg&mm=31%2C29&mn=sn-p5qs7nee%2Csn-p5qlsnd6&ms=au%2Crdu&mv=m&mvi=1&pl=20&initcwndbps=2256250&vprv=1&mime=audio%2Fmp4&gir=yes&clen=1535192&dur=96.618&lmt=1507710713272588&mt=1628030461&fvip=1&keepalive=yes&fexp=24001373%2C24007246&c=ANDROID&sparams=expire%2Cei%2Cip%2Cid%2Citag%2Csource%2Crequiressl%2Cvprv%2Cmime%2Cgir%2Cclen%2Cdur%2Clmt&sig=AOq0QJ8wRQIhAL-6z_ZBn_jz-6xMqD88iHuExn5mCl3zd6W0W-20xdTDAiBRuZ3oAxSujLoazzzQhuDRbRKP0sTg3CYiZlkGZcnYMw%3D%3D&lsparams=mh%2Cmm%2Cmn%2Cms%2Cmv%2Cmvi%2Cpl%2Cinitcwndbps&lsig=AG3C_xAwRQIgDTddSK_ZqSBEH4fRc-uto8XDDf1HLty-ZGi6Z34r0ZkCIQC0lM1QpZuIaBh5k_R8X1bFKFB0VXXCv1CwAx752dyGCQ%3D%3D".into(),
            content_length: Some(1_535_192),
            init_range: range(0, 591),
            index_range: range(592, 743),
        }
    );
    // Of the two 251 audio tracks the default (English) one is kept, though it came second.
    let s251 = info.streams.iter().find(|s| s.itag == 251).unwrap();
    assert!(!s251.url.contains("xtags"), "{}", s251.url);
    assert_eq!(
        (s251.content_length, s251.init_range, s251.index_range),
        (Some(1_117_326), range(0, 271), range(272, 437))
    );
}

#[test]
fn expiry_follows_the_url_when_sooner() {
    let info = done(through_player(
        "QRS8MkLhQmM",
        1_628_052_447 - 100,
        ok(fixture("visionos_player_QRS8MkLhQmM.json")),
    ));
    assert_eq!(info.expires_in_secs, Some(100));
    let info = done(through_player(
        "QRS8MkLhQmM",
        1_628_052_447 + 5,
        ok(fixture("visionos_player_QRS8MkLhQmM.json")),
    ));
    assert_eq!(info.expires_in_secs, Some(0));
}

#[test]
fn goes_on_without_visitor_data() {
    for visitor in [
        Err("connection reset".to_string()),
        status(500),
        ok("not json"),
        ok(r#"{"responseContext":{}}"#),
        ok(r#"{"responseContext":{"visitorData":"bad\nvalue"}}"#),
    ] {
        let (_, state) = fetch(youtube::start(&job("QRS8MkLhQmM", 0)));
        let (request, state) = fetch(youtube::resume(&state, visitor));
        assert_eq!(request.label, "player");
        assert_eq!(header(&request, "X-Goog-Visitor-Id"), None);
        let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["context"]["client"].get("visitorData"), None);
        let info = done(youtube::resume(
            &state,
            ok(fixture("visionos_player_QRS8MkLhQmM.json")),
        ));
        assert_eq!(info.warnings.len(), 1);
        assert!(
            info.warnings[0].starts_with("going on without visitorData: "),
            "{:?}",
            info.warnings
        );
    }
    let (_, state) = fetch(youtube::start(&job("QRS8MkLhQmM", 0)));
    let (_, state) = fetch(youtube::resume(&state, Err("timeout".into())));
    let info = done(youtube::resume(
        &state,
        ok(fixture("visionos_player_QRS8MkLhQmM.json")),
    ));
    assert_eq!(
        info.warnings,
        ["going on without visitorData: visitor-id request failed: timeout"]
    );
}

#[test]
fn watch_page_with_classic_cipher() {
    let now = 1_628_052_448 - 30_000;
    let (request, state) = to_watch_page("WXxV9g7lsFE", now, ok(BOT));
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "http://127.0.0.1:8080/watch?v=WXxV9g7lsFE&bpctr=9999999999&has_verified=1"
    );
    assert_eq!(request.label, "watch-page");
    assert_eq!(request.body, None);
    assert_eq!(header(&request, "User-Agent"), Some(BROWSER_UA));

    let (request, state) = fetch(youtube::resume(
        &state,
        ok(fixture("watch_WXxV9g7lsFE.html")),
    ));
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "http://127.0.0.1:8080/s/player/2840754e/player_ias.vflset/en_US/base.js"
    );
    assert_eq!(request.label, "player-script");
    assert_eq!(request.cache_secs, 6 * 3600);
    // Only the parsed formats travel in the state, not the 32 KB page.
    assert!(state.len() < 30_000, "state of {} bytes", state.len());

    let info = done(youtube::resume(&state, ok(fixture("player_classic.js"))));
    assert_eq!(info.id, "WXxV9g7lsFE");
    assert_eq!(info.title, "Replay (Prequel) [Music Video] - Iyaz");
    assert_eq!(info.duration, "197");
    assert_eq!(info.author, "iyazlive");
    assert!(!info.live);
    assert_eq!(info.captions, []);
    assert_eq!(info.expires_in_secs, Some(21_540));
    assert_eq!(
        info.media_headers,
        [("User-Agent".to_string(), BROWSER_UA.to_string())]
    );
    assert_eq!(
        info.warnings,
        [
            "client VISIONOS failed, trying the watch page: video not playable: LOGIN_REQUIRED (bot check of this IP): Sign in to confirm you’re not a bot",
            "n parameter of player 2840754e not transformed: media may be throttled",
        ]
    );
    let urls: BTreeMap<u32, String> = info
        .streams
        .iter()
        .map(|s| (s.itag, s.url.clone()))
        .collect();
    assert_eq!(urls, expected_urls("watch_WXxV9g7lsFE.html"));
    assert!(urls[&251].ends_with("&ratebypass=yes&sig=%3DQcENx0yScwmQzadDGu9w9SZPrwYKpvLUBS08_Ie7CrdCQ%3DC0CX2fO6JJ9z-xb97tgBkbfYSJX0zsQUL5ucQS-DtlHWgIQRw8AQ0qO-"));
    // Itag 18's URL already has ratebypass=yes: not added twice.
    assert_eq!(urls[&18].matches("ratebypass=yes").count(), 1);
    let s18 = &info.streams[0];
    assert_eq!((s18.itag, s18.quality.as_str()), (18, "360p"));
    assert_eq!(
        (s18.content_length, s18.init_range, s18.index_range),
        (Some(17_302_142), None, None)
    );
    let s136 = info.streams.iter().find(|s| s.itag == 136).unwrap();
    assert_eq!(
        (
            s136.quality.as_str(),
            s136.content_length,
            s136.init_range,
            s136.index_range
        ),
        ("720p", Some(28_437_861), range(0, 739), range(740, 1263))
    );
}

#[test]
fn watch_page_with_2026_cipher_after_a_transport_error() {
    let (_, state) = to_watch_page("YQHsXMglC9A", 1_608_025_495 - 60, Err("timeout".into()));
    let (request, state) = fetch(youtube::resume(
        &state,
        ok(fixture("watch_YQHsXMglC9A.html")),
    ));
    assert_eq!(
        request.url,
        "http://127.0.0.1:8080/s/player/62f90c99/player_ias.vflset/en_US/base.js"
    );
    let info = done(youtube::resume(&state, ok(fixture("player_2026.js"))));
    assert_eq!(
        (
            info.id.as_str(),
            info.title.as_str(),
            info.duration.as_str(),
            info.author.as_str()
        ),
        ("YQHsXMglC9A", "Adele - Hello", "367", "AdeleVEVO")
    );
    let urls: BTreeMap<u32, String> = info
        .streams
        .iter()
        .map(|s| (s.itag, s.url.clone()))
        .collect();
    assert_eq!(urls, expected_urls("watch_YQHsXMglC9A.html"));
    assert!(urls[&251].ends_with("&ratebypass=yes&sig=54H4JNNx98JcFOcbmCRciV-_itN2NAl1V1aJuGCSbhBiApj05UzwssSQCNcLH9KpkV2ml_GcYH1ESJFb23D7UqnIAhIAiw8JQ0qOAQOAR"));
    assert_eq!(info.expires_in_secs, Some(60));
    assert_eq!(
        info.warnings,
        [
            "client VISIONOS failed, trying the watch page: player request failed: timeout",
            "n parameter of player 62f90c99 not transformed: media may be throttled",
        ]
    );
}

#[test]
fn unknown_player_script_is_a_cipher_error() {
    let (_, state) = to_watch_page("WXxV9g7lsFE", 0, status(403));
    let (_, state) = fetch(youtube::resume(
        &state,
        ok(fixture("watch_WXxV9g7lsFE.html")),
    ));
    assert_eq!(
        failed(youtube::resume(
            &state,
            ok("var _yt_player={};(function(g){g.x=1})(_yt_player);")
        )),
        YoutubeError::Cipher {
            player: "2840754e".into(),
            message: "no signature function found".into()
        }
    );
    // A script of the 2026 shape whose branch for the selector cannot be decided.
    let odd = String::from_utf8(fixture("player_2026.js"))
        .unwrap()
        .replace("(d&28)==d&&(I=", "(L.length>d)&&(I=");
    let err = failed(youtube::resume(&state, ok(odd)));
    assert!(
        matches!(&err, YoutubeError::Cipher { player, message } if player == "2840754e" && message.contains("guard")),
        "{err}"
    );
    assert_eq!(
        failed(youtube::resume(&state, status(404))),
        YoutubeError::Http {
            what: "player-script".into(),
            status: Some(404),
            message: "unexpected status".into()
        }
    );
    assert_eq!(
        failed(youtube::resume(&state, Err("dns".into()))),
        YoutubeError::Http {
            what: "player-script".into(),
            status: None,
            message: "dns".into()
        }
    );
}

#[test]
fn live_video_from_the_watch_page() {
    // VISIONOS answers OK for the live video but with manifests only: not usable.
    let live_manifests_only = r#"{"playabilityStatus":{"status":"OK"},"videoDetails":{"videoId":"5qap5aO4i9A","title":"lofi","lengthSeconds":"0","author":"ChilledCow","isLive":true},"streamingData":{"expiresInSeconds":"21540","hlsManifestUrl":"https://m/hls"}}"#;
    let now = 1_608_025_486 - 1_000;
    let (_, state) = to_watch_page("5qap5aO4i9A", now, ok(live_manifests_only));
    let info = done(youtube::resume(
        &state,
        ok(fixture("watch_live_5qap5aO4i9A.html")),
    ));
    assert!(info.live);
    assert_eq!(info.duration, "0");
    assert_eq!(info.title, "lofi hip hop radio - beats to relax/study to");
    let summary: Vec<(u32, &str)> = info
        .streams
        .iter()
        .map(|s| (s.itag, s.quality.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (133, "240p"),
            (134, "360p"),
            (135, "480p"),
            (136, "720p"),
            (137, "1080p"),
            (140, "tiny"),
            (160, "144p")
        ]
    );
    for s in &info.streams {
        assert!(s.url.starts_with(
            "https://r2---sn-hp57knss.googlevideo.com/videoplayback?expire=1608025486&"
        ));
        assert_eq!(
            (s.content_length, s.init_range, s.index_range),
            (None, None, None)
        );
    }
    assert_eq!(info.expires_in_secs, Some(1_000));
    assert_eq!(
        info.warnings,
        [
            "client VISIONOS failed, trying the watch page: unreadable player response: no format with a url",
            "n parameter of player 62f90c99 not transformed: media may be throttled",
        ]
    );
}

#[test]
fn visionos_live_formats_are_accepted() {
    let live = r#"{"playabilityStatus":{"status":"OK"},"videoDetails":{"videoId":"5qap5aO4i9A","title":"lofi","lengthSeconds":"0","author":"C","isLive":true},
        "streamingData":{"adaptiveFormats":[{"itag":136,"url":"https://m/v?itag=136","mimeType":"video/mp4","quality":"hd720","qualityLabel":"720p","targetDurationSec":5},
        {"itag":140,"mimeType":"audio/mp4","quality":"tiny"}]}}"#;
    let info = done(through_player("5qap5aO4i9A", 0, ok(live)));
    assert!(info.live);
    assert_eq!(info.expires_in_secs, None);
    assert_eq!(
        info.streams,
        [StreamInfo {
            itag: 136,
            quality: "720p".into(),
            mime: "video/mp4".into(),
            url: "https://m/v?itag=136".into(),
            content_length: None,
            init_range: None,
            index_range: None,
        }]
    );
}

#[test]
fn age_gate_reports_the_watch_page() {
    let (_, state) = to_watch_page("irauhITDrsE", 0, ok(fixture("player_irauhITDrsE.json")));
    assert_eq!(
        failed(youtube::resume(
            &state,
            ok(fixture("watch_irauhITDrsE.html"))
        )),
        YoutubeError::Unplayable {
            status: Playability::LoginRequired(LoginKind::Age),
            reason: "Sign in to confirm your age".into()
        }
    );
    // Without the page, the VISIONOS answer is the informative one.
    assert_eq!(
        failed(youtube::resume(&state, status(429))),
        YoutubeError::Unplayable {
            status: Playability::LoginRequired(LoginKind::Age),
            reason: "This video may be inappropriate for some users.".into()
        }
    );
}

#[test]
fn private_and_unplayable_videos() {
    let (_, state) = to_watch_page("m8uHb5jIGN8", 0, ok(fixture("player_m8uHb5jIGN8.json")));
    assert_eq!(
        failed(youtube::resume(&state, status(404))),
        YoutubeError::Unplayable {
            status: Playability::LoginRequired(LoginKind::Private),
            reason: "This video is private.".into()
        }
    );
    let (_, state) = to_watch_page("5YceQ8YqYMc", 0, ok(fixture("player_5YceQ8YqYMc.json")));
    assert_eq!(
        failed(youtube::resume(&state, Err("timeout".into()))),
        YoutubeError::Unplayable {
            status: Playability::Unplayable,
            reason: "This live stream recording is not available.".into()
        }
    );
}

#[test]
fn bot_check_everywhere() {
    let (_, state) = to_watch_page("WXxV9g7lsFE", 0, ok(BOT));
    let page = format!(
        "<html><script>var ytInitialPlayerResponse = {};</script></html>",
        BOT.replace('’', "\\u2019")
    );
    let err = failed(youtube::resume(&state, ok(page)));
    assert_eq!(
        err,
        YoutubeError::Unplayable {
            status: Playability::LoginRequired(LoginKind::Bot),
            reason: "Sign in to confirm you’re not a bot".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "video not playable: LOGIN_REQUIRED (bot check of this IP): Sign in to confirm you’re not a bot"
    );
}

#[test]
fn every_playability_status_maps() {
    let cases = [
        ("ERROR", Playability::Error),
        ("UNPLAYABLE", Playability::Unplayable),
        ("LIVE_STREAM_OFFLINE", Playability::LiveStreamOffline),
        ("AGE_CHECK_REQUIRED", Playability::AgeCheckRequired),
        (
            "AGE_VERIFICATION_REQUIRED",
            Playability::AgeVerificationRequired,
        ),
        ("CONTENT_CHECK_REQUIRED", Playability::ContentCheckRequired),
        ("NEW_STATUS", Playability::Other("NEW_STATUS".into())),
        (
            "LOGIN_REQUIRED",
            Playability::LoginRequired(LoginKind::Other),
        ),
    ];
    for (name, want) in cases {
        let response = format!(r#"{{"playabilityStatus":{{"status":"{name}","reason":"why"}}}}"#);
        let (_, state) = to_watch_page("abcdefghijk", 0, ok(response.clone()));
        let page = format!("var ytInitialPlayerResponse = {response};</script>");
        assert_eq!(
            failed(youtube::resume(&state, ok(page))),
            YoutubeError::Unplayable {
                status: want,
                reason: "why".into()
            }
        );
    }
}

#[test]
fn unusable_responses_fall_back_then_fail_clearly() {
    let sabr_only = r#"{"playabilityStatus":{"status":"OK"},"videoDetails":{"videoId":"abcdefghijk","title":"t","lengthSeconds":"1","author":"a"},
        "streamingData":{"serverAbrStreamingUrl":"https://m/sabr","adaptiveFormats":[{"itag":251,"mimeType":"audio/webm","quality":"tiny"}]}}"#;
    let other_video = sabr_only.replace("abcdefghijk", "zzzzzzzzzzz");
    for player in [
        ok(sabr_only),
        ok(other_video.as_str()),
        ok("{}"),
        ok("<html>"),
        status(500),
    ] {
        let (request, state) = to_watch_page("abcdefghijk", 0, player);
        assert_eq!(request.label, "watch-page");
        // The watch page is no better: its own error is reported.
        let page = format!("<script>var ytInitialPlayerResponse = {sabr_only};</script>");
        assert_eq!(
            failed(youtube::resume(&state, ok(page))),
            YoutubeError::BadResponse {
                what: "watch-page".into(),
                message: "no format with a url or a cipher".into()
            }
        );
    }
    let (_, state) = to_watch_page("abcdefghijk", 0, status(500));
    assert_eq!(
        failed(youtube::resume(&state, ok("<html>consent</html>"))),
        YoutubeError::BadResponse {
            what: "watch-page".into(),
            message: "no ytInitialPlayerResponse object".into()
        }
    );
    assert_eq!(
        failed(youtube::resume(&state, status(503))),
        YoutubeError::Http {
            what: "watch-page".into(),
            status: Some(503),
            message: "unexpected status".into()
        }
    );
    // Ciphered formats need the player script URL.
    let (_, state) = to_watch_page("WXxV9g7lsFE", 0, status(500));
    let page = String::from_utf8(fixture("watch_WXxV9g7lsFE.html"))
        .unwrap()
        .replace("\"jsUrl\"", "\"cssUrl\"");
    assert_eq!(
        failed(youtube::resume(&state, ok(page))),
        YoutubeError::BadResponse {
            what: "watch-page".into(),
            message: "ciphered formats but no player script URL".into()
        }
    );
}

#[test]
fn bad_jobs_and_states() {
    for (id, url) in [
        ("short", "https://www.youtube.com"),
        ("abc&def=ghi", "https://www.youtube.com"),
        ("QRS8MkLhQmM", "ftp://www.youtube.com"),
        ("QRS8MkLhQmM", "https://"),
        ("QRS8MkLhQmM", "https://www.youtube.com/?x=1"),
        ("QRS8MkLhQmM", "https://www.you tube.com"),
    ] {
        let job = Job {
            video_id: id,
            youtube_url: url,
            now_unix: 0,
        };
        assert!(
            matches!(
                youtube::start(&job),
                Step::Failed(YoutubeError::BadJob { .. })
            ),
            "{id} {url}"
        );
    }
    let (request, state) = fetch(youtube::start(&Job {
        video_id: "QRS8MkLhQmM",
        youtube_url: "https://www.youtube.com",
        now_unix: 0,
    }));
    assert_eq!(
        request.url,
        "https://www.youtube.com/youtubei/v1/visitor_id?prettyPrint=false"
    );
    let text = String::from_utf8(state).unwrap();
    for corrupt in [
        String::new(),
        "garbage".into(),
        "{}".into(),
        text.replace("\"version\":1", "\"version\":2"),
        text.replace("QRS8MkLhQmM", "bad id!"),
        text.replace("https://www.youtube.com", "file:///etc"),
        text.replace('}', ",\"extra\":1}"),
    ] {
        let err = failed(youtube::resume(corrupt.as_bytes(), ok(visitor_response())));
        assert!(
            matches!(&err, YoutubeError::BadResponse { what, .. } if what == "state"),
            "{corrupt}: {err:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_responses_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        code in 0u16..600,
        stage in 0usize..4,
    ) {
        // Reach each stage with good responses, then feed it anything.
        let (_, mut state) = fetch(youtube::start(&job("WXxV9g7lsFE", 0)));
        let good = [ok(visitor_response()), status(500), ok(fixture("watch_WXxV9g7lsFE.html"))];
        for response in good.into_iter().take(stage) {
            state = fetch(youtube::resume(&state, response)).1;
        }
        let _ = youtube::resume(&state, Ok(Response { status: code, body: body.clone() }));
        let _ = youtube::resume(&state, Ok(Response { status: 200, body }));
    }

    #[test]
    fn arbitrary_states_never_panic(state in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = youtube::resume(&state, ok(visitor_response()));
    }

    #[test]
    fn mangled_pages_never_panic(cut in 0usize..32_482, byte in any::<u8>()) {
        let (_, state) = to_watch_page("WXxV9g7lsFE", 0, status(500));
        let mut page = fixture("watch_WXxV9g7lsFE.html");
        if let Some(b) = page.get_mut(cut) {
            *b = byte;
        }
        let _ = youtube::resume(&state, ok(page.clone()));
        page.truncate(cut);
        let _ = youtube::resume(&state, ok(page));
    }
}
