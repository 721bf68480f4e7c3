//! Who asks: every command carries its caller, so that authorization, rate
//! limits and audit are decided once, in the domain, whatever door the command
//! came in by.

/// The principal behind a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A stable name for logs and ownership (`sub` of a token, later).
    pub subject: String,
}

impl Caller {
    /// This process itself, or any client while authentication is off: allowed
    /// everything.
    pub fn local() -> Self {
        Self {
            subject: "local".into(),
        }
    }
}
