//! Function signatures and ABI entries, through alloy's ABI types: a written
//! signature must name the same function as its ABI entry, both in canonical
//! form (`uint` is `uint256`, tuples spelled out).

use alloy::{
    dyn_abi::{DynSolType, DynSolValue, Specifier},
    json_abi::{Function, Param},
};
use serde_json::{Map, Value, json};

/// Bounds on what a client may configure: a type nested 200 000 arrays deep is
/// valid text, but resolving it (and dropping it) would overflow the stack.
pub const MAX_SIGNATURE_LEN: usize = 1024;
const MAX_TYPE_LEN: usize = 256;
const MAX_NESTING: usize = 8;
const MAX_PARAMS: usize = 32;

/// Checks that every parameter is of a reasonable size and depth.
fn check_params(params: &[Param], depth: usize) -> Result<(), String> {
    if params.len() > MAX_PARAMS {
        return Err(format!("more than {MAX_PARAMS} parameters"));
    }
    for param in params {
        let arrays = param.ty.matches('[').count();
        if param.ty.len() > MAX_TYPE_LEN || depth + arrays > MAX_NESTING {
            return Err(format!(
                "the type of `{}` is longer than {MAX_TYPE_LEN} characters or nested more \
                 than {MAX_NESTING} deep",
                param.name
            ));
        }
        check_params(&param.components, depth + arrays + 1)?;
    }
    Ok(())
}

/// The ABI entry of a function as alloy reads it. Entries written by hand may
/// leave out `type`, `inputs` or `outputs`; a `type` other than `function` is
/// an error.
pub fn function(entry: &Value) -> Result<Function, String> {
    let Value::Object(entry) = entry else {
        return Err("abi must be an object (one ABI function entry)".into());
    };
    let mut entry: Map<String, Value> = entry.clone();
    match entry.get("type").and_then(Value::as_str) {
        None => {
            entry.insert("type".into(), json!("function"));
        }
        Some("function") => {}
        Some(kind) => return Err(format!("abi: type is `{kind}`, expected `function`")),
    }
    for list in ["inputs", "outputs"] {
        if entry.get(list).is_none_or(Value::is_null) {
            entry.insert(list.into(), json!([]));
        }
    }
    let function: Function =
        serde_json::from_value(Value::Object(entry)).map_err(|e| format!("abi: {e}"))?;
    check_params(&function.inputs, 0).map_err(|e| format!("abi: {e}"))?;
    check_params(&function.outputs, 0).map_err(|e| format!("abi: {e}"))?;
    Ok(function)
}

/// `name(type,…)` with every type canonical.
pub fn signature(function: &Function) -> Result<String, String> {
    let types = function
        .inputs
        .iter()
        .map(canonical_type)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("{}({})", function.name, types.join(",")))
}

fn canonical_type(param: &Param) -> Result<String, String> {
    param
        .resolve()
        .map(|ty| ty.sol_type_name().into_owned())
        .map_err(|e| format!("type `{}`: {e}", param.ty))
}

/// Normalizes a written signature (`transfer(address, uint)`). Returns the
/// function name and the canonical signature.
pub fn normalize_signature(written: &str) -> Result<(String, String), String> {
    if written.len() > MAX_SIGNATURE_LEN {
        return Err(format!("longer than {MAX_SIGNATURE_LEN} characters"));
    }
    let function =
        Function::parse(written.trim()).map_err(|_| "expected name(type,...)".to_string())?;
    check_params(&function.inputs, 0)?;
    let canonical = signature(&function)?;
    Ok((function.name, canonical))
}

/// Checks that `signature` names `name` and, when an ABI entry is given, that it
/// describes the same function. Returns the canonical signature.
pub fn check_function(name: &str, written: &str, abi: Option<&Value>) -> Result<String, String> {
    let (sig_name, normalized) =
        normalize_signature(written).map_err(|e| format!("function_signature: {e}"))?;
    if sig_name != name {
        return Err(format!(
            "function_signature `{written}` does not name function_name `{name}`"
        ));
    }
    if let Some(entry) = abi {
        let from_abi = signature(&function(entry)?).map_err(|e| format!("abi: {e}"))?;
        if from_abi != normalized {
            return Err(format!(
                "function_signature `{written}` does not match its abi entry `{from_abi}`"
            ));
        }
    }
    Ok(normalized)
}

/// One input of a function: its name (`argN` when unnamed) and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub ty: DynSolType,
}

/// The inputs of a function, every type resolved.
pub fn inputs(function: &Function) -> Result<Vec<Input>, String> {
    function
        .inputs
        .iter()
        .enumerate()
        .map(|(i, param)| {
            let ty = param
                .resolve()
                .map_err(|e| format!("type `{}`: {e}", param.ty))?;
            Ok(Input {
                name: input_name(&param.name, i),
                ty,
            })
        })
        .collect()
}

/// What a nameless input is called: `arg0`, `arg1`…
pub fn input_name(name: &str, index: usize) -> String {
    if name.is_empty() {
        format!("arg{index}")
    } else {
        name.to_string()
    }
}

/// An argument as JSON, made a value of its input's type (numbers may come as
/// JSON numbers or strings).
pub fn coerce(input: &Input, arg: &Value) -> Result<DynSolValue, String> {
    let text = match arg {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    input
        .ty
        .coerce_str(&text)
        .map_err(|e| format!("argument `{}` ({}): {e}", input.name, input.ty))
}

/// The inputs of an ABI entry as `[{name, type}]` (the legacy `parameters`).
pub fn parameters(abi: Option<&Value>) -> Value {
    let inputs = abi
        .and_then(|entry| function(entry).ok())
        .map(|f| f.inputs)
        .unwrap_or_default();
    Value::Array(
        inputs
            .iter()
            .map(|input| {
                json!({"name": input.name, "type": canonical_type(input).unwrap_or_default()})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer() -> Value {
        json!({"type": "function", "name": "transfer", "stateMutability": "nonpayable",
               "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
               "outputs": [{"name": "", "type": "bool"}]})
    }

    #[test]
    fn signature_matches_its_abi_entry() {
        let abi = transfer();
        assert_eq!(
            check_function("transfer", "transfer(address, uint)", Some(&abi)).unwrap(),
            "transfer(address,uint256)"
        );
        assert!(check_function("transfer", "transfer(address)", Some(&abi)).is_err());
        assert!(check_function("transfer", "approve(address,uint256)", None).is_err());
        assert!(check_function("transfer", "transfer", None).is_err());
        let event = json!({"type": "event", "name": "transfer", "inputs": []});
        assert!(
            check_function("transfer", "transfer()", Some(&event))
                .unwrap_err()
                .contains("expected `function`")
        );
    }

    #[test]
    fn tuples_are_spelled_out() {
        let abi = json!({"name": "f", "inputs": [{"type": "tuple[]", "components": [
            {"type": "address"}, {"type": "uint"}]}]});
        assert_eq!(
            signature(&function(&abi).unwrap()).unwrap(),
            "f((address,uint256)[])"
        );
        assert!(check_function("f", "f((address,uint256)[])", Some(&abi)).is_ok());
    }

    #[test]
    fn hostile_types_are_refused_before_they_are_resolved() {
        let deep = format!("uint256{}", "[]".repeat(200_000));
        let abi = json!({"name": "f", "inputs": [{"name": "x", "type": deep}]});
        assert!(function(&abi).unwrap_err().contains("nested"));
        let signature = format!("f(uint256{})", "[]".repeat(9));
        assert!(check_function("f", &signature, None).is_err());
        let mut tuple = json!({"type": "uint256"});
        for _ in 0..10 {
            tuple = json!({"type": "tuple", "components": [tuple]});
        }
        let abi = json!({"name": "f", "inputs": [tuple]});
        assert!(function(&abi).is_err());
        assert!(check_function("f", "f(uint256[2][3])", None).is_ok());
    }

    #[test]
    fn parameters_list_names_and_types() {
        assert_eq!(
            parameters(Some(&transfer())),
            json!([{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}])
        );
        assert_eq!(parameters(None), json!([]));
    }
}
