//! `start_agent`, `stop_agent`, `remove_agent`: the reply goes to the sender, the
//! `agent_started` / `agent_stopped` / `agent_removed` event to the agent's
//! subscribers (the sender among them).

use serde_json::{Value, json};

use super::success;
use crate::{
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
    let manager = &session.state.manager;
    let reply = match what {
        Lifecycle::Start => {
            manager.start(&agent_id).await?;
            "start_agent_response"
        }
        Lifecycle::Stop => {
            manager.stop(&agent_id).await?;
            "stop_agent_response"
        }
        Lifecycle::Remove => {
            manager.remove(&agent_id).await?;
            "remove_agent_response"
        }
    };
    session.send(success(reply, json!({"agent_id": agent_id}), id));
    Ok(())
}
