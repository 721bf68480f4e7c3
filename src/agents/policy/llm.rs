//! The `llm` policy: an OpenAI-compatible chat-completions call whose tools are
//! the agent's enabled write/payable functions. The agent's description is the
//! goal; the observed state is the context. Timeouts and bounded retries; a
//! malformed answer is an error of the run, never a crash.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::{
    agents::{
        guard::Proposal,
        retry::{Attempt, GaveUp, Retry},
    },
    config::Secret,
    model::{AgentDetails, FunctionType},
};

#[derive(Debug, Clone)]
pub struct LlmClient {
    base: String,
    key: Secret,
    /// The models policies may name; the first is the default.
    models: Vec<String>,
    http: reqwest::Client,
    retry: Retry,
}

/// What the model decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub proposals: Vec<Proposal>,
    /// Text the model wrote besides its tool calls.
    pub note: Option<String>,
}

impl LlmClient {
    /// `models`: the allowed models, the default first (never empty).
    pub fn new(
        base: &str,
        key: Secret,
        models: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, String> {
        if models.is_empty() {
            return Err("no LLM model is configured".into());
        }
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            models,
            http,
            retry: Retry {
                attempts: 3,
                backoff: Duration::from_millis(500),
            },
        })
    }

    pub async fn decide(
        &self,
        details: &AgentDetails,
        snapshot: &Map<String, Value>,
        model: Option<&str>,
        instructions: Option<&str>,
    ) -> Result<Decision, String> {
        let tools: Vec<Value> = details
            .functions
            .iter()
            .filter(|f| f.is_enabled && f.function_type != FunctionType::Read)
            .map(|f| {
                json!({"type": "function", "function": {
                    "name": f.function_name,
                    "description": format!("{} ({})", f.function_signature, f.function_type.as_str()),
                    "parameters": parameters_schema(f.abi.as_ref()),
                }})
            })
            .collect();
        if tools.is_empty() {
            return Ok(Decision {
                proposals: Vec::new(),
                note: Some("no enabled write function to call".into()),
            });
        }
        let mut system = format!(
            "You operate an autonomous agent acting on the smart contract {}. Its goal: {}. \
             Call the tools for the actions to take now, with exact argument values, or call none.",
            details.agent.contract_id, details.agent.description
        );
        if let Some(extra) = instructions {
            system.push(' ');
            system.push_str(extra);
        }
        let body = json!({
            "model": self.model(model)?,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": format!("Observed state: {}", Value::Object(snapshot.clone()))},
            ],
            "tools": tools,
            "tool_choice": "auto",
        });
        let answer = self.complete(&body).await?;
        parse_answer(&answer, details)
    }

    /// The model to ask: the policy's, if the operator allows it, else the default.
    fn model<'a>(&'a self, asked: Option<&'a str>) -> Result<&'a str, String> {
        match asked {
            None => Ok(&self.models[0]),
            Some(model) if self.models.iter().any(|m| m == model) => Ok(model),
            Some(model) => Err(format!(
                "the policy's model `{model}` is not in AGENTPORT_LLM_MODELS"
            )),
        }
    }

    /// POST /chat/completions, retrying network failures, 429 and 5xx.
    async fn complete(&self, body: &Value) -> Result<Value, String> {
        let url = format!("{}/chat/completions", self.base);
        match self.retry.run(|| self.attempt(&url, body)).await {
            Ok(answer) => Ok(answer),
            Err(GaveUp::Fatal(error)) => Err(error),
            Err(GaveUp::Exhausted { last, attempts }) => Err(format!(
                "the LLM endpoint failed {attempts} time(s): {last}"
            )),
        }
    }

    async fn attempt(&self, url: &str, body: &Value) -> Result<Value, Attempt<String>> {
        let response = self
            .http
            .post(url)
            .bearer_auth(self.key.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| Attempt::Again(format!("{}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<Value>().await.map_err(|e| {
                let e = e.without_url();
                Attempt::Fatal(format!("malformed answer (not JSON): {e}"))
            });
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        if status.as_u16() == 429 || status.is_server_error() {
            Err(Attempt::Again(format!("{status}: {text}")))
        } else {
            Err(Attempt::Fatal(format!(
                "the LLM endpoint answered {status}: {text}"
            )))
        }
    }
}

/// The JSON schema of a function's inputs, for the model.
fn parameters_schema(abi: Option<&Value>) -> Value {
    let inputs = abi
        .and_then(|a| a.get("inputs"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let name = input_name(input, i);
        let ty = input
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        properties.insert(name.clone(), type_schema(ty));
        required.push(Value::String(name));
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// The JSON schema of one ABI type. Arrays nest only as deep as an ABI may
/// (see `model::abi`); anything deeper is described as text, never recursed.
fn type_schema(ty: &str) -> Value {
    let base = ty.trim_end_matches("[]");
    let depth = (ty.len() - base.len()) / 2;
    if depth > 8 {
        return json!({"type": "string", "description": "a deeply nested array"});
    }
    let mut schema = elementary_schema(base);
    for _ in 0..depth {
        schema = json!({"type": "array", "items": schema});
    }
    schema
}

fn elementary_schema(ty: &str) -> Value {
    match ty {
        "address" => json!({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}),
        "bool" => json!({"type": "boolean"}),
        t if t.starts_with("uint") || t.starts_with("int") => {
            json!({"type": "string", "description": format!("{t}, as a decimal integer")})
        }
        t => json!({"type": "string", "description": t}),
    }
}

fn input_name(input: &Value, index: usize) -> String {
    match input.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => format!("arg{index}"),
    }
}

/// Tool calls → proposals, with arguments in ABI order.
fn parse_answer(answer: &Value, details: &AgentDetails) -> Result<Decision, String> {
    let message = answer
        .pointer("/choices/0/message")
        .ok_or("malformed answer: no choices[0].message")?;
    let note = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
        .map(str::to_string);
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => {
            return Ok(Decision {
                proposals: Vec::new(),
                note,
            });
        }
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err("malformed answer: tool_calls is not an array".into()),
    };
    let mut proposals = Vec::new();
    for call in calls {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or("malformed answer: a tool call has no function name")?;
        let arguments = match call.pointer("/function/arguments") {
            Some(Value::String(text)) if text.trim().is_empty() => Map::new(),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(args)) => args,
                _ => {
                    return Err(format!(
                        "malformed answer: the arguments of {name} are not a JSON object"
                    ));
                }
            },
            Some(Value::Object(args)) => args.clone(),
            None => Map::new(),
            Some(_) => {
                return Err(format!(
                    "malformed answer: the arguments of {name} are not an object"
                ));
            }
        };
        let inputs = details
            .functions
            .iter()
            .find(|f| f.function_name == name)
            .and_then(|f| f.abi.as_ref())
            .and_then(|abi| abi.get("inputs"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let args = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                arguments
                    .get(&input_name(input, i))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        proposals.push(Proposal {
            function: name.to_string(),
            args,
            value: None,
        });
    }
    Ok(Decision { proposals, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_follow_abi_types() {
        let schema = parameters_schema(Some(&json!({"inputs": [
            {"name": "to", "type": "address"}, {"name": "", "type": "uint256"}, {"name": "ok", "type": "bool[]"}]})));
        assert_eq!(schema["required"], json!(["to", "arg1", "ok"]));
        assert_eq!(schema["properties"]["to"]["pattern"], "^0x[0-9a-fA-F]{40}$");
        assert_eq!(schema["properties"]["ok"]["items"]["type"], "boolean");
    }
}
