//! The guard: every proposed action is checked against its function's
//! validation rules and the agent's limits before anything is sent.

use std::cmp::Ordering;

use alloy::primitives::{I256, U256};
use serde_json::Value;

use crate::model::{
    Function, FunctionType,
    abi::{self, Input},
};

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

/// What the server allows, whatever an agent's own rules say.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// The agent's gas limit, as stored.
    pub gas_limit: &'a str,
    /// Most wei one action may send (0: none).
    pub max_value_wei: U256,
    /// The contract the agent acts on.
    pub contract: &'a str,
    /// Contracts the key may call, lowercase; empty: any.
    pub allowed_contracts: &'a [String],
}

/// A proposal that passed: its function and the value it sends.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'f> {
    pub function: &'f Function,
    pub value: Option<U256>,
}

/// Checks one proposal; `Err` is the reason it is rejected. Fails closed: what
/// cannot be checked (no usable ABI, an argument of the wrong shape, a rule
/// naming no input, an unknown rule) is a rejection.
pub fn check<'f>(
    proposal: &Proposal,
    functions: &'f [Function],
    limits: &Limits<'_>,
) -> Result<Checked<'f>, String> {
    let function = functions
        .iter()
        .find(|f| f.function_name == proposal.function || f.function_signature == proposal.function)
        .ok_or_else(|| format!("{} is not a function of this agent", proposal.function))?;
    check_callable(proposal, function)?;
    // 0: estimated by the node, with a margin.
    if limits.gas_limit.parse::<u64>().is_err() {
        return Err(format!(
            "the agent's gas limit `{}` does not allow a transaction",
            limits.gas_limit
        ));
    }
    let allowed = limits.allowed_contracts;
    if !allowed.is_empty()
        && !allowed
            .iter()
            .any(|c| c.eq_ignore_ascii_case(limits.contract))
    {
        return Err(format!(
            "contract {} is not in AGENTPORT_CONTRACT_ALLOWLIST",
            limits.contract
        ));
    }
    let value = check_value(proposal, limits.max_value_wei)?;
    let inputs = inputs_of(function)?;
    check_arguments(proposal, function, &inputs)?;
    check_rules(function, &inputs, &proposal.args)?;
    check_types(proposal, &inputs)?;
    Ok(Checked { function, value })
}

/// Value only to payable functions, within the agent's limit per action.
fn check_value(proposal: &Proposal, max: U256) -> Result<Option<U256>, String> {
    let Some(text) = proposal.value.as_deref() else {
        return Ok(None);
    };
    let value: U256 = text
        .trim()
        .parse()
        .map_err(|_| format!("value `{text}` is not an amount of wei"))?;
    if value > max {
        return Err(format!(
            "value {value} wei is over the agent's limit of {max} wei per action"
        ));
    }
    Ok(Some(value))
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

/// The function's inputs; a function without a usable ABI entry cannot have
/// its arguments checked, so it is not called.
fn inputs_of(function: &Function) -> Result<Vec<Input>, String> {
    let signature = &function.function_signature;
    let entry = function
        .abi
        .as_ref()
        .ok_or_else(|| format!("{signature} has no ABI entry: its arguments cannot be checked"))?;
    abi::function(entry)
        .and_then(|f| abi::inputs(&f))
        .map_err(|e| format!("{signature} has no usable ABI entry ({e})"))
}

/// As many arguments as inputs, none missing.
fn check_arguments(
    proposal: &Proposal,
    function: &Function,
    inputs: &[Input],
) -> Result<(), String> {
    if inputs.len() != proposal.args.len() {
        return Err(format!(
            "{} takes {} argument(s), {} proposed",
            function.function_signature,
            inputs.len(),
            proposal.args.len()
        ));
    }
    match inputs
        .iter()
        .zip(&proposal.args)
        .find(|(_, arg)| arg.is_null())
    {
        Some((input, _)) => Err(format!("argument {} is missing", input.name)),
        None => Ok(()),
    }
}

/// Each argument is a value of its input's type.
fn check_types(proposal: &Proposal, inputs: &[Input]) -> Result<(), String> {
    for (input, arg) in inputs.iter().zip(&proposal.args) {
        abi::coerce(input, arg)?;
    }
    Ok(())
}

/// The function's validation rules, each naming one of its inputs.
fn check_rules(function: &Function, inputs: &[Input], args: &[Value]) -> Result<(), String> {
    let Value::Object(rules) = &function.validation_rules else {
        return Ok(());
    };
    for (input, rule) in rules {
        let position = inputs
            .iter()
            .position(|i| &i.name == input)
            .ok_or_else(|| {
                format!(
                    "validation rule `{input}` names no input of {}",
                    function.function_signature
                )
            })?;
        check_rule_shape(input, rule)?;
        check_rule(input, rule, args.get(position))?;
    }
    Ok(())
}

/// What a validation rule may say.
const RULE_KEYS: &[&str] = &["min", "max", "pattern", "allowed", "required"];

/// A rule is an object of known keys, each of its kind: a rule the guard
/// would misread is a rejection, not a rule skipped.
fn check_rule_shape(input: &str, rule: &Value) -> Result<(), String> {
    let bad = |what: &str| format!("validation rule `{input}`: {what}");
    let Value::Object(rule) = rule else {
        return Err(bad("must be an object"));
    };
    for (key, value) in rule {
        let fits = match key.as_str() {
            "min" | "max" => value.is_null() || value.is_number() || value.is_string(),
            "pattern" => value.is_string(),
            "allowed" => value.is_array(),
            "required" => value.is_boolean(),
            _ => {
                let known = RULE_KEYS.join(", ");
                return Err(bad(&format!("has `{key}`, not one of {known}")));
            }
        };
        if !fits {
            return Err(bad(&format!("`{key}` is not of its kind")));
        }
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

    fn limits(gas_limit: &str) -> Limits<'_> {
        Limits {
            gas_limit,
            max_value_wei: U256::ZERO,
            contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            allowed_contracts: &[],
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
        assert!(
            check(
                &proposal(json!("99999999999999999999999")),
                &f,
                &limits("300000")
            )
            .is_ok()
        );
        let err = check(
            &proposal(json!("100000000000000000000001")),
            &f,
            &limits("300000"),
        )
        .unwrap_err();
        assert!(err.contains("above the max"), "{err}");
        assert!(
            check(&proposal(json!(0)), &f, &limits("300000"))
                .unwrap_err()
                .contains("below the min")
        );
        assert!(check(&proposal(json!("ten")), &f, &limits("300000")).is_err());
    }

    #[test]
    fn pattern_allowed_and_required() {
        let f = [transfer(
            json!({"to": {"allowed": ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8"],
                                         "pattern": "^0x[0-9a-fA-F]{40}$", "required": true}}),
        )];
        assert!(check(&proposal(json!(1)), &f, &limits("300000")).is_ok());
        let mut other = proposal(json!(1));
        other.args[0] = json!("0x0000000000000000000000000000000000000001");
        assert!(
            check(&other, &f, &limits("300000"))
                .unwrap_err()
                .contains("allowed")
        );
        other.args[0] = json!("");
        assert!(
            check(&other, &f, &limits("300000"))
                .unwrap_err()
                .contains("required")
        );
    }

    #[test]
    fn limits_of_the_function_and_the_agent() {
        let mut f = transfer(json!({}));
        assert!(check(&proposal(json!(1)), std::slice::from_ref(&f), &limits("x")).is_err());
        assert!(check(&proposal(json!(1)), std::slice::from_ref(&f), &limits("0")).is_ok());
        f.is_enabled = false;
        assert!(
            check(&proposal(json!(1)), &[f], &limits("300000"))
                .unwrap_err()
                .contains("disabled")
        );
        let mut short = proposal(json!(1));
        short.args.pop();
        assert!(
            check(&short, &[transfer(json!({}))], &limits("300000"))
                .unwrap_err()
                .contains("argument")
        );
    }

    #[test]
    fn what_cannot_be_checked_is_rejected() {
        let mut no_abi = transfer(json!({}));
        no_abi.abi = None;
        let err = check(&proposal(json!(1)), &[no_abi], &limits("300000")).unwrap_err();
        assert!(err.contains("no ABI entry"), "{err}");
        let typo = [transfer(json!({"amout": {"max": 5}}))];
        let err = check(&proposal(json!(1)), &typo, &limits("300000")).unwrap_err();
        assert!(err.contains("names no input"), "{err}");
        let unknown = [transfer(json!({"amount": {"maximum": 5}}))];
        let err = check(&proposal(json!(1)), &unknown, &limits("300000")).unwrap_err();
        assert!(err.contains("`maximum`"), "{err}");
        let misshapen = [transfer(
            json!({"to": {"allowed": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"}}),
        )];
        let err = check(&proposal(json!(1)), &misshapen, &limits("300000")).unwrap_err();
        assert!(err.contains("not of its kind"), "{err}");
        let mut bad = proposal(json!(1));
        bad.args[0] = json!("not-an-address");
        let err = check(&bad, &[transfer(json!({}))], &limits("300000")).unwrap_err();
        assert!(err.contains("argument `to`"), "{err}");
    }

    #[test]
    fn value_and_contracts_stay_within_the_server_limits() {
        let mut payable = transfer(json!({}));
        payable.function_type = FunctionType::Payable;
        let f = [payable];
        let mut paying = proposal(json!(1));
        paying.value = Some("1000".into());
        let err = check(&paying, &f, &limits("300000")).unwrap_err();
        assert!(err.contains("over the agent's limit of 0 wei"), "{err}");
        let mut generous = limits("300000");
        generous.max_value_wei = U256::from(1000);
        assert_eq!(
            check(&paying, &f, &generous).unwrap().value,
            Some(U256::from(1000))
        );
        let allowed = ["0x0000000000000000000000000000000000000001".to_string()];
        generous.allowed_contracts = &allowed;
        let err = check(&paying, &f, &generous).unwrap_err();
        assert!(err.contains("AGENTPORT_CONTRACT_ALLOWLIST"), "{err}");
    }
}
