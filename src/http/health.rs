//! Liveness and readiness for platform proxies and orchestrators.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::state::{AppState, Phase};

/// `GET /` and `GET /health`: the process is up. Touches nothing else, so a slow
/// database never fails a liveness check; any Host header is fine.
pub async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "OK")
}

/// `GET /ready`: 200 while the server accepts work, 503 with a reason while it
/// starts or shuts down.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let connections = state.registry.len();
    if state.phase() == Phase::Ready {
        let check = tokio::time::timeout(Duration::from_secs(2), state.manager.check());
        let failure = match check.await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.message().to_string()),
            Err(_) => Some("database: the database did not answer within 2 s".to_string()),
        };
        if let Some(reason) = failure {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "unavailable", "reason": reason, "connections": connections}),
                ),
            )
                .into_response();
        }
    }
    match state.phase() {
        Phase::Ready => Json(json!({
            "status": "ready",
            "connections": connections,
            "uptime_secs": state.started_at.elapsed().as_secs(),
        }))
        .into_response(),
        phase => {
            let (status, reason) = match phase {
                Phase::Starting => ("starting", "the server is starting"),
                _ => ("shutting_down", "the server is shutting down"),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": status, "reason": reason, "connections": connections})),
            )
                .into_response()
        }
    }
}
