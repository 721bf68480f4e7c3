//! Just enough of the Solidity ABI JSON to check that a function's signature
//! matches its ABI entry, and to describe its parameters.

use serde_json::{Value, json};

/// The canonical type of one ABI parameter (`tuple` spelled out as `(…)`).
fn canonical_type(param: &Value) -> Result<String, String> {
    let ty = param
        .get("type")
        .and_then(Value::as_str)
        .ok_or("an ABI input has no \"type\"")?;
    let Some(suffix) = ty.strip_prefix("tuple") else {
        return Ok(canonical_elementary(ty));
    };
    let components = param
        .get("components")
        .and_then(Value::as_array)
        .ok_or("a tuple ABI input has no \"components\"")?;
    let inner = components
        .iter()
        .map(canonical_type)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("({}){suffix}", inner.join(",")))
}

/// `uint` and `int` are aliases of their 256-bit forms in signatures.
fn canonical_elementary(ty: &str) -> String {
    let (base, array) = ty.find('[').map_or((ty, ""), |i| ty.split_at(i));
    let base = match base {
        "uint" => "uint256",
        "int" => "int256",
        other => other,
    };
    format!("{base}{array}")
}

/// `name(type,type)` of an ABI function entry.
pub fn signature_of(entry: &Value) -> Result<String, String> {
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .ok_or("the ABI entry has no \"name\"")?;
    let inputs = match entry.get("inputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(inputs)) => inputs
            .iter()
            .map(canonical_type)
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("the ABI entry's \"inputs\" is not an array".into()),
    };
    Ok(format!("{name}({})", inputs.join(",")))
}

/// Normalizes a written signature: no spaces, `uint` → `uint256`. Returns the
/// function name and the normalized signature.
pub fn normalize_signature(signature: &str) -> Result<(String, String), String> {
    let compact: String = signature.chars().filter(|c| !c.is_whitespace()).collect();
    let open = compact.find('(').ok_or("expected name(type,...)")?;
    if !compact.ends_with(')') || open == 0 {
        return Err("expected name(type,...)".into());
    }
    let name = &compact[..open];
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        return Err(format!("`{name}` is not a function name"));
    }
    let params = &compact[open + 1..compact.len() - 1];
    let params: Vec<String> = split_top_level(params)
        .into_iter()
        .map(|p| {
            if p.starts_with('(') {
                p.to_string()
            } else {
                canonical_elementary(p)
            }
        })
        .collect();
    Ok((name.to_string(), format!("{name}({})", params.join(","))))
}

fn split_top_level(params: &str) -> Vec<&str> {
    if params.is_empty() {
        return Vec::new();
    }
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in params.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&params[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&params[start..]);
    parts
}

/// Checks that `signature` names `name` and, when an ABI entry is given, that it
/// describes the same function. Returns the normalized signature.
pub fn check_function(name: &str, signature: &str, abi: Option<&Value>) -> Result<String, String> {
    let (sig_name, normalized) =
        normalize_signature(signature).map_err(|e| format!("function_signature: {e}"))?;
    if sig_name != name {
        return Err(format!(
            "function_signature `{signature}` does not name function_name `{name}`"
        ));
    }
    if let Some(entry) = abi {
        if !entry.is_object() {
            return Err("abi must be an object (one ABI function entry)".into());
        }
        if let Some(kind) = entry.get("type").and_then(Value::as_str)
            && kind != "function"
        {
            return Err(format!("abi: type is `{kind}`, expected `function`"));
        }
        let from_abi = signature_of(entry).map_err(|e| format!("abi: {e}"))?;
        if from_abi != normalized {
            return Err(format!(
                "function_signature `{signature}` does not match its abi entry `{from_abi}`"
            ));
        }
    }
    Ok(normalized)
}

/// The inputs of an ABI entry as `[{name, type}]` (the legacy `parameters`).
pub fn parameters(abi: Option<&Value>) -> Value {
    let inputs = abi
        .and_then(|entry| entry.get("inputs"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Value::Array(
        inputs
            .iter()
            .map(|input| {
                json!({
                    "name": input.get("name").cloned().unwrap_or(Value::String(String::new())),
                    "type": canonical_type(input).unwrap_or_default(),
                })
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
    }

    #[test]
    fn tuples_are_spelled_out() {
        let abi = json!({"name": "f", "inputs": [{"type": "tuple[]", "components": [
            {"type": "address"}, {"type": "uint"}]}]});
        assert_eq!(signature_of(&abi).unwrap(), "f((address,uint256)[])");
        assert!(check_function("f", "f((address,uint256)[])", Some(&abi)).is_ok());
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
