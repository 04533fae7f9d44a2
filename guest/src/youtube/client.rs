//! Every client identity and request shape in one place (YOUTUBE-NOTES §2, §4), so a new
//! client ships as a policy update without touching the flow.

use super::{Method, Request};

/// Innertube client name of visionOS (yt-dlp's default client that needs no JavaScript).
const VISIONOS_NAME: &str = "VISIONOS";
/// Its numeric id, for `X-YouTube-Client-Name`.
const VISIONOS_ID: &str = "101";
#[cfg(not(feature = "alt-client"))]
const VISIONOS_VERSION: &str = "1.02";
/// The test-only `alt-client` build: what a parser update that moves the client on looks like.
#[cfg(feature = "alt-client")]
const VISIONOS_VERSION: &str = "1.03";
const VISIONOS_DEVICE_MAKE: &str = "Apple";
const VISIONOS_DEVICE_MODEL: &str = "RealityDevice17,1";
const VISIONOS_OS_NAME: &str = "visionOS";
const VISIONOS_OS_VERSION: &str = "26.5.23O471";
/// yt-dlp's User-Agent for VISIONOS; media GETs must reuse it.
pub(crate) const VISIONOS_USER_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 15_7_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Safari/605.1.15";

/// A desktop browser, for the watch page and the player script (and so for their media URLs).
pub(crate) const BROWSER_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";

/// The origin YouTube's own clients send, whatever host the requests go to.
const ORIGIN: &str = "https://www.youtube.com";

/// Player scripts are immutable per URL; the host may cache them this long (6 h).
pub(crate) const PLAYER_SCRIPT_CACHE_SECS: u32 = 6 * 3600;

/// Request labels (also the `what` of errors).
pub(crate) const VISITOR_ID: &str = "visitor-id";
pub(crate) const PLAYER: &str = "player";
pub(crate) const WATCH_PAGE: &str = "watch-page";
pub(crate) const PLAYER_SCRIPT: &str = "player-script";

/// The client name used in warnings about VISIONOS URLs.
pub(crate) const VISIONOS_CLIENT: &str = VISIONOS_NAME;

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// The innertube `context.client` of VISIONOS.
fn visionos_context(visitor: Option<&str>) -> serde_json::Value {
    let mut client = serde_json::json!({
        "clientName": VISIONOS_NAME,
        "clientVersion": VISIONOS_VERSION,
        "deviceMake": VISIONOS_DEVICE_MAKE,
        "deviceModel": VISIONOS_DEVICE_MODEL,
        "osName": VISIONOS_OS_NAME,
        "osVersion": VISIONOS_OS_VERSION,
        "hl": "en",
        "gl": "US",
        "utcOffsetMinutes": 0,
    });
    if let (Some(visitor), Some(map)) = (visitor, client.as_object_mut()) {
        map.insert("visitorData".into(), visitor.into());
    }
    serde_json::json!({ "client": client })
}

fn visionos_headers(visitor: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        header("Content-Type", "application/json"),
        header("User-Agent", VISIONOS_USER_AGENT),
        header("X-Goog-Api-Format-Version", "2"),
        header("X-YouTube-Client-Name", VISIONOS_ID),
        header("X-YouTube-Client-Version", VISIONOS_VERSION),
        header("Origin", ORIGIN),
    ];
    if let Some(visitor) = visitor {
        headers.push(header("X-Goog-Visitor-Id", visitor));
    }
    headers
}

fn browser_headers() -> Vec<(String, String)> {
    vec![
        header("User-Agent", BROWSER_USER_AGENT),
        header("Accept-Language", "en-US,en;q=0.9"),
        // Pre-answers the EU cookie consent page (as yt-dlp does), which has no player data.
        header("Cookie", "SOCS=CAI"),
    ]
}

/// `POST /youtubei/v1/visitor_id`: a fresh `visitorData`, without which player responses
/// are unreliable.
pub(crate) fn visitor_id(base: &str) -> Request {
    let body = serde_json::json!({ "context": visionos_context(None) });
    Request {
        method: Method::Post,
        url: format!("{base}/youtubei/v1/visitor_id?prettyPrint=false"),
        headers: visionos_headers(None),
        body: Some(body.to_string()),
        cache_secs: 0,
        label: VISITOR_ID.into(),
    }
}

/// `POST /youtubei/v1/player` as VISIONOS: direct URLs with ranges, no cipher, no `n`.
pub(crate) fn player(base: &str, video_id: &str, visitor: Option<&str>) -> Request {
    let body = serde_json::json!({
        "context": visionos_context(visitor),
        "videoId": video_id,
        "contentCheckOk": true,
        "racyCheckOk": true,
    });
    Request {
        method: Method::Post,
        url: format!("{base}/youtubei/v1/player?prettyPrint=false"),
        headers: visionos_headers(visitor),
        body: Some(body.to_string()),
        cache_secs: 0,
        label: PLAYER.into(),
    }
}

/// `GET /watch`: the fallback, holding `ytInitialPlayerResponse` and the player script URL.
/// `bpctr`/`has_verified` skip the "content may be inappropriate" interstitial.
pub(crate) fn watch_page(base: &str, video_id: &str) -> Request {
    Request {
        method: Method::Get,
        url: format!("{base}/watch?v={video_id}&bpctr=9999999999&has_verified=1"),
        headers: browser_headers(),
        body: None,
        cache_secs: 0,
        label: WATCH_PAGE.into(),
    }
}

/// `GET {base}{js_path}`: the player script, for the signature transform.
pub(crate) fn player_script(base: &str, js_path: &str) -> Request {
    Request {
        method: Method::Get,
        url: format!("{base}{js_path}"),
        headers: browser_headers(),
        body: None,
        cache_secs: PLAYER_SCRIPT_CACHE_SECS,
        label: PLAYER_SCRIPT.into(),
    }
}

/// The headers media GETs need when the URLs came from VISIONOS.
pub(crate) fn visionos_media_headers() -> Vec<(String, String)> {
    vec![header("User-Agent", VISIONOS_USER_AGENT)]
}

/// The headers media GETs need when the URLs came from the watch page.
pub(crate) fn browser_media_headers() -> Vec<(String, String)> {
    vec![header("User-Agent", BROWSER_USER_AGENT)]
}
