//! `get_agent {agent_id}`: the agent with its functions, schedule, notifications
//! and current state.

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::Describe,
    protocol::{ProtocolError, requests::AgentRef},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRef,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let view = session.handle(Describe { agent_id }).await?;
    session.send(success("get_agent_response", json!(view), id));
    Ok(())
}
