//! Why a command failed, in the domain's words. The edges map each kind to a
//! wire error code and an HTTP status; the message is safe to show the caller.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The agent (or contract) does not exist, or the caller may not know it does.
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule: a field, a value, a limit.
    #[error("{0}")]
    Invalid(String),
    /// The input is fine, but the current state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (database, node) cannot serve now; retrying may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant; the cause is logged, not shown.
    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    pub fn not_found(what: impl fmt::Display) -> Self {
        AgentError::NotFound(format!("{what} not found"))
    }

    pub fn agent_not_found(agent_id: &str) -> Self {
        Self::not_found(format_args!("agent {agent_id}"))
    }

    pub fn message(&self) -> &str {
        match self {
            AgentError::NotFound(m)
            | AgentError::Invalid(m)
            | AgentError::Conflict(m)
            | AgentError::Forbidden(m)
            | AgentError::Unavailable(m)
            | AgentError::Internal(m) => m,
        }
    }
}
