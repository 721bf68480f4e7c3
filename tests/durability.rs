//! Data survives a crash: the binary is killed with SIGKILL mid-life and started
//! again on the same SQLite file.

mod common;

use common::{
    client::{Client, TOKEN, wizard},
    fake::FakeServer,
    process::Process,
    wait_for,
};
use serde_json::{Value, json};

async fn client(process: &Process, channel: &str, query: &str) -> Client {
    let url = format!("ws://127.0.0.1:{}/ws/agent/{channel}{query}", process.port);
    Client::new(tokio_tungstenite::connect_async(url).await.unwrap().0)
}

#[tokio::test]
async fn agents_and_events_survive_kill_9_and_restart() {
    let mut process = Process::start(&[]).await;
    let agent_id = "6d0f8a52-9c1e-4b7a-8f3d-2e5c4b1a0f9e";
    let mut wizard_client = client(&process, agent_id, "").await;
    wizard(&mut wizard_client, agent_id, TOKEN).await;
    wizard_client
        .send(json!({"type": "configure_agent", "data": {"agent_id": agent_id}}))
        .await;
    wizard_client.until("agent_configured").await;
    wizard_client
        .ok("start_agent", json!({"agent_id": agent_id}))
        .await;
    wizard_client.until("status").await;
    let before: Vec<Value> = {
        let mut replay = client(&process, agent_id, "?since=0").await;
        replay.send(json!({"type": "ping", "id": "end"})).await;
        replay.until("pong").await;
        replay
            .frames
            .into_iter()
            .filter(|f| f.get("seq").is_some())
            .collect()
    };
    assert!(before.len() >= 8, "{before:?}");

    // SIGKILL: no graceful anything.
    process.child.start_kill().unwrap();
    let status = process.child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let Process { dir, .. } = process;
    assert!(dir.path().join("agentport.db").exists());

    let mut process = Process::start_in(dir, &[]).await;
    let mut again = client(&process, agent_id, "?since=0").await;
    again
        .send(json!({"type": "get_agent", "data": {"agent_id": agent_id}}))
        .await;
    let details = again.until("get_agent_response").await;
    assert_eq!(details["data"]["agent"]["status"], "active");
    assert_eq!(details["data"]["agent"]["configured"], true);
    assert_eq!(details["data"]["functions"].as_array().unwrap().len(), 2);
    assert_eq!(
        details["data"]["notifications"].as_array().unwrap().len(),
        3
    );
    let after: Vec<Value> = again
        .frames
        .iter()
        .filter(|f| f.get("seq").is_some())
        .cloned()
        .collect();
    // The same events, byte for byte; the resumed schedule may add a `status`.
    assert!(after.len() >= before.len(), "{after:?}");
    assert_eq!(after[..before.len()], before[..], "events after the crash");

    // The stream continues where it was.
    again.ok("stop_agent", json!({"agent_id": agent_id})).await;
    let stopped = again.until("agent_stopped").await;
    let last_before = before.last().unwrap()["seq"].as_u64().unwrap();
    assert!(stopped["seq"].as_u64().unwrap() > last_before);
    assert!(
        again
            .frames
            .iter()
            .filter_map(|f| f["seq"].as_u64())
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[1] == w[0] + 1),
        "no gap, no duplicate"
    );
    drop(again);
    process.signal("TERM");
    assert_eq!(process.exit_code(common::DEADLINE).await, Some(0));
}

async fn runs_of(process: &Process, agent_id: &str) -> Vec<Value> {
    let url = process.url(&format!("/api/v1/agents/{agent_id}/runs?limit=100"));
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Configures an agent on the `http` executor whose one read is `totalSupply()`;
/// `status` is "active" or "paused".
async fn configure_reader(client: &mut Client, status: &str) {
    client
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    client
        .ok(
            "create_agent",
            json!({"contractId": TOKEN, "name": "reader", "status": status}),
        )
        .await;
    client
        .ok("create_function", json!({"function_name": "totalSupply",
                                      "function_signature": "totalSupply()", "function_type": "read"}))
        .await;
}

#[tokio::test]
async fn an_active_agent_resumes_after_a_crash_and_its_cut_run_is_marked_interrupted() {
    let api = FakeServer::start().await;
    api.hang("/contracts/read");
    let api_url = api.url("");
    let env = [("CONTRACT_API_URL", api_url.as_str())];
    let mut process = Process::start(&env).await;
    let agent_id = "resuming-agent";
    let mut client = client(&process, agent_id, "").await;
    configure_reader(&mut client, "active").await;
    client
        .ok(
            "create_schedule",
            json!({"schedule_type": "interval", "interval_seconds": 1}),
        )
        .await;
    // A scheduled run starts, and hangs on the contract API.
    let cut = wait_for("a run in progress", || async {
        runs_of(&process, agent_id)
            .await
            .into_iter()
            .find(|r| r["status"] == "running")
    })
    .await;

    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();
    let Process { dir, .. } = process;
    api.unhang();
    api.script(
        "/contracts/read",
        vec![(200, json!({"success": true, "data": "42"}))],
    );
    let process = Process::start_in(dir, &env).await;

    let runs = wait_for("a scheduled run after the restart", || async {
        let runs = runs_of(&process, agent_id).await;
        runs.iter()
            .any(|r| r["status"] == "succeeded" && r["trigger"] == "schedule")
            .then_some(runs)
    })
    .await;
    let marked = runs.iter().find(|r| r["run_id"] == cut["run_id"]).unwrap();
    assert_eq!(marked["status"], "interrupted");
    assert!(marked["finished_at"].is_string());
}

#[tokio::test]
async fn stopping_an_agent_cuts_its_run_at_a_safe_point() {
    let api = FakeServer::start().await;
    api.hang("/contracts/read");
    let api_url = api.url("");
    let env = [("CONTRACT_API_URL", api_url.as_str())];
    let process = Process::start(&env).await;
    let agent_id = "stopped-agent";
    let mut client = client(&process, agent_id, "").await;
    configure_reader(&mut client, "paused").await;
    client.send(json!({"type": "execute", "data": {}})).await;
    assert_eq!(
        client.until("execute_response").await["data"]["status"],
        "processing"
    );
    wait_for("the run hangs on its read", || async {
        (!api.received("/contracts/read").is_empty()).then_some(())
    })
    .await;
    // A second trigger while the run is in progress is recorded as skipped.
    client.send(json!({"type": "execute", "data": {}})).await;
    assert_eq!(
        client.until("execute_response").await["data"]["status"],
        "processing"
    );
    let skipped = client.until("execute_response").await;
    assert_eq!(skipped["data"]["status"], "error");
    assert!(
        skipped["data"]["message"]
            .as_str()
            .unwrap()
            .contains("skipped")
    );
    // The connection still serves while its run is in progress.
    client.ok("stop_agent", json!({})).await;
    let outcome = client.until("execute_response").await;
    assert_eq!(outcome["data"]["status"], "error");
    assert!(
        outcome["data"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped"),
        "{outcome}"
    );
    let runs = runs_of(&process, agent_id).await;
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"cancelled") && statuses.contains(&"skipped"),
        "{statuses:?}"
    );
    assert_eq!(runs.len(), 2);
}

/// The worst moment: the transaction is in the node's pending block, its
/// receipt not yet there, and the process is killed. After a restart and a
/// mined block, the transfer happened exactly once and the run is completed
/// from the chain with its hash.
#[tokio::test]
async fn a_transaction_sent_just_before_kill_9_is_completed_from_the_chain() {
    use common::chain::{Anvil, OWNER_KEY};
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let env = [
        ("EVM_RPC_URL", anvil.url.as_str()),
        ("EVM_PRIVATE_KEY", OWNER_KEY),
        ("AGENTPORT_RECONCILE_SECS", "0.2"),
    ];
    let agent_id = "mid-flight";
    let (mut process, mut wizard_client) = transfer_agent(token, &env, agent_id).await;
    let nonce = execute_into_the_pending_block(&anvil, &mut wizard_client, agent_id).await;
    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();
    let Process { dir, .. } = process;

    let process = Process::start_in(dir, &env).await;
    let over = |run: &Value| run["status"] != "running";
    let run = mine_and_settle(&anvil, &process, agent_id, over).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"]["reconciled"], true);
    let hash = run["result"]["actions"][0]["tx_hash"].as_str().unwrap();
    assert!(hash.starts_with("0x"), "{run}");
    assert_transferred_once(&anvil, token, nonce).await;
}

/// SIGTERM while a broadcast transaction waits for its receipt: the process
/// exits within its grace, the action is left `sent`, and after a restart and
/// a mined block it is confirmed and the run completed.
#[tokio::test]
async fn sigterm_during_a_receipt_wait_leaves_the_action_for_reconciliation() {
    use common::chain::{Anvil, OWNER_KEY};
    let anvil = Anvil::start().await;
    let token = anvil.deploy_token(1_000_000).await;
    let env = [
        ("EVM_RPC_URL", anvil.url.as_str()),
        ("EVM_PRIVATE_KEY", OWNER_KEY),
        ("AGENTPORT_RECONCILE_SECS", "0.2"),
        ("AGENTPORT_RUN_GRACE_SECS", "1"),
        ("AGENTPORT_SHUTDOWN_GRACE_SECS", "5"),
        // The test's client does not answer close frames: do not wait on it.
        ("AGENTPORT_WS_CLOSE_TIMEOUT_SECS", "0.5"),
    ];
    let agent_id = "stopping-mid-flight";
    let (mut process, mut wizard_client) = transfer_agent(token, &env, agent_id).await;
    let nonce = execute_into_the_pending_block(&anvil, &mut wizard_client, agent_id).await;
    process.signal("TERM");
    let code = process.exit_code(std::time::Duration::from_secs(8)).await;
    assert_eq!(code, Some(0), "exits within its grace");
    let Process { dir, .. } = process;

    let process = Process::start_in(dir, &env).await;
    // Cancelled by the stop first, then completed from the chain.
    let confirmed = |run: &Value| run["status"] == "succeeded";
    let run = mine_and_settle(&anvil, &process, agent_id, confirmed).await;
    assert_eq!(run["result"]["reconciled"], true, "{run}");
    assert_transferred_once(&anvil, token, nonce).await;
}

/// A server with the chain's key and an agent, configured through the wizard,
/// that transfers 5 tokens to RECIPIENT on each run.
async fn transfer_agent(
    token: alloy::primitives::Address,
    env: &[(&str, &str)],
    agent_id: &str,
) -> (Process, Client) {
    use common::chain::{RECIPIENT, configure_agent};
    let process = Process::start(env).await;
    let mut wizard_client = client(&process, agent_id, "").await;
    let rule = json!({"kind": "rules", "rules": [
        {"then": {"function": "transfer", "args": [RECIPIENT, "5"]}}]});
    let token = token.to_string();
    configure_agent(&mut wizard_client, agent_id, &token, "move 5", rule, "100").await;
    (process, wizard_client)
}

/// After a restart: mines the pending block, turns automine back on and
/// returns the agent's last run once `settled` holds for it.
async fn mine_and_settle(
    anvil: &common::chain::Anvil,
    process: &Process,
    agent_id: &str,
    settled: impl Fn(&Value) -> bool,
) -> Value {
    anvil.rpc("evm_mine", json!([])).await;
    anvil.rpc("evm_setAutomine", json!([true])).await;
    let mut view = client(process, agent_id, "").await;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        view.send(json!({"type": "list_runs", "data": {"agent_id": agent_id}}))
            .await;
        let runs = view.until("list_runs_response").await;
        let run = runs["data"]["runs"][0].clone();
        if settled(&run) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {run}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The 5 tokens arrived once, and the key sent one transaction.
async fn assert_transferred_once(
    anvil: &common::chain::Anvil,
    token: alloy::primitives::Address,
    nonce: u64,
) {
    use common::chain::{OWNER, RECIPIENT};
    let balance = anvil.balance(token, RECIPIENT).await.to::<u64>();
    assert_eq!(balance, 5, "exactly once");
    assert_eq!(anvil.nonce(OWNER).await, nonce + 1);
}

/// With automine off, has the agent execute and waits until its transaction
/// sits in the pending block: sent, and not mined until the test mines it.
/// Returns the key's nonce before.
async fn execute_into_the_pending_block(
    anvil: &common::chain::Anvil,
    client: &mut Client,
    agent_id: &str,
) -> u64 {
    use alloy::providers::Provider;
    use common::chain::OWNER;
    let nonce = anvil.nonce(OWNER).await;
    anvil.rpc("evm_setAutomine", json!([false])).await;
    client
        .send(json!({"type": "execute", "agent_id": agent_id}))
        .await;
    let owner: alloy::primitives::Address = OWNER.parse().unwrap();
    wait_for("the transfer in the pending block", || async {
        let pending = anvil
            .provider
            .get_transaction_count(owner)
            .pending()
            .await
            .unwrap();
        (pending > nonce).then_some(())
    })
    .await;
    nonce
}
