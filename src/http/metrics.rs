//! `GET /metrics` in the Prometheus text format, and the HTTP request counter.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::telemetry::{self, names};

pub async fn metrics() -> impl IntoResponse {
    // Read at scrape time: the runtime counts its own tasks.
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    metrics::gauge!(names::TASKS_ALIVE).set(tasks as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry::metrics().render(),
    )
}

/// Counts every request by route pattern (never the raw path: its cardinality is
/// the client's choice) and status.
pub async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    tracing::debug!(%method, %route, %status, elapsed = ?started.elapsed(), "http request");
    metrics::counter!(names::HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    response
}
