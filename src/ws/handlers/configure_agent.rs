//! `configure_agent`: the wizard's last step. Two frames, in this order: the
//! reply, then the `agent_configured` event (the frontend advances on the
//! second), which every subscriber of the agent gets too.

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::Configure,
    protocol::{ProtocolError, requests::AgentRef},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRef,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    // Following first: the event is then delivered after this reply.
    session.follow(&agent_id).await?;
    let command = Configure {
        agent_id: agent_id.clone(),
    };
    session.handle(command).await?;
    session.send(success(
        "configure_agent_response",
        json!({"message": "Agent configuration saved", "agent_id": agent_id}),
        id,
    ));
    Ok(())
}
