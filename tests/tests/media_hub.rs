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

use videortc::media::{HubConfig, MediaHub, Origin, http_client};
use videortc::policy::{ByteRange, Policy, PolicyConfig, SegmentRef};
use videortc_tests::origin::{TestOrigin, VID, fixture_streams};

async fn setup(config: HubConfig) -> (TestOrigin, Arc<MediaHub>) {
    let origin = TestOrigin::start(fixture_streams().unwrap()).await.unwrap();
    let policy = Arc::new(Policy::with_default(PolicyConfig::default()).unwrap());
    let client = http_client(None, Duration::from_secs(10)).unwrap();
    let base = url::Url::parse(&origin.base_url()).unwrap();
    let hub = Arc::new(MediaHub::new(
        policy,
        Origin::new(client, Some(base)),
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

#[tokio::test]
async fn finds_exactly_the_segments_that_exist() {
    let (origin, hub) = setup(HubConfig::default()).await;
    for s in origin.streams.iter() {
        let n = s.layout.segments.len() as u32;
        for index in [0, n / 2, n - 1] {
            let r = hub.find(&seg(s.itag, index)).await.unwrap();
            let want = s.layout.segments[index as usize];
            assert_eq!(
                r,
                Some(ByteRange {
                    start: want.start,
                    end: want.end
                }),
                "{} {index}",
                s.file
            );
        }
        assert_eq!(
            hub.find(&seg(s.itag, n)).await.unwrap(),
            None,
            "{} past the end",
            s.file
        );
    }
    // unknown itag: silent; unknown video: an origin error (404), which the caller treats as silence
    assert_eq!(hub.find(&seg(22, 0)).await.unwrap(), None);
    let unknown = SegmentRef {
        vid: "unknownVid1".into(),
        itag: 137,
        index: 0,
    };
    assert!(hub.find(&unknown).await.is_err());
    // one info request and one index request per stream, however many lookups
    assert_eq!(origin.control.hits(&format!("/{VID}.json")), 1);
    assert_eq!(origin.control.hits_prefix(&format!("/{VID}/")), 4);
}

#[tokio::test]
async fn serves_segment_bytes_exactly() {
    let (origin, hub) = setup(HubConfig::default()).await;
    for s in origin.streams.iter() {
        let n = s.layout.segments.len();
        for index in [0, n / 2, n - 1] {
            let bytes = hub.segment(&seg(s.itag, index as u32)).await.unwrap();
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
    let policy = Arc::new(Policy::with_default(PolicyConfig::default()).unwrap());
    let client = http_client(None, Duration::from_secs(10)).unwrap();
    // Info still comes from BASE_URL here, but bytes follow the stream URLs.
    let base = url::Url::parse(&origin.base_url()).unwrap();
    let hub = MediaHub::new(
        policy,
        Origin::new(client, Some(base)),
        &HubConfig::default(),
    );
    let s = origin.stream(251).unwrap();
    let bytes = hub.segment(&seg(251, 2)).await.unwrap();
    let r = s.layout.segments[2];
    assert_eq!(&bytes[..], &s.bytes[r.start as usize..=r.end as usize]);
    assert_eq!(
        origin
            .control
            .hits(&format!("/media/audio.webm?range={}-{}", r.start, r.end)),
        1
    );
    assert_eq!(origin.control.hits_prefix(&format!("/{VID}/")), 0);
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
            tokio::spawn(async move { hub.segment(&seg(137, 3)).await })
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
    assert!(hub.find(&seg(137, 0)).await.is_err());
    // within the failure window: remembered, no new request
    assert!(hub.find(&seg(137, 0)).await.is_err());
    assert_eq!(origin.control.hits(&format!("/{VID}.json")), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(hub.find(&seg(137, 0)).await.unwrap().is_some());
    // a failed segment fetch is retried on the next request
    origin.control.fail_next.store(1, Ordering::SeqCst);
    assert!(hub.segment(&seg(137, 1)).await.is_err());
    assert!(hub.segment(&seg(137, 1)).await.is_ok());
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
            hub.segment(&seg(s.itag, index)).await.unwrap();
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
    assert!(hub.find(&unknown).await.is_err());
    tokio::time::sleep(Duration::from_millis(150)).await;
    // past the failure window, but a 404 means "no such video": still no new request
    assert!(hub.find(&unknown).await.is_err());
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
                hub.find(&seg).await
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
