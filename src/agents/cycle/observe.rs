//! Observe: call the agent's enabled read functions; their values are the
//! state the policy decides on.

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{Cycle, Target};
use crate::{
    agents::outcome::{ActionOutcome, CallResult},
    model::{Function, FunctionType, LogLevel},
};

/// Reads every enabled read function whose arguments are known. A read is safe
/// to abandon: `cancel` (the agent stopped) cuts it short.
pub(super) async fn observe(
    cycle: &mut Cycle<'_>,
    target: &Target<'_>,
    params: Option<&Value>,
    cancel: &CancellationToken,
) -> Map<String, Value> {
    let mut snapshot = Map::new();
    let reads = target
        .details
        .functions
        .iter()
        .filter(|f| f.is_enabled && f.function_type == FunctionType::Read);
    for function in reads {
        let signature = &function.function_signature;
        let Some(args) = arguments_for(function, params) else {
            let line = format!("{signature} skipped: its arguments are not known");
            cycle.log(LogLevel::Info, line).await;
            continue;
        };
        let call = target.call(function, &args, None);
        let read = tokio::select! {
            _ = cancel.cancelled() => break,
            read = target.executor.read(&call) => read,
        };
        let name = &function.function_name;
        let params = Value::Array(args.clone());
        match read {
            Ok(value) => {
                cycle
                    .log(LogLevel::Info, format!("{signature} = {value}"))
                    .await;
                let result = CallResult::Read(value.clone());
                cycle.results.push(ActionOutcome::new(name, params, result));
                snapshot.insert(signature.clone(), value);
            }
            Err(error) => {
                let result = CallResult::Failed(error.clone());
                cycle.results.push(ActionOutcome::new(name, params, result));
                cycle.fail(format!("{signature} failed: {error}")).await;
            }
        }
    }
    snapshot
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
        .and_then(|params| sent_for(function, params))
        .unwrap_or_default();
    if sent.len() == inputs && sent.iter().all(|v| !v.is_null() && v != "") {
        Some(sent)
    } else if inputs == 0 {
        Some(Vec::new())
    } else {
        None
    }
}

/// The parameter values the execution view sent for `function`, if any.
fn sent_for(function: &Function, params: &Value) -> Option<Vec<Value>> {
    let named = |f: &&Value| {
        let name = f
            .get("name")
            .or_else(|| f.get("functionName"))
            .or_else(|| f.get("function_name"));
        let signature = f.get("signature").or_else(|| f.get("functionSignature"));
        name.and_then(Value::as_str) == Some(function.function_name.as_str())
            || signature.and_then(Value::as_str) == Some(function.function_signature.as_str())
    };
    let sent = params.get("functions")?.as_array()?.iter().find(named)?;
    let parameters = sent.get("parameters").or_else(|| sent.get("params"))?;
    Some(
        parameters
            .as_array()?
            .iter()
            .map(|p| p.get("value").cloned().unwrap_or_else(|| p.clone()))
            .collect(),
    )
}
