//! The execution view's type-less frames: `{action: "start" | "stop", agentId}`
//! and `{action: "updateConfig", agentId, config: {description}}`. The sender
//! follows the agent, so it gets the `status` event each of them produces.

use crate::{
    protocol::{ProtocolError, requests::Action},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    action: Action,
    agent_id: Option<String>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&agent_id);
    session.follow(&agent_id).await?;
    let manager = &session.state.manager;
    match action {
        Action::Start => manager.start(&agent_id).await?,
        Action::Stop => manager.stop(&agent_id).await?,
        Action::UpdateConfig { description } => {
            manager.update_description(&agent_id, &description).await?
        }
    };
    Ok(())
}
