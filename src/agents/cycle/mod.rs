//! One run of an agent: observe (read functions), decide (policy), guard and
//! act (writes), record — streaming `log` events to the agent's subscribers as
//! it goes. Each step is a module of its own.

mod act;
mod decide;
mod journal;
mod observe;
mod record;
mod spend;

use serde_json::{Map, Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    executor::{Call, Executor},
    notify::{Notifier, Report},
    outcome::{ActionOutcome, LogLine, RunOutcome},
    policy::llm::LlmClient,
    recorder::Recorder,
    runner::RunRequest,
};
use crate::{
    model::{Agent, AgentDetails, Contract, Function, LogLevel, RunStatus},
    protocol::events,
};

pub(crate) use journal::settle;

/// What runs are made with.
#[derive(Debug, Default)]
pub struct RuntimeSettings {
    /// Where reads and writes go; `None`: runs can only say so.
    pub executor: Option<Executor>,
    /// Most actions one run may take; a policy's `max_actions` may only lower it.
    pub max_actions: usize,
    /// Contracts the key may call (`AGENTPORT_CONTRACT_ALLOWLIST`), lowercase;
    /// empty: any.
    pub allowed_contracts: Vec<String>,
    /// The LLM endpoint for `llm` policies, if a key is configured.
    pub llm: Option<LlmClient>,
    /// Where notifications are sent from.
    pub notifier: Notifier,
    /// How often actions still `sent` are looked up on chain.
    pub reconcile_every: std::time::Duration,
    /// How long a stopped run still waits for a broadcast transaction.
    pub run_grace: std::time::Duration,
    /// Runs in progress at once, over every agent (0 counts as 1).
    pub max_concurrent_runs: usize,
}

/// What a run may use: the recorder, the settings, and the tracked background
/// in which it leaves its notifications.
pub struct Env<'a> {
    pub rec: &'a Recorder,
    pub settings: &'a RuntimeSettings,
    pub tasks: &'a TaskTracker,
    pub stop: &'a CancellationToken,
}

/// The run as it goes: its logs and results, and where to report them.
struct Cycle<'a> {
    rec: &'a Recorder,
    agent: Agent,
    run_id: String,
    logs: Vec<LogLine>,
    results: Vec<ActionOutcome>,
    errors: Vec<String>,
    acted: bool,
}

impl Cycle<'_> {
    /// A log line: kept for the reply and the run, and streamed as an event.
    async fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        let message = crate::redact::clean(&message.into()).into_owned();
        let line = LogLine::new(level, message);
        let event = events::log(&self.agent.agent_id, level, &line.message, &line.timestamp);
        self.logs.push(line);
        if let Err(error) = self.rec.emit(&self.agent, event).await {
            tracing::warn!(%error, "a run log event was not stored");
        }
    }

    async fn fail(&mut self, message: impl Into<String>) {
        let message = crate::redact::clean(&message.into()).into_owned();
        self.log(LogLevel::Error, message.clone()).await;
        self.errors.push(message);
    }

    fn status(&self, cancelled: bool) -> RunStatus {
        if cancelled {
            RunStatus::Cancelled
        } else if self.errors.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        }
    }

    /// The run's last line.
    fn summary(&self, status: RunStatus) -> String {
        match status {
            RunStatus::Succeeded => format!(
                "Run finished: {} result(s){}",
                self.results.len(),
                if self.acted { ", actions sent" } else { "" }
            ),
            RunStatus::Cancelled => "Run stopped: the agent was stopped".to_string(),
            _ => self.errors.join("; "),
        }
    }
}

/// What a run acts on: the executor and the agent's contract.
struct Target<'a> {
    executor: &'a Executor,
    contract: &'a Contract,
    details: &'a AgentDetails,
}

impl<'a> Target<'a> {
    fn call(
        &self,
        function: &'a Function,
        args: &'a [Value],
        value: Option<alloy::primitives::U256>,
    ) -> Call<'a> {
        Call {
            address: &self.contract.address,
            signature: &function.function_signature,
            abi: function.abi.as_ref(),
            args,
            value,
        }
    }

    fn function(&self, name: &str) -> Option<&'a Function> {
        self.details
            .functions
            .iter()
            .find(|f| f.function_name == name || f.function_signature == name)
    }
}

pub(super) async fn run(
    env: &Env<'_>,
    request: RunRequest,
    cancel: CancellationToken,
) -> RunOutcome {
    let details = match record::start(env.rec, &request).await {
        Ok(details) => details,
        Err(message) => return RunOutcome::failed(&request.run_id, message),
    };
    let mut cycle = Cycle {
        rec: env.rec,
        agent: details.agent.clone(),
        run_id: request.run_id.clone(),
        logs: Vec::new(),
        results: Vec::new(),
        errors: Vec::new(),
        acted: false,
    };
    let (run_id, trigger) = (&request.run_id, request.trigger);
    let started = format!("Run {run_id} started ({trigger})");
    cycle.log(LogLevel::Info, started).await;
    let params = request.params.as_ref();
    let snapshot = steps(env, &mut cycle, &details, params, &cancel).await;
    let status = cycle.status(cancel.is_cancelled());
    let message = cycle.summary(status);
    // Each failure was logged when it happened: the last line counts them.
    let (level, last) = match status {
        RunStatus::Succeeded => (LogLevel::Info, message.clone()),
        RunStatus::Failed => {
            let failures = cycle.errors.len();
            (LogLevel::Error, format!("Run failed: {failures} error(s)"))
        }
        _ => (LogLevel::Error, message.clone()),
    };
    cycle.log(level, last).await;
    let result = json!({"snapshot": snapshot, "results": cycle.results, "logs": cycle.logs});
    let ending = record::Ending {
        run_id,
        status,
        result: &result,
        errors: &cycle.errors,
    };
    record::finish(env.rec, &cycle.agent, ending).await;
    if cycle.acted || status == RunStatus::Failed {
        let report = Report {
            run_id,
            status,
            message: &message,
            results: &cycle.results,
        };
        let notifier = &env.settings.notifier;
        notifier.after_run(env.rec.clone(), &details, report, env.tasks, env.stop);
    }
    RunOutcome {
        run_id: request.run_id,
        ok: status == RunStatus::Succeeded,
        message,
        results: cycle.results,
        logs: cycle.logs,
    }
}

/// Observe, decide, guard and act. Returns the observed state.
async fn steps(
    env: &Env<'_>,
    cycle: &mut Cycle<'_>,
    details: &AgentDetails,
    params: Option<&Value>,
    cancel: &CancellationToken,
) -> Value {
    let nothing = details.functions.is_empty();
    let nothing_to_observe = async |cycle: &mut Cycle<'_>| {
        let line = "Nothing to observe: the agent has no functions";
        cycle.log(LogLevel::Info, line).await;
        Value::Object(Map::new())
    };
    let Some(executor) = &env.settings.executor else {
        if nothing {
            return nothing_to_observe(cycle).await;
        }
        cycle
            .fail("no executor is configured: set EVM_RPC_URL (and EVM_PRIVATE_KEY) or CONTRACT_API_URL")
            .await;
        return Value::Object(Map::new());
    };
    let contract = match record::contract_of(env.rec, &details.agent).await {
        Ok(contract) => contract,
        Err(message) => {
            cycle.fail(message).await;
            return Value::Object(Map::new());
        }
    };
    if let Err(message) = executor.prepare(contract.chain_id).await {
        cycle.fail(message).await;
        return Value::Object(Map::new());
    }
    if nothing {
        return nothing_to_observe(cycle).await;
    }
    let target = Target {
        executor,
        contract: &contract,
        details,
    };
    let snapshot = observe::observe(cycle, &target, params, cancel).await;
    if !cancel.is_cancelled() {
        // Deciding only reads (the LLM, rule conditions): stopping cuts it short.
        let proposals = tokio::select! {
            proposals = decide::decide(cycle, env, &target, &snapshot) => proposals,
            _ = cancel.cancelled() => Vec::new(),
        };
        act::act(cycle, env, &target, proposals, cancel).await;
    }
    Value::Object(snapshot)
}
