//! The videoproxy routes of a real node in BASE_URL mode against the real test origin:
//! info JSON, DASH manifest, captions, thumbnails, the best-stream download, the allow-list,
//! `CODE_PASS`, CORS, and clear errors for bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod http_common;

use http_common::{get, node, origin, request};
use serde_json::Value;
use videortc::http::video::ids::encode_vid;
use videortc_tests::origin::{CAPTION_LANGS, TITLE, VID, caption_xml};
use videortc_tests::stand_in::{Google, thumbnail};
use videortc_tests::xml;

#[tokio::test]
async fn json_hides_urls_unless_info_all() {
    let origin = origin(true).await;
    let node = node(&origin, &[]).await;
    let direct = get(&format!("{}/{VID}.json", origin.base_url()), &[])
        .await
        .json();

    let got = get(&format!("{}/video/{VID}.json", node.url()), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(got.header("cache-control"), "public,max-age=864000");
    assert_eq!(got.header("access-control-allow-origin"), "*");
    let info = got.json();
    assert_eq!(info["id"], VID);
    assert_eq!(info["title"], TITLE);
    let streams = info["streams"].as_object().unwrap();
    assert_eq!(streams.len(), 4);
    for (itag, s) in streams {
        assert!(s.get("url").is_none(), "{itag} has a url");
        let want = &direct["streams"][itag];
        for k in ["type", "itag", "len", "initRange", "indexRange"] {
            assert_eq!(s[k], want[k], "{itag}.{k}");
        }
    }
    for c in info["captions"].as_array().unwrap() {
        assert!(c.get("url").is_none());
    }

    let all = get(&format!("{}/video/{VID}.json?info=all", node.url()), &[])
        .await
        .json();
    assert_eq!(all["streams"], direct["streams"]);
    assert_eq!(all["captions"], direct["captions"]);
    // The info is fetched once and then served from the cache.
    assert_eq!(
        origin.control.hits(&format!("/{VID}.json")),
        2,
        "one direct, one by the node"
    );
}

fn representation(set: &xml::Element) -> &xml::Element {
    let reps: Vec<_> = set.all("Representation").collect();
    assert_eq!(reps.len(), 1);
    reps[0]
}

#[tokio::test]
async fn mpd_is_an_on_demand_manifest_whose_urls_serve_the_ranges() {
    let origin = origin(false).await;
    let node = node(&origin, &[]).await;
    let got = get(&format!("{}/video/{VID}.mpd", node.url()), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), "application/dash+xml");
    assert_eq!(got.header("cache-control"), "public,max-age=864000");
    let mpd = xml::parse(&got.text()).unwrap();
    assert_eq!(mpd.name, "MPD");
    assert_eq!(mpd.attr("xmlns"), Some("urn:mpeg:dash:schema:mpd:2011"));
    assert_eq!(
        mpd.attr("profiles"),
        Some("urn:mpeg:dash:profile:isoff-on-demand:2011")
    );
    assert_eq!(mpd.attr("type"), Some("static"));
    assert_eq!(mpd.attr("mediaPresentationDuration"), Some("PT6S"));
    assert_eq!(mpd.attr("minBufferTime"), Some("PT2S"));
    let periods: Vec<_> = mpd.all("Period").collect();
    assert_eq!(periods.len(), 1);
    let sets: Vec<_> = periods[0].all("AdaptationSet").collect();
    assert_eq!(sets.len(), 2);
    // Defaults: no default video itag exists here, so the lowest servable video (137);
    // audio 251 is in the default list.
    let picked: Vec<&str> = sets
        .iter()
        .map(|s| representation(s).attr("id").unwrap())
        .collect();
    assert_eq!(picked, ["137", "251"]);
    assert_eq!(sets[0].attr("contentType"), Some("video"));
    assert_eq!(sets[1].attr("contentType"), Some("audio"));

    for set in &sets {
        let rep = representation(set);
        let itag: u32 = rep.attr("id").unwrap().parse().unwrap();
        let s = origin.stream(itag).unwrap();
        let bandwidth: u64 = rep.attr("bandwidth").unwrap().parse().unwrap();
        assert_eq!(bandwidth, (s.layout.len as f64 * 8.0 / 6.0).round() as u64);
        assert_eq!(
            Some(rep.attr("mimeType").unwrap()),
            s.mime.split(';').next()
        );
        assert!(
            s.mime
                .contains(&format!("\"{}\"", rep.attr("codecs").unwrap()))
        );
        let base = rep.child("BaseURL").unwrap().text.clone();
        let ext = if s.mime.contains("webm") {
            "webm"
        } else {
            "mp4"
        };
        assert_eq!(base, format!("{VID}/{itag}.{ext}"));
        let sb = rep.child("SegmentBase").unwrap();
        let index = format!("{}-{}", s.layout.index.start, s.layout.index.end);
        assert_eq!(sb.attr("indexRange"), Some(index.as_str()));
        let init = sb.child("Initialization").unwrap().attr("range").unwrap();
        assert_eq!(
            init,
            format!("{}-{}", s.layout.init.start, s.layout.init.end)
        );
        // A player resolves BaseURL against the manifest URL and asks for these ranges.
        for range in [init, index.as_str()] {
            let got = get(
                &format!("{}/video/{base}", node.url()),
                &[("range", &format!("bytes={range}"))],
            )
            .await;
            assert_eq!(got.status, 206);
            let (a, b) = range.split_once('-').unwrap();
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(&got.body[..], &s.bytes[a..=b], "{base} {range}");
        }
    }

    // Preferences choose; a bad list is a 400.
    let got = get(
        &format!("{}/video/{VID}.mpd?a=140&v=999,248", node.url()),
        &[],
    )
    .await;
    let mpd = xml::parse(&got.text()).unwrap();
    let ids: Vec<&str> = mpd.children[0]
        .all("AdaptationSet")
        .map(|s| representation(s).attr("id").unwrap())
        .collect();
    assert_eq!(ids, ["248", "140"]);
    let bad = get(&format!("{}/video/{VID}.mpd?a=x1", node.url()), &[]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("a: bad itag"), "{}", bad.text());
    assert_eq!(bad.header("cache-control"), "");
}

#[tokio::test]
async fn mpd_without_dash_streams_is_a_404() {
    let origin = origin(false).await;
    origin.control.plain.lock().unwrap().extend([137, 248]);
    let node = node(&origin, &[]).await;
    let got = get(&format!("{}/video/{VID}.mpd", node.url()), &[]).await;
    assert_eq!(got.status, 404);
    assert!(
        got.text().contains("no servable DASH video stream"),
        "{}",
        got.text()
    );
}

#[tokio::test]
async fn captions_by_language_fetched_once() {
    for with_urls in [false, true] {
        let origin = origin(with_urls).await;
        let node = node(&origin, &[]).await;
        for lang in CAPTION_LANGS {
            for _ in 0..2 {
                let got = get(&format!("{}/video/{VID}.xml?lang={lang}", node.url()), &[]).await;
                assert_eq!(got.status, 200);
                assert_eq!(got.text(), caption_xml(lang));
                assert_eq!(got.header("content-type"), "text/xml; charset=UTF-8");
                assert_eq!(got.header("cache-control"), "public,max-age=864000");
            }
            let hits = if with_urls {
                origin.control.hits(&format!("/captions/{lang}.xml"))
            } else {
                origin.control.hits(&format!("/{VID}.xml?lang={lang}"))
            };
            assert_eq!(hits, 1, "{lang} with_urls={with_urls}");
        }
        // No lang: the first track.
        let got = get(&format!("{}/video/{VID}.xml", node.url()), &[]).await;
        assert_eq!(got.text(), caption_xml("en"));
        let missing = get(&format!("{}/video/{VID}.xml?lang=de", node.url()), &[]).await;
        assert_eq!(missing.status, 404);
        assert!(
            missing.text().contains("(it has: en, fr)"),
            "{}",
            missing.text()
        );
    }
}

#[tokio::test]
async fn thumbnails_are_relayed_with_validators() {
    let origin = origin(false).await;
    origin
        .control
        .info_status
        .lock()
        .unwrap()
        .insert("missingVid1".into(), 500);
    let google = Google::start().await.unwrap();
    let node = node(&origin, &[("YOUTUBE_IMAGE_URL", &google.image_url())]).await;
    for (ext, mime, dir) in [
        ("jpg", "image/jpeg", "vi"),
        ("webp", "image/webp", "vi_webp"),
    ] {
        let got = get(&format!("{}/video/{VID}.{ext}", node.url()), &[]).await;
        assert_eq!(got.status, 200);
        assert_eq!(&got.body[..], &thumbnail(VID, ext)[..]);
        assert_eq!(got.header("content-type"), mime);
        assert_eq!(got.header("cache-control"), "public, max-age=864000");
        assert_eq!(got.header("set-cookie"), "");
        let etag = got.header("etag").to_owned();
        assert_eq!(etag, format!("\"{VID}-{ext}\""));
        assert_eq!(
            google.seen.hits(&format!("/{dir}/{VID}/mqdefault.{ext}")),
            1
        );
        let again = get(
            &format!("{}/video/{VID}.{ext}", node.url()),
            &[("if-none-match", &etag)],
        )
        .await;
        assert_eq!(again.status, 304);
        assert_eq!(again.header("cache-control"), "public, max-age=864000");
    }
    // Allowed (the origin answers 500 for its info) but the thumbnail host has none.
    let got = get(&format!("{}/video/missingVid1.jpg", node.url()), &[]).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.header("cache-control"), "");
    assert_eq!(got.header("access-control-allow-origin"), "*");
}

#[tokio::test]
async fn download_serves_the_policys_pick_with_a_file_name() {
    let origin = origin(false).await;
    let node = node(&origin, &[]).await;
    // Default preference: 248 comes before 137 in the progressive list.
    let got = get(&format!("{}/video/{VID}.mp4?download=1", node.url()), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body[..], &origin.stream(248).unwrap().bytes[..]);
    assert_eq!(got.header("content-type"), "video/webm");
    assert_eq!(
        got.header("content-disposition"),
        "attachment; filename=\"Fixture vid_o: _test__1.webm\"; \
         filename*=UTF-8''Fixture%20vid%C3%A9o%3A%20%22test%22_1.webm"
    );
    let got = get(
        &format!("{}/video/{VID}.webm?prefer=140,18&download=1", node.url()),
        &[("range", "bytes=10-19")],
    )
    .await;
    assert_eq!(got.status, 206);
    assert_eq!(&got.body[..], &origin.stream(140).unwrap().bytes[10..20]);
    assert!(got.header("content-disposition").ends_with("_1.mp4"));
    let inline = get(&format!("{}/video/{VID}.mp4?prefer=251", node.url()), &[]).await;
    assert_eq!(&inline.body[..], &origin.stream(251).unwrap().bytes[..]);
    assert_eq!(inline.header("content-disposition"), "");
    let bad = get(
        &format!("{}/video/{VID}.mp4?prefer=18,abc", node.url()),
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("prefer: bad itag"), "{}", bad.text());
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_without_caching() {
    let origin = origin(false).await;
    let node = node(&origin, &[]).await;
    let u = node.url();
    let cases: &[(&str, u16, &str)] = &[
        ("/video/short.json", 400, "bad video id"),
        ("/video/has.dot1.json", 400, "bad video id"),
        ("/video/sixteen_chars_xx.mpd", 400, "bad video id"),
        (&format!("/video/{VID}/1234.mp4"), 400, "bad itag"),
        (&format!("/video/{VID}/x.webm"), 400, "bad itag"),
        (&format!("/video/{VID}/018.webm"), 400, "bad itag"),
        (&format!("/video/{VID}/137/9-1.ts"), 400, "bad range"),
        (&format!("/video/{VID}/137/a-1.ts"), 400, "bad range"),
        (&format!("/video/{VID}.txt"), 404, "no such route"),
        (&format!("/video/{VID}/137.mkv"), 404, "no such route"),
        ("/video/api/v3/comments", 404, "no such route"),
        ("/video/a/b/c/d", 404, "no such route"),
        (&format!("/video/{VID}/22.mp4"), 404, "no stream 22"),
        ("/video/unknownVid1.mpd", 404, "not available"),
    ];
    for (path, status, msg) in cases {
        let got = get(&format!("{u}{path}"), &[]).await;
        assert_eq!(got.status, *status, "{path}: {}", got.text());
        assert!(got.text().contains(msg), "{path}: {}", got.text());
        assert_eq!(got.header("cache-control"), "", "{path}");
        assert_eq!(got.header("access-control-allow-origin"), "*", "{path}");
    }
    // The JSON route answers errors as JSON.
    let got = get(&format!("{u}/video/unknownVid1.json"), &[]).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["code"], -1);
    let got = get(&format!("{u}/video/bad.json"), &[]).await;
    assert_eq!(got.status, 400);
    let post = request(reqwest::Method::POST, &format!("{u}/video/{VID}.json"), &[]).await;
    assert_eq!(post.status, 405);
    // A CORS preflight.
    let pre = request(
        reqwest::Method::OPTIONS,
        &format!("{u}/video/{VID}/137.mp4"),
        &[
            ("origin", "https://player.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "range"),
        ],
    )
    .await;
    assert_eq!(pre.status, 200);
    assert_eq!(pre.header("access-control-allow-origin"), "*");
    assert_eq!(pre.header("access-control-max-age"), "864000");
    assert_eq!(pre.header("access-control-allow-headers"), "range");
    assert!(pre.header("access-control-allow-methods").contains("GET"));
    let got = get(
        &format!("{u}/video/{VID}/137.mp4"),
        &[("range", "bytes=0-1")],
    )
    .await;
    assert!(
        got.header("access-control-expose-headers")
            .contains("content-range")
    );
}

#[tokio::test]
async fn allow_list_refusals_are_204_and_remembered() {
    let origin = origin(false).await;
    {
        let mut m = origin.control.info_status.lock().unwrap();
        m.insert("deniedVid01".into(), 204);
        m.insert("brokenVid01".into(), 500);
    }
    let google = Google::start().await.unwrap();
    let node = node(&origin, &[("YOUTUBE_IMAGE_URL", &google.image_url())]).await;
    for path in [
        "deniedVid01.json",
        "deniedVid01.mpd",
        "deniedVid01/140.mp4",
        "deniedVid01/140/0-9.ts",
        "deniedVid01.jpg",
        "deniedVid01.webm",
    ] {
        let got = get(&format!("{}/video/{path}", node.url()), &[]).await;
        assert_eq!(got.status, 204, "{path}");
        assert!(got.body.is_empty());
    }
    assert_eq!(
        origin.control.hits("/deniedVid01.json"),
        1,
        "the refusal is cached"
    );
    assert_eq!(google.seen.hits("/vi/deniedVid01"), 0);
    // 500 from the origin means allowed: the thumbnail is served, the info route fails.
    let img = get(&format!("{}/video/brokenVid01.jpg", node.url()), &[]).await;
    assert_eq!(img.status, 200);
    let info = get(&format!("{}/video/brokenVid01.json", node.url()), &[]).await;
    assert_eq!(info.status, 502);
    assert!(
        info.json()["msg"]
            .as_str()
            .unwrap()
            .contains("answered 500")
    );
}

#[tokio::test]
async fn code_pass_ids_are_decoded() {
    let origin = origin(false).await;
    let node = node(&origin, &[("CODE_PASS", "3,7")]).await;
    let enc = encode_vid(VID, 3, 7).unwrap();
    let got = get(&format!("{}/video/{enc}.json", node.url()), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], VID);
    // The manifest's BaseURLs keep the obfuscated id, and they work.
    let mpd = get(&format!("{}/video/{enc}.mpd", node.url()), &[])
        .await
        .text();
    let root = xml::parse(&mpd).unwrap();
    let set = root.children[0].child("AdaptationSet").unwrap();
    let base = &representation(set).child("BaseURL").unwrap().text;
    assert!(base.starts_with(&format!("{enc}/")), "{base}");
    let got = get(
        &format!("{}/video/{base}", node.url()),
        &[("range", "bytes=0-99")],
    )
    .await;
    assert_eq!(got.status, 206);
    assert_eq!(&got.body[..], &origin.stream(137).unwrap().bytes[..100]);
    // An id that does not decode is refused, as videoproxy does.
    let mut wrong = enc.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let got = get(&format!("{}/video/{wrong}.json", node.url()), &[]).await;
    assert_eq!(got.status, 403);
    let body: Value = got.json();
    assert!(body["msg"].as_str().unwrap().contains("does not decode"));
}
