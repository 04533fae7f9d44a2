//! `GET /video/{id}.jpg|webp`: the `mqdefault` thumbnail, relayed through `IMAGE_PROXY`.

use axum::response::Response;

use super::path::ImageFormat;
use super::{CACHE_MEDIA, Ctx, Endpoints, VideoError, relay};
use crate::http::Shared;

/// Relays the thumbnail with the client's conditional and range headers.
pub(super) async fn serve(
    s: &Shared,
    ctx: &Ctx<'_>,
    format: ImageFormat,
) -> Result<Response, VideoError> {
    let tail = match format {
        ImageFormat::Jpg => format!("vi/{}/mqdefault.jpg", ctx.vid),
        ImageFormat::Webp => format!("vi_webp/{}/mqdefault.webp", ctx.vid),
    };
    let url = Endpoints::join(&s.video.endpoints.images, &tail)?;
    relay::pipe(
        &s.video.image_client,
        url,
        "image origin",
        ctx.headers,
        ctx.head,
        CACHE_MEDIA,
        &[],
    )
    .await
}
