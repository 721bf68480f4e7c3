//! The guard: every proposed action is checked against its function's
//! validation rules and the agent's limits before anything is sent.

use std::cmp::Ordering;

use alloy::primitives::{I256, U256};
use serde_json::Value;

use crate::model::{Function, FunctionType};

/// An action a policy proposes: call `function` with `args`.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub function: String,
    pub args: Vec<Value>,
    /// Wei to send with a payable call, as a decimal string.
    pub value: Option<String>,
}

/// Compares two JSON values as numbers (256-bit, signed or not) when both are
/// numbers or numeric strings; `None` otherwise.
pub fn compare_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    let (a, b) = (number_text(a)?, number_text(b)?);
    if let (Ok(a), Ok(b)) = (a.parse::<U256>(), b.parse::<U256>()) {
        return Some(a.cmp(&b));
    }
    let (a, b) = (I256::from_dec_str(&a).ok()?, I256::from_dec_str(&b).ok()?);
    Some(a.cmp(&b))
}

fn number_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix('-').unwrap_or(s);
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.to_string())
        }
        _ => None,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks one proposal; `Err` is the reason it is rejected.
pub fn check(proposal: &Proposal, functions: &[Function], gas_limit: &str) -> Result<(), String> {
    let function = functions
        .iter()
        .find(|f| f.function_name == proposal.function || f.function_signature == proposal.function)
        .ok_or_else(|| format!("{} is not a function of this agent", proposal.function))?;
    check_callable(proposal, function)?;
    match gas_limit.parse::<u64>() {
        Ok(gas) if gas > 0 => {}
        _ => {
            return Err(format!(
                "the agent's gas limit `{gas_limit}` does not allow a transaction"
            ));
        }
    }
    let inputs = inputs_of(function);
    check_arguments(proposal, function, &inputs)?;
    let Value::Object(rules) = &function.validation_rules else {
        return Ok(());
    };
    for (input, rule) in rules {
        let position = inputs
            .iter()
            .position(|(name, _)| name == input)
            .or_else(|| input.strip_prefix("arg").and_then(|i| i.parse().ok()));
        let value = position.and_then(|i| proposal.args.get(i));
        check_rule(input, rule, value)?;
    }
    Ok(())
}

/// An enabled write (payable, when value is sent).
fn check_callable(proposal: &Proposal, function: &Function) -> Result<(), String> {
    let signature = &function.function_signature;
    if !function.is_enabled {
        return Err(format!("{signature} is disabled"));
    }
    if function.function_type == FunctionType::Read {
        return Err(format!("{signature} is a read function, not an action"));
    }
    if proposal.value.is_some() && function.function_type != FunctionType::Payable {
        return Err(format!(
            "{signature} is not payable: it cannot be sent value"
        ));
    }
    Ok(())
}

/// The function's inputs as `(name, type)`, unnamed ones as `argN`.
fn inputs_of(function: &Function) -> Vec<(String, String)> {
    let inputs = function
        .abi
        .as_ref()
        .and_then(|abi| abi.get("inputs"))
        .and_then(Value::as_array);
    let Some(inputs) = inputs else {
        return Vec::new();
    };
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let name = match input.get("name").and_then(Value::as_str) {
                Some(name) if !name.is_empty() => name.to_string(),
                _ => format!("arg{i}"),
            };
            let ty = input.get("type").and_then(Value::as_str).unwrap_or("");
            (name, ty.to_string())
        })
        .collect()
}

/// As many arguments as the ABI has inputs, none of them missing.
fn check_arguments(
    proposal: &Proposal,
    function: &Function,
    inputs: &[(String, String)],
) -> Result<(), String> {
    if function.abi.is_some() && inputs.len() != proposal.args.len() {
        return Err(format!(
            "{} takes {} argument(s), {} proposed",
            function.function_signature,
            inputs.len(),
            proposal.args.len()
        ));
    }
    if let Some(i) = proposal.args.iter().position(Value::is_null) {
        let name = inputs
            .get(i)
            .map_or_else(|| format!("arg{i}"), |(name, _)| name.clone());
        return Err(format!("argument {name} is missing"));
    }
    Ok(())
}

fn check_rule(input: &str, rule: &Value, value: Option<&Value>) -> Result<(), String> {
    let present = value.filter(|v| !v.is_null() && !text(v).is_empty());
    if rule.get("required").and_then(Value::as_bool) == Some(true) && present.is_none() {
        return Err(format!("{input} is required"));
    }
    let Some(value) = present else {
        return Ok(());
    };
    for (bound, wrong) in [("min", Ordering::Less), ("max", Ordering::Greater)] {
        if let Some(limit) = rule.get(bound).filter(|l| !l.is_null()) {
            match compare_numbers(value, limit) {
                Some(order) if order == wrong => {
                    return Err(format!(
                        "{input} = {} is {} the {bound} of {}",
                        text(value),
                        if wrong == Ordering::Less {
                            "below"
                        } else {
                            "above"
                        },
                        text(limit)
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(format!(
                        "{input} = {} is not a number to compare with {bound}",
                        text(value)
                    ));
                }
            }
        }
    }
    if let Some(pattern) = rule.get("pattern").and_then(Value::as_str) {
        let regex = regex_lite::Regex::new(pattern)
            .map_err(|e| format!("{input}: the pattern `{pattern}` is invalid: {e}"))?;
        if !regex.is_match(&text(value)) {
            return Err(format!(
                "{input} = {} does not match `{pattern}`",
                text(value)
            ));
        }
    }
    if let Some(allowed) = rule.get("allowed").and_then(Value::as_array) {
        let given = text(value).to_ascii_lowercase();
        if !allowed
            .iter()
            .any(|a| text(a).to_ascii_lowercase() == given)
        {
            return Err(format!(
                "{input} = {} is not one of the allowed values",
                text(value)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn transfer(rules: Value) -> Function {
        Function {
            function_id: "f".into(),
            agent_id: "a".into(),
            function_name: "transfer".into(),
            function_signature: "transfer(address,uint256)".into(),
            function_type: FunctionType::Write,
            is_enabled: true,
            validation_rules: rules,
            abi: Some(json!({"name": "transfer", "inputs": [
                {"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}]})),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn proposal(amount: Value) -> Proposal {
        Proposal {
            function: "transfer".into(),
            args: vec![json!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"), amount],
            value: None,
        }
    }

    #[test]
    fn min_max_compare_as_256_bit_numbers() {
        let f = [transfer(
            json!({"amount": {"min": "1", "max": "100000000000000000000000"}}),
        )];
        assert!(check(&proposal(json!("99999999999999999999999")), &f, "300000").is_ok());
        let err = check(&proposal(json!("100000000000000000000001")), &f, "300000").unwrap_err();
        assert!(err.contains("above the max"), "{err}");
        assert!(
            check(&proposal(json!(0)), &f, "300000")
                .unwrap_err()
                .contains("below the min")
        );
        assert!(check(&proposal(json!("ten")), &f, "300000").is_err());
    }

    #[test]
    fn pattern_allowed_and_required() {
        let f = [transfer(
            json!({"to": {"allowed": ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8"],
                                         "pattern": "^0x[0-9a-fA-F]{40}$", "required": true}}),
        )];
        assert!(check(&proposal(json!(1)), &f, "300000").is_ok());
        let mut other = proposal(json!(1));
        other.args[0] = json!("0x0000000000000000000000000000000000000001");
        assert!(check(&other, &f, "300000").unwrap_err().contains("allowed"));
        other.args[0] = json!("");
        assert!(
            check(&other, &f, "300000")
                .unwrap_err()
                .contains("required")
        );
    }

    #[test]
    fn limits_of_the_function_and_the_agent() {
        let mut f = transfer(json!({}));
        assert!(check(&proposal(json!(1)), std::slice::from_ref(&f), "0").is_err());
        f.is_enabled = false;
        assert!(
            check(&proposal(json!(1)), &[f], "300000")
                .unwrap_err()
                .contains("disabled")
        );
        let mut short = proposal(json!(1));
        short.args.pop();
        assert!(
            check(&short, &[transfer(json!({}))], "300000")
                .unwrap_err()
                .contains("argument")
        );
    }
}
