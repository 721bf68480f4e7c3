//! The runtime against the services around it, each a real local server the
//! test starts: an OpenAI-compatible LLM API (scripted tool calls), the legacy
//! contract API, and notification receivers (HTTP, and SMTP with aiosmtpd).

mod common;

use std::process::Stdio;

use agentport::config::Secret;
use common::{
    chain::{Anvil, OWNER, OWNER_KEY, RECIPIENT, configure_agent},
    client::Client,
    fake::FakeServer,
    *,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn configure(client: &mut Client, agent_id: &str, token: &str, policy: Value) {
    let goal = "Send the recipient 7 tokens";
    configure_agent(client, agent_id, token, goal, policy, "100").await;
}

async fn execute(client: &mut Client, agent_id: &str) -> Value {
    client
        .send(json!({"type": "execute", "agent_id": agent_id, "data": {
            "functions": [{"name": "balanceOf", "parameters": [{"value": OWNER}]}]}}))
        .await;
    assert_eq!(
        client.until("execute_response").await["data"]["status"],
        "processing"
    );
    client.until("execute_response").await["data"].clone()
}

fn tool_call(name: &str, arguments: &str) -> Value {
    json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}]}}]})
}

#[tokio::test]
async fn llm_policy_calls_are_guarded_then_executed_on_chain() {
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let llm = FakeServer::start().await;
    llm.script(
        "/v1/chat/completions",
        vec![
            // A transient failure first: retried.
            (503, json!({"error": {"message": "overloaded"}})),
            (
                200,
                tool_call(
                    "transfer",
                    &json!({"to": RECIPIENT, "amount": "7"}).to_string(),
                ),
            ),
            (
                200,
                tool_call(
                    "transfer",
                    &json!({"to": RECIPIENT, "amount": "500"}).to_string(),
                ),
            ),
            (200, tool_call("transfer", "{this is not json")),
        ],
    );
    let (rpc, base) = (anvil.url.clone(), llm.url("/v1"));
    let server = TestServer::start_with(move |c| {
        c.evm_rpc_url = Some(rpc);
        c.evm_private_key = Some(Secret::new(OWNER_KEY));
        c.openai_api_key = Some(Secret::new("sk-test-key"));
        c.openai_base_url = base;
        c.model = "test-model".into();
    })
    .await;
    let agent_id = "llm-agent";
    let mut client = Client::new(server.connect(agent_id).await);
    configure(
        &mut client,
        agent_id,
        &token.to_string(),
        json!({"kind": "llm"}),
    )
    .await;

    // 1. A valid tool call is executed on chain.
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 7);
    assert_eq!(llm.received("/v1/chat/completions").len(), 2, "one retry");
    let request = &llm.received("/v1/chat/completions")[1];
    assert_eq!(request.headers["authorization"], "Bearer sk-test-key");
    assert_eq!(request.body["model"], "test-model");
    let tools = request.body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "only write functions are tools");
    assert_eq!(tools[0]["function"]["name"], "transfer");
    assert_eq!(
        tools[0]["function"]["parameters"]["required"],
        json!(["to", "amount"])
    );
    let context = request.body["messages"].to_string();
    assert!(
        context.contains("Send the recipient 7 tokens"),
        "the goal is the description"
    );
    assert!(context.contains("1000000"), "the observed state is given");

    // 2. Out-of-range arguments are rejected by the guard; nothing is sent.
    let nonce = anvil.nonce(OWNER).await;
    let outcome = execute(&mut client, agent_id).await;
    let transfer = &outcome["results"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(transfer["success"], false);
    assert!(
        transfer["result"]["rejected"]
            .as_str()
            .unwrap()
            .contains("above the max")
    );
    assert_eq!(anvil.nonce(OWNER).await, nonce);

    // 3. A malformed answer is a recorded error, not a crash.
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "error");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("malformed answer"),
        "{outcome}"
    );
    let runs = runs_of(&server, agent_id, 10).await;
    assert_eq!(runs[0].status, "failed");
    assert!(runs[0].error.as_deref().unwrap().contains("malformed"));
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 7);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_executor_speaks_the_legacy_contract_api() {
    let api = FakeServer::start().await;
    api.script(
        "/contracts/read",
        vec![(200, json!({"success": true, "data": "5000"}))],
    );
    api.script(
        "/contracts/write",
        vec![
            (
                200,
                json!({"success": true, "data": {"transactionHash": "0xfeed", "gasUsed": 51234}}),
            ),
            (200, json!({"success": false, "error": "nonce too low"})),
        ],
    );
    let url = api.url("");
    let server = TestServer::start_with(move |c| c.contract_api_url = Some(url)).await;
    let agent_id = "http-agent";
    let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let mut client = Client::new(server.connect(agent_id).await);
    let policy = json!({"kind": "rules", "rules": [{
        "when": {"function": "balanceOf", "args": [OWNER], "op": "gte", "value": 5000},
        "then": {"function": "transfer", "args": [RECIPIENT, "3"]}}]});
    configure(&mut client, agent_id, token, policy).await;

    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    let write = &api.received("/contracts/write")[0].body;
    assert_eq!(write["contractAddress"], token);
    assert_eq!(write["functionName"], "transfer");
    assert_eq!(write["inputs"], json!([RECIPIENT, "3"]));
    assert_eq!(write["type"], "write");
    assert_eq!(write["gasLimit"], "300000");
    assert_eq!(write["maxPriorityFee"], "1.5");
    assert_eq!(write["abi"][0]["name"], "transfer");
    let read = &api.received("/contracts/read")[0].body;
    assert_eq!(read["functionName"], "balanceOf");
    assert_eq!(read["inputs"], json!([OWNER]));
    let sent = outcome["results"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(sent["result"]["tx_hash"], "0xfeed");
    assert_eq!(sent["result"]["gas_used"], 51234);

    // The API's own failure is the run's error.
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "error");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("nonce too low")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_notification_channel_delivers_and_a_failure_is_an_event() {
    // SMTP: a real server (aiosmtpd) that prints what it receives.
    let smtp_port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let mut smtpd = tokio::process::Command::new(python())
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Debugging",
            "stdout",
            "-l",
            &format!("127.0.0.1:{smtp_port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start aiosmtpd");
    let mut smtp_out = BufReader::new(smtpd.stdout.take().unwrap()).lines();
    wait_until("aiosmtpd listening", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", smtp_port))
            .await
            .is_ok()
    })
    .await;

    let receivers = FakeServer::start().await;
    receivers.script("/broken", vec![(500, json!({"error": "down"}))]);
    let api = FakeServer::start().await;
    api.script(
        "/contracts/read",
        vec![(200, json!({"success": true, "data": "5000"}))],
    );
    api.script(
        "/contracts/write",
        vec![(
            200,
            json!({"success": true, "data": {"transactionHash": "0x1"}}),
        )],
    );
    let (api_url, telegram) = (api.url(""), receivers.url("/telegram"));
    let server = TestServer::start_with(move |c| {
        c.contract_api_url = Some(api_url);
        c.telegram_api_url = telegram;
        c.telegram_bot_token = Some(Secret::new("123:bot-token"));
        c.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{smtp_port}")));
        c.notify_attempts = 2;
        c.notify_backoff = std::time::Duration::from_millis(50);
    })
    .await;
    let agent_id = "notifying-agent";
    let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let mut client = Client::new(server.connect(agent_id).await);
    let policy = json!({"kind": "rules", "rules": [{"then": {"function": "transfer", "args": [RECIPIENT, "1"]}}]});
    configure(&mut client, agent_id, token, policy).await;
    for (kind, configuration) in [
        ("webhook", json!({"url": receivers.url("/hook")})),
        ("discord", json!({"webhookUrl": receivers.url("/discord")})),
        ("telegram", json!({"chatId": "42"})),
        ("email", json!({"emailAddress": "ops@example.test"})),
    ] {
        client
            .ok(
                "create_notification",
                json!({"agent_id": agent_id, "notification_type": kind,
                                              "configuration": configuration}),
            )
            .await;
    }

    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    wait_until("webhook, discord and telegram delivered", || async {
        !receivers.received("/hook").is_empty()
            && !receivers.received("/discord").is_empty()
            && !receivers.received("/telegram").is_empty()
    })
    .await;
    let hook = &receivers.received("/hook")[0].body;
    assert_eq!(hook["agent_id"], agent_id);
    assert_eq!(hook["status"], "succeeded");
    assert_eq!(hook["run_id"], outcome["run_id"]);
    assert!(
        receivers.received("/discord")[0].body["content"]
            .as_str()
            .unwrap()
            .contains(agent_id)
    );
    let telegram = &receivers.received("/telegram")[0];
    assert_eq!(telegram.path, "/telegram/bot123:bot-token/sendMessage");
    assert_eq!(telegram.body["chat_id"], "42");
    let mut mail = String::new();
    tokio::time::timeout(DEADLINE, async {
        while !mail.contains("Subject: agentport: treasurer run succeeded") {
            mail.push_str(
                &smtp_out
                    .next_line()
                    .await
                    .unwrap()
                    .expect("aiosmtpd output"),
            );
            mail.push('\n');
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no email; got: {mail}\n{:?}",
            client
                .frames
                .iter()
                .filter(|f| f["type"] == "log")
                .map(|f| f["message"].to_string())
                .collect::<Vec<_>>()
        )
    });
    assert!(mail.contains("ops@example.test"), "{mail}");

    // A receiver that keeps failing: retried, then reported as an event.
    client
        .ok(
            "create_notification",
            json!({"agent_id": agent_id, "notification_type": "webhook",
                                          "configuration": {"url": receivers.url("/broken")}}),
        )
        .await;
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(
        outcome["status"], "success",
        "a failed notification never fails the run"
    );
    loop {
        let log = client.until("log").await;
        let message = log["message"].as_str().unwrap();
        if message.contains("webhook notification failed") {
            assert!(message.contains("500"), "{message}");
            assert!(message.contains("2 attempt"), "{message}");
            break;
        }
    }
    assert_eq!(receivers.received("/broken").len(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_policy_may_name_only_the_models_the_operator_allows() {
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let llm = FakeServer::start().await;
    llm.script(
        "/v1/chat/completions",
        vec![(
            200,
            json!({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}),
        )],
    );
    let (rpc, base) = (anvil.url.clone(), llm.url("/v1"));
    let server = TestServer::start_with(move |c| {
        c.evm_rpc_url = Some(rpc);
        c.evm_private_key = Some(Secret::new(OWNER_KEY));
        c.openai_api_key = Some(Secret::new("sk-test-key"));
        c.openai_base_url = base;
        c.llm_models = vec!["cheap-model".into(), "other-model".into()];
    })
    .await;
    let mut client = Client::new(server.connect("pricey").await);
    let policy = json!({"kind": "llm", "model": "expensive-model"});
    configure(&mut client, "pricey", &token.to_string(), policy).await;
    let outcome = execute(&mut client, "pricey").await;
    assert_eq!(outcome["status"], "error");
    let message = outcome["message"].as_str().unwrap();
    assert!(message.contains("AGENTPORT_LLM_MODELS"), "{message}");
    assert!(
        llm.received("/v1/chat/completions").is_empty(),
        "never asked"
    );
    // No model named: the first allowed one.
    configure(
        &mut client,
        "pricey",
        &token.to_string(),
        json!({"kind": "llm"}),
    )
    .await;
    let outcome = execute(&mut client, "pricey").await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    let asked = &llm.received("/v1/chat/completions")[0];
    assert_eq!(asked.body["model"], "cheap-model");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn notifications_per_agent_and_hour_are_limited() {
    let receivers = FakeServer::start().await;
    let api = FakeServer::start().await;
    api.script(
        "/contracts/write",
        vec![(
            200,
            json!({"success": true, "data": {"transactionHash": "0x1"}}),
        )],
    );
    let api_url = api.url("");
    let server = TestServer::start_with(move |c| {
        c.contract_api_url = Some(api_url);
        c.notifications_per_hour = 1;
    })
    .await;
    let agent_id = "chatty-agent";
    let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let mut client = Client::new(server.connect(agent_id).await);
    let policy = json!({"kind": "rules", "rules": [{"then": {"function": "transfer", "args": [RECIPIENT, "1"]}}]});
    configure(&mut client, agent_id, token, policy).await;
    client
        .ok(
            "create_notification",
            json!({"agent_id": agent_id, "notification_type": "webhook",
                   "configuration": {"url": receivers.url("/hook")}}),
        )
        .await;
    execute(&mut client, agent_id).await;
    wait_until("the first run notified", || async {
        receivers.received("/hook").len() == 1
    })
    .await;
    execute(&mut client, agent_id).await;
    loop {
        let log = client.until("log").await;
        if log["message"].as_str().unwrap().contains("hourly limit") {
            break;
        }
    }
    assert_eq!(
        receivers.received("/hook").len(),
        1,
        "the second is not sent"
    );
    server.shutdown().await.unwrap();
}

/// A write whose answer never comes may have gone out: its value stays counted
/// against the day, so a second run cannot spend it again.
#[tokio::test]
async fn value_of_a_write_that_may_have_gone_out_stays_spent() {
    let api = FakeServer::start().await;
    api.script(
        "/contracts/read",
        vec![(200, json!({"success": true, "data": "5000"}))],
    );
    api.hang("/contracts/write");
    let api_url = api.url("");
    let server = TestServer::start_with(move |c| {
        c.contract_api_url = Some(api_url);
        c.receipt_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let agent_id = "careful-agent";
    let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let mut client = Client::new(server.connect(agent_id).await);
    let policy = json!({"kind": "rules", "rules": [
        {"then": {"function": "deposit", "args": [], "value": "1000"}}]});
    configure(&mut client, agent_id, token, policy.clone()).await;
    client
        .ok(
            "create_agent",
            json!({"agent_id": agent_id, "contractId": token, "policy": policy,
                   "max_value_wei": "1000", "max_value_wei_per_day": "1000"}),
        )
        .await;
    client
        .ok(
            "create_function",
            json!({"agent_id": agent_id, "function_name": "deposit",
                   "function_signature": "deposit()", "function_type": "payable",
                   "abi": common::chain::abi_entry("deposit")}),
        )
        .await;
    let first = execute(&mut client, agent_id).await;
    assert_eq!(first["status"], "error", "{first}");
    assert_eq!(api.received("/contracts/write").len(), 1);
    let second = execute(&mut client, agent_id).await;
    let deposit = second["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == "deposit")
        .unwrap()
        .clone();
    let rejected = deposit["result"]["rejected"].as_str().unwrap();
    assert!(rejected.contains("per day"), "{second}");
    assert_eq!(api.received("/contracts/write").len(), 1, "not sent again");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn runs_beyond_the_concurrent_cap_are_skipped() {
    let api = FakeServer::start().await;
    api.hang("/contracts/read");
    let api_url = api.url("");
    let server = TestServer::start_with(move |c| {
        c.contract_api_url = Some(api_url);
        c.max_concurrent_runs = 1;
        c.receipt_timeout = std::time::Duration::from_secs(5);
    })
    .await;
    let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let mut first = Client::new(server.connect("busy-1").await);
    configure(&mut first, "busy-1", token, json!({"kind": "none"})).await;
    let mut second = Client::new(server.connect("busy-2").await);
    configure(&mut second, "busy-2", token, json!({"kind": "none"})).await;
    // The first run hangs on its read; the second finds no room.
    first
        .send(json!({"type": "execute", "agent_id": "busy-1", "data": {
            "functions": [{"name": "balanceOf", "parameters": [{"value": OWNER}]}]}}))
        .await;
    wait_until("the first run reads", || async {
        !api.received("/contracts/read").is_empty()
    })
    .await;
    let outcome = execute(&mut second, "busy-2").await;
    assert_eq!(outcome["status"], "error");
    let message = outcome["message"].as_str().unwrap();
    assert!(message.contains("as many agents as it may"), "{message}");
    api.unhang();
    server.shutdown().await.unwrap();
}
