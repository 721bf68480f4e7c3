//! One run of an agent: observe (read functions), decide (policy), guard
//! (validation rules and limits), act (writes), record — streaming `log` events
//! to the agent's subscribers as it goes.

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{
    executor::{Call, Executor},
    guard::{self, Proposal},
    manager::Execution,
    model::{Agent, AgentDetails, Contract, Function, FunctionType, Run, now},
    policy::{Policy, rules},
    recorder::{Recorder, status_of},
    runtime::Inner,
};
use crate::protocol::events;

/// The run as it goes: its logs and results, and where to report them.
struct Cycle<'a> {
    rec: &'a Recorder,
    agent: Agent,
    run_id: String,
    logs: Vec<Value>,
    results: Vec<Value>,
    errors: Vec<String>,
    acted: bool,
}

impl Cycle<'_> {
    /// A log line: kept for the reply and the run, and streamed as an event.
    async fn log(&mut self, level: &str, message: impl Into<String>) {
        let message = message.into();
        let at = now();
        self.logs
            .push(json!({"timestamp": at, "level": level, "message": message}));
        let event = events::log(&self.agent.agent_id, level, &message, &at);
        if let Err(error) = self.rec.emit(&self.agent, event).await {
            tracing::warn!(%error, "a run log event was not stored");
        }
    }

    async fn fail(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.log("error", message.clone()).await;
        self.errors.push(message);
    }
}

pub(super) async fn run(
    runtime: &Inner,
    agent_id: &str,
    run_id: &str,
    trigger: &str,
    params: Option<Value>,
    cancel: CancellationToken,
) -> Execution {
    let rec = &runtime.rec;
    let details = match rec.store.agent_details(agent_id).await {
        Ok(Some(details)) => details,
        Ok(None) => return failed(run_id, format!("agent {agent_id} not found")),
        Err(error) => {
            tracing::error!(%error, "loading an agent for a run failed");
            return failed(
                run_id,
                "internal error: the agent could not be loaded".into(),
            );
        }
    };
    let started = now();
    let run = Run {
        run_id: run_id.to_string(),
        agent_id: agent_id.to_string(),
        trigger: trigger.to_string(),
        status: "running".into(),
        request: params.clone(),
        result: None,
        error: None,
        started_at: started.clone(),
        finished_at: None,
    };
    if let Err(error) = insert_run(rec, &details.agent, &run).await {
        tracing::error!(%error, "recording a run failed");
        return failed(
            run_id,
            "internal error: the run could not be recorded".into(),
        );
    }
    let mut cycle = Cycle {
        rec,
        agent: details.agent.clone(),
        run_id: run_id.to_string(),
        logs: Vec::new(),
        results: Vec::new(),
        errors: Vec::new(),
        acted: false,
    };
    cycle
        .log("info", format!("Run {run_id} started ({trigger})"))
        .await;
    let snapshot = steps(runtime, &mut cycle, &details, params.as_ref(), &cancel).await;
    let cancelled = cancel.is_cancelled();
    let status = if cancelled {
        "cancelled"
    } else if cycle.errors.is_empty() {
        "succeeded"
    } else {
        "failed"
    };
    let message = match status {
        "succeeded" => format!(
            "Run finished: {} result(s){}",
            cycle.results.len(),
            if cycle.acted { ", actions sent" } else { "" }
        ),
        "cancelled" => "Run stopped: the agent was stopped".to_string(),
        _ => cycle.errors.join("; "),
    };
    cycle
        .log(
            if status == "succeeded" {
                "info"
            } else {
                "error"
            },
            message.clone(),
        )
        .await;
    let result = json!({"snapshot": snapshot, "results": cycle.results, "logs": cycle.logs});
    let finished = now();
    if let Err(error) = finish_run(
        rec,
        &cycle.agent,
        run_id,
        status,
        &result,
        &cycle.errors,
        &finished,
    )
    .await
    {
        tracing::error!(%error, "recording the end of a run failed");
    }
    if cycle.acted || status == "failed" {
        let report = super::notify::Report {
            run_id,
            status,
            message: &message,
            results: &cycle.results,
        };
        runtime.settings.notifier.after_run(
            rec.clone(),
            &details,
            report,
            &runtime.tasks,
            &runtime.stop,
        );
    }
    Execution {
        run_id: cycle.run_id,
        ok: status == "succeeded",
        message,
        results: cycle.results,
        logs: cycle.logs,
    }
}

fn failed(run_id: &str, message: String) -> Execution {
    Execution {
        run_id: run_id.to_string(),
        ok: false,
        logs: vec![json!({"timestamp": now(), "level": "error", "message": message})],
        message,
        results: Vec::new(),
    }
}

async fn insert_run(rec: &Recorder, agent: &Agent, run: &Run) -> super::recorder::Result<()> {
    let mut change = rec.begin().await?;
    change
        .tx
        .insert_run(run)
        .await
        .map_err(super::recorder::internal)?;
    rec.commit(change, &agent.contract_id).await
}

async fn finish_run(
    rec: &Recorder,
    agent: &Agent,
    run_id: &str,
    status: &str,
    result: &Value,
    errors: &[String],
    at: &str,
) -> super::recorder::Result<()> {
    let mut change = rec.begin().await?;
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    change
        .tx
        .finish_run(run_id, status, Some(result), error.as_deref(), at)
        .await
        .map_err(super::recorder::internal)?;
    change
        .tx
        .set_last_executed(&agent.agent_id, at)
        .await
        .map_err(super::recorder::internal)?;
    let mut agent = agent.clone();
    agent.last_executed = Some(at.to_string());
    let schedule = change
        .tx
        .schedule(&agent.agent_id)
        .await
        .map_err(super::recorder::internal)?;
    change
        .emit(&agent.agent_id, status_of(&agent, schedule.as_ref()))
        .await?;
    rec.commit(change, &agent.contract_id).await
}

/// Observe, decide, guard, act. Returns the observed state.
async fn steps(
    runtime: &Inner,
    cycle: &mut Cycle<'_>,
    details: &AgentDetails,
    params: Option<&Value>,
    cancel: &CancellationToken,
) -> Value {
    let mut snapshot = Map::new();
    let Some(executor) = &runtime.settings.executor else {
        cycle
            .fail("no executor is configured: set EVM_RPC_URL (and EVM_PRIVATE_KEY) or CONTRACT_API_URL")
            .await;
        return Value::Object(snapshot);
    };
    let contract = match contract_of(cycle.rec, &details.agent).await {
        Ok(contract) => contract,
        Err(message) => {
            cycle.fail(message).await;
            return Value::Object(snapshot);
        }
    };
    if let Err(message) = executor.prepare(contract.chain_id).await {
        cycle.fail(message).await;
        return Value::Object(snapshot);
    }

    // 1. Observe.
    for function in details
        .functions
        .iter()
        .filter(|f| f.is_enabled && f.function_type == FunctionType::Read)
    {
        let Some(args) = arguments_for(function, params) else {
            cycle
                .log(
                    "info",
                    format!(
                        "{} skipped: its arguments are not known",
                        function.function_signature
                    ),
                )
                .await;
            continue;
        };
        let call = call_of(&contract, function, &args, None);
        // A read is safe to abandon: stopping the agent cuts it short.
        let read = tokio::select! {
            _ = cancel.cancelled() => break,
            read = executor.read(&call) => read,
        };
        match read {
            Ok(value) => {
                cycle
                    .log(
                        "info",
                        format!("{} = {}", function.function_signature, value),
                    )
                    .await;
                cycle
                    .results
                    .push(json!({"function": function.function_name, "params": args,
                                          "result": value, "success": true}));
                snapshot.insert(function.function_signature.clone(), value);
            }
            Err(error) => {
                cycle
                    .results
                    .push(json!({"function": function.function_name, "params": args,
                                          "result": error, "success": false}));
                cycle
                    .fail(format!("{} failed: {error}", function.function_signature))
                    .await;
            }
        }
    }
    if cancel.is_cancelled() {
        return Value::Object(snapshot);
    }

    // 2. Decide.
    let proposals = match Policy::parse(details.agent.policy.as_ref()) {
        Err(message) => {
            cycle.fail(format!("policy: {message}")).await;
            return Value::Object(snapshot);
        }
        Ok(Policy::None) => {
            cycle.log("info", "No policy: observe only").await;
            Vec::new()
        }
        Ok(Policy::Rules(rules)) => {
            decide_by_rules(cycle, executor, &contract, details, &rules).await
        }
        Ok(Policy::Llm {
            model,
            instructions,
        }) => match &runtime.settings.llm {
            None => {
                cycle
                    .log("info", "LLM policy without OPENAI_API_KEY: observe only")
                    .await;
                Vec::new()
            }
            Some(llm) => {
                let asked = llm
                    .decide(
                        details,
                        &snapshot,
                        model.as_deref(),
                        instructions.as_deref(),
                    )
                    .await;
                match asked {
                    Ok(decision) => {
                        if let Some(text) = decision.note {
                            cycle.log("info", format!("LLM: {text}")).await;
                        }
                        decision.proposals
                    }
                    Err(error) => {
                        cycle.fail(format!("LLM decision failed: {error}")).await;
                        Vec::new()
                    }
                }
            }
        },
    };

    // 3. Guard, 4. act.
    let max_actions =
        Policy::max_actions(details.agent.policy.as_ref(), runtime.settings.max_actions);
    let gas_limit: u64 = details.agent.gas_limit.parse().unwrap_or(0);
    for (index, proposal) in proposals.into_iter().enumerate() {
        let params = Value::Array(proposal.args.clone());
        let verdict = if index >= max_actions {
            Err(format!("over the limit of {max_actions} action(s) per run"))
        } else {
            guard::check(&proposal, &details.functions, &details.agent.gas_limit)
        };
        if let Err(reason) = verdict {
            cycle
                .log(
                    "warning",
                    format!("Rejected {}: {reason}", proposal.function),
                )
                .await;
            cycle
                .results
                .push(json!({"function": proposal.function, "params": params,
                                      "result": {"rejected": reason}, "success": false}));
            continue;
        }
        if cancel.is_cancelled() {
            break;
        }
        let function = find(&details.functions, &proposal.function).expect("the guard found it");
        let value = match proposal
            .value
            .as_deref()
            .map(super::executor::evm::parse_value)
        {
            Some(Err(reason)) => {
                cycle.fail(format!("{}: {reason}", proposal.function)).await;
                continue;
            }
            Some(Ok(value)) => Some(value),
            None => None,
        };
        let call = call_of(&contract, function, &proposal.args, value);
        cycle
            .log(
                "info",
                format!(
                    "Sending {}({})",
                    function.function_name,
                    args_text(&proposal.args)
                ),
            )
            .await;
        cycle.acted = true;
        match executor
            .write(&call, gas_limit, &details.agent.max_priority_fee)
            .await
        {
            Ok(outcome) => {
                let line = if outcome.success {
                    format!(
                        "{} confirmed: tx {} (gas used {})",
                        function.function_name, outcome.tx_hash, outcome.gas_used
                    )
                } else {
                    format!(
                        "{} reverted: {} (tx {})",
                        function.function_name,
                        outcome.revert_reason.as_deref().unwrap_or("no reason"),
                        outcome.tx_hash
                    )
                };
                cycle.results.push(json!({"function": function.function_name, "params": params,
                                          "result": outcome.to_json(), "success": outcome.success}));
                if outcome.success {
                    cycle.log("info", line).await;
                } else {
                    cycle.fail(line).await;
                }
            }
            Err(error) => {
                cycle
                    .results
                    .push(json!({"function": function.function_name, "params": params,
                                          "result": error, "success": false}));
                cycle
                    .fail(format!("{} failed: {error}", function.function_name))
                    .await;
            }
        }
    }
    Value::Object(snapshot)
}

async fn decide_by_rules(
    cycle: &mut Cycle<'_>,
    executor: &Executor,
    contract: &Contract,
    details: &AgentDetails,
    rules: &[rules::Rule],
) -> Vec<Proposal> {
    let mut proposals = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(when) = &rule.when else {
            proposals.push(rule.then.clone());
            continue;
        };
        let Some(function) = find(&details.functions, &when.function) else {
            cycle
                .fail(format!(
                    "rule {i}: {} is not a function of this agent",
                    when.function
                ))
                .await;
            continue;
        };
        let call = call_of(contract, function, &when.args, None);
        let observed = match executor.read(&call).await {
            Ok(value) => value,
            Err(error) => {
                cycle
                    .fail(format!("rule {i}: {} failed: {error}", when.function))
                    .await;
                continue;
            }
        };
        match rules::holds(&observed, when.op, &when.value) {
            Ok(true) => {
                cycle
                    .log(
                        "info",
                        format!(
                            "Rule {i}: {} = {observed} holds: {}",
                            when.function, rule.then.function
                        ),
                    )
                    .await;
                proposals.push(rule.then.clone());
            }
            Ok(false) => {
                cycle
                    .log(
                        "info",
                        format!("Rule {i}: {} = {observed} does not hold", when.function),
                    )
                    .await
            }
            Err(error) => cycle.fail(format!("rule {i}: {error}")).await,
        }
    }
    proposals
}

fn find<'f>(functions: &'f [Function], name: &str) -> Option<&'f Function> {
    functions
        .iter()
        .find(|f| f.function_name == name || f.function_signature == name)
}

fn call_of<'a>(
    contract: &'a Contract,
    function: &'a Function,
    args: &'a [Value],
    value: Option<alloy::primitives::U256>,
) -> Call<'a> {
    Call {
        address: &contract.address,
        signature: &function.function_signature,
        abi: function.abi.as_ref(),
        args,
        value,
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

/// The agent's contract (the first chain it is registered on).
async fn contract_of(rec: &Recorder, agent: &Agent) -> Result<Contract, String> {
    rec.store
        .contracts_at(&agent.contract_id)
        .await
        .map_err(|e| format!("loading the contract failed: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("contract {} is not registered", agent.contract_id))
}

/// The arguments of a read function: none when it takes none, else the values
/// the execution view sent in `functions[].parameters[].value`.
fn arguments_for(function: &Function, params: Option<&Value>) -> Option<Vec<Value>> {
    let inputs = function
        .abi
        .as_ref()
        .and_then(|abi| abi.get("inputs"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let sent = params
        .and_then(|p| p.get("functions"))
        .and_then(Value::as_array)
        .and_then(|functions| {
            functions.iter().find(|f| {
                let name = f
                    .get("name")
                    .or_else(|| f.get("functionName"))
                    .or_else(|| f.get("function_name"));
                let signature = f.get("signature").or_else(|| f.get("functionSignature"));
                name.and_then(Value::as_str) == Some(function.function_name.as_str())
                    || signature.and_then(Value::as_str)
                        == Some(function.function_signature.as_str())
            })
        })
        .and_then(|f| f.get("parameters").or_else(|| f.get("params")))
        .and_then(Value::as_array)
        .map(|parameters| {
            parameters
                .iter()
                .map(|p| p.get("value").cloned().unwrap_or_else(|| p.clone()))
                .collect::<Vec<_>>()
        });
    match sent {
        Some(values)
            if values.len() == inputs && values.iter().all(|v| !v.is_null() && v != "") =>
        {
            Some(values)
        }
        _ if inputs == 0 => Some(Vec::new()),
        _ => None,
    }
}
