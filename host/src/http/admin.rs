//! `POST /admin/policy`: reload the policy from its file (empty body) or load an uploaded
//! component (the body). Allowed from this host, or from anywhere with
//! `Authorization: Bearer $ADMIN_TOKEN`; 403 otherwise.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::policy::reload::{ReloadError, Reloaded};

/// Whether the request may administer the node: from loopback (and not relayed by a proxy
/// on this host), or carrying the admin token.
fn authorized(token: Option<&str>, peer: SocketAddr, headers: &HeaderMap) -> bool {
    let relayed = headers.contains_key("forwarded") || headers.contains_key("x-forwarded-for");
    if peer.ip().to_canonical().is_loopback() && !relayed {
        return true;
    }
    let Some(token) = token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

/// Compares without an early exit, so the time taken does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": msg.to_string() }))).into_response()
}

/// `POST /admin/policy`.
pub(super) async fn policy(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(s.config.admin_token.as_deref(), peer, &headers) {
        tracing::warn!(%peer, "admin request refused");
        return error(
            StatusCode::FORBIDDEN,
            "admin requests need loopback or Authorization: Bearer $ADMIN_TOKEN",
        );
    }
    let result = if body.is_empty() {
        s.reloader.reload_file(true).await
    } else {
        s.reloader
            .load_upload(body.to_vec())
            .await
            .map(Reloaded::Loaded)
    };
    match result {
        Ok(_) => {
            let d = s.policy.description();
            Json(json!({
                "policy": d.name,
                "world": d.world,
                "features": d.features,
                "source": s.policy.source(),
            }))
            .into_response()
        }
        Err(e @ ReloadError::NoFile) => error(StatusCode::BAD_REQUEST, e),
        Err(e @ ReloadError::TooLarge(_)) => error(StatusCode::PAYLOAD_TOO_LARGE, e),
        Err(e @ ReloadError::PrecompiledUpload) => error(StatusCode::UNSUPPORTED_MEDIA_TYPE, e),
        Err(e @ ReloadError::Rejected(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e @ (ReloadError::Read { .. } | ReloadError::Watch { .. })) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn who_may_administer() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lo6: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let far: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let none = HeaderMap::new();
        assert!(authorized(None, lo, &none));
        assert!(authorized(None, lo6, &none));
        assert!(!authorized(None, far, &none));
        let mut relayed = HeaderMap::new();
        relayed.insert("x-forwarded-for", "192.0.2.7".parse().unwrap());
        assert!(!authorized(None, lo, &relayed));
        let token = Some("0123456789abcdef");
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef".parse().unwrap(),
        );
        assert!(authorized(token, far, &bearer));
        assert!(!authorized(None, far, &bearer));
        bearer.insert(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdeX".parse().unwrap(),
        );
        assert!(!authorized(token, far, &bearer));
        assert!(!authorized(token, far, &none));
    }
}
