//! The legacy contract API: `POST {CONTRACT_API_URL}/contracts/read` or
//! `/contracts/write` with `{contractAddress, abi, functionName, inputs, type,
//! gasLimit, maxPriorityFee}`, answering `{success, data | error}`.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Call, WriteError, WriteOutcome};

#[derive(Debug, Clone)]
pub struct HttpExecutor {
    base: String,
    client: reqwest::Client,
}

impl HttpExecutor {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            client,
        })
    }

    /// `Err` says whether the API may have acted anyway (a timeout, an answer
    /// that is not the protocol's), which matters for writes.
    async fn post(&self, path: &str, body: Value) -> Result<Value, WriteError> {
        let url = format!("{}/contracts/{path}", self.base);
        let response = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| WriteError {
                maybe_sent: !e.is_connect(),
                message: format!("contract API unreachable: {}", e.without_url()),
            })?;
        let status = response.status();
        let reply: Value = response.json().await.map_err(|e| {
            let e = e.without_url();
            WriteError::maybe_sent(format!("contract API answered {status} without JSON: {e}"))
        })?;
        match reply.get("success").and_then(Value::as_bool) {
            Some(true) => Ok(reply.get("data").cloned().unwrap_or(Value::Null)),
            Some(false) => Err(reply
                .get("error")
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .unwrap_or_else(|| "the contract API reported a failure".into())
                .into()),
            None => Err(WriteError::maybe_sent(format!(
                "contract API answered {status} without `success`: {reply}"
            ))),
        }
    }

    fn body(call: &Call<'_>, kind: &str, gas_limit: Option<u64>, fee: Option<&str>) -> Value {
        let name = call.signature.split('(').next().unwrap_or(call.signature);
        json!({
            "contractAddress": call.address,
            "abi": call.abi.map_or_else(|| json!([]), |entry| json!([entry])),
            "functionName": name,
            "inputs": call.args,
            "type": kind,
            // 0: the API estimates.
            "gasLimit": gas_limit.filter(|g| *g > 0).map(|g| g.to_string()),
            // Wei with a payable call, as a decimal string.
            "value": call.value.map(|v| v.to_string()),
            "maxPriorityFee": fee,
        })
    }

    pub async fn read(&self, call: &Call<'_>) -> Result<Value, String> {
        let body = Self::body(call, "read", None, None);
        self.post("read", body).await.map_err(|e| e.message)
    }

    pub async fn write(
        &self,
        call: &Call<'_>,
        gas_limit: u64,
        fee: &str,
    ) -> Result<WriteOutcome, WriteError> {
        let kind = if call.value.is_some() {
            "payable"
        } else {
            "write"
        };
        let data = self
            .post("write", Self::body(call, kind, Some(gas_limit), Some(fee)))
            .await?;
        let field = |names: &[&str]| names.iter().find_map(|n| data.get(*n).cloned());
        Ok(WriteOutcome {
            tx_hash: field(&["transactionHash", "txHash", "hash", "tx_hash"])
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            success: true,
            gas_used: field(&["gasUsed", "gas_used"])
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .unwrap_or(0),
            revert_reason: None,
            simulated: false,
        })
    }
}
