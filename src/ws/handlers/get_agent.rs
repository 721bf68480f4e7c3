//! `get_agent {agent_id}`: the agent with its functions, schedule, notifications
//! and current state.

use serde_json::{Value, json};

use super::success;
use crate::{
    protocol::{ProtocolError, requests::AgentRef},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRef,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let details = session.state.manager.details(&agent_id).await?;
    let state = session.state.manager.state(&details).await?;
    session.send(success(
        "get_agent_response",
        json!({"agent": details.agent, "functions": details.functions,
               "schedule": details.schedule, "notifications": details.notifications,
               "state": state}),
        id,
    ));
    Ok(())
}
