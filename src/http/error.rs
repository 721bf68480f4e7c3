//! Errors of the REST API: the WebSocket's error codes, with an HTTP status.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{
    model::AgentError,
    protocol::{ErrorCode, ProtocolError},
};

/// `{"error": {"code", "message", ...}}` with the status that fits the code.
#[derive(Debug)]
pub struct ApiError {
    pub error: ProtocolError,
    pub status: StatusCode,
    pub extra: Value,
}

impl From<ProtocolError> for ApiError {
    fn from(error: ProtocolError) -> Self {
        Self {
            status: status_of(error.code),
            error,
            extra: Value::Null,
        }
    }
}

/// The domain's errors, with the status that says whether to retry.
impl From<AgentError> for ApiError {
    fn from(error: AgentError) -> Self {
        let status = match error {
            AgentError::Unavailable(_) => Some(StatusCode::SERVICE_UNAVAILABLE),
            _ => None,
        };
        let mut api = ApiError::from(ProtocolError::from(error));
        if let Some(status) = status {
            api.status = status;
        }
        api
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidJson | ErrorCode::InvalidField | ErrorCode::UnknownType => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::HistoryTruncated => StatusCode::GONE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.error.code.as_str()));
        body.insert("message".into(), json!(self.error.message));
        if let Value::Object(extra) = self.extra {
            body.extend(extra);
        }
        (self.status, Json(json!({"error": body}))).into_response()
    }
}
