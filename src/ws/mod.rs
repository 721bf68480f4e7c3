//! The agent WebSocket: upgrade, sessions and message dispatch.

mod dispatch;
pub mod handlers;
mod outbox;
mod queue;
pub mod session;
pub mod subscriptions;
mod writer;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{
        ConnectInfo, Path, Query, State,
        ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

pub use dispatch::handle_message;

use crate::{
    auth::Unauthorized,
    model::Caller,
    registry::{Refused, Registration},
    state::AppState,
    telemetry::names,
};

/// Frames are gathered up to this size before a write to the socket.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    caller: Result<Caller, Unauthorized>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The cheap refusals first: a flood of bad tokens is throttled too.
    let client = state.connections.client(peer, &headers);
    if !state.connections.admit(client) {
        return Refusal::TooMany.into_response();
    }
    if let Err(refusal) = check_origin(&state, &headers) {
        return refusal.into_response();
    }
    let caller = match caller {
        Ok(caller) => caller,
        Err(unauthorized) => return unauthorized.into_response(),
    };
    match accept(state, channel, query, caller, upgrade).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

/// Why an upgrade request gets no 101.
enum Refusal {
    /// `since` is not a seq: 400.
    BadSince,
    /// Not a WebSocket upgrade: 426 (405 for a wrong method).
    NotAnUpgrade(WebSocketUpgradeRejection),
    /// Full, shutting down, or the event store does not answer: 503.
    Unavailable(&'static str),
    /// A browser page of an origin that is not allowed: 403.
    Origin,
    /// Too many new connections from this client: 429.
    TooMany,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::BadSince => {
                let body = "since must be a non-negative integer (a seq)\n";
                (StatusCode::BAD_REQUEST, body).into_response()
            }
            Refusal::NotAnUpgrade(rejection) => not_an_upgrade(rejection),
            Refusal::TooMany => {
                metrics::counter!(names::WS_REJECTED, "reason" => "rate").increment(1);
                let headers = [(header::RETRY_AFTER, "1")];
                let body = "too many new connections: retry later\n";
                (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response()
            }
            Refusal::Origin => {
                metrics::counter!(names::WS_REJECTED, "reason" => "origin").increment(1);
                let body = "this origin may not open the agent WebSocket\n";
                (StatusCode::FORBIDDEN, body).into_response()
            }
            Refusal::Unavailable(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                format!("{reason}\n"),
            )
                .into_response(),
        }
    }
}

/// Every check before the 101, each refusal an HTTP answer; then the session.
async fn accept(
    state: Arc<AppState>,
    channel: String,
    query: ConnectQuery,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let since = since(&query)?;
    let upgrade = upgrade.map_err(Refusal::NotAnUpgrade)?;
    let registration = register(&state)?;
    let settings = &state.ws;
    let (outbox, outgoing) = outbox::channel(
        settings.outbound_frames,
        settings.outbound_bytes,
        registration.control().clone(),
    );
    let mut subs = subscriptions::Subscriptions::new(
        registration.id(),
        caller.clone(),
        state.manager.feed().clone(),
        outbox,
        settings.outbound_frames,
    );
    // Subscribed before the 101: a client that sees its connection open
    // misses no later event.
    if let Err(error) = subs.open_channel(&channel, since).await {
        tracing::warn!(%error, "could not subscribe a new connection");
        return Err(Refusal::Unavailable("the event store is unavailable"));
    }
    metrics::counter!(names::WS_ACCEPTED).increment(1);

    // The writer flushes after each batch of queued frames; the buffer bound only
    // matters when the socket errors.
    Ok(upgrade
        // A browser's token rides in the subprotocol list (`bearer, <token>`):
        // the server answers with `bearer`, never with the token.
        .protocols(["bearer"])
        .read_buffer_size(settings.read_buffer_bytes)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(settings.outbound_bytes.max(settings.max_message_bytes) * 2)
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            let session =
                session::run(socket, registration, channel, caller, subs, outgoing, state);
            tasks.track_future(session)
        }))
}

/// A page of another site may open a WebSocket to any server its visitor can
/// reach: only the allowed origins may (requests without `Origin` are not
/// from a page).
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match origin.to_str() {
        Ok(origin) if state.origins.allows(origin, host) => Ok(()),
        _ => Err(Refusal::Origin),
    }
}

/// `?since=N`, a seq; anything else is a 400.
fn since(query: &ConnectQuery) -> Result<Option<u64>, Refusal> {
    match query.since.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(since) => since
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Refusal::BadSince),
    }
}

/// A plain GET gets 426 and how to upgrade; a wrong method its 405.
fn not_an_upgrade(rejection: WebSocketUpgradeRejection) -> Response {
    if rejection.status() == StatusCode::METHOD_NOT_ALLOWED {
        return rejection.into_response();
    }
    let body = format!(
        "this endpoint speaks WebSocket: send an Upgrade request ({})\n",
        rejection.body_text()
    );
    let headers = [
        (header::UPGRADE, "websocket"),
        (header::CONNECTION, "Upgrade"),
    ];
    (StatusCode::UPGRADE_REQUIRED, headers, body).into_response()
}

/// A place in the registry, or 503 when full or shutting down.
fn register(state: &AppState) -> Result<Registration, Refusal> {
    let registered = if state.is_shutting_down() {
        Err(Refused::Closed)
    } else {
        state.registry.try_register()
    };
    registered.map_err(|refused| {
        let (reason, why) = match refused {
            Refused::Full => ("limit", "connection limit reached"),
            Refused::Closed => ("shutting_down", "server is shutting down"),
        };
        metrics::counter!(names::WS_REJECTED, "reason" => reason).increment(1);
        Refusal::Unavailable(why)
    })
}
