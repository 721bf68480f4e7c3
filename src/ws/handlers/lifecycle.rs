//! `start_agent`, `stop_agent`, `remove_agent`: the reply goes to the sender, the
//! `agent_started` / `agent_stopped` / `agent_removed` event to the agent's
//! subscribers (the sender among them).

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::{Remove, Start, Stop},
    protocol::{ProtocolError, requests::AgentRef},
    ws::session::Session,
};

#[derive(Debug, Clone, Copy)]
pub enum Lifecycle {
    Start,
    Stop,
    Remove,
}

pub async fn handle(
    session: &mut Session,
    what: Lifecycle,
    request: AgentRef,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let agent = agent_id.clone();
    let reply = match what {
        Lifecycle::Start => {
            session.handle(Start { agent_id: agent }).await?;
            "start_agent_response"
        }
        Lifecycle::Stop => {
            session.handle(Stop { agent_id: agent }).await?;
            "stop_agent_response"
        }
        Lifecycle::Remove => {
            session.handle(Remove { agent_id: agent }).await?;
            "remove_agent_response"
        }
    };
    session.send(success(reply, json!({"agent_id": agent_id}), id));
    Ok(())
}
