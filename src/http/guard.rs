//! What the HTTP edge checks before any handler: the path-token prefix, and
//! that a request changing state cannot come from a cross-site form.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;
use crate::{
    auth::{PathToken, bearer},
    config::Secret,
    protocol::{ErrorCode, ProtocolError},
};

/// `/t/{token}/rest` becomes `/rest`, with the token kept aside for the
/// authenticator: routes, logs and metrics only ever see `/rest`.
pub fn take_path_token(mut request: Request) -> Request {
    let Some(rest) = request.uri().path().strip_prefix("/t/") else {
        return request;
    };
    let (token, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path_and_query = match request.uri().query() {
        Some(query) => format!("/{path}?{query}"),
        None => format!("/{path}"),
    };
    let token = Secret::new(token);
    if let Ok(uri) = Uri::builder().path_and_query(path_and_query).build() {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(PathToken(token));
    }
    request
}

/// A browser sends a cross-site form or `text/plain` POST without asking
/// first; it cannot send `Content-Type: application/json` or `Authorization`
/// without a CORS preflight. So a request that changes state must carry one.
pub async fn same_site_writes(request: Request, next: Next) -> Response {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if reads.contains(request.method()) || preflighted(request.headers()) {
        return next.run(request).await;
    }
    let mut error = ApiError::from(ProtocolError::new(
        ErrorCode::InvalidField,
        "a request that changes state needs Content-Type: application/json \\
         or an Authorization header",
    ));
    error.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    error.into_response()
}

fn preflighted(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    json || bearer(headers).is_some()
}

/// Largest REST reply that is redacted in one piece (every reply is far below).
const REPLY_LIMIT: usize = 64 << 20;

/// REST replies pass the same redaction as every other string the server emits.
pub async fn redacted(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, REPLY_LIMIT).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    match crate::redact::clean(&text) {
        std::borrow::Cow::Borrowed(_) => Response::from_parts(parts, Body::from(bytes)),
        std::borrow::Cow::Owned(clean) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(clean))
        }
    }
}

/// An open server (no authentication) answers browsers only for a `Host` a
/// DNS-rebinding page cannot produce; probes and non-browser clients are not
/// concerned.
pub async fn known_host(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::state::AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let probe = matches!(
        request.uri().path(),
        "/" | "/health" | "/ready" | "/metrics"
    );
    // Only a browser can be made to rebind; browsers say so with `Origin` or
    // `Sec-Fetch-*`. Other clients name whatever host they like.
    let headers = request.headers();
    let browser = headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-mode");
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    if probe || !browser || state.origins.allows_host(host) {
        return next.run(request).await;
    }
    let mut error = ApiError::from(ProtocolError::new(
        ErrorCode::Forbidden,
        "this server has no authentication and answers only localhost, addresses and the \
         hosts of AGENTPORT_ALLOWED_ORIGINS",
    ));
    error.status = StatusCode::FORBIDDEN;
    error.into_response()
}
