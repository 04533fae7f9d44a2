//! The media hub against a real HTTP origin serving ffmpeg media: found decisions, exact
//! segment bytes, request coalescing, error handling and the byte budget.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use videortc::media::{Decision, HubConfig, MediaHub, Origin, http_client};
use videortc::policy::{ByteRange, Policy, PolicyConfig, Request, RequestKind, SegmentRef};
use videortc_tests::origin::{TestOrigin, VID, fixture_streams};

async fn setup(config: HubConfig) -> (TestOrigin, Arc<MediaHub>) {
    let origin = TestOrigin::start(fixture_streams().unwrap()).await.unwrap();
    let policy = Arc::new(Policy::with_default(PolicyConfig::default()).await.unwrap());
    let client = http_client(None, Duration::from_secs(10)).unwrap();
    let base = url::Url::parse(&origin.base_url()).unwrap();
    let hub = Arc::new(MediaHub::new(
        policy,
        Origin::new(client, Some(base)),
        url::Url::parse("https://www.youtube.com").unwrap(),
        &config,
    ));
    (origin, hub)
}

fn seg(itag: u32, index: u32) -> SegmentRef {
    SegmentRef {
        vid: VID.into(),
        itag,
        index,
    }
}

fn request(kind: RequestKind, segment: &SegmentRef) -> Request {
    Request {
        kind,
        segment: segment.clone(),
        peer: "test-peer".into(),
        now_ms: 0,
    }
}

/// The range the hub would send for a resolve of `s`, or why it stays silent.
async fn find(hub: &MediaHub, s: &SegmentRef) -> Result<ByteRange, String> {
    match hub.decide(&request(RequestKind::Resolve, s)).await {
        Decision::Send(plan) => Ok(plan.range),
        Decision::Silent(why) => Err(why),
        Decision::Reply(text) => panic!("a reply to a resolve: {text}"),
    }
}

/// The bytes the hub would send for a resolve of `s`.
async fn segment(hub: &MediaHub, s: &SegmentRef) -> Result<Bytes, String> {
    let range = find(hub, s).await?;
    let lease = hub
        .segment_lease(s, range)
        .await
        .map_err(|e| e.to_string())?;
    Ok(lease.bytes().clone())
}

#[tokio::test]
async fn finds_exactly_the_segments_that_exist() {
    let (origin, hub) = setup(HubConfig::default()).await;
    for s in origin.streams.iter() {
        let n = s.layout.segments.len() as u32;
        for index in [0, n / 2, n - 1] {
            let r = find(&hub, &seg(s.itag, index)).await.unwrap();
            let want = s.layout.segments[index as usize];
            assert_eq!(
                r,
                ByteRange {
                    start: want.start,
                    end: want.end
                },
                "{} {index}",
                s.file
            );
            let found = format!(
                r#"{{"event":"found","data":{{"id":"{VID}:{}","index":{index}}}}}"#,
                s.itag
            );
            let query = request(RequestKind::Query, &seg(s.itag, index));
            assert_eq!(hub.decide(&query).await, Decision::Reply(found));
        }
        assert_eq!(
            find(&hub, &seg(s.itag, n)).await,
            Err("no such segment".into()),
            "{} past the end",
            s.file
        );
    }
    // unknown itag: silent; unknown video: silent with the origin's 404
    assert_eq!(find(&hub, &seg(22, 0)).await, Err("unknown stream".into()));
    let unknown = SegmentRef {
        vid: "unknownVid1".into(),
        itag: 137,
        index: 0,
    };
    let why = find(&hub, &unknown).await.unwrap_err();
    assert!(why.contains("not available from the origin"), "{why}");
    // one info request and one index request per stream, however many lookups
    assert_eq!(origin.control.hits(&format!("/{VID}.json")), 1);
    assert_eq!(origin.control.hits.prefix(&format!("/{VID}/")), 4);
}

#[tokio::test]
async fn serves_segment_bytes_exactly() {
    let (origin, hub) = setup(HubConfig::default()).await;
    for s in origin.streams.iter() {
        let n = s.layout.segments.len();
        for index in [0, n / 2, n - 1] {
            let bytes = segment(&hub, &seg(s.itag, index as u32)).await.unwrap();
            let r = s.layout.segments[index];
            assert_eq!(
                &bytes[..],
                &s.bytes[r.start as usize..=r.end as usize],
                "{} {index}",
                s.file
            );
        }
    }
}

#[tokio::test]
async fn direct_stream_urls_work_without_base_url() {
    let origin = TestOrigin::start(fixture_streams().unwrap()).await.unwrap();
    origin.control.with_urls.store(true, Ordering::SeqCst);
    let policy = Arc::new(Policy::with_default(PolicyConfig::default()).await.unwrap());
    let client = http_client(None, Duration::from_secs(10)).unwrap();
    // Info still comes from BASE_URL here, but bytes follow the stream URLs.
    let base = url::Url::parse(&origin.base_url()).unwrap();
    let hub = MediaHub::new(
        policy,
        Origin::new(client, Some(base)),
        url::Url::parse("https://www.youtube.com").unwrap(),
        &HubConfig::default(),
    );
    let s = origin.stream(251).unwrap();
    let bytes = segment(&hub, &seg(251, 2)).await.unwrap();
    let r = s.layout.segments[2];
    assert_eq!(&bytes[..], &s.bytes[r.start as usize..=r.end as usize]);
    assert_eq!(
        origin
            .control
            .hits(&format!("/media/audio.webm?range={}-{}", r.start, r.end)),
        1
    );
    assert_eq!(origin.control.hits.prefix(&format!("/{VID}/")), 0);
}

#[tokio::test]
async fn concurrent_misses_make_one_origin_request() {
    let (origin, hub) = setup(HubConfig::default()).await;
    origin.control.delay_ms.store(150, Ordering::SeqCst);
    let s = origin.stream(137).unwrap();
    let r = s.layout.segments[3];
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let hub = hub.clone();
            tokio::spawn(async move { segment(&hub, &seg(137, 3)).await })
        })
        .collect();
    for t in tasks {
        let bytes = t.await.unwrap().unwrap();
        assert_eq!(bytes.len() as u64, r.len());
    }
    assert_eq!(origin.control.hits(&format!("/{VID}.json")), 1);
    assert_eq!(
        origin.control.hits(&format!(
            "/{VID}/137/{}-{}.ts",
            s.layout.index.start, s.layout.index.end
        )),
        1
    );
    assert_eq!(
        origin
            .control
            .hits(&format!("/{VID}/137/{}-{}.ts", r.start, r.end)),
        1
    );
}

#[tokio::test]
async fn origin_errors_are_not_cached_for_long() {
    let config = HubConfig {
        failure_ttl: Duration::from_millis(200),
        ..HubConfig::default()
    };
    let (origin, hub) = setup(config).await;
    origin.control.fail_next.store(1, Ordering::SeqCst);
    assert!(find(&hub, &seg(137, 0)).await.is_err());
    // within the failure window: remembered, no new request
    assert!(find(&hub, &seg(137, 0)).await.is_err());
    assert_eq!(origin.control.hits(&format!("/{VID}.json")), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(find(&hub, &seg(137, 0)).await.is_ok());
    // a failed segment fetch is retried on the next request
    origin.control.fail_next.store(1, Ordering::SeqCst);
    assert!(segment(&hub, &seg(137, 1)).await.is_err());
    assert!(segment(&hub, &seg(137, 1)).await.is_ok());
    assert!(hub.stats().origin_errors.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn the_segment_cache_keeps_to_its_budget() {
    let budget = 100_000;
    let config = HubConfig {
        segment_bytes: budget,
        ..HubConfig::default()
    };
    let (origin, hub) = setup(config).await;
    for s in origin.streams.iter() {
        for index in 0..s.layout.segments.len() as u32 {
            segment(&hub, &seg(s.itag, index)).await.unwrap();
        }
    }
    let summary = hub.summary();
    assert!(summary.segment_bytes <= budget, "{summary:?}");
    assert_eq!(summary.segment_budget, budget);
}

#[tokio::test]
async fn unknown_videos_are_remembered_longer_than_failures() {
    let config = HubConfig {
        failure_ttl: Duration::from_millis(50),
        unknown_ttl: Duration::from_secs(60),
        ..HubConfig::default()
    };
    let (origin, hub) = setup(config).await;
    let unknown = SegmentRef {
        vid: "unknownVid1".into(),
        itag: 137,
        index: 0,
    };
    assert!(find(&hub, &unknown).await.is_err());
    tokio::time::sleep(Duration::from_millis(150)).await;
    // past the failure window, but a 404 means "no such video": still no new request
    assert!(find(&hub, &unknown).await.is_err());
    assert_eq!(origin.control.hits("/unknownVid1.json"), 1);
}

#[tokio::test]
async fn info_fetches_are_bounded() {
    let config = HubConfig {
        max_info_fetches: 2,
        ..HubConfig::default()
    };
    let (origin, hub) = setup(config).await;
    origin.control.delay_ms.store(100, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|k| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let seg = SegmentRef {
                    vid: format!("unknownV{k:03}"),
                    itag: 137,
                    index: 0,
                };
                find(&hub, &seg).await
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    assert_eq!(origin.control.requests.load(Ordering::SeqCst), 6);
    // 6 fetches of 100 ms, 2 at a time, take at least three rounds
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn small_ranges_never_evict_segments() {
    // Room for the segment (about 50 KB) and little more: the ranges below would fill it.
    let config = HubConfig {
        segment_bytes: 64 << 10,
        range_bytes: 16 << 10,
        ..HubConfig::default()
    };
    let (origin, hub) = setup(config).await;
    let s = seg(137, 1);
    let want = segment(&hub, &s).await.unwrap();
    let stream = hub.stream(VID, 137).await.unwrap();
    // Hundreds of odd 300-byte ranges: they go to their own cache, which keeps to its
    // budget...
    for k in 0..300u64 {
        let r = ByteRange {
            start: k * 450 + 7,
            end: k * 450 + 306,
        };
        assert_eq!(
            hub.small_range(VID, 137, &stream, r).await.unwrap().len(),
            300
        );
    }
    hub.run_pending_tasks().await;
    let summary = hub.summary();
    assert!(summary.range_bytes <= 16 << 10, "{summary:?}");
    // ...and the segment is still served from the cache: no second origin request.
    let hits = origin.control.hits.prefix(&format!("/{VID}/137/"));
    assert_eq!(segment(&hub, &s).await.unwrap(), want);
    assert_eq!(origin.control.hits.prefix(&format!("/{VID}/137/")), hits);
    assert!(hub.stats().range_misses.load(Ordering::Relaxed) >= 300);
}

#[tokio::test]
async fn bytes_in_flight_keep_to_their_share() {
    let segs = [seg(140, 0), seg(140, 1), seg(140, 2)];
    let (_origin, probe) = setup(HubConfig::default()).await;
    let mut ranges = Vec::new();
    for s in &segs {
        ranges.push(find(&probe, s).await.unwrap());
    }
    let kib = |r: &ByteRange| r.len().div_ceil(1024);
    // Room for the first two segments and 1 KiB more.
    let config = HubConfig {
        in_flight_bytes: (kib(&ranges[0]) + kib(&ranges[1]) + 1) << 10,
        in_flight_wait: Duration::from_millis(100),
        ..HubConfig::default()
    };
    let (_origin, hub) = setup(config).await;
    let a = hub.segment_lease(&segs[0], ranges[0]).await.unwrap();
    let b = hub.segment_lease(&segs[1], ranges[1]).await.unwrap();
    let both = (kib(&ranges[0]) + kib(&ranges[1])) * 1024;
    assert_eq!(hub.summary().in_flight_bytes, both);
    // A second send of the same segment shares its buffer, so it shares its hold.
    let a2 = hub.segment_lease(&segs[0], ranges[0]).await.unwrap();
    assert_eq!(&*a2, &*a);
    assert_eq!(hub.summary().in_flight_bytes, both);
    // A third segment does not fit: it waits, then the node says it is busy.
    let e = hub.segment_lease(&segs[2], ranges[2]).await.unwrap_err();
    assert!(e.to_string().contains("busy"), "{e}");
    assert_eq!(hub.stats().in_flight_busy.load(Ordering::Relaxed), 1);
    drop(a);
    assert_eq!(hub.summary().in_flight_bytes, both, "a2 still holds it");
    drop((a2, b));
    assert_eq!(hub.summary().in_flight_bytes, 0);
    let c = hub.segment_lease(&segs[2], ranges[2]).await.unwrap();
    assert_eq!(hub.summary().in_flight_bytes, kib(&ranges[2]) * 1024);
    drop(c);
    assert_eq!(hub.summary().in_flight_bytes, 0);
}
