//! `list_runs {agent_id, limit?}`: the agent's most recent runs, newest first.

use serde_json::{Value, json};

use super::success;
use crate::{
    protocol::{ProtocolError, requests::ListRuns},
    ws::session::Session,
};

/// Default and largest number of runs per reply.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

pub async fn handle(
    session: &mut Session,
    request: ListRuns,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as u32;
    let runs = session.state.manager.runs(&agent_id, limit).await?;
    session.send(success(
        "list_runs_response",
        json!({"agent_id": agent_id, "runs": runs}),
        id,
    ));
    Ok(())
}
