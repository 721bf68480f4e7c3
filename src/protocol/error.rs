use std::fmt;

use crate::model::AgentError;

/// The stable, machine-readable `error.data.code` of PROTOCOL.md section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidJson,
    UnknownType,
    InvalidField,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    RateLimited,
    TooLarge,
    Internal,
    /// A `since` older than the oldest event still kept.
    HistoryTruncated,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::HistoryTruncated => "history_truncated",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request that cannot be served, with the message the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// The wire's reading of a domain error.
impl From<AgentError> for ProtocolError {
    fn from(error: AgentError) -> Self {
        let code = match &error {
            AgentError::NotFound(_) => ErrorCode::NotFound,
            AgentError::Invalid(_) => ErrorCode::InvalidField,
            AgentError::Conflict(_) => ErrorCode::Conflict,
            AgentError::Forbidden(_) => ErrorCode::Forbidden,
            AgentError::Unavailable(_) | AgentError::Internal(_) => ErrorCode::Internal,
        };
        ProtocolError::new(code, error.message())
    }
}
