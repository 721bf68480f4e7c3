//! Record: the run's row, from `running` to how it ended, and what it needs
//! from the store.

use serde_json::Value;

use crate::{
    agents::{
        recorder::{Recorder, Result, internal},
        runner::RunRequest,
    },
    model::{Agent, AgentDetails, Contract, Run, RunStatus, now, trimmed_request},
};

/// Loads the agent and records its run as `running`. `Err` is what the
/// requester is told when the run cannot start.
pub(super) async fn start(rec: &Recorder, request: &RunRequest) -> Result<AgentDetails, String> {
    let agent_id = &request.agent_id;
    let details = match rec.store.agent_details(agent_id).await {
        Ok(Some(details)) => details,
        Ok(None) => return Err(format!("agent {agent_id} not found")),
        Err(error) => {
            tracing::error!(%error, "loading an agent for a run failed");
            return Err("internal error: the agent could not be loaded".into());
        }
    };
    let run = Run {
        run_id: request.run_id.clone(),
        agent_id: agent_id.clone(),
        trigger: request.trigger,
        status: RunStatus::Running,
        request: trimmed_request(request.params.as_ref()),
        result: None,
        error: None,
        started_at: now(),
        finished_at: None,
    };
    if let Err(error) = insert(rec, &details.agent, &run).await {
        tracing::error!(%error, "recording a run failed");
        return Err("internal error: the run could not be recorded".into());
    }
    Ok(details)
}

async fn insert(rec: &Recorder, agent: &Agent, run: &Run) -> Result<()> {
    let mut change = rec.begin().await?;
    change.tx.insert_run(run).await.map_err(internal)?;
    rec.commit(change, &agent.contract_id).await
}

/// How a run ended, as its row keeps it.
pub(super) struct Ending<'a> {
    pub run_id: &'a str,
    pub status: RunStatus,
    pub result: &'a Value,
    pub errors: &'a [String],
}

/// Records how the run ended and when the agent last ran, with its `status`.
pub(super) async fn finish(rec: &Recorder, agent: &Agent, ending: Ending<'_>) {
    if let Err(error) = try_finish(rec, agent, ending).await {
        tracing::error!(%error, "recording the end of a run failed");
    }
}

async fn try_finish(rec: &Recorder, agent: &Agent, ending: Ending<'_>) -> Result<()> {
    let at = now();
    let mut change = rec.begin().await?;
    let errors = ending.errors;
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let tx = &mut change.tx;
    tx.finish_run(
        ending.run_id,
        ending.status,
        Some(ending.result),
        error.as_deref(),
        &at,
    )
    .await
    .map_err(internal)?;
    tx.set_last_executed(&agent.agent_id, &at)
        .await
        .map_err(internal)?;
    let mut agent = agent.clone();
    agent.last_executed = Some(at);
    change.emit_status(&agent).await?;
    rec.commit(change, &agent.contract_id).await
}

/// The agent's contract (the first chain it is registered on).
pub(super) async fn contract_of(rec: &Recorder, agent: &Agent) -> Result<Contract, String> {
    rec.store
        .contracts_at(&agent.contract_id)
        .await
        .map_err(|e| format!("loading the contract failed: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("contract {} is not registered", agent.contract_id))
}
