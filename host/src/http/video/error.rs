//! Errors of the video routes and the HTTP status each one maps to.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::media::{MediaError, OriginError};

/// Why a video route failed. Every variant carries a message the client can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VideoError {
    /// The request is malformed (`400`).
    #[error("{0}")]
    BadRequest(String),
    /// The obfuscated id does not decode (`403`, as videoproxy answers).
    #[error("{0}")]
    Forbidden(String),
    /// No such video, stream, caption or route (`404`).
    #[error("{0}")]
    NotFound(String),
    /// Only `GET` and `HEAD` (`405`).
    #[error("method not allowed: use GET or HEAD")]
    Method,
    /// The BASE_URL allow-list refuses the video (`204`, empty, as videoproxy answers).
    #[error("video not allowed")]
    Denied,
    /// No byte of the requested range exists (`416`).
    #[error("range not satisfiable: the stream has {len} bytes")]
    Unsatisfiable {
        /// The stream's length.
        len: u64,
    },
    /// The media layer failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// An upstream server failed or answered nonsense (`502`).
    #[error("{0}")]
    BadGateway(String),
    /// An upstream server did not answer in time (`504`).
    #[error("{0}")]
    Timeout(String),
    /// The node cannot do this in its configuration (`503`).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a failing policy (`500`).
    #[error("{0}")]
    Internal(String),
}

impl From<OriginError> for VideoError {
    fn from(e: OriginError) -> Self {
        VideoError::Media(MediaError::Origin(e))
    }
}

impl From<crate::policy::PolicyError> for VideoError {
    fn from(e: crate::policy::PolicyError) -> Self {
        VideoError::Internal(format!("policy: {e}"))
    }
}

impl VideoError {
    /// The error for a failed upstream request.
    pub fn upstream(what: &str, e: &reqwest::Error) -> Self {
        let msg = format!("{what}: {}", crate::media::error_chain(e));
        if e.is_timeout() {
            VideoError::Timeout(msg)
        } else {
            VideoError::BadGateway(msg)
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            VideoError::BadRequest(_) => StatusCode::BAD_REQUEST,
            VideoError::Forbidden(_) => StatusCode::FORBIDDEN,
            VideoError::NotFound(_) => StatusCode::NOT_FOUND,
            VideoError::Method => StatusCode::METHOD_NOT_ALLOWED,
            VideoError::Denied => StatusCode::NO_CONTENT,
            VideoError::Unsatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            VideoError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            VideoError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            VideoError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            VideoError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            VideoError::Media(e) => media_status(e),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::warn!(error = %self, "video route failed");
        } else {
            tracing::debug!(error = %self, "video route refused");
        }
    }

    /// The error as `{"code":-1,"msg":"..."}` (the `.json` route's error shape).
    pub fn into_json_response(self) -> Response {
        self.log();
        let status = self.status();
        if status == StatusCode::NO_CONTENT {
            return status.into_response();
        }
        let body = serde_json::json!({"code": -1, "msg": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}

fn media_status(e: &MediaError) -> StatusCode {
    match e {
        MediaError::Origin(o) => {
            StatusCode::from_u16(o.http_status()).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        MediaError::NoStream { .. } | MediaError::Unindexable { .. } => StatusCode::NOT_FOUND,
        MediaError::Refused(_) => StatusCode::BAD_REQUEST,
        MediaError::Index { .. } => StatusCode::BAD_GATEWAY,
        MediaError::Policy(_) => StatusCode::INTERNAL_SERVER_ERROR,
        MediaError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for VideoError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        if status == StatusCode::NO_CONTENT {
            return status.into_response();
        }
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response();
        match self {
            VideoError::Unsatisfiable { len } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            VideoError::Method => {
                resp.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
            }
            _ => {}
        }
        resp
    }
}
