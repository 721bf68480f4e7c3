//! Authorization, decided once for every command and every read of events,
//! whichever door it came in by. Today every caller is local and may do
//! anything; roles and agent scopes plug in here.

use crate::model::{AgentError, Caller};

/// What a command needs the right to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Read an agent's configuration, runs and events.
    Read(&'a str),
    /// Start, stop or execute an agent.
    Operate(&'a str),
    /// Change an agent's configuration.
    Edit(&'a str),
    /// Create an agent with this id (or replace it).
    Create(&'a str),
    /// Remove an agent.
    Remove(&'a str),
    /// Register (or update) a contract.
    Register(&'a str),
    /// List agents: the list holds only those the caller may read.
    List,
}

/// Whether `caller` may have `access`; `Forbidden` when not, saying nothing of
/// agents the caller may not see.
pub fn authorize(caller: &Caller, access: Access<'_>) -> Result<(), AgentError> {
    let _ = (caller, access);
    Ok(())
}
