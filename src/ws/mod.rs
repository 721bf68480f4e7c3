//! The agent WebSocket: upgrade, sessions, their registry and message dispatch.

mod dispatch;
pub mod handlers;
mod outbox;
pub mod registry;
pub mod session;
pub mod subscriptions;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        Path, Query, State,
        ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

pub use dispatch::handle_message;
pub use registry::{Refused, Registry};

use crate::{app::AppState, config::Config, telemetry::names};

/// Frames are gathered up to this size before a write to the socket.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The limits and timers of every session, taken from the configuration once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_message_bytes: usize,
    pub read_buffer_bytes: usize,
    pub outbound_frames: usize,
    pub outbound_bytes: usize,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub close_timeout: Duration,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            read_buffer_bytes: config.ws_read_buffer_bytes,
            outbound_frames: config.ws_outbound_frames,
            outbound_bytes: config.ws_outbound_bytes,
            ping_interval: config.ws_ping_interval,
            idle_timeout: config.ws_idle_timeout,
            close_timeout: config.ws_close_timeout,
        }
    }
}

/// The query of a WebSocket URL: `?since=N` replays the channel's events after N.
#[derive(Debug, serde::Deserialize)]
pub struct ConnectQuery {
    since: Option<String>,
}

/// `GET /ws/agent/{channel}`: any channel string is accepted (PROTOCOL.md §1).
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    Path(channel): Path<String>,
    Query(query): Query<ConnectQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let since = match query.since.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(since) => match since.parse::<u64>() {
            Ok(since) => Some(since),
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "since must be a non-negative integer (a seq)\n",
                )
                    .into_response();
            }
        },
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) if rejection.status() == StatusCode::METHOD_NOT_ALLOWED => {
            return rejection.into_response();
        }
        Err(rejection) => {
            let body = format!(
                "this endpoint speaks WebSocket: send an Upgrade request ({})\n",
                rejection.body_text()
            );
            return (
                StatusCode::UPGRADE_REQUIRED,
                [
                    (header::UPGRADE, "websocket"),
                    (header::CONNECTION, "Upgrade"),
                ],
                body,
            )
                .into_response();
        }
    };
    let registered = if state.is_shutting_down() {
        Err(Refused::Closed)
    } else {
        state.registry.try_register()
    };
    let registration = match registered {
        Ok(registration) => registration,
        Err(Refused::Full) => {
            metrics::counter!(names::WS_REJECTED, "reason" => "limit").increment(1);
            return unavailable("connection limit reached");
        }
        Err(Refused::Closed) => {
            metrics::counter!(names::WS_REJECTED, "reason" => "shutting_down").increment(1);
            return unavailable("server is shutting down");
        }
    };
    let mut subs = subscriptions::Subscriptions::new(
        registration.id(),
        Arc::clone(state.manager.hub()),
        registration.control().clone(),
        state.ws.outbound_frames,
    );
    if let Err(error) = subs
        .open_channel(state.manager.store(), &channel, since)
        .await
    {
        tracing::warn!(%error, "could not subscribe a new connection");
        return unavailable("the event store is unavailable");
    }
    metrics::counter!(names::WS_ACCEPTED).increment(1);

    let settings = &state.ws;
    // The writer flushes after each batch of queued frames; the buffer bound only
    // matters when the socket errors.
    upgrade
        .read_buffer_size(settings.read_buffer_bytes)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(settings.outbound_bytes.max(settings.max_message_bytes) * 2)
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            tasks.track_future(session::run(socket, registration, channel, subs, state))
        })
}

fn unavailable(reason: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("{reason}\n"),
    )
        .into_response()
}
