//! `/status`, `/peers` and `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;

/// Resident and peak memory of this process in bytes, from `/proc/self/status` (Linux).
fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn threads() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `GET /status`: uptime, version, memory, tasks, pid, caches, policy.
pub(super) async fn status(State(s): State<AppState>) -> impl IntoResponse {
    let (rss, peak) = memory();
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    Json(json!({
        "uptime": s.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "memory": {"rss": rss, "peak": peak},
        "threads": threads(),
        "tasks": tasks,
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "mode": {
            "rtc": s.config.rtc.as_ref().map(|r| r.id.clone()),
            "base_url": s.config.base_url.as_ref().map(|u| u.to_string()),
            "upstreams": s.config.upstreams.len(),
        },
        "policy": {
            "describe": s.policy.describe(),
            "world": s.policy.description().world,
            "features": s.policy.description().features,
            "source": s.policy.source(),
            "generation": s.policy.generation(),
            "sha256": s.policy.sha256(),
            "loaded_at": s.policy.loaded_at(),
            "reloads": s.policy.stats().reloads.load(std::sync::atomic::Ordering::Relaxed),
            "rejected": s.policy.stats().rejected.load(std::sync::atomic::Ordering::Relaxed),
            "calls": s.policy.stats().calls.load(std::sync::atomic::Ordering::Relaxed),
            "traps": s.policy.stats().traps.load(std::sync::atomic::Ordering::Relaxed),
            "invalid": s.policy.stats().invalid.load(std::sync::atomic::Ordering::Relaxed),
            "rollbacks": s.policy.stats().rollbacks.load(std::sync::atomic::Ordering::Relaxed),
            "last_rollback": s.policy.last_rollback(),
            "recent_failures": s.policy.recent_failures(),
            "limits": {
                "timeout_ms": u64::try_from(s.policy.config().call_timeout.as_millis()).unwrap_or(u64::MAX),
                "memory_bytes": s.policy.config().memory_limit,
                "instances": s.policy.config().instances,
                "rollback_failures": s.policy.config().rollback.failures,
                "rollback_window_s": s.policy.config().rollback.window.as_secs(),
            },
        },
        "cache": s.hub.summary(),
        "memory": s.config.memory,
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct PeersQuery {
    t: Option<String>,
}

/// `GET /peers` (peers and states) and `GET /peers?t=video` (cached videos and queues).
pub(super) async fn peers(
    State(s): State<AppState>,
    Query(q): Query<PeersQuery>,
) -> impl IntoResponse {
    let rtc_enabled = s.peers.is_some();
    if q.t.as_deref() == Some("video") {
        let queues = s.peers.as_ref().map_or(Value::Null, |p| p.queues_json());
        return Json(
            json!({ "videos": s.hub.videos(), "queues": queues, "cache": s.hub.summary() }),
        );
    }
    match &s.peers {
        // The peer view's snapshot already carries the id, signalling state, peers and counters.
        Some(p) => Json(p.peers_json()),
        None => Json(json!({ "rtc": rtc_enabled, "peers": [] })),
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// A label value in the Prometheus text format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Which policy serves (an info metric, value 1), since when, and its generation.
fn policy_info(out: &mut String, s: &AppState) {
    let d = s.policy.description();
    let _ = writeln!(
        out,
        "# HELP videortc_policy_info The serving policy.\n# TYPE videortc_policy_info gauge\n\
         videortc_policy_info{{describe=\"{}\",world=\"{}\",source=\"{}\",sha256=\"{}\"}} 1",
        label(&d.name),
        label(&d.world),
        label(&s.policy.source()),
        label(&s.policy.sha256()),
    );
    metric(
        out,
        "videortc_policy_loaded_at_seconds",
        "gauge",
        "When the serving policy started serving (Unix time).",
        s.policy.loaded_at(),
    );
    metric(
        out,
        "videortc_policy_generation",
        "gauge",
        "Policies loaded so far, rollbacks included: changes with every swap.",
        s.policy.generation(),
    );
}

/// `GET /metrics`: Prometheus text format.
pub(super) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(4096);
    let m = s.hub.stats();
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    metric(
        &mut out,
        "videortc_uptime_seconds",
        "gauge",
        "Seconds since start.",
        s.started.elapsed().as_secs(),
    );
    if let (Some(rss), _) = memory() {
        metric(
            &mut out,
            "videortc_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            rss,
        );
    }
    for (name, help, v) in [
        (
            "videortc_info_cache_hits_total",
            "VideoInfo lookups served from cache.",
            c(&m.info_hits),
        ),
        (
            "videortc_info_cache_misses_total",
            "VideoInfo lookups that needed the origin.",
            c(&m.info_misses),
        ),
        (
            "videortc_table_cache_hits_total",
            "Segment-table lookups served from cache.",
            c(&m.table_hits),
        ),
        (
            "videortc_table_cache_misses_total",
            "Segment-table lookups that loaded an index.",
            c(&m.table_misses),
        ),
        (
            "videortc_table_failures_remembered_total",
            "Segment-table lookups answered by a recently failed load.",
            c(&m.table_failures_remembered),
        ),
        (
            "videortc_segment_cache_hits_total",
            "Segment byte lookups served from cache.",
            c(&m.segment_hits),
        ),
        (
            "videortc_segment_cache_misses_total",
            "Segment byte lookups that needed the origin.",
            c(&m.segment_misses),
        ),
        (
            "videortc_range_cache_hits_total",
            "Small HTTP range lookups served from their cache.",
            c(&m.range_hits),
        ),
        (
            "videortc_range_cache_misses_total",
            "Small HTTP range lookups that needed the origin.",
            c(&m.range_misses),
        ),
        (
            "videortc_in_flight_busy_total",
            "Sends refused because the memory budget had no room for more bytes in flight.",
            c(&m.in_flight_busy),
        ),
        (
            "videortc_origin_requests_total",
            "Requests sent to the origin.",
            c(&m.origin_requests),
        ),
        (
            "videortc_origin_errors_total",
            "Origin requests that failed.",
            c(&m.origin_errors),
        ),
        (
            "videortc_origin_bytes_total",
            "Bytes received from the origin.",
            c(&m.origin_bytes),
        ),
    ] {
        metric(&mut out, name, "counter", help, v);
    }
    let summary = s.hub.summary();
    metric(
        &mut out,
        "videortc_cache_segment_bytes",
        "gauge",
        "Bytes held by the segment cache.",
        summary.segment_bytes,
    );
    metric(
        &mut out,
        "videortc_cache_segment_budget_bytes",
        "gauge",
        "Byte budget of the segment cache.",
        summary.segment_budget,
    );
    for (name, help, v) in [
        (
            "videortc_cache_info_bytes",
            "Bytes held by the VideoInfo cache (JSON size).",
            summary.info_bytes,
        ),
        (
            "videortc_cache_table_bytes",
            "Bytes held by the segment-table cache.",
            summary.table_bytes,
        ),
        (
            "videortc_cache_range_bytes",
            "Bytes held by the small-range cache.",
            summary.range_bytes,
        ),
        (
            "videortc_in_flight_bytes",
            "Segment bytes held by sends in progress.",
            summary.in_flight_bytes,
        ),
        (
            "videortc_memory_budget_bytes",
            "MEMORY_BUDGET: what the caches, bytes in flight and peers may hold.",
            s.config.memory.total,
        ),
        (
            "videortc_memory_peers_reserved_bytes",
            "The part of the budget reserved for peer connections.",
            s.config.memory.peers,
        ),
    ] {
        metric(&mut out, name, "gauge", help, v);
    }
    metric(
        &mut out,
        "videortc_cache_videos",
        "gauge",
        "Cached VideoInfo entries.",
        summary.videos,
    );
    let p = s.policy.stats();
    for (name, help, v) in [
        (
            "videortc_policy_calls_total",
            "Calls into the policy component.",
            c(&p.calls),
        ),
        (
            "videortc_policy_traps_total",
            "Policy calls that trapped or timed out.",
            c(&p.traps),
        ),
        (
            "videortc_policy_invalid_total",
            "Policy results the host rejected.",
            c(&p.invalid),
        ),
        (
            "videortc_policy_reloads_total",
            "Policy components swapped in.",
            c(&p.reloads),
        ),
        (
            "videortc_policy_rejected_total",
            "Policy components rejected.",
            c(&p.rejected),
        ),
        (
            "videortc_policy_rollbacks_total",
            "Failing policies rolled back automatically.",
            c(&p.rollbacks),
        ),
        (
            "videortc_policy_log_lines_total",
            "Policy log lines written.",
            c(&s.policy.log().written),
        ),
        (
            "videortc_policy_log_dropped_total",
            "Policy log lines dropped (rate limit or repeat).",
            c(&s.policy.log().dropped),
        ),
    ] {
        metric(&mut out, name, "counter", help, v);
    }
    policy_info(&mut out, &s);
    if let Some(peers) = &s.peers {
        peers.write_metrics(&mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label(r#"a "b" \c"#), r#"a \"b\" \\c"#);
        assert_eq!(super::label("x\ny"), r"x\ny");
    }
}
