//! Agents that run, against a real EVM node (anvil) and an ERC-20 deployed on
//! it: rules decide, the guard rejects, transfers land on chain, reverts are
//! reported with their reason, and schedules fire until stopped.

mod common;

use std::time::Duration;

use common::{
    chain::{Anvil, OWNER, OWNER_KEY, RECIPIENT, configure_agent},
    client::Client,
    *,
};
use serde_json::{Value, json};

/// A server whose agents act through `anvil`.
async fn server_on(anvil: &Anvil) -> TestServer {
    let url = anvil.url.clone();
    TestServer::start_with(move |c| {
        c.evm_rpc_url = Some(url);
        c.evm_private_key = Some(agentport::config::Secret::new(OWNER_KEY));
    })
    .await
}

/// Configures agent `agent_id` on `token` with `policy` and `max_amount`.
async fn configure(
    client: &mut Client,
    agent_id: &str,
    token: &str,
    policy: Value,
    max_amount: &str,
) {
    let goal = "keep the owner's balance in check";
    configure_agent(client, agent_id, token, goal, policy, max_amount).await;
}

/// A node with a fresh TestToken (1 000 000 to OWNER), a server acting on it, and a
/// client that configured `agent_id` with `policy` and `max_amount`.
struct Fixture {
    anvil: Anvil,
    token: alloy::primitives::Address,
    server: TestServer,
    client: Client,
}

async fn fixture(agent_id: &str, policy: Value, max_amount: &str) -> Fixture {
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let server = server_on(&anvil).await;
    let mut client = Client::new(server.connect(agent_id).await);
    configure(
        &mut client,
        agent_id,
        &token.to_string(),
        policy,
        max_amount,
    )
    .await;
    Fixture {
        anvil,
        token,
        server,
        client,
    }
}

fn transfer_rule(amount: &str) -> Value {
    json!({"kind": "rules", "rules": [{
        "when": {"function": "balanceOf", "args": [OWNER], "op": "gt", "value": "1000"},
        "then": {"function": "transfer", "args": [RECIPIENT, amount]}}]})
}

/// Sends `websocket_execution` as the execution view does and returns the
/// outcome frame, checking `processing` came first and logs before the outcome.
async fn execute(client: &mut Client, agent_id: &str) -> Value {
    client
        .send(json!({"type": "websocket_execution", "agent_id": agent_id, "data": {
            "functions": [{"name": "balanceOf", "parameters": [{"name": "account", "value": OWNER}]}],
            "contract": {"address": "", "abi": []}}}))
        .await;
    let processing = client.until("execute_response").await;
    assert_eq!(processing["data"]["status"], "processing", "{processing}");
    let logs_before = client.frames.len();
    let outcome = client.until("execute_response").await;
    assert_eq!(outcome["data"]["run_id"], processing["data"]["run_id"]);
    let streamed = client.frames[logs_before..]
        .iter()
        .filter(|f| f["type"] == "log")
        .count();
    assert!(streamed >= 2, "log events stream before the outcome");
    outcome["data"].clone()
}

#[tokio::test]
async fn rules_agent_transfers_exactly_what_the_rule_says() {
    let agent_id = "rules-agent";
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, transfer_rule("10"), "100").await;

    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    let results = outcome["results"].as_array().unwrap();
    let read = results
        .iter()
        .find(|r| r["function"] == "balanceOf")
        .unwrap();
    assert_eq!(read["result"], "1000000");
    assert_eq!(read["params"], json!([OWNER]));
    let sent = results
        .iter()
        .find(|r| r["function"] == "transfer")
        .unwrap();
    assert_eq!(sent["success"], true);
    assert_eq!(sent["params"], json!([RECIPIENT, "10"]));
    assert!(
        sent["result"]["tx_hash"]
            .as_str()
            .unwrap()
            .starts_with("0x")
    );
    assert!(sent["result"]["gas_used"].as_u64().unwrap() > 21_000);

    let token_address = token;
    assert_eq!(
        anvil.balance(token_address, RECIPIENT).await.to::<u64>(),
        10
    );
    assert_eq!(
        anvil.balance(token_address, OWNER).await.to::<u64>(),
        999_990
    );

    // The run is recorded with its snapshot and results.
    client
        .send(json!({"type": "list_runs", "data": {"agent_id": agent_id}}))
        .await;
    let runs = client.until("list_runs_response").await;
    let run = &runs["data"]["runs"][0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["result"]["snapshot"]["balanceOf(address)"], "1000000");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_amount_over_the_functions_max_is_rejected_and_nothing_is_sent() {
    let agent_id = "guarded-agent";
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, transfer_rule("500"), "100").await;
    let nonce = anvil.nonce(OWNER).await;

    let outcome = execute(&mut client, agent_id).await;
    let transfer = outcome["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == "transfer")
        .unwrap()
        .clone();
    assert_eq!(transfer["success"], false);
    let reason = transfer["result"]["rejected"].as_str().unwrap();
    assert!(reason.contains("above the max"), "{reason}");
    assert!(
        outcome["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("Rejected transfer"))
    );
    assert_eq!(anvil.nonce(OWNER).await, nonce, "no transaction was sent");
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reverting_transfer_is_caught_by_its_simulation_with_the_reason() {
    let agent_id = "reverting-agent";
    let too_much = "5000000";
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, transfer_rule(too_much), "10000000").await;

    let nonce = anvil.nonce(OWNER).await;
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "error", "{outcome}");
    let message = outcome["message"].as_str().unwrap();
    assert!(
        message.contains("transfer amount exceeds balance"),
        "{message}"
    );
    let transfer = outcome["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == "transfer")
        .unwrap()
        .clone();
    assert_eq!(transfer["success"], false);
    assert_eq!(transfer["result"]["status"], "reverted");
    // The pre-flight simulation caught it: nothing was broadcast, no gas spent.
    assert_eq!(transfer["result"]["simulated"], true);
    assert!(transfer["result"]["tx_hash"].is_null());
    assert_eq!(anvil.nonce(OWNER).await, nonce);
    assert!(
        transfer["result"]["revert_reason"]
            .as_str()
            .unwrap()
            .contains("TestToken: transfer amount exceeds balance")
    );
    assert_eq!(anvil.balance(token, OWNER).await.to::<u64>(), 1_000_000);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_interval_schedule_runs_while_active_and_stops_after_stop() {
    let agent_id = "interval-agent";
    // The node must outlive the test: keep it bound.
    let Fixture {
        anvil: _anvil,
        token: _,
        server,
        mut client,
    } = fixture(agent_id, json!({"kind": "none"}), "100").await;
    client
        .ok(
            "create_schedule",
            json!({"agent_id": agent_id, "schedule_type": "interval",
                                      "interval_seconds": 1, "is_active": true}),
        )
        .await;
    client
        .ok("start_agent", json!({"agent_id": agent_id}))
        .await;

    let runs = || async { runs_of(&server, agent_id, 100).await };
    wait_until("three scheduled runs", || async {
        runs()
            .await
            .iter()
            .filter(|r| r.trigger == "schedule" && r.status != "running")
            .count()
            >= 3
    })
    .await;
    // Status frames carried the next execution as it moved.
    let mut nexts = Vec::new();
    while nexts.len() < 2 {
        let status = client.until("status").await;
        if let Some(next) = status["nextExecution"].as_str()
            && !nexts.contains(&next.to_string())
        {
            nexts.push(next.to_string());
        }
    }

    client.ok("stop_agent", json!({"agent_id": agent_id})).await;
    assert!(!server.runtime.is_scheduled(agent_id));
    wait_until("the run in progress, if any, ends", || async {
        runs().await.iter().all(|r| r.status != "running")
    })
    .await;
    let count = runs().await.len();
    // A bounded look over more than two intervals: no further run.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(runs().await.len(), count, "runs went on after stop");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn limits_of_a_run_and_the_chain_are_enforced() {
    let agent_id = "limited-agent";
    // Three actions proposed, two allowed per run.
    let then = json!({"function": "transfer", "args": [RECIPIENT, "1"]});
    let policy = json!({"kind": "rules", "max_actions": 2,
                        "rules": [{"then": then}, {"then": then}, {"then": then}]});
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, policy, "100").await;
    let outcome = execute(&mut client, agent_id).await;
    let transfers: Vec<&Value> = outcome["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["function"] == "transfer")
        .collect();
    assert_eq!(transfers.len(), 3);
    assert_eq!(transfers.iter().filter(|r| r["success"] == true).count(), 2);
    assert!(
        transfers[2]["result"]["rejected"]
            .as_str()
            .unwrap()
            .contains("limit of 2")
    );
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 2);

    // A contract registered on another chain than the node's: nothing runs.
    client
        .ok(
            "create_contract",
            json!({"address": token.to_string(), "chain_id": 31337,
                                      "abi": "[]"}),
        )
        .await;
    let other = "0x1111111111111111111111111111111111111111";
    client
        .ok(
            "create_contract",
            json!({"address": other, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    client
        .ok(
            "create_agent",
            json!({"agent_id": "wrong-chain", "contractId": other}),
        )
        .await;
    let outcome = execute(&mut client, "wrong-chain").await;
    assert_eq!(outcome["status"], "error");
    let message = outcome["message"].as_str().unwrap();
    assert!(
        message.contains("chain 31337") && message.contains("chain 1"),
        "{message}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_private_key_never_appears_in_logs_replies_or_the_database() {
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let env = [
        ("EVM_RPC_URL", anvil.url.as_str()),
        ("EVM_PRIVATE_KEY", OWNER_KEY),
        ("RUST_LOG", "debug"),
    ];
    let mut process = common::process::Process::start(&env).await;
    let url = format!("ws://127.0.0.1:{}/ws/agent/keyed", process.port);
    let mut client = Client::new(tokio_tungstenite::connect_async(url).await.unwrap().0);
    configure(
        &mut client,
        "keyed",
        &token.to_string(),
        transfer_rule("5"),
        "100",
    )
    .await;
    let outcome = execute(&mut client, "keyed").await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 5);
    let frames: String = client.frames.iter().map(Value::to_string).collect();
    drop(client);
    process.signal("TERM");
    let mut logs = String::new();
    while let Ok(Some(line)) = process.logs.next_line().await {
        logs.push_str(&line);
    }
    let bare = OWNER_KEY.trim_start_matches("0x");
    assert!(!logs.contains(bare), "the key is in the logs");
    assert!(!frames.contains(bare), "the key is in a reply");
    let db = std::fs::read(process.dir.path().join("agentport.db")).unwrap();
    let wal = std::fs::read(process.dir.path().join("agentport.db-wal")).unwrap_or_default();
    for file in [db, wal] {
        assert!(
            !String::from_utf8_lossy(&file).contains(bare),
            "the key is in the database"
        );
    }
}

#[tokio::test]
async fn a_payable_function_is_sent_the_policys_value() {
    let agent_id = "paying-agent";
    let policy = json!({"kind": "rules", "rules": [
        {"then": {"function": "deposit", "args": [], "value": "12345"}},
        // Value sent to a function that is not payable is rejected.
        {"then": {"function": "transfer", "args": [RECIPIENT, "1"], "value": "1"}}]});
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, policy.clone(), "100").await;
    allow_value(
        &mut client,
        agent_id,
        &token.to_string(),
        policy,
        "20000",
        "20000",
    )
    .await;
    add_deposit(&mut client, agent_id).await;
    let outcome = execute(&mut client, agent_id).await;
    let results = outcome["results"].as_array().unwrap();
    let deposit = results.iter().find(|r| r["function"] == "deposit").unwrap();
    assert_eq!(deposit["success"], true, "{outcome}");
    let transfer = results
        .iter()
        .find(|r| r["function"] == "transfer")
        .unwrap();
    assert!(
        transfer["result"]["rejected"]
            .as_str()
            .unwrap()
            .contains("not payable")
    );
    {
        use alloy::providers::Provider;
        let held = anvil.provider.get_balance(token).await.unwrap();
        assert_eq!(
            held.to::<u64>(),
            12_345,
            "the contract holds exactly the value sent"
        );
    }
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 0);
    server.shutdown().await.unwrap();
}

/// Sets the agent's value limits (an admin's `create_agent` on its own agent).
async fn allow_value(
    client: &mut Client,
    agent_id: &str,
    token: &str,
    policy: Value,
    per_action: &str,
    per_day: &str,
) {
    client
        .ok(
            "create_agent",
            json!({"agent_id": agent_id, "contractId": token, "name": "treasurer",
                   "status": "paused", "policy": policy,
                   "max_value_wei": per_action, "max_value_wei_per_day": per_day}),
        )
        .await;
}

async fn add_deposit(client: &mut Client, agent_id: &str) {
    client
        .ok(
            "create_function",
            json!({"agent_id": agent_id, "function_name": "deposit",
                   "function_signature": "deposit()", "function_type": "payable",
                   "abi": common::chain::abi_entry("deposit")}),
        )
        .await;
}

/// The result of the run's `function` call.
fn result_of<'a>(outcome: &'a Value, function: &str) -> &'a Value {
    outcome["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == function)
        .unwrap_or_else(|| panic!("no {function} in {outcome}"))
}

#[tokio::test]
async fn value_over_the_agents_limits_never_reaches_the_chain() {
    use alloy::providers::Provider;
    let agent_id = "capped-agent";
    let policy = json!({"kind": "rules", "rules": [
        {"then": {"function": "deposit", "args": [], "value": "1000"}}]});
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, policy.clone(), "100").await;
    add_deposit(&mut client, agent_id).await;
    // No limit set: no value at all.
    let outcome = execute(&mut client, agent_id).await;
    let rejected = result_of(&outcome, "deposit")["result"]["rejected"]
        .as_str()
        .unwrap();
    assert!(rejected.contains("limit of 0 wei per action"), "{outcome}");
    assert_eq!(
        anvil.provider.get_balance(token).await.unwrap().to::<u64>(),
        0
    );
    // 1000 per action, 1500 per day: the first run sends, the second would
    // bring the day to 2000 and is refused before anything is signed.
    allow_value(
        &mut client,
        agent_id,
        &token.to_string(),
        policy,
        "1000",
        "1500",
    )
    .await;
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(result_of(&outcome, "deposit")["success"], true, "{outcome}");
    let nonce = anvil
        .provider
        .get_transaction_count(OWNER.parse().unwrap())
        .await
        .unwrap();
    let outcome = execute(&mut client, agent_id).await;
    let rejected = result_of(&outcome, "deposit")["result"]["rejected"]
        .as_str()
        .unwrap();
    assert!(rejected.contains("limit of 1500 wei per day"), "{outcome}");
    assert_eq!(
        anvil.provider.get_balance(token).await.unwrap().to::<u64>(),
        1000
    );
    let after = anvil
        .provider
        .get_transaction_count(OWNER.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(after, nonce, "nothing was signed");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_allowlisted_contracts_are_registered_or_called() {
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let elsewhere = "0x0000000000000000000000000000000000000001";
    let server = TestServer::start_with(|c| {
        c.evm_rpc_url = Some(anvil.url.clone());
        c.evm_private_key = Some(agentport::config::Secret::new(OWNER_KEY));
        c.contract_allowlist = vec![elsewhere.into()];
    })
    .await;
    let mut client = Client::new(server.connect("fenced").await);
    let refused = client
        .fails(
            "create_contract",
            json!({"address": token.to_string(), "chain_id": 31337, "abi": "[]"}),
        )
        .await;
    assert!(
        refused.contains("AGENTPORT_CONTRACT_ALLOWLIST"),
        "{refused}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_that_never_answers_fails_the_run_with_a_timeout() {
    // Accepts connections, reads, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let server = TestServer::start_with(move |c| {
        c.evm_rpc_url = Some(url);
        c.evm_private_key = Some(agentport::config::Secret::new(OWNER_KEY));
        c.rpc_timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = Client::new(server.connect("stuck").await);
    configure(
        &mut client,
        "stuck",
        common::client::TOKEN,
        transfer_rule("5"),
        "100",
    )
    .await;
    let started = std::time::Instant::now();
    let outcome = execute(&mut client, "stuck").await;
    assert_eq!(outcome["status"], "error");
    let message = outcome["message"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        message.contains("timed out") || message.contains("timeout"),
        "{message}"
    );
    assert!(started.elapsed() < DEADLINE, "bounded by the RPC timeout");
    // The connection, and the agent, carry on.
    client.send(json!({"type": "ping", "id": "alive"})).await;
    assert_eq!(client.until("pong").await["id"], "alive");
    let again = execute(&mut client, "stuck").await;
    assert_eq!(
        again["status"], "error",
        "a later trigger runs, not skipped: {again}"
    );
    assert!(!again["message"].as_str().unwrap().contains("skipped"));
    hold.abort();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn another_wallet_on_the_same_key_does_not_fail_the_next_action() {
    let agent_id = "shared-key-agent";
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, transfer_rule("5"), "100").await;
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    // The owner sends from their own wallet: the key's nonce moves on.
    {
        use alloy::{
            network::TransactionBuilder, providers::Provider, rpc::types::TransactionRequest,
        };
        let owner: alloy::primitives::Address = OWNER.parse().unwrap();
        let request = TransactionRequest::default()
            .with_from(owner)
            .with_to(owner)
            .with_value(alloy::primitives::U256::from(1))
            .with_nonce(anvil.nonce(OWNER).await);
        let pending = anvil.provider.send_transaction(request).await.unwrap();
        pending.get_receipt().await.unwrap();
    }
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(
        outcome["status"], "success",
        "first try, no nonce error: {outcome}"
    );
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 10);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_agents_on_one_key_acting_at_once_never_collide_on_a_nonce() {
    let Fixture {
        anvil,
        token,
        server,
        client: mut first,
    } = fixture("key-sharer-1", transfer_rule("5"), "100").await;
    let mut second = Client::new(server.connect("key-sharer-2").await);
    configure(
        &mut second,
        "key-sharer-2",
        &token.to_string(),
        transfer_rule("5"),
        "100",
    )
    .await;
    let nonce = anvil.nonce(OWNER).await;
    let (a, b) = tokio::join!(
        async {
            let mut outcomes = Vec::new();
            for _ in 0..4 {
                outcomes.push(execute(&mut first, "key-sharer-1").await);
            }
            outcomes
        },
        async {
            let mut outcomes = Vec::new();
            for _ in 0..4 {
                outcomes.push(execute(&mut second, "key-sharer-2").await);
            }
            outcomes
        }
    );
    for outcome in a.iter().chain(&b) {
        assert_eq!(outcome["status"], "success", "{outcome}");
    }
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 40);
    assert_eq!(anvil.nonce(OWNER).await, nonce + 8, "no gap, nothing twice");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_fee_over_the_configured_maximum_sends_nothing() {
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let url = anvil.url.clone();
    let server = TestServer::start_with(move |c| {
        c.evm_rpc_url = Some(url);
        c.evm_private_key = Some(agentport::config::Secret::new(OWNER_KEY));
        // Below the agent's own priority fee (1.5 gwei).
        c.max_fee_gwei = "1".into();
    })
    .await;
    let mut client = Client::new(server.connect("frugal").await);
    configure(
        &mut client,
        "frugal",
        &token.to_string(),
        transfer_rule("5"),
        "100",
    )
    .await;
    let nonce = anvil.nonce(OWNER).await;
    let outcome = execute(&mut client, "frugal").await;
    assert_eq!(outcome["status"], "error");
    let message = outcome["message"].as_str().unwrap();
    assert!(message.contains("AGENTPORT_MAX_FEE_GWEI"), "{message}");
    assert_eq!(anvil.nonce(OWNER).await, nonce, "nothing signed or sent");
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_agent_without_a_gas_limit_gets_the_nodes_estimate() {
    let agent_id = "estimating-agent";
    let Fixture {
        anvil,
        token,
        server,
        mut client,
    } = fixture(agent_id, transfer_rule("5"), "100").await;
    client
        .ok(
            "create_agent",
            json!({"agent_id": agent_id, "contractId": token.to_string(), "name": "treasurer",
                   "status": "paused", "policy": transfer_rule("5"), "gas_limit": "0"}),
        )
        .await;
    let outcome = execute(&mut client, agent_id).await;
    assert_eq!(outcome["status"], "success", "{outcome}");
    let transfer = result_of(&outcome, "transfer");
    let used = transfer["result"]["gas_used"].as_u64().unwrap();
    assert!(used > 21_000 && used < 300_000, "{used}");
    assert_eq!(anvil.balance(token, RECIPIENT).await.to::<u64>(), 5);
    server.shutdown().await.unwrap();
}
