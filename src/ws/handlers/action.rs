//! The execution view's type-less frames: `{action: "start" | "stop", agentId}`
//! and `{action: "updateConfig", agentId, config: {description}}`. The sender
//! follows the agent, so it gets the `status` event each of them produces.

use crate::{
    agents::commands::{Start, Stop, UpdateDescription},
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
    match action {
        Action::Start => session.handle(Start { agent_id }).await?,
        Action::Stop => session.handle(Stop { agent_id }).await?,
        Action::UpdateConfig { description } => {
            let command = UpdateDescription {
                agent_id,
                description,
            };
            session.handle(command).await?
        }
    };
    Ok(())
}
