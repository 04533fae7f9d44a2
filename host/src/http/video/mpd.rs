//! `GET /video/{id}.mpd`: a DASH on-demand manifest with one video and one audio
//! representation, picked by the policy from `?v=` / `?a=` and its defaults.

use std::fmt::Write as _;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{CACHE_DOCUMENT, Ctx, VideoError, stream_metas};
use crate::http::Shared;
use crate::media::StreamItem;
use crate::policy::Purpose;

/// Serves the manifest.
pub(super) async fn serve(s: &Shared, ctx: &Ctx<'_>) -> Result<Response, VideoError> {
    let info = s.hub.info(&ctx.vid).await?;
    let preference = |name: &'static str| async move {
        match ctx.query.get(name) {
            Some(text) => s
                .policy
                .parse_preference(text)
                .await?
                .map_err(|e| VideoError::BadRequest(format!("{name}: {e}"))),
            None => Ok(Vec::new()),
        }
    };
    let (audio_prefer, video_prefer) = (preference("a").await?, preference("v").await?);
    let metas = stream_metas(&s.hub, &info);
    let audio = s
        .policy
        .pick(Purpose::MpdAudio, &metas, &audio_prefer)
        .await?;
    let video = s
        .policy
        .pick(Purpose::MpdVideo, &metas, &video_prefer)
        .await?;
    let (Some(audio), Some(video)) = (audio, video) else {
        return Err(VideoError::NotFound(format!(
            "video {} has no servable DASH {}",
            ctx.vid,
            match (audio, video) {
                (None, None) => "audio and video streams",
                (None, _) => "audio stream",
                _ => "video stream",
            }
        )));
    };
    let duration = parse_duration(&info.duration).ok_or_else(|| {
        VideoError::BadGateway(format!(
            "video info has no usable duration: {:?}",
            info.duration
        ))
    })?;
    let item = |itag: u32| {
        info.streams.get(&itag.to_string()).ok_or_else(|| {
            VideoError::Internal(format!("the policy picked itag {itag}, not in the info"))
        })
    };
    let xml = manifest(
        ctx.path_id,
        duration,
        &[
            ("video", video, item(video)?),
            ("audio", audio, item(audio)?),
        ],
    )?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/dash+xml"),
            (header::CACHE_CONTROL, CACHE_DOCUMENT),
        ],
        xml,
    )
        .into_response())
}

/// Seconds, from the info's decimal string; positive and finite.
fn parse_duration(text: &str) -> Option<f64> {
    let d: f64 = text.trim().parse().ok()?;
    (d.is_finite() && d > 0.0).then_some(d)
}

/// `PT1H2M3S` (hours and minutes only when non-zero, as videoproxy writes it); fractional
/// seconds keep up to three decimals.
fn iso_duration(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round() as u64;
    let (whole, frac) = (millis / 1000, millis % 1000);
    let mut out = String::from("PT");
    if whole >= 3600 {
        let _ = write!(out, "{}H", whole / 3600);
    }
    if (whole % 3600) / 60 >= 1 {
        let _ = write!(out, "{}M", (whole % 3600) / 60);
    }
    let _ = write!(out, "{}", whole % 60);
    if frac > 0 {
        let _ = write!(out, ".{}", format!("{frac:03}").trim_end_matches('0'));
    }
    out.push('S');
    out
}

/// XML attribute and text escaping.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The `codecs` parameter of a `type` such as `video/mp4; codecs="avc1.4d401f"`.
fn codecs(mime: &str) -> Option<&str> {
    mime.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("codecs")
            .then(|| v.trim().trim_matches('"').trim())
            .filter(|v| !v.is_empty())
    })
}

/// The manifest for `sets` (`contentType`, itag, stream), whose BaseURLs are relative to
/// the manifest's own URL: `{id}/{itag}.{mp4|webm}`.
fn manifest(
    id: &str,
    duration: f64,
    sets: &[(&str, u32, &StreamItem)],
) -> Result<String, VideoError> {
    let mut x = String::with_capacity(1024);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\" minBufferTime=\"PT2S\" \
         mediaPresentationDuration=\"{}\" type=\"static\"><Period id=\"0\" start=\"PT0S\">",
        iso_duration(duration)
    );
    for (set, (content, itag, item)) in sets.iter().enumerate() {
        let missing = |what: &str| VideoError::Internal(format!("stream {itag} has no {what}"));
        let len = item.content_length().ok_or_else(|| missing("length"))?;
        let init = item
            .init_range
            .as_ref()
            .and_then(|r| r.range())
            .ok_or_else(|| missing("initRange"))?;
        let index = item
            .index_range
            .as_ref()
            .and_then(|r| r.range())
            .ok_or_else(|| missing("indexRange"))?;
        let mime = item.mime.split(';').next().unwrap_or_default().trim();
        let ext = if mime.contains("webm") { "webm" } else { "mp4" };
        let bandwidth = ((len as f64 * 8.0 / duration).round() as u64).max(1);
        let _ = write!(
            x,
            "<AdaptationSet id=\"{set}\" contentType=\"{content}\" segmentAlignment=\"true\" \
             subsegmentAlignment=\"true\"><Representation id=\"{itag}\" bandwidth=\"{bandwidth}\""
        );
        if let Some(c) = codecs(&item.mime) {
            let _ = write!(x, " codecs=\"{}\"", esc(c));
        }
        let _ = write!(
            x,
            " mimeType=\"{}\"><BaseURL>{}/{itag}.{ext}</BaseURL>\
             <SegmentBase indexRange=\"{}-{}\"><Initialization range=\"{}-{}\"/></SegmentBase>\
             </Representation></AdaptationSet>",
            esc(mime),
            esc(id),
            index.start,
            index.end,
            init.start,
            init.end
        );
    }
    x.push_str("</Period></MPD>\n");
    Ok(x)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(iso_duration(6.0), "PT6S");
        assert_eq!(iso_duration(60.0), "PT1M0S");
        assert_eq!(iso_duration(3723.0), "PT1H2M3S");
        assert_eq!(iso_duration(3600.0), "PT1H0S");
        assert_eq!(iso_duration(6.5), "PT6.5S");
        assert_eq!(parse_duration("212"), Some(212.0));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn codecs_and_escaping() {
        assert_eq!(
            codecs("video/mp4; codecs=\"avc1.4d401f\""),
            Some("avc1.4d401f")
        );
        assert_eq!(
            codecs("video/mp4; codecs=\"avc1.42001E, mp4a.40.2\""),
            Some("avc1.42001E, mp4a.40.2")
        );
        assert_eq!(codecs("audio/webm"), None);
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
