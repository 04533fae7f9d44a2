//! The `youtube` interface (0.2.1): WIT types ⇄ the crate's sans-I/O parser.

use super::exports::videortc::policy::youtube as w;
use super::{Component, range_out};
use crate::youtube as yt;

fn request_out(r: yt::Request) -> w::HttpRequest {
    w::HttpRequest {
        method: match r.method {
            yt::Method::Get => w::Method::Get,
            yt::Method::Post => w::Method::Post,
        },
        url: r.url,
        headers: r.headers,
        body: r.body,
        cache_secs: r.cache_secs,
        label: r.label,
    }
}

fn info_out(i: yt::VideoInfo) -> w::VideoInfo {
    w::VideoInfo {
        id: i.id,
        title: i.title,
        duration: i.duration,
        author: i.author,
        captions: i
            .captions
            .into_iter()
            .map(|c| w::Caption {
                url: c.url,
                language: c.language,
            })
            .collect(),
        streams: i
            .streams
            .into_iter()
            .map(|s| w::StreamInfo {
                itag: s.itag,
                quality: s.quality,
                mime: s.mime,
                url: s.url,
                content_length: s.content_length,
                init_range: s.init_range.map(range_out),
                index_range: s.index_range.map(range_out),
            })
            .collect(),
        live: i.live,
        expires_in_secs: i.expires_in_secs,
        media_headers: i.media_headers,
        warnings: i.warnings,
    }
}

fn playability_out(p: yt::Playability) -> w::Playability {
    match p {
        yt::Playability::LoginRequired(kind) => w::Playability::LoginRequired(match kind {
            yt::LoginKind::Private => w::LoginKind::Private,
            yt::LoginKind::Age => w::LoginKind::Age,
            yt::LoginKind::Bot => w::LoginKind::Bot,
            yt::LoginKind::Other => w::LoginKind::Other,
        }),
        yt::Playability::Unplayable => w::Playability::Unplayable,
        yt::Playability::Error => w::Playability::Error,
        yt::Playability::LiveStreamOffline => w::Playability::LiveStreamOffline,
        yt::Playability::AgeCheckRequired => w::Playability::AgeCheckRequired,
        yt::Playability::AgeVerificationRequired => w::Playability::AgeVerificationRequired,
        yt::Playability::ContentCheckRequired => w::Playability::ContentCheckRequired,
        yt::Playability::Other(s) => w::Playability::Other(s),
    }
}

fn error_out(e: yt::YoutubeError) -> w::YoutubeError {
    match e {
        yt::YoutubeError::Unplayable { status, reason } => {
            w::YoutubeError::Unplayable(w::UnplayableVideo {
                status: playability_out(status),
                reason,
            })
        }
        yt::YoutubeError::BadResponse { what, message } => {
            w::YoutubeError::BadResponse(w::BadResponse { what, message })
        }
        yt::YoutubeError::Cipher { player, message } => {
            w::YoutubeError::Cipher(w::CipherFailure { player, message })
        }
        yt::YoutubeError::Http {
            what,
            status,
            message,
        } => w::YoutubeError::Http(w::HttpFailure {
            what,
            status,
            message,
        }),
        yt::YoutubeError::BadJob { message } => w::YoutubeError::BadJob(message),
    }
}

fn step_out(s: yt::Step) -> w::Step {
    match s {
        yt::Step::Fetch { request, state } => w::Step::Fetch(w::Fetch {
            request: request_out(request),
            state,
        }),
        yt::Step::Done(info) => w::Step::Done(info_out(info)),
        yt::Step::Failed(e) => w::Step::Failed(error_out(e)),
    }
}

impl w::Guest for Component {
    fn start(job: w::Job) -> w::Step {
        step_out(yt::start(&yt::Job {
            video_id: &job.video_id,
            youtube_url: &job.youtube_url,
            now_unix: job.now_unix,
        }))
    }

    fn resume(state: Vec<u8>, response: Result<w::HttpResponse, String>) -> w::Step {
        let response = response.map(|r| yt::Response {
            status: r.status,
            body: r.body,
        });
        step_out(yt::resume(&state, response))
    }
}
