//! Parsing `/video/...` paths into routes (videoproxy's route table, with clear errors).
//!
//! This is the shape of a path only: which ids and itags the node accepts is the policy's
//! rule (`valid-video-id`, `parse-itag`), checked by the route handler.

use crate::policy::ByteRange;

/// `GET /video/{id}.{json|xml|mpd}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoFormat {
    /// VideoInfo JSON.
    Json,
    /// Captions.
    Xml,
    /// DASH manifest.
    Mpd,
}

/// `GET /video/{id}.{jpg|webp}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG thumbnail.
    Jpg,
    /// WebP thumbnail.
    Webp,
}

/// One of the six YouTube Data API resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `v3/videos`.
    Videos,
    /// `v3/search`.
    Search,
    /// `v3/channels`.
    Channels,
    /// `v3/playlists`.
    Playlists,
    /// `v3/playlistItems`.
    PlaylistItems,
    /// `v3/videoCategories`.
    VideoCategories,
}

impl ApiKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "videos" => Self::Videos,
            "search" => Self::Search,
            "channels" => Self::Channels,
            "playlists" => Self::Playlists,
            "playlistItems" => Self::PlaylistItems,
            "videoCategories" => Self::VideoCategories,
            _ => return None,
        })
    }

    /// The resource name in the API path.
    pub fn name(self) -> &'static str {
        match self {
            Self::Videos => "videos",
            Self::Search => "search",
            Self::Channels => "channels",
            Self::Playlists => "playlists",
            Self::PlaylistItems => "playlistItems",
            Self::VideoCategories => "videoCategories",
        }
    }

    /// The `part` the node always asks for (the videoproxy values).
    pub fn part(self) -> &'static str {
        match self {
            Self::Videos | Self::Channels => "id,snippet,contentDetails,statistics",
            Self::PlaylistItems => "id,snippet,contentDetails",
            Self::Search | Self::Playlists | Self::VideoCategories => "id,snippet",
        }
    }
}

/// A parsed `/video/...` route. `id` is the id as written in the URL (maybe obfuscated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoPath<'a> {
    /// `/video/{id}.json|xml|mpd`.
    Info {
        /// Id in the URL.
        id: &'a str,
        /// Which document.
        format: InfoFormat,
    },
    /// `/video/{id}/{itag}.mp4|webm`: one stream, with `Range`.
    Stream {
        /// Id in the URL.
        id: &'a str,
        /// Itag as written (checked by the policy).
        itag: &'a str,
    },
    /// `/video/{id}/{itag}/{start}-{end}.ts`: one inclusive byte range.
    Part {
        /// Id in the URL.
        id: &'a str,
        /// Itag as written (checked by the policy).
        itag: &'a str,
        /// The range.
        range: ByteRange,
    },
    /// `/video/{id}.jpg|webp`: the thumbnail.
    Image {
        /// Id in the URL.
        id: &'a str,
        /// Which format.
        format: ImageFormat,
    },
    /// `/video/{id}.mp4|webm`: the best playable stream (`?prefer=`, `?download=1`).
    Auto {
        /// Id in the URL.
        id: &'a str,
    },
    /// `/video/api/v3/{resource}`.
    Api(ApiKind),
}

/// Why a path is not a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No route has this shape.
    #[error("no such route: {0}")]
    NoRoute(String),
    /// The shape is right but the policy does not accept the id.
    #[error("bad video id {0:?}")]
    BadId(String),
    /// The policy does not accept the itag.
    #[error("bad itag {0:?}")]
    BadItag(String),
    /// The `.ts` range is not `start-end` with `start <= end`.
    #[error("bad range {0:?}: expected START-END with START <= END")]
    BadRange(String),
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses the part of a path after `/video/`.
pub fn parse(rest: &str) -> Result<VideoPath<'_>, PathError> {
    let no_route = || PathError::NoRoute(format!("/video/{rest}"));
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["api", "v3", kind] => ApiKind::parse(kind)
            .map(VideoPath::Api)
            .ok_or_else(no_route),
        [file] => {
            let (name, ext) = file.rsplit_once('.').ok_or_else(no_route)?;
            let build: for<'x> fn(&'x str) -> VideoPath<'x> = match ext {
                "json" => |id| VideoPath::Info {
                    id,
                    format: InfoFormat::Json,
                },
                "xml" => |id| VideoPath::Info {
                    id,
                    format: InfoFormat::Xml,
                },
                "mpd" => |id| VideoPath::Info {
                    id,
                    format: InfoFormat::Mpd,
                },
                "jpg" => |id| VideoPath::Image {
                    id,
                    format: ImageFormat::Jpg,
                },
                "webp" => |id| VideoPath::Image {
                    id,
                    format: ImageFormat::Webp,
                },
                "mp4" | "webm" => |id| VideoPath::Auto { id },
                _ => return Err(no_route()),
            };
            Ok(build(name))
        }
        [vid, file] => match file.rsplit_once('.') {
            Some((itag, "mp4" | "webm")) => Ok(VideoPath::Stream { id: vid, itag }),
            _ => Err(no_route()),
        },
        [vid, tag, file] => {
            let Some(range) = file.strip_suffix(".ts") else {
                return Err(no_route());
            };
            let bad = || PathError::BadRange(range.to_owned());
            let (a, b) = range.split_once('-').ok_or_else(bad)?;
            let (start, end) = (digits(a).ok_or_else(bad)?, digits(b).ok_or_else(bad)?);
            if start > end {
                return Err(bad());
            }
            Ok(VideoPath::Part {
                id: vid,
                itag: tag,
                range: ByteRange { start, end },
            })
        }
        _ => Err(no_route()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route() {
        const V: &str = "dQw4w9WgXcQ";
        let info = |format| VideoPath::Info { id: V, format };
        assert_eq!(parse(&format!("{V}.json")), Ok(info(InfoFormat::Json)));
        assert_eq!(parse(&format!("{V}.xml")), Ok(info(InfoFormat::Xml)));
        assert_eq!(parse(&format!("{V}.mpd")), Ok(info(InfoFormat::Mpd)));
        assert_eq!(
            parse(&format!("{V}.webp")),
            Ok(VideoPath::Image {
                id: V,
                format: ImageFormat::Webp
            })
        );
        assert_eq!(parse(&format!("{V}.webm")), Ok(VideoPath::Auto { id: V }));
        assert_eq!(
            parse(&format!("{V}/251.webm")),
            Ok(VideoPath::Stream { id: V, itag: "251" })
        );
        assert_eq!(
            parse(&format!("{V}/18.mp4")),
            Ok(VideoPath::Stream { id: V, itag: "18" })
        );
        assert_eq!(
            parse(&format!("{V}/140/0-99.ts")),
            Ok(VideoPath::Part {
                id: V,
                itag: "140",
                range: ByteRange { start: 0, end: 99 }
            })
        );
        assert_eq!(
            parse("api/v3/playlistItems"),
            Ok(VideoPath::Api(ApiKind::PlaylistItems))
        );
    }

    #[test]
    fn rejects_with_the_right_error() {
        assert!(matches!(
            parse("dQw4w9WgXcQ.txt"),
            Err(PathError::NoRoute(_))
        ));
        assert!(matches!(parse("dQw4w9WgXcQ"), Err(PathError::NoRoute(_))));
        assert!(matches!(
            parse("dQw4w9WgXcQ/18.mkv"),
            Err(PathError::NoRoute(_))
        ));
        assert!(matches!(
            parse("dQw4w9WgXcQ/18/9-1.ts"),
            Err(PathError::BadRange(_))
        ));
        assert!(matches!(
            parse("dQw4w9WgXcQ/18/-1.ts"),
            Err(PathError::BadRange(_))
        ));
        assert!(matches!(
            parse("dQw4w9WgXcQ/18/1-99999999999999999999999.ts"),
            Err(PathError::BadRange(_))
        ));
        assert!(matches!(
            parse("dQw4w9WgXcQ/18/1-2.mp4"),
            Err(PathError::NoRoute(_))
        ));
        assert!(matches!(
            parse("api/v3/comments"),
            Err(PathError::NoRoute(_))
        ));
        assert!(matches!(parse("a/b/c/d"), Err(PathError::NoRoute(_))));
        assert!(matches!(parse(""), Err(PathError::NoRoute(_))));
    }
}
