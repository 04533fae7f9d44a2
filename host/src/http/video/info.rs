//! `GET /video/{id}.json`: the VideoInfo, without stream and caption URLs unless
//! `?info=all`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{CACHE_DOCUMENT, Ctx, VideoError};
use crate::http::Shared;

/// Serves the info document.
pub(super) async fn json(s: &Shared, ctx: &Ctx<'_>) -> Result<Response, VideoError> {
    let info = s.hub.info(&ctx.vid).await?;
    let body = if ctx.query.get("info") == Some("all") {
        serde_json::to_vec(&*info)
    } else {
        serde_json::to_vec(&info.without_urls())
    }
    .map_err(|e| VideoError::Internal(format!("encode info: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_DOCUMENT),
        ],
        body,
    )
        .into_response())
}
