//! `create_schedule`: sets the agent's one schedule (cron or interval).

use serde_json::{Value, json};

use super::success;
use crate::{
    protocol::{ProtocolError, requests::CreateSchedule},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: CreateSchedule,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let schedule = session
        .state
        .manager
        .create_schedule(&agent_id, &request)
        .await?;
    session.send(success(
        "create_schedule_response",
        json!({"schedule": schedule, "agent_id": agent_id}),
        id,
    ));
    Ok(())
}
