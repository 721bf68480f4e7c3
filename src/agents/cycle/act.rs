//! Guard and act: every proposal is checked against its function's rules and
//! the server's limits; those that pass are sent, one at a time.

use alloy::primitives::U256;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Cycle, Env, Target, journal::RunJournal, spend};
use crate::{
    agents::{
        executor::{Journal, Settled, WriteError, WriteOutcome},
        guard::{self, Checked, Limits, Proposal},
        outcome::{ActionOutcome, CallResult},
        policy::Policy,
    },
    model::{ActionState, LogLevel},
};

/// Guards and sends the proposals in order. Stopping the agent stops before
/// the next send; a write already sent is never abandoned.
pub(super) async fn act(
    cycle: &mut Cycle<'_>,
    env: &Env<'_>,
    target: &Target<'_>,
    proposals: Vec<Proposal>,
    cancel: &CancellationToken,
) {
    let agent = &target.details.agent;
    let settings = env.settings;
    let max_actions = Policy::max_actions(agent.policy.as_ref(), settings.max_actions);
    let limits = Limits {
        gas_limit: &agent.gas_limit,
        max_value_wei: agent.max_value_wei.parse().unwrap_or(U256::ZERO),
        contract: &target.contract.address,
        allowed_contracts: &settings.allowed_contracts,
    };
    for (index, proposal) in proposals.into_iter().enumerate() {
        let verdict = if index >= max_actions {
            Err(format!("over the limit of {max_actions} action(s) per run"))
        } else {
            guard::check(&proposal, &target.details.functions, &limits)
        };
        let checked = match verdict {
            Ok(checked) => checked,
            Err(reason) => {
                reject(cycle, &proposal, reason).await;
                continue;
            }
        };
        if cancel.is_cancelled() {
            break;
        }
        // Checked before every send: an earlier one (of this run too) may be
        // on its way still.
        if awaiting_predecessor(env, &agent.agent_id).await {
            let line = "no new action: a transaction of this agent is not final yet";
            cycle.fail(line).await;
            break;
        }
        let value = checked.value.unwrap_or_default();
        let day = match spend::reserve(env.rec, agent, value).await {
            Ok(day) => day,
            Err(reason) => {
                reject(cycle, &proposal, reason).await;
                continue;
            }
        };
        if !send(cycle, (env, target), &proposal, checked, cancel).await {
            spend::release(env.rec, agent, value, &day).await;
        }
    }
}

/// Whether an earlier transaction of the agent is still `sent`: acting again
/// before it is settled could do the same thing twice.
async fn awaiting_predecessor(env: &Env<'_>, agent_id: &str) -> bool {
    match env.rec.store.has_unsettled_action(agent_id).await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(%error, "reading the agent's actions failed: not acting");
            true
        }
    }
}

async fn reject(cycle: &mut Cycle<'_>, proposal: &Proposal, reason: String) {
    let line = format!("Rejected {}: {reason}", proposal.function);
    cycle.log(LogLevel::Warning, line).await;
    let params = Value::Array(proposal.args.clone());
    let result = CallResult::Rejected(reason);
    let outcome = ActionOutcome::new(&proposal.function, params, result);
    cycle.results.push(outcome);
}

/// Sends one guarded proposal and records what became of it. Returns whether
/// its value may have left: a success, or a failure after the request went out.
async fn send(
    cycle: &mut Cycle<'_>,
    (env, target): (&Env<'_>, &Target<'_>),
    proposal: &Proposal,
    checked: Checked<'_>,
    cancel: &CancellationToken,
) -> bool {
    let function = checked.function;
    let name = &function.function_name;
    let call = target.call(function, &proposal.args, checked.value);
    let line = format!("Sending {name}({})", args_text(&proposal.args));
    cycle.log(LogLevel::Info, line).await;
    cycle.acted = true;
    let agent = &target.details.agent;
    let gas_limit: u64 = agent.gas_limit.parse().unwrap_or(0);
    let params = Value::Array(proposal.args.clone());
    let journal = RunJournal {
        rec: cycle.rec,
        cancel,
        agent,
        run_id: &cycle.run_id,
        function: name,
        args: &params,
        value_wei: checked.value.unwrap_or_default().to_string(),
    };
    let write = target
        .executor
        .write(&call, gas_limit, &agent.max_priority_fee, &journal);
    // Stopped meanwhile: a broadcast transaction gets `run_grace` more, then
    // is left `sent` for reconciliation; the process does not wait longer.
    let grace = async {
        cancel.cancelled().await;
        tokio::time::sleep(env.settings.run_grace).await;
    };
    let written = tokio::select! {
        written = write => written,
        _ = grace => Err(WriteError::maybe_sent(
            "the run was stopped: the transaction, if sent, is left for reconciliation",
        )),
    };
    if let Ok(outcome) = &written
        && !outcome.simulated
    {
        journal.settled(&outcome.tx_hash, settled_of(outcome)).await;
    }
    record(cycle, name, params, written).await
}

/// What a receipt says of the action.
fn settled_of(outcome: &WriteOutcome) -> Settled {
    Settled {
        state: if outcome.success {
            ActionState::Confirmed
        } else {
            ActionState::Reverted
        },
        gas_used: Some(outcome.gas_used),
        block: None,
    }
}

/// Logs and keeps what became of a write. Returns whether its value may have
/// left.
async fn record(
    cycle: &mut Cycle<'_>,
    name: &str,
    params: Value,
    written: Result<WriteOutcome, WriteError>,
) -> bool {
    match written {
        Ok(outcome) => {
            let reason = outcome.revert_reason.as_deref().unwrap_or("no reason");
            let line = if outcome.success {
                let (tx, gas) = (&outcome.tx_hash, outcome.gas_used);
                format!("{name} confirmed: tx {tx} (gas used {gas})")
            } else if outcome.simulated {
                format!("{name} would revert: {reason} (nothing sent)")
            } else {
                format!("{name} reverted: {reason} (tx {})", outcome.tx_hash)
            };
            let success = outcome.success;
            let result = CallResult::Sent(outcome);
            cycle.results.push(ActionOutcome::new(name, params, result));
            if success {
                cycle.log(LogLevel::Info, line).await;
            } else {
                cycle.fail(line).await;
            }
            success
        }
        Err(error) => {
            let result = CallResult::Failed(error.message.clone());
            cycle.results.push(ActionOutcome::new(name, params, result));
            cycle.fail(format!("{name} failed: {error}")).await;
            error.maybe_sent
        }
    }
}

fn args_text(args: &[Value]) -> String {
    args.iter()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
