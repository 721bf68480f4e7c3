//! A client that behaves like the existing frontend: it sends one request and
//! waits (8 s, like the wizard) for `<type>_response`, keeping every other frame
//! it sees on the way for later checks.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Ws, recv_json, send_json};

pub struct Client {
    pub ws: Ws,
    /// Every frame received, in order.
    pub frames: Vec<Value>,
}

/// How the wizard judged a step.
#[derive(Debug)]
pub enum Step {
    Success(Value),
    /// `<type>_response` with `status: "error"` (its message), or an `error`
    /// frame whose message names the request type.
    Failed(String),
}

impl Client {
    pub fn new(ws: Ws) -> Self {
        Self {
            ws,
            frames: Vec::new(),
        }
    }

    pub async fn next(&mut self) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(8), recv_json(&mut self.ws))
            .await
            .expect("a frame within 8 s");
        self.frames.push(frame.clone());
        frame
    }

    /// Reads until a frame of type `kind`, returning it.
    pub async fn until(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    pub async fn send(&mut self, frame: Value) {
        send_json(&mut self.ws, frame).await;
    }

    /// One wizard step, judged exactly as the frontend does.
    pub async fn step(&mut self, kind: &str, data: Value) -> Step {
        self.send(json!({"type": kind, "data": data})).await;
        let reply = format!("{kind}_response");
        loop {
            let frame = self.next().await;
            if frame["type"] == reply.as_str() {
                return match frame["data"]["status"].as_str() {
                    Some("error") => {
                        Step::Failed(frame["data"]["message"].as_str().unwrap_or("").into())
                    }
                    _ => Step::Success(frame["data"].clone()),
                };
            }
            if frame["type"] == "error"
                && frame["data"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(kind)
            {
                return Step::Failed(frame["data"]["message"].as_str().unwrap().into());
            }
        }
    }

    /// A step that must succeed; returns the reply's `data`.
    pub async fn ok(&mut self, kind: &str, data: Value) -> Value {
        match self.step(kind, data).await {
            Step::Success(data) => data,
            Step::Failed(message) => panic!("{kind} failed: {message}"),
        }
    }

    /// A step that must fail with both frames: `<type>_response {status:"error"}`
    /// and an `error` frame whose message starts with the type. Returns the message.
    pub async fn fails(&mut self, kind: &str, data: Value) -> String {
        self.send(json!({"type": kind, "data": data})).await;
        let reply = self.until(&format!("{kind}_response")).await;
        assert_eq!(reply["data"]["status"], "error", "{reply}");
        let message = reply["data"]["message"].as_str().unwrap().to_string();
        assert!(!message.is_empty());
        let error = self.until("error").await;
        let text = error["message"].as_str().unwrap();
        assert!(text.starts_with(&format!("{kind}: ")), "{error}");
        assert_eq!(error["data"]["message"], error["message"]);
        message
    }
}

/// An ERC-20 ABI as the frontend sends it: a JSON string of an array.
pub fn erc20_abi() -> Value {
    json!([
        {"type": "function", "name": "balanceOf", "stateMutability": "view",
         "inputs": [{"name": "account", "type": "address"}],
         "outputs": [{"name": "", "type": "uint256"}]},
        {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
         "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
         "outputs": [{"name": "", "type": "bool"}]}
    ])
}

pub const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

/// An agent with nothing configured, on a contract with an empty ABI: what a
/// test of runs, lists or events needs and no more.
pub async fn bare_agent(client: &mut Client, agent_id: &str) {
    client
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    client
        .ok(
            "create_agent",
            json!({"agent_id": agent_id, "contractId": TOKEN}),
        )
        .await;
}

/// The whole configuration wizard for agent `agent_id` on contract `address`.
pub async fn wizard(client: &mut Client, agent_id: &str, address: &str) {
    let abi = erc20_abi();
    client
        .ok(
            "create_contract",
            json!({"contract_id": address, "address": address, "chain_id": 31337,
                   "name": "Test Token", "type": "ERC20", "abi": abi.to_string(),
                   "deployed_at": "2024-05-01T12:00:00.000Z",
                   "owner_address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                   "agent_id": agent_id}),
        )
        .await;
    client
        .ok(
            "create_agent",
            json!({"contractId": address, "name": "Treasurer", "description": "Keep balances tidy",
                   "status": "active", "gas_limit": "300000", "max_priority_fee": "1.5",
                   "owner": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                   "contract_state": {"totalSupply": "1000"}, "agent_id": agent_id}),
        )
        .await;
    client
        .ok(
            "create_function",
            json!({"function_name": "balanceOf", "function_signature": "balanceOf(address)",
                   "function_type": "read", "is_enabled": true, "validation_rules": {},
                   "abi": abi[0], "agent_id": agent_id}),
        )
        .await;
    client
        .ok(
            "create_function",
            json!({"function_name": "transfer", "function_signature": "transfer(address,uint256)",
                   "function_type": "write", "is_enabled": true,
                   "validation_rules": {"amount": {"min": 1, "max": 100}},
                   "abi": abi[1], "agent_id": agent_id}),
        )
        .await;
    client
        .ok(
            "create_schedule",
            json!({"schedule_type": "cron", "cron_expression": "*/5 * * * *",
                   "is_active": true, "agent_id": agent_id}),
        )
        .await;
    for (kind, configuration) in [
        ("email", json!({"emailAddress": "ops@example.com"})),
        (
            "discord",
            json!({"webhookUrl": "http://127.0.0.1:9/discord/webhook"}),
        ),
        // Local, closed ports: a failed run notifies, and no traffic leaves the machine.
        ("webhook", json!({"url": "http://127.0.0.1:9/hook"})),
    ] {
        client
            .ok(
                "create_notification",
                json!({"notification_type": kind, "configuration": configuration,
                       "is_enabled": true, "agent_id": agent_id}),
            )
            .await;
    }
}
