//! `list_runs {agent_id, limit?, cursor?}`: the agent's runs, newest first, a
//! page at a time (`next_cursor` of a reply is the `cursor` of the next).

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::ListRuns,
    protocol::{ProtocolError, requests},
    ws::session::Session,
};

/// Default and largest number of runs per reply.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

pub async fn handle(
    session: &mut Session,
    request: requests::ListRuns,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as u32;
    let command = ListRuns {
        agent_id: agent_id.clone(),
        limit,
        before: request.cursor,
    };
    let runs = session.handle(command).await?;
    // A full page may have more behind it.
    let next = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.run_id.clone()))
        .flatten();
    session.send(success(
        "list_runs_response",
        json!({"agent_id": agent_id, "runs": runs, "next_cursor": next}),
        id,
    ));
    Ok(())
}
