//! `create_agent`: creates the agent with the wizard's id (or updates it).

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::CreateAgent,
    model::NewAgent,
    protocol::{ProtocolError, requests::AgentRequest},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRequest<NewAgent>,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let command = CreateAgent {
        agent_id: agent_id.clone(),
        agent: request.body,
    };
    let agent = session.handle(command).await?;
    session.send(success(
        "create_agent_response",
        json!({"message": "Agent created successfully", "agent": agent, "agent_id": agent_id}),
        id,
    ));
    Ok(())
}
