//! Authorization, decided once for every command and every read of events,
//! whichever door it came in by: the caller's role must cover what the command
//! does, and the agent must be in the caller's scope. A refusal says nothing
//! about whether an agent out of scope exists.

use super::recorder::internal;
use crate::{
    model::{AgentError, Caller, Role},
    store::Store,
};

/// What a command needs the right to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Read an agent's configuration, runs and events.
    Read(&'a str),
    /// Start, stop or execute an agent.
    Operate(&'a str),
    /// Change an agent's configuration.
    Edit(&'a str),
    /// Create an agent with this id on this contract, or replace it (only its
    /// creator may).
    Create {
        agent_id: &'a str,
        contract: &'a str,
    },
    /// Remove an agent (only its creator may).
    Remove(&'a str),
    /// Register (or update) a contract.
    Register(&'a str),
    /// List agents: the list holds only those the caller may see.
    List,
}

impl Access<'_> {
    /// The least role that may do this.
    fn role(self) -> Role {
        match self {
            Access::Read(_) | Access::List => Role::Viewer,
            Access::Operate(_) | Access::Edit(_) => Role::Operator,
            Access::Create { .. } | Access::Remove(_) | Access::Register(_) => Role::Admin,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Read(_) | Access::List => "read",
            Access::Operate(_) => "operate",
            Access::Edit(_) => "edit",
            Access::Create { .. } => "create",
            Access::Remove(_) => "remove",
            Access::Register(_) => "register contracts for",
        }
    }
}

/// Whether `caller` may have `access`: `Forbidden` when not.
pub async fn authorize(
    store: &Store,
    caller: &Caller,
    access: Access<'_>,
) -> Result<(), AgentError> {
    if caller.role < access.role() {
        return Err(AgentError::Forbidden(format!(
            "forbidden: the {} role may not {} agents",
            caller.role,
            access.verb()
        )));
    }
    let agent_id = match access {
        Access::List => return Ok(()),
        Access::Register(address) => {
            return visible(caller, address, Some(address), access);
        }
        Access::Create { agent_id, contract } => {
            visible(caller, agent_id, Some(contract), access)?;
            return replaceable(store, caller, agent_id).await;
        }
        Access::Remove(agent_id) => {
            visible_agent(store, caller, agent_id, access).await?;
            return replaceable(store, caller, agent_id).await;
        }
        Access::Read(id) | Access::Operate(id) | Access::Edit(id) => id,
    };
    visible_agent(store, caller, agent_id, access).await
}

/// The agent is in the caller's scope (by id, or by the contract it acts on).
async fn visible_agent(
    store: &Store,
    caller: &Caller,
    agent_id: &str,
    access: Access<'_>,
) -> Result<(), AgentError> {
    if caller.sees(agent_id, None) {
        return Ok(());
    }
    let agent = store.agent(agent_id).await.map_err(internal)?;
    let contract = agent.as_ref().map(|a| a.contract_id.as_str());
    visible(caller, agent_id, contract, access)
}

fn visible(
    caller: &Caller,
    agent_id: &str,
    contract: Option<&str>,
    access: Access<'_>,
) -> Result<(), AgentError> {
    if caller.sees(agent_id, contract) {
        return Ok(());
    }
    Err(AgentError::Forbidden(format!(
        "forbidden: you may not {} agent {agent_id}",
        access.verb()
    )))
}

/// An existing agent is replaced or removed only by the one who created it
/// (and seen by the caller where it is now).
async fn replaceable(store: &Store, caller: &Caller, agent_id: &str) -> Result<(), AgentError> {
    let Some(agent) = store.agent(agent_id).await.map_err(internal)? else {
        return Ok(());
    };
    let mine = agent
        .created_by
        .as_deref()
        .is_none_or(|creator| creator == caller.subject);
    if mine && caller.sees(agent_id, Some(&agent.contract_id)) {
        Ok(())
    } else {
        Err(AgentError::Forbidden(format!(
            "forbidden: agent {agent_id} belongs to someone else"
        )))
    }
}
