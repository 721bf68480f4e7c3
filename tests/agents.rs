//! The frontend's protocol over real sockets and a real database (SQLite file
//! and PostgreSQL): the configuration wizard, the execution view, failures, and
//! the durable per-agent event stream.

mod common;

use agentport::model::Caller;
use common::{
    client::{Client, TOKEN, bare_agent, wizard},
    pg::PgSchema,
    *,
};
use serde_json::{Value, json};

/// Runs a test body against a SQLite file and against PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                super::$name(TestServer::start().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let schema = PgSchema::create().await;
                super::$name(TestServer::start_on(&schema.url, |_| {}).await).await;
            }
        }
    )*};
}

on_both_databases!(
    wizard_configures_everything_and_the_agent_reads_back,
    wizard_with_nothing_optional,
    two_wizards_interleaved_stay_isolated,
    execution_view_on_the_contract_channel_follows_the_agent,
    every_failure_names_its_request,
    since_replays_without_gap_or_duplicate_while_events_keep_coming,
    an_event_the_hub_never_delivered_is_filled_in_and_the_order_holds,
    subscribe_and_unsubscribe_on_any_connection,
);

fn uuid() -> String {
    uuid_v4()
}

/// A random UUID v4 (the wizard's fresh channel).
fn uuid_v4() -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| rand_byte());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn rand_byte() -> u8 {
    use std::{
        collections::hash_map::RandomState,
        hash::{BuildHasher, Hasher},
    };
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .elapsed()
            .map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.finish() as u8
}

async fn wizard_configures_everything_and_the_agent_reads_back(server: TestServer) {
    let agent_id = uuid();
    let mut client = Client::new(server.connect(&agent_id).await);
    wizard(&mut client, &agent_id, TOKEN).await;

    // configure_agent: two frames, the reply first, then agent_configured.
    client
        .send(json!({"type": "configure_agent", "data": {"agent_id": agent_id}}))
        .await;
    let reply = client.until("configure_agent_response").await;
    assert_eq!(reply["data"]["status"], "success");
    assert_eq!(reply["data"]["agent_id"], agent_id.as_str());
    let configured = client.until("agent_configured").await;
    assert_eq!(configured["data"]["status"], "success");
    assert_eq!(configured["data"]["agent_id"], agent_id.as_str());
    assert!(configured["seq"].as_u64().unwrap() > 0);

    client
        .send(json!({"type": "get_agent", "data": {"agent_id": agent_id}}))
        .await;
    let details = client.until("get_agent_response").await["data"].clone();
    let agent = &details["agent"];
    assert_eq!(agent["agentId"], agent_id.as_str());
    assert_eq!(agent["contractId"], TOKEN);
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["gasLimit"], "300000");
    assert_eq!(agent["maxPriorityFee"], "1.5");
    assert_eq!(agent["contractState"], json!({"totalSupply": "1000"}));
    assert!(agent["created_at"].is_string() && agent["updated_at"].is_string());
    let functions = details["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 2);
    let transfer = functions
        .iter()
        .find(|f| f["functionName"] == "transfer")
        .unwrap();
    assert_eq!(transfer["functionSignature"], "transfer(address,uint256)");
    assert_eq!(transfer["functionType"], "write");
    assert_eq!(
        transfer["validationRules"],
        json!({"amount": {"min": 1, "max": 100}})
    );
    assert_eq!(details["schedule"]["scheduleType"], "cron");
    assert_eq!(details["schedule"]["cronExpression"], "*/5 * * * *");
    assert!(details["schedule"]["nextExecution"].is_string());
    assert_eq!(details["notifications"].as_array().unwrap().len(), 3);
    assert_eq!(details["state"]["configured"], true);

    // Re-sending a step updates instead of failing.
    let again = client
        .ok(
            "create_function",
            json!({"function_name": "transfer", "function_signature": "transfer(address,uint256)",
                   "function_type": "write", "is_enabled": false, "validation_rules": {},
                   "agent_id": agent_id}),
        )
        .await;
    assert_eq!(again["function"]["functionId"], transfer["functionId"]);
    assert_eq!(again["function"]["isEnabled"], false);
    let contract = client
        .ok(
            "create_contract",
            json!({"address": TOKEN.to_lowercase(), "chain_id": 31337, "name": "Renamed",
                   "type": "ERC20", "abi": "[]"}),
        )
        .await;
    assert_eq!(contract["contract"]["name"], "Renamed");
    assert_eq!(contract["contract"]["chainId"], 31337);
    server.shutdown().await.unwrap();
}

async fn wizard_with_nothing_optional(server: TestServer) {
    let agent_id = uuid();
    let mut client = Client::new(server.connect(&agent_id).await);
    let contract = client
        .ok(
            "create_contract",
            json!({"contract_id": TOKEN, "address": TOKEN, "chain_id": 1, "name": "T",
                   "type": "ERC20", "abi": "[]", "deployed_at": "2024-05-01T12:00:00Z"}),
        )
        .await;
    assert_eq!(contract["contract"]["ownerAddress"], Value::Null);
    assert_eq!(contract["contract"]["abi"], json!([]));
    // No agent_id anywhere: the path channel is the agent's id.
    let agent = client
        .ok(
            "create_agent",
            json!({"contractId": TOKEN, "name": "Minimal", "description": ""}),
        )
        .await;
    assert_eq!(agent["agent_id"], agent_id.as_str());
    assert_eq!(agent["agent"]["gasLimit"], "300000");
    assert_eq!(agent["agent"]["maxPriorityFee"], "1.5");
    assert_eq!(agent["agent"]["owner"], Value::Null);
    assert_eq!(agent["agent"]["contractState"], json!({}));
    let function = client
        .ok(
            "create_function",
            json!({"function_name": "totalSupply", "function_signature": "totalSupply()",
                   "function_type": "read", "is_enabled": true, "validation_rules": {}}),
        )
        .await;
    assert_eq!(function["function"]["abi"], Value::Null);
    assert_eq!(function["function"]["agentId"], agent_id.as_str());
    let schedule = client
        .ok(
            "create_schedule",
            json!({"scheduleType": "interval", "intervalSeconds": 60, "isActive": false}),
        )
        .await;
    assert_eq!(schedule["schedule"]["intervalSeconds"], 60);
    assert_eq!(schedule["schedule"]["nextExecution"], Value::Null);
    client
        .ok(
            "create_notification",
            json!({"notification_type": "telegram", "configuration": {"chatId": "12345"},
                   "is_enabled": true}),
        )
        .await;
    client
        .send(json!({"type": "configure_agent", "data": {}}))
        .await;
    client.until("configure_agent_response").await;
    assert_eq!(
        client.until("agent_configured").await["data"]["agent_id"],
        agent_id.as_str()
    );
    server.shutdown().await.unwrap();
}

async fn two_wizards_interleaved_stay_isolated(server: TestServer) {
    let (a, b) = (uuid(), uuid());
    let mut alice = Client::new(server.connect(&a).await);
    let mut bob = Client::new(server.connect(&b).await);
    let other = "0x1111111111111111111111111111111111111111";
    for (client, address) in [(&mut alice, TOKEN), (&mut bob, other)] {
        client
            .ok(
                "create_contract",
                json!({"address": address, "chain_id": 1, "abi": "[]"}),
            )
            .await;
    }
    // Interleaved, and without agent_id: each resolves to its own channel.
    alice
        .ok("create_agent", json!({"contractId": TOKEN, "name": "A"}))
        .await;
    bob.ok("create_agent", json!({"contractId": other, "name": "B"}))
        .await;
    let fa = alice
        .ok(
            "create_function",
            json!({"function_name": "f", "function_signature": "f()",
                                      "function_type": "read"}),
        )
        .await;
    let fb = bob
        .ok(
            "create_function",
            json!({"function_name": "g", "function_signature": "g()",
                                      "function_type": "read"}),
        )
        .await;
    assert_eq!(fa["function"]["agentId"], a.as_str());
    assert_eq!(fb["function"]["agentId"], b.as_str());
    alice
        .send(json!({"type": "configure_agent", "data": {}}))
        .await;
    bob.send(json!({"type": "configure_agent", "data": {}}))
        .await;
    assert_eq!(
        alice.until("agent_configured").await["data"]["agent_id"],
        a.as_str()
    );
    assert_eq!(
        bob.until("agent_configured").await["data"]["agent_id"],
        b.as_str()
    );
    // A last round trip on each, then no frame names the other's agent.
    for client in [&mut alice, &mut bob] {
        client.send(json!({"type": "ping", "id": "end"})).await;
        client.until("pong").await;
    }
    for (client, foreign) in [(&alice, &b), (&bob, &a)] {
        for frame in &client.frames {
            assert!(
                !frame.to_string().contains(foreign.as_str()),
                "leaked: {frame}"
            );
        }
    }
    server.shutdown().await.unwrap();
}

async fn execution_view_on_the_contract_channel_follows_the_agent(server: TestServer) {
    let agent_id = uuid();
    let mut wizard_client = Client::new(server.connect(&agent_id).await);
    wizard(&mut wizard_client, &agent_id, TOKEN).await;

    // The execution view connects on the contract address (another case).
    let mut view = Client::new(server.connect(&TOKEN.to_lowercase()).await);
    // Someone else starts the agent: the view sees it.
    wizard_client
        .ok("start_agent", json!({"agent_id": agent_id}))
        .await;
    let started = view.until("agent_started").await;
    assert_eq!(started["data"]["agent_id"], agent_id.as_str());
    let status = view.until("status").await;
    assert_eq!(status["running"], true);
    assert_eq!(status["data"]["running"], true);
    assert!(status["nextExecution"].is_string(), "{status}");
    assert!(status.get("lastExecuted").is_some());

    // The view's own Stop / Start / updateConfig frames (no type, no data).
    // (The schedule's own `status` frames may come in between: wait for the change.)
    view.send(json!({"action": "stop", "agentId": agent_id}))
        .await;
    let status = status_with(&mut view, false).await;
    assert_eq!(status["nextExecution"], Value::Null);
    view.send(json!({"action": "start", "agentId": agent_id}))
        .await;
    status_with(&mut view, true).await;
    view.send(json!({"action": "updateConfig", "agentId": agent_id,
                     "config": {"description": "Rebalance weekly"}}))
        .await;
    view.until("status").await;
    view.send(json!({"type": "get_agent", "data": {"agent_id": agent_id}}))
        .await;
    let details = view.until("get_agent_response").await;
    assert_eq!(details["data"]["agent"]["description"], "Rebalance weekly");
    assert_eq!(details["data"]["agent"]["status"], "active");

    // Execute: processing at once, then one error outcome (no executor here).
    view.send(json!({"type": "websocket_execution", "agent_id": agent_id,
                     "data": {"functions": [], "contract": {"address": TOKEN, "abi": []}}}))
        .await;
    let processing = view.until("execute_response").await;
    assert_eq!(processing["data"]["status"], "processing");
    let run_id = processing["data"]["run_id"].as_str().unwrap().to_string();
    let outcome = view.until("execute_response").await;
    assert_eq!(outcome["data"]["status"], "error");
    assert_eq!(outcome["data"]["run_id"], run_id.as_str());
    assert!(
        outcome["data"]["message"]
            .as_str()
            .unwrap()
            .contains("no executor is configured")
    );
    assert!(outcome["data"]["logs"].is_array());
    // The run's progress reached the view as log events, before the outcome.
    let logs: Vec<&Value> = view.frames.iter().filter(|f| f["type"] == "log").collect();
    assert!(
        logs.iter()
            .any(|l| l["logType"] == "error" && l["message"].is_string()),
        "{logs:?}"
    );
    view.send(json!({"type": "list_runs", "data": {"agent_id": agent_id}}))
        .await;
    let runs = view.until("list_runs_response").await;
    assert_eq!(runs["data"]["runs"][0]["run_id"], run_id.as_str());
    assert_eq!(runs["data"]["runs"][0]["status"], "failed");

    // Removal reaches the view too.
    wizard_client
        .ok("remove_agent", json!({"agent_id": agent_id}))
        .await;
    assert_eq!(
        view.until("agent_removed").await["data"]["agent_id"],
        agent_id.as_str()
    );
    // Every event the view got has a seq, increasing by one.
    let seqs: Vec<u64> = view
        .frames
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    server.shutdown().await.unwrap();
}

/// The next `status` frame whose `running` is `running`.
async fn status_with(client: &mut Client, running: bool) -> Value {
    loop {
        let status = client.until("status").await;
        if status["running"] == running {
            return status;
        }
    }
}

async fn every_failure_names_its_request(server: TestServer) {
    let agent_id = uuid();
    let mut client = Client::new(server.connect(&agent_id).await);
    let message = client
        .fails("create_agent", json!({"name": "no contract"}))
        .await;
    assert_eq!(message, "contractId is required");
    let message = client
        .fails("create_agent", json!({"contractId": TOKEN, "name": "x"}))
        .await;
    assert!(message.contains("create_contract first"), "{message}");
    client
        .fails(
            "create_contract",
            json!({"address": "0x123", "chain_id": 1}),
        )
        .await;
    client
        .fails(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[not json"}),
        )
        .await;
    client
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    client
        .fails(
            "create_agent",
            json!({"contractId": TOKEN, "gas_limit": "lots"}),
        )
        .await;
    client
        .fails(
            "create_function",
            json!({"function_name": "f", "function_signature": "f()",
                                         "function_type": "read"}),
        )
        .await; // no such agent yet
    client
        .ok("create_agent", json!({"contractId": TOKEN, "name": "x"}))
        .await;
    for bad in [
        json!({"function_name": "f", "function_signature": "f()", "function_type": "fly"}),
        json!({"function_name": "f", "function_signature": "g()", "function_type": "read"}),
        json!({"function_name": "transfer", "function_signature": "transfer(address)",
               "function_type": "write", "abi": common::client::erc20_abi()[1]}),
        json!({"function_name": "f", "function_signature": "f()", "function_type": "read",
               "validation_rules": {"x": 5}}),
    ] {
        client.fails("create_function", bad).await;
    }
    for bad in [
        json!({"schedule_type": "cron", "cron_expression": ""}),
        json!({"schedule_type": "cron", "cron_expression": "not a cron"}),
        json!({"schedule_type": "interval"}),
        json!({"schedule_type": "weekly"}),
    ] {
        client.fails("create_schedule", bad).await;
    }
    for bad in [
        json!({"notification_type": "email", "configuration": {"emailAddress": "nope"}}),
        json!({"notification_type": "pigeon", "configuration": {}}),
        json!({"notification_type": "webhook", "configuration": {}}),
    ] {
        client.fails("create_notification", bad).await;
    }
    let missing = uuid();
    for kind in [
        "configure_agent",
        "start_agent",
        "stop_agent",
        "remove_agent",
        "get_agent",
        "list_runs",
    ] {
        let message = client.fails(kind, json!({"agent_id": missing})).await;
        assert!(message.contains("not found"), "{kind}: {message}");
    }
    // Execute on a missing agent: processing, then the one error shape.
    client
        .send(json!({"type": "execute", "agent_id": missing, "data": {}}))
        .await;
    assert_eq!(
        client.until("execute_response").await["data"]["status"],
        "processing"
    );
    let outcome = client.until("execute_response").await;
    assert_eq!(outcome["data"]["status"], "error");
    assert_eq!(outcome["data"]["agent_id"], missing.as_str());
    assert!(outcome["data"]["run_id"].is_string());
    assert_eq!(outcome["data"]["logs"], json!([]));
    // An action frame on a missing agent: an error frame.
    client
        .send(json!({"action": "start", "agentId": missing}))
        .await;
    let error = client.until("error").await;
    assert!(error["message"].as_str().unwrap().contains("not found"));
    // The connection is still fine, and nothing was half-saved.
    client.send(json!({"type": "get_agent", "data": {}})).await;
    let details = client.until("get_agent_response").await;
    assert_eq!(details["data"]["functions"], json!([]));
    assert_eq!(details["data"]["schedule"], Value::Null);
    assert_eq!(details["data"]["notifications"], json!([]));
    client.send(json!({"type": "ping", "id": 1})).await;
    assert_eq!(client.until("pong").await["id"], 1);
    server.shutdown().await.unwrap();
}

async fn since_replays_without_gap_or_duplicate_while_events_keep_coming(server: TestServer) {
    let agent_id = uuid();
    let mut producer = Client::new(server.connect(&agent_id).await);
    producer
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    producer
        .ok("create_agent", json!({"contractId": TOKEN, "name": "p"}))
        .await;
    let total = 300;
    // Keep producing events (2 per description update) in the background.
    let url = server.ws_url(&agent_id);
    let id = agent_id.clone();
    let writer = tokio::spawn(async move {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = Client::new(ws);
        for i in 0..total {
            client
                .send(json!({"action": "updateConfig", "agentId": id,
                             "config": {"description": format!("d{i}")}}))
                .await;
        }
        client.send(json!({"type": "ping", "id": "done"})).await;
        loop {
            if client.next().await["type"] == "pong" {
                break;
            }
        }
    });
    // Meanwhile a client joins with since=3, mid-stream.
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}?since=3", server.ws_url(&agent_id)))
        .await
        .unwrap();
    let mut reader = Client::new(ws);
    writer.await.unwrap();
    let last = server
        .state
        .manager
        .feed()
        .bounds(&Caller::local(), &agent_id)
        .await
        .unwrap()
        .last_seq;
    assert!(last >= 2 * total as u64);
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        let frame = reader.next().await;
        if let Some(seq) = frame["seq"].as_u64() {
            seqs.push(seq);
        }
    }
    let expected: Vec<u64> = (4..=last).collect();
    assert_eq!(seqs, expected, "every event after 3, once, in order");
    server.shutdown().await.unwrap();
}

/// An event can be stored without reaching this process's hub (another
/// replica's, a lost bus message): a follower that is up to date gets the next
/// events straight from the hub, so the one after the hole must send it back
/// to the store first, and the ones after that must wait their turn.
async fn an_event_the_hub_never_delivered_is_filled_in_and_the_order_holds(server: TestServer) {
    use agentport::{model::EventKind, protocol::events, store::Store};
    let agent_id = uuid();
    let mut producer = Client::new(server.connect(&agent_id).await);
    bare_agent(&mut producer, &agent_id).await;
    let mut reader = Client::new(server.connect(&agent_id).await);
    let feed = server.state.manager.feed();
    let bounds = |id: String| async move { feed.bounds(&Caller::local(), &id).await.unwrap() };
    let before = bounds(agent_id.clone()).await.last_seq;
    // Stored, never published here.
    let store = Store::connect(&server.database_url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let hidden = events::lifecycle(EventKind::AgentStarted, &agent_id);
    tx.append_event(&agent_id, hidden).await.unwrap();
    tx.commit().await.unwrap();
    for i in 0..20 {
        producer
            .send(json!({"action": "updateConfig", "agentId": agent_id,
                         "config": {"description": format!("d{i}")}}))
            .await;
    }
    let last = before + 1 + 40;
    let mut seqs = Vec::new();
    while seqs.last().copied() != Some(last) {
        if let Some(seq) = reader.next().await["seq"].as_u64() {
            seqs.push(seq);
        }
    }
    let expected: Vec<u64> = (before + 1..=last).collect();
    assert_eq!(
        seqs, expected,
        "the hidden event, then every later one, in order"
    );
    assert_eq!(bounds(agent_id.clone()).await.last_seq, last);
    server.shutdown().await.unwrap();
}

async fn subscribe_and_unsubscribe_on_any_connection(server: TestServer) {
    let agent_id = uuid();
    let mut owner = Client::new(server.connect(&agent_id).await);
    owner
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    owner
        .ok("create_agent", json!({"contractId": TOKEN, "name": "s"}))
        .await;
    owner.ok("stop_agent", json!({})).await;

    // A connection on an unrelated channel subscribes with since=0, with an id.
    let mut watcher = Client::new(server.connect("dashboard").await);
    watcher
        .send(json!({"type": "subscribe", "id": 7, "data": {"agent_id": agent_id, "since": 0}}))
        .await;
    let reply = watcher.until("subscribe_response").await;
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["data"]["status"], "success");
    let last = reply["data"]["last_seq"].as_u64().unwrap();
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        if let Some(seq) = watcher.next().await["seq"].as_u64() {
            seqs.push(seq);
        }
    }
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    // Live events follow.
    owner.ok("start_agent", json!({})).await;
    assert_eq!(
        watcher.until("agent_started").await["seq"].as_u64(),
        Some(last + 1)
    );
    // After unsubscribe, nothing more arrives (checked with a round trip after
    // another event).
    watcher
        .send(json!({"type": "unsubscribe", "data": {"agent_id": agent_id}}))
        .await;
    assert_eq!(
        watcher.until("unsubscribe_response").await["data"]["subscribed"],
        true
    );
    owner.ok("stop_agent", json!({})).await;
    owner.until("agent_stopped").await;
    watcher.send(json!({"type": "ping", "id": "after"})).await;
    let frame = watcher.until("pong").await;
    assert_eq!(frame["id"], "after");
    let stopped_after = watcher
        .frames
        .iter()
        .skip_while(|f| f["type"] != "unsubscribe_response")
        .any(|f| f["type"] == "agent_stopped");
    assert!(!stopped_after, "an event arrived after unsubscribe");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hostile_configuration_gets_clear_errors_and_stores_nothing() {
    let server = TestServer::start().await;
    let agent_id = "hostile-target";
    let mut client = Client::new(server.connect(agent_id).await);
    bare_agent(&mut client, agent_id).await;
    let deep = format!("uint256{}", "[]".repeat(50_000));
    let message = client
        .fails(
            "create_function",
            json!({"agent_id": agent_id, "function_name": "f", "function_signature": "f(uint256)",
                   "function_type": "write",
                   "abi": {"name": "f", "inputs": [{"name": "x", "type": deep}]}}),
        )
        .await;
    assert!(message.contains("nested"), "{message}");
    let long_name = "n".repeat(201);
    let message = client
        .fails(
            "create_agent",
            json!({"agent_id": agent_id, "contractId": TOKEN, "name": long_name}),
        )
        .await;
    assert!(message.contains("longer than"), "{message}");
    client
        .send(json!({"type": "get_agent", "data": {"agent_id": agent_id}}))
        .await;
    let details = client.until("get_agent_response").await;
    assert_eq!(details["data"]["functions"], json!([]));
    assert_eq!(details["data"]["agent"]["name"], "");
    // The largest `since` is no crash and no replay, on both doors.
    let max = u64::MAX;
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("{}?since={max}", server.ws_url(agent_id)))
            .await
            .unwrap();
    let mut late = Client::new(ws);
    late.send(json!({"type": "subscribe", "data": {"agent_id": agent_id, "since": max}}))
        .await;
    late.until("subscribe_response").await;
    late.send(json!({"type": "ping", "id": "alive"})).await;
    assert_eq!(late.until("pong").await["id"], "alive");
    let events: Value =
        reqwest::get(server.url(&format!("/api/v1/agents/{agent_id}/events?since={max}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(events["events"], json!([]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_step_is_logged_once_and_an_agent_without_functions_observes_nothing() {
    let server = TestServer::start().await;
    let mut client = Client::new(server.connect("bare").await);
    bare_agent(&mut client, "bare").await;
    client
        .send(json!({"type": "execute", "agent_id": "bare"}))
        .await;
    client.until("execute_response").await;
    let outcome = client.until("execute_response").await;
    assert_eq!(outcome["data"]["status"], "success", "{outcome}");
    assert!(
        outcome["data"]["logs"]
            .to_string()
            .contains("Nothing to observe")
    );
    // A failing run (no executor, functions to read): every line once.
    wizard(&mut client, "failing", TOKEN).await;
    client
        .send(json!({"type": "execute", "agent_id": "failing"}))
        .await;
    client.until("execute_response").await;
    let outcome = client.until("execute_response").await;
    assert_eq!(outcome["data"]["status"], "error");
    let lines: Vec<String> = outcome["data"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect();
    for pair in lines.windows(2) {
        assert_ne!(pair[0], pair[1], "logged twice: {lines:?}");
    }
    assert!(lines.last().unwrap().starts_with("Run failed"), "{lines:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn starting_a_scheduled_agent_announces_its_status_once() {
    let server = TestServer::start().await;
    let agent_id = "announced";
    let mut client = Client::new(server.connect(agent_id).await);
    wizard(&mut client, agent_id, TOKEN).await;
    client.ok("stop_agent", json!({"agent_id": agent_id})).await;
    // Once a year: it does not fire during the test.
    client
        .ok(
            "create_schedule",
            json!({"agent_id": agent_id, "schedule_type": "cron",
                   "cron_expression": "0 0 1 1 *", "is_active": true}),
        )
        .await;
    let started = client
        .ok("start_agent", json!({"agent_id": agent_id}))
        .await;
    assert_eq!(started["status"], "success");
    let status = loop {
        let frame = client.until("status").await;
        if frame["running"] == true {
            break frame;
        }
    };
    assert!(status["nextExecution"].is_string(), "{status}");
    let started_seq = client
        .frames
        .iter()
        .rev()
        .find(|f| f["type"] == "agent_started")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    // The stored stream after the start: one status, not two.
    let (ws, _) = tokio_tungstenite::connect_async(format!(
        "{}?since={started_seq}",
        server.ws_url(agent_id)
    ))
    .await
    .unwrap();
    let mut replay = Client::new(ws);
    replay.send(json!({"type": "ping", "id": "end"})).await;
    replay.until("pong").await;
    let statuses = replay
        .frames
        .iter()
        .filter(|f| f["type"] == "status")
        .count();
    assert_eq!(statuses, 1, "{:?}", replay.frames);
    server.shutdown().await.unwrap();
}
