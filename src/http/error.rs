//! Errors of the REST API: the WebSocket's error codes, with an HTTP status.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::protocol::{ErrorCode, ProtocolError};

/// `{"error": {"code", "message", ...}}` with the status that fits the code.
#[derive(Debug)]
pub struct ApiError {
    pub error: ProtocolError,
    pub extra: Value,
}

impl From<ProtocolError> for ApiError {
    fn from(error: ProtocolError) -> Self {
        Self {
            error,
            extra: Value::Null,
        }
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
        (status_of(self.error.code), Json(json!({"error": body}))).into_response()
    }
}
