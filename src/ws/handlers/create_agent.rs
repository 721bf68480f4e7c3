//! `create_agent`: creates the agent with the wizard's id (or updates it).

use serde_json::{Value, json};

use super::success;
use crate::{
    protocol::{ProtocolError, requests::CreateAgent},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: CreateAgent,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let agent = session
        .state
        .manager
        .create_agent(&agent_id, &request)
        .await?;
    session.send(success(
        "create_agent_response",
        json!({"message": "Agent created successfully", "agent": agent, "agent_id": agent_id}),
        id,
    ));
    Ok(())
}
