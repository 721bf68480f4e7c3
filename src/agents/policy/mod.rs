//! Deciding what an agent does after observing: declarative rules, an LLM, or
//! nothing (observe only).

pub mod llm;
pub mod rules;

use serde_json::Value;

/// The agent's `policy` field, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// No policy: observe only.
    None,
    Rules(Vec<rules::Rule>),
    Llm {
        model: Option<String>,
        instructions: Option<String>,
    },
}

impl Policy {
    pub fn parse(policy: Option<&Value>) -> Result<Policy, String> {
        let Some(policy) = policy.filter(|p| !p.is_null()) else {
            return Ok(Policy::None);
        };
        match policy.get("kind").and_then(Value::as_str) {
            Some("rules") => Ok(Policy::Rules(rules::parse(policy)?)),
            Some("llm") => Ok(Policy::Llm {
                model: policy
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                instructions: policy
                    .get("instructions")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            Some("none") | None => Ok(Policy::None),
            Some(other) => Err(format!("policy kind `{other}` is not rules, llm or none")),
        }
    }

    /// Most actions one run may take: the policy's `max_actions`, never more
    /// than the server's `cap`.
    pub fn max_actions(policy: Option<&Value>, cap: usize) -> usize {
        policy
            .and_then(|p| p.get("max_actions"))
            .and_then(Value::as_u64)
            .map_or(cap, |n| usize::try_from(n).unwrap_or(usize::MAX).min(cap))
    }
}
