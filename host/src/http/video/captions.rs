//! `GET /video/{id}.xml?lang=`: a caption track, fetched once and cached for a day.
//!
//! The track comes from the caption's URL in the info; in BASE_URL mode, where the info has
//! no URLs, from `BASE_URL/{id}.xml?lang=`.

use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::{CACHE_DOCUMENT, Ctx, Document, MAX_DOCUMENT, VideoError};
use crate::http::Shared;

/// Serves the track in `?lang=` (exactly), or the first one without it.
pub(super) async fn serve(s: &Shared, ctx: &Ctx<'_>) -> Result<Response, VideoError> {
    let info = s.hub.info(&ctx.vid).await?;
    let lang = ctx.query.get("lang").filter(|l| !l.is_empty());
    let caption = match lang {
        None => info.captions.first(),
        Some(l) => info.captions.iter().find(|c| c.language == l),
    }
    .ok_or_else(|| {
        let have: Vec<&str> = info.captions.iter().map(|c| c.language.as_str()).collect();
        VideoError::NotFound(match lang {
            None => format!("video {} has no captions", ctx.vid),
            Some(l) => format!(
                "video {} has no captions in {l:?} (it has: {})",
                ctx.vid,
                have.join(", ")
            ),
        })
    })?;
    let url = match (&caption.url, s.hub.origin().base_url()) {
        (Some(u), _) => {
            Url::parse(u).map_err(|e| VideoError::BadGateway(format!("bad caption URL: {e}")))?
        }
        (None, Some(base)) => {
            let mut u = super::Endpoints::join(base, &format!("{}.xml", ctx.vid))?;
            u.query_pairs_mut().append_pair("lang", &caption.language);
            u
        }
        (None, None) => {
            return Err(VideoError::NotFound(format!(
                "caption {:?} of video {} has no URL",
                caption.language, ctx.vid
            )));
        }
    };
    let key = format!("caption\n{}\n{}", ctx.vid, caption.language);
    let doc = s
        .video
        .documents
        .try_get_with(key, fetch(s.hub.origin().client(), url))
        .await
        .map_err(|e| (*e).clone())?;
    let content_type = doc
        .content_type
        .clone()
        .unwrap_or_else(|| HeaderValue::from_static("text/xml; charset=utf-8"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_DOCUMENT),
            ),
        ],
        doc.body.clone(),
    )
        .into_response())
}

/// Fetches a track; only a `200` is a track.
async fn fetch(client: &reqwest::Client, url: Url) -> Result<Arc<Document>, VideoError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| VideoError::upstream("caption origin", &e))?;
    match resp.status() {
        reqwest::StatusCode::OK => {}
        reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::NO_CONTENT => {
            return Err(VideoError::NotFound(
                "the caption origin has no such track".into(),
            ));
        }
        status => {
            return Err(VideoError::BadGateway(format!(
                "caption origin answered {status}"
            )));
        }
    }
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = super::read_limited(resp, MAX_DOCUMENT, "caption origin").await?;
    Ok(Arc::new(Document { content_type, body }))
}
