//! The YouTube Data API routes of a real node against a stand-in: `part` values, the key,
//! caching, JSONP, error relaying.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use http_common::get;
use videortc_tests::node::Node;
use videortc_tests::stand_in::{API_KEY, Google};

async fn setup(key: Option<&str>) -> (Google, Node) {
    let google = Google::start().await.unwrap();
    let api = google.api_url();
    let mut env = vec![("YOUTUBE_API_URL", api.as_str())];
    if let Some(k) = key {
        env.push(("YOUTUBE_API_KEY", k));
    }
    let node = Node::start(&[], &env).await.unwrap();
    (google, node)
}

#[tokio::test]
async fn every_resource_with_videoproxys_part_and_the_key() {
    let (google, node) = setup(Some(API_KEY)).await;
    for (resource, part) in [
        ("videos", "id,snippet,contentDetails,statistics"),
        ("search", "id,snippet"),
        ("channels", "id,snippet,contentDetails,statistics"),
        ("playlists", "id,snippet"),
        ("playlistItems", "id,snippet,contentDetails"),
        ("videoCategories", "id,snippet"),
    ] {
        let got = get(
            &format!(
                "{}/video/api/v3/{resource}?part=snippet&q=caf%C3%A9+au+lait&maxResults=5",
                node.url()
            ),
            &[("cookie", "a=1")],
        )
        .await;
        assert_eq!(got.status, 200, "{resource}: {}", got.text());
        assert_eq!(got.header("cache-control"), "public,max-age=864000");
        assert_eq!(got.header("access-control-allow-origin"), "*");
        let body = got.json();
        assert_eq!(body["kind"], format!("youtube#{resource}ListResponse"));
        assert_eq!(body["part"], part, "{resource}");
        let query: Vec<(String, String)> = serde_json::from_value(body["query"].clone()).unwrap();
        assert!(query.contains(&("q".into(), "café au lait".into())));
        assert!(query.contains(&("key".into(), API_KEY.into())));
        assert_eq!(google.seen.hits(&format!("/youtube/v3/{resource}?")), 1);
    }
    // Nothing of the client's own headers reached the API.
    for (_, h) in google.seen.requests() {
        assert!(h.get("cookie").is_none());
    }
}

#[tokio::test]
async fn answers_are_cached_and_jsonp_wraps_them() {
    let (google, node) = setup(Some(API_KEY)).await;
    let a = get(
        &format!("{}/video/api/v3/search?q=x&type=video", node.url()),
        &[],
    )
    .await;
    // The same question in another order, and as JSONP: no new upstream request.
    let b = get(
        &format!("{}/video/api/v3/search?type=video&q=x", node.url()),
        &[],
    )
    .await;
    assert_eq!(a.body, b.body);
    let j = get(
        &format!(
            "{}/video/api/v3/search?q=x&callback=cb.done_1&type=video",
            node.url()
        ),
        &[],
    )
    .await;
    assert_eq!(j.status, 200);
    assert_eq!(
        j.header("content-type"),
        "application/javascript; charset=utf-8"
    );
    let text = j.text();
    let inner = text
        .strip_prefix("/**/cb.done_1(")
        .and_then(|t| t.strip_suffix(");"))
        .unwrap_or_else(|| panic!("not JSONP: {text}"));
    assert_eq!(inner.as_bytes(), &a.body[..]);
    assert_eq!(google.seen.hits("/youtube/v3/search?"), 1);
    let bad = get(
        &format!("{}/video/api/v3/search?q=x&callback=alert(1)", node.url()),
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("bad callback"));
}

#[tokio::test]
async fn the_clients_key_wins_and_errors_are_relayed_uncached() {
    let (google, node) = setup(Some(API_KEY)).await;
    for _ in 0..2 {
        let got = get(
            &format!("{}/video/api/v3/videos?id=x&key=wrong", node.url()),
            &[],
        )
        .await;
        assert_eq!(got.status, 400);
        assert_eq!(got.json()["error"]["message"], "API key not valid.");
        assert_eq!(got.header("cache-control"), "");
    }
    assert_eq!(
        google.seen.hits("/youtube/v3/videos?"),
        2,
        "errors are not cached"
    );

    let (_google, keyless) = setup(None).await;
    let got = get(&format!("{}/video/api/v3/videos?id=x", keyless.url()), &[]).await;
    assert_eq!(got.status, 503);
    assert!(got.text().contains("YOUTUBE_API_KEY"));
}
