//! `create_schedule`: sets the agent's one schedule (cron or interval).

use serde_json::Value;

use super::save_part;
use crate::{
    agents::commands::SetSchedule,
    model::NewSchedule,
    protocol::{ProtocolError, requests::AgentRequest},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRequest<NewSchedule>,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let reply = ("create_schedule_response", "schedule");
    save_part(session, request, id, reply, |agent_id, schedule| {
        SetSchedule { agent_id, schedule }
    })
    .await
}
