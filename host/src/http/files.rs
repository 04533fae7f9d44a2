//! Static files for every other path: `./public/{path}`, then `./public/{path}/index.html`,
//! then `./public/index.html` (videoproxy's fallback), never anything outside `./public`.
//!
//! The path is percent-decoded first and refused if any segment is `..`; every candidate is
//! then resolved with symlinks and served only if it is a regular file inside the resolved
//! root, so a link pointing out of the root counts as missing.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeFile;

use super::AppState;

/// Why a path cannot name a file.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("bad percent-encoding in the path")]
    Encoding,
    /// A `..` segment, a backslash or a NUL.
    #[error("path leaves the public directory")]
    Traversal,
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-decodes a URL path.
fn percent_decode(path: &str) -> Result<String, PathRefused> {
    let mut out = Vec::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex).ok_or(PathRefused::Encoding)?;
            let lo = bytes.next().and_then(hex).ok_or(PathRefused::Encoding)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| PathRefused::Encoding)
}

/// The decoded path as segments relative to the root (empty for the root itself).
pub fn segments(path: &str) -> Result<Vec<String>, PathRefused> {
    let decoded = percent_decode(path)?;
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(PathRefused::Traversal),
            s if s.contains(['\\', '\0']) => return Err(PathRefused::Traversal),
            s => out.push(s.to_owned()),
        }
    }
    Ok(out)
}

/// The candidates for a path, in order, relative to the root.
fn candidates(segs: &[String]) -> Vec<PathBuf> {
    let index = PathBuf::from("index.html");
    if segs.is_empty() {
        return vec![index];
    }
    let file: PathBuf = segs.iter().collect();
    vec![file.clone(), file.join("index.html"), index]
}

/// The first candidate that is a regular file inside `root` after resolving symlinks.
async fn resolve(root: &Path, segs: &[String]) -> Option<PathBuf> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    for rel in candidates(segs) {
        let Ok(real) = tokio::fs::canonicalize(root.join(&rel)).await else {
            continue;
        };
        if !real.starts_with(&root) {
            tracing::debug!(path = %rel.display(), "refusing a link out of the public directory");
            continue;
        }
        if tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_file()) {
            return Some(real);
        }
    }
    None
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

/// `GET|HEAD` of any path no route claims.
pub(super) async fn serve(State(s): State<AppState>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET or HEAD",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let segs = match segments(req.uri().path()) {
        Ok(segs) => segs,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(file) = resolve(&s.public_dir, &segs).await else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    match ServeFile::new(&file).try_call(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "static file failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_traversal() {
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(segments("/a/b.html").unwrap(), ["a", "b.html"]);
        assert_eq!(segments("/a//./b%20c").unwrap(), ["a", "b c"]);
        assert_eq!(segments("/%E4%BD%A0").unwrap(), ["你"]);
        for bad in [
            "/../x",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E%2fetc",
            "/a%5c..",
            "/a%00",
        ] {
            assert_eq!(segments(bad), Err(PathRefused::Traversal), "{bad}");
        }
        for bad in ["/%zz", "/%4", "/%ff"] {
            assert_eq!(segments(bad), Err(PathRefused::Encoding), "{bad}");
        }
    }

    #[test]
    fn candidate_order() {
        let c = candidates(&["a".into(), "b".into()]);
        assert_eq!(
            c,
            [
                PathBuf::from("a/b"),
                PathBuf::from("a/b/index.html"),
                PathBuf::from("index.html")
            ]
        );
        assert_eq!(candidates(&[]), [PathBuf::from("index.html")]);
    }
}
