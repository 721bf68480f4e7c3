//! Decide: the agent's policy turns the observed state into proposed actions.

use serde_json::{Map, Value};

use super::{Cycle, Env, Target};
use crate::{
    agents::{
        guard::Proposal,
        policy::{Policy, rules},
    },
    model::LogLevel,
};

/// The actions the policy proposes; none when it fails (the run records why).
pub(super) async fn decide(
    cycle: &mut Cycle<'_>,
    env: &Env<'_>,
    target: &Target<'_>,
    snapshot: &Map<String, Value>,
) -> Vec<Proposal> {
    match Policy::parse(target.details.agent.policy.as_ref()) {
        Err(message) => {
            cycle.fail(format!("policy: {message}")).await;
            Vec::new()
        }
        Ok(Policy::None) => {
            cycle.log(LogLevel::Info, "No policy: observe only").await;
            Vec::new()
        }
        Ok(Policy::Rules(rules)) => by_rules(cycle, target, &rules).await,
        Ok(Policy::Llm {
            model,
            instructions,
        }) => {
            let asked = (model.as_deref(), instructions.as_deref());
            by_llm(cycle, env, target, snapshot, asked).await
        }
    }
}

/// Each rule whose condition holds proposes its action.
async fn by_rules(
    cycle: &mut Cycle<'_>,
    target: &Target<'_>,
    rules: &[rules::Rule],
) -> Vec<Proposal> {
    let mut proposals = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(when) = &rule.when else {
            proposals.push(rule.then.clone());
            continue;
        };
        let Some(function) = target.function(&when.function) else {
            let line = format!(
                "rule {i}: {} is not a function of this agent",
                when.function
            );
            cycle.fail(line).await;
            continue;
        };
        let call = target.call(function, &when.args, None);
        let observed = match target.executor.read(&call).await {
            Ok(value) => value,
            Err(error) => {
                let line = format!("rule {i}: {} failed: {error}", when.function);
                cycle.fail(line).await;
                continue;
            }
        };
        let then = &rule.then.function;
        match rules::holds(&observed, when.op, &when.value) {
            Ok(true) => {
                let line = format!("Rule {i}: {} = {observed} holds: {then}", when.function);
                cycle.log(LogLevel::Info, line).await;
                proposals.push(rule.then.clone());
            }
            Ok(false) => {
                let line = format!("Rule {i}: {} = {observed} does not hold", when.function);
                cycle.log(LogLevel::Info, line).await;
            }
            Err(error) => cycle.fail(format!("rule {i}: {error}")).await,
        }
    }
    proposals
}

/// The model proposes, through tool calls, given the goal and the state.
async fn by_llm(
    cycle: &mut Cycle<'_>,
    env: &Env<'_>,
    target: &Target<'_>,
    snapshot: &Map<String, Value>,
    (model, instructions): (Option<&str>, Option<&str>),
) -> Vec<Proposal> {
    let Some(llm) = &env.settings.llm else {
        let line = "LLM policy without OPENAI_API_KEY: observe only";
        cycle.log(LogLevel::Info, line).await;
        return Vec::new();
    };
    match llm
        .decide(target.details, snapshot, model, instructions)
        .await
    {
        Ok(decision) => {
            if let Some(text) = decision.note {
                cycle.log(LogLevel::Info, format!("LLM: {text}")).await;
            }
            decision.proposals
        }
        Err(error) => {
            cycle.fail(format!("LLM decision failed: {error}")).await;
            Vec::new()
        }
    }
}
