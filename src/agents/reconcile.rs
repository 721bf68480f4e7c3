//! Reconciliation: after a crash (at start) and then periodically, every
//! action still `sent` is looked up on chain and settled, and a run a crash
//! left `running` is completed from its actions once they are all final. A
//! run is marked `interrupted` only if it sent nothing.

use std::collections::HashSet;

use serde_json::json;

use super::{
    cycle::settle,
    executor::Executor,
    recorder::{Recorder, internal},
};
use crate::model::{Action, ActionState, Run, RunStatus, now};

/// Settles what the chain has decided, for agents with no run in progress
/// here (`busy`: a live run follows its own). Returns the runs whose actions
/// settled.
pub async fn actions(
    rec: &Recorder,
    executor: &Executor,
    busy: &HashSet<String>,
) -> HashSet<String> {
    let unsettled = match rec.store.unsettled_actions().await {
        Ok(actions) => actions,
        Err(error) => {
            tracing::warn!(%error, "reading unsettled actions failed");
            return HashSet::new();
        }
    };
    let mut runs = HashSet::new();
    for action in unsettled
        .into_iter()
        .filter(|a| !busy.contains(&a.agent_id))
    {
        let age = age_of(&action.created_at);
        match executor.settled(&action, age).await {
            Some(Ok(settled)) if settled.state != ActionState::Sent => {
                let contract = contract_of(rec, &action).await;
                settle(rec, &contract, &action.tx_hash, settled).await;
                runs.insert(action.run_id);
            }
            Some(Err(error)) => tracing::warn!(%error, tx = %action.tx_hash, "reconciling failed"),
            _ => {}
        }
    }
    runs
}

/// How long ago `at` (RFC 3339) was; zero when it does not parse.
fn age_of(at: &str) -> std::time::Duration {
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok())
        .unwrap_or_default()
}

async fn contract_of(rec: &Recorder, action: &Action) -> String {
    let agent = rec.store.agent(&action.agent_id).await.ok().flatten();
    agent.map(|a| a.contract_id).unwrap_or_default()
}

/// Completes, from their actions once all are final, the runs left `running`
/// by a crash and the runs whose actions just `settled` (a run stopped while
/// its transaction was on its way); `busy` are the agents with a run in
/// progress here.
pub async fn runs(rec: &Recorder, settled: &HashSet<String>, busy: &HashSet<String>) {
    let Ok(mut runs) = rec.store.running_runs().await else {
        return;
    };
    for run_id in settled {
        if let Ok(Some(run)) = rec.store.run(run_id).await
            && run.status != RunStatus::Running
        {
            runs.push(run);
        }
    }
    // A `running` run of a busy agent may be the live one; a finished run is
    // completed whatever its agent does now.
    let free = |r: &&Run| r.status != RunStatus::Running || !busy.contains(&r.agent_id);
    for run in runs.iter().filter(free) {
        if let Err(error) = complete(rec, run).await {
            tracing::warn!(%error, run = %run.run_id, "completing a run from the chain failed");
        }
    }
}

async fn complete(rec: &Recorder, run: &Run) -> Result<(), crate::model::AgentError> {
    let actions = rec
        .store
        .actions_of_run(&run.run_id)
        .await
        .map_err(internal)?;
    if actions.is_empty() || actions.iter().any(|a| a.state == ActionState::Sent) {
        return Ok(());
    }
    let failed: Vec<String> = actions
        .iter()
        .filter(|a| a.state != ActionState::Confirmed)
        .map(|a| format!("{} {}: {}", a.function, a.tx_hash, a.state))
        .collect();
    let status = if failed.is_empty() {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    // What the run recorded stays; the chain's verdicts are added to it.
    let mut result = match &run.result {
        Some(serde_json::Value::Object(recorded)) => recorded.clone(),
        _ => serde_json::Map::new(),
    };
    result.insert("reconciled".into(), json!(true));
    let verdicts = actions.iter().map(|a| {
        json!({"function": a.function, "tx_hash": a.tx_hash, "state": a.state,
               "gas_used": a.gas_used})
    });
    result.insert("actions".into(), json!(verdicts.collect::<Vec<_>>()));
    let result = serde_json::Value::Object(result);
    let error = (!failed.is_empty()).then(|| failed.join("; "));
    let mut change = rec.begin().await?;
    let tx = &mut change.tx;
    tx.finish_run(&run.run_id, status, Some(&result), error.as_deref(), &now())
        .await
        .map_err(internal)?;
    let contract = rec
        .store
        .agent(&run.agent_id)
        .await
        .ok()
        .flatten()
        .map(|a| a.contract_id)
        .unwrap_or_default();
    rec.commit(change, &contract).await?;
    tracing::info!(run = %run.run_id, %status, "a run cut by a stop was completed from the chain");
    Ok(())
}
