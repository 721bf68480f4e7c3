//! Who asks: every command carries its caller, so that authorization, rate
//! limits and audit are decided once, in the domain, whatever door the command
//! came in by.

use super::names;

names! {
    /// What a caller may do, each role including the one before it.
    #[derive(PartialOrd, Ord)]
    pub enum Role {
        /// Reads agents and receives their events.
        Viewer = "viewer",
        /// Also starts, stops, executes and edits agents.
        Operator = "operator",
        /// Also creates and removes agents and registers contracts.
        Admin = "admin",
    }
}

/// Which agents a caller may see at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// These agent ids (exactly) and the agents of these contract addresses
    /// (any case).
    Only(Vec<String>),
}

impl Scope {
    /// `*` is every agent; otherwise agent ids and contract addresses.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Scope {
        let mut only = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Scope::All;
            }
            only.push(entry.to_string());
        }
        Scope::Only(only)
    }

    /// Whether the agent `agent_id`, acting on `contract` when known, is in scope.
    pub fn allows(&self, agent_id: &str, contract: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(entries) => entries.iter().any(|entry| {
                entry == agent_id || contract.is_some_and(|c| entry.eq_ignore_ascii_case(c))
            }),
        }
    }
}

/// The principal behind a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A stable name for ownership and audit (`sub` of a JWT, a token's hash).
    pub subject: String,
    pub role: Role,
    pub scope: Scope,
    /// When its credential expires (Unix seconds): a session ends then.
    pub expires: Option<u64>,
}

impl Caller {
    /// This process itself, or any client while authentication is off: an
    /// admin of every agent.
    pub fn local() -> Self {
        Self {
            subject: "local".into(),
            role: Role::Admin,
            scope: Scope::All,
            expires: None,
        }
    }

    /// Whether its credential has expired.
    pub fn expired(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.expires.is_some_and(|at| at <= now)
    }

    /// Whether this caller may see the agent at all.
    pub fn sees(&self, agent_id: &str, contract: Option<&str>) -> bool {
        self.scope.allows(agent_id, contract)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_agents_or_their_contracts() {
        let scope = Scope::parse(["agent-1", "0xABcd"]);
        assert!(scope.allows("agent-1", None));
        assert!(scope.allows("other", Some("0xabcd")));
        assert!(!scope.allows("other", Some("0xffff")));
        assert!(!scope.allows("other", None));
        assert!(!scope.allows("AGENT-1", None), "agent ids are exact");
        assert_eq!(Scope::parse(["a", "*"]), Scope::All);
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }
}
