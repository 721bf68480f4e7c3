//! `{"kind":"rules","rules":[{"when":{"function","args","op","value"},"then":{"function","args"}}]}`:
//! deterministic decisions. A `when` reads a function (with its own args) and
//! compares its result; integers compare as 256-bit numbers.

use std::cmp::Ordering;

use serde_json::Value;

use crate::agents::guard::{Proposal, compare_numbers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub function: String,
    pub args: Vec<Value>,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub when: Option<Condition>,
    pub then: Proposal,
}

fn args_of(v: &Value, at: &str) -> Result<Vec<Value>, String> {
    match v.get("args") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(args)) => Ok(args.clone()),
        Some(_) => Err(format!("{at}.args must be an array")),
    }
}

fn function_of(v: &Value, at: &str) -> Result<String, String> {
    v.get("function")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{at}.function is required"))
}

pub fn parse(policy: &Value) -> Result<Vec<Rule>, String> {
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .ok_or("policy.rules must be an array")?;
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let at = format!("rules[{i}]");
            let when = match rule.get("when") {
                None | Some(Value::Null) => None,
                Some(when) => {
                    let op = match when.get("op").and_then(Value::as_str) {
                        Some("eq") => Op::Eq,
                        Some("ne") => Op::Ne,
                        Some("gt") => Op::Gt,
                        Some("gte") => Op::Gte,
                        Some("lt") => Op::Lt,
                        Some("lte") => Op::Lte,
                        other => {
                            return Err(format!(
                                "{at}.when.op {other:?} is not eq, ne, gt, gte, lt or lte"
                            ));
                        }
                    };
                    Some(Condition {
                        function: function_of(when, &format!("{at}.when"))?,
                        args: args_of(when, &format!("{at}.when"))?,
                        op,
                        value: when.get("value").cloned().unwrap_or(Value::Null),
                    })
                }
            };
            let then = rule
                .get("then")
                .ok_or_else(|| format!("{at}.then is required"))?;
            Ok(Rule {
                when,
                then: Proposal {
                    function: function_of(then, &format!("{at}.then"))?,
                    args: args_of(then, &format!("{at}.then"))?,
                    value: then.get("value").map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
                },
            })
        })
        .collect()
}

/// Whether `observed <op> expected` holds. Numbers compare numerically, anything
/// else only by (in)equality of its text.
pub fn holds(observed: &Value, op: Op, expected: &Value) -> Result<bool, String> {
    if let Some(order) = compare_numbers(observed, expected) {
        return Ok(match op {
            Op::Eq => order == Ordering::Equal,
            Op::Ne => order != Ordering::Equal,
            Op::Gt => order == Ordering::Greater,
            Op::Gte => order != Ordering::Less,
            Op::Lt => order == Ordering::Less,
            Op::Lte => order != Ordering::Greater,
        });
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.to_ascii_lowercase(),
        other => other.to_string(),
    };
    match op {
        Op::Eq => Ok(text(observed) == text(expected)),
        Op::Ne => Ok(text(observed) != text(expected)),
        _ => Err(format!(
            "cannot order {observed} and {expected}: not numbers"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rules_parse_and_compare_256_bit_integers() {
        let rules = parse(&json!({"kind": "rules", "rules": [{
            "when": {"function": "balanceOf", "args": ["0xab"], "op": "gt", "value": "1000"},
            "then": {"function": "transfer", "args": ["0xcd", "10"]}}]}))
        .unwrap();
        assert_eq!(rules[0].when.as_ref().unwrap().op, Op::Gt);
        assert_eq!(rules[0].then.args, vec![json!("0xcd"), json!("10")]);
        let big =
            json!("115792089237316195423570985008687907853269984665640564039457584007913129639935");
        assert!(holds(&big, Op::Gt, &json!("1000")).unwrap());
        assert!(holds(&json!("1000"), Op::Lte, &json!(1000)).unwrap());
        assert!(holds(&json!("0xAB"), Op::Eq, &json!("0xab")).unwrap());
        assert!(holds(&json!("x"), Op::Gt, &json!("y")).is_err());
        assert!(parse(&json!({"rules": [{"when": {"function": "f", "op": "??"}, "then": {"function": "g"}}]})).is_err());
    }
}
