//! The REST API and the frontend's two legacy read endpoints, over what the
//! WebSocket created; CORS; the OpenAPI document; retention.

mod common;

use agentport::model::Caller;
use common::{
    client::{Client, TOKEN, bare_agent, wizard},
    *,
};
use serde_json::{Value, json};

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn rest_and_legacy_endpoints_return_what_the_websocket_created() {
    let server = TestServer::start().await;
    let agent_id = "3f1c9a7e-2b4d-4e8f-9a1b-7c6d5e4f3a2b";
    let mut client = Client::new(server.connect(agent_id).await);
    wizard(&mut client, agent_id, TOKEN).await;

    // Legacy: agents of a contract (any case), snake_case rows in an array.
    let (status, agents) = json_of(
        reqwest::get(server.url(&format!("/api/db/agents/{}", TOKEN.to_lowercase())))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let agent = &agents.as_array().unwrap()[0];
    for key in [
        "agent_id",
        "contract_id",
        "name",
        "description",
        "status",
        "gas_limit",
        "max_priority_fee",
        "owner",
        "contract_state",
        "created_at",
        "updated_at",
    ] {
        assert!(
            agent.get(key).is_some(),
            "legacy agent row lacks {key}: {agent}"
        );
    }
    assert_eq!(agent["agent_id"], agent_id);
    assert_eq!(agent["gas_limit"], "300000");
    assert_eq!(agent["contract_state"], json!({"totalSupply": "1000"}));

    // Legacy: an agent's functions, with parameters from the ABI.
    let (status, functions) = json_of(
        reqwest::get(server.url(&format!("/api/db/agents/{agent_id}/functions")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let transfer = functions
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function_name"] == "transfer")
        .unwrap();
    assert_eq!(transfer["function_signature"], "transfer(address,uint256)");
    assert_eq!(transfer["is_enabled"], true);
    assert_eq!(
        transfer["parameters"],
        json!([{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}])
    );
    assert_eq!(
        transfer["validation_rules"],
        json!({"amount": {"min": 1, "max": 100}})
    );

    // v1: the agent with everything, and the list.
    let (status, details) = json_of(
        reqwest::get(server.url(&format!("/api/v1/agents/{agent_id}")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(details["agent"]["name"], "Treasurer");
    assert_eq!(details["functions"].as_array().unwrap().len(), 2);
    assert_eq!(details["schedule"]["cronExpression"], "*/5 * * * *");
    assert_eq!(details["notifications"].as_array().unwrap().len(), 3);
    let (_, list) = json_of(reqwest::get(server.url("/api/v1/agents")).await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // v1 commands reach WebSocket subscribers as events.
    let http = reqwest::Client::new();
    let (status, agent) = json_of(
        http.post(server.url(&format!("/api/v1/agents/{agent_id}/stop")))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, agent["status"].as_str()), (200, Some("paused")));
    assert_eq!(
        client.until("agent_stopped").await["data"]["agent_id"],
        agent_id
    );
    let (status, run) = json_of(
        http.post(server.url(&format!("/api/v1/agents/{agent_id}/execute")))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(run["status"], "error");
    let (_, runs) = json_of(
        reqwest::get(server.url(&format!("/api/v1/agents/{agent_id}/runs")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(runs[0]["run_id"], run["run_id"]);

    // Events after a seq: the same frames the sockets got.
    let (status, events) = json_of(
        reqwest::get(server.url(&format!("/api/v1/agents/{agent_id}/events?since=0")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let seqs: Vec<u64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=events["last_seq"].as_u64().unwrap()).collect::<Vec<_>>()
    );
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "agent_stopped")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rest_creates_an_agent_and_rejects_bad_input_clearly() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: &str| {
        http.post(server.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let (status, error) = json_of(post("/api/v1/contracts", "{not json").await.unwrap()).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, error) = json_of(
        post("/api/v1/contracts", r#"{"address":"0x1","chain_id":1}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("address")
    );
    let body = json!({"address": TOKEN, "chain_id": 1, "abi": []}).to_string();
    assert_eq!(
        post("/api/v1/contracts", &body)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let (status, agent) = json_of(
        post(
            "/api/v1/agents",
            &json!({"contractId": TOKEN, "name": "rest"}).to_string(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let id = agent["agentId"].as_str().unwrap().to_string();
    let (status, _) = json_of(
        post(
            &format!("/api/v1/agents/{id}/functions"),
            r#"{"function_name":"f","function_signature":"f()","function_type":"read"}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, error) = json_of(
        reqwest::get(server.url("/api/v1/agents/nope"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let deleted = http
        .delete(server.url(&format!("/api/v1/agents/{id}")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(
        reqwest::get(server.url(&format!("/api/v1/agents/{id}")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let server = TestServer::start().await;
    let (status, doc) = json_of(
        reqwest::get(server.url("/api/v1/openapi.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/events",
        "/api/v1/contracts",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(doc["components"]["schemas"].get("Agent").is_some());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example.com".into()])
            .await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, server.url("/api/v1/agents"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn since_older_than_retention_reports_history_truncated() {
    let server = TestServer::start().await;
    let agent_id = "a-retained";
    let mut client = Client::new(server.connect(agent_id).await);
    bare_agent(&mut client, agent_id).await;
    for i in 0..10 {
        client
            .send(json!({"action": "updateConfig", "agentId": agent_id, "config": {"description": format!("{i}")}}))
            .await;
        client.until("status").await;
    }
    let manager = &server.state.manager;
    assert!(manager.prune_events(Some(5), None).await.unwrap() > 0);
    let bounds = manager
        .feed()
        .bounds(&Caller::local(), agent_id)
        .await
        .unwrap();
    let oldest = bounds.oldest_seq.unwrap();
    assert_eq!(oldest, bounds.last_seq - 4);

    let (ws, _) = tokio_tungstenite::connect_async(format!("{}?since=0", server.ws_url(agent_id)))
        .await
        .unwrap();
    let mut late = Client::new(ws);
    let error = late.until("error").await;
    assert_eq!(error["data"]["code"], "history_truncated");
    assert_eq!(error["data"]["oldest_seq"], oldest);
    // Then what is kept, in order.
    let mut seqs = Vec::new();
    while seqs.last() != Some(&bounds.last_seq) {
        if let Some(seq) = late.next().await["seq"].as_u64() {
            seqs.push(seq);
        }
    }
    assert_eq!(seqs, (oldest..=bounds.last_seq).collect::<Vec<_>>());
    let gone = reqwest::get(server.url(&format!("/api/v1/agents/{agent_id}/events?since=0")))
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 410);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["oldest_seq"], oldest);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn agents_are_listed_page_by_page_with_a_cursor() {
    let server = TestServer::start().await;
    let mut client = Client::new(server.connect("pager").await);
    client
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    for id in ["p1", "p2", "p3"] {
        client
            .ok("create_agent", json!({"agent_id": id, "contractId": TOKEN}))
            .await;
    }
    let first = reqwest::get(server.url("/api/v1/agents?limit=2"))
        .await
        .unwrap();
    let cursor = first.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_string();
    let page: Value = first.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);
    let last = reqwest::get(server.url(&format!("/api/v1/agents?limit=2&cursor={cursor}")))
        .await
        .unwrap();
    assert!(last.headers().get("x-next-cursor").is_none());
    let page: Value = last.json().await.unwrap();
    assert_eq!(page[0]["agentId"], "p3");
    let forged = reqwest::get(server.url("/api/v1/agents?cursor=p2"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    // The frontend's database read is paged the same way, its shape unchanged.
    let legacy = reqwest::get(server.url(&format!("/api/db/agents/{TOKEN}?limit=2")))
        .await
        .unwrap();
    let cursor = legacy.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_string();
    let rows: Value = legacy.json().await.unwrap();
    assert_eq!(rows[0]["agent_id"], "p1");
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let url = format!("/api/db/agents/{TOKEN}?limit=2&cursor={cursor}");
    let rows: Value = reqwest::get(server.url(&url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows, json!([rows[0].clone()]));
    assert_eq!(rows[0]["agent_id"], "p3");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn runs_are_listed_page_by_page_on_both_doors() {
    let server = TestServer::start().await;
    let mut client = Client::new(server.connect("runner").await);
    bare_agent(&mut client, "runner").await;
    for _ in 0..3 {
        client
            .send(json!({"type": "execute", "agent_id": "runner"}))
            .await;
        client.until("execute_response").await;
        client.until("execute_response").await;
    }
    let first = client
        .ok("list_runs", json!({"agent_id": "runner", "limit": 2}))
        .await;
    assert_eq!(first["runs"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let rest = client
        .ok(
            "list_runs",
            json!({"agent_id": "runner", "limit": 2, "cursor": cursor}),
        )
        .await;
    assert_eq!(rest["runs"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let mut seen: Vec<Value> = first["runs"].as_array().unwrap().clone();
    seen.extend(rest["runs"].as_array().unwrap().iter().cloned());
    let ids: std::collections::HashSet<_> = seen.iter().map(|r| r["run_id"].to_string()).collect();
    assert_eq!(ids.len(), 3, "no run twice");
    let page = reqwest::get(server.url("/api/v1/agents/runner/runs?limit=2"))
        .await
        .unwrap();
    assert!(page.headers().get("x-next-cursor").is_some());
    // A cursor this server did not hand out is refused, not an empty page.
    client
        .fails("list_runs", json!({"agent_id": "runner", "cursor": "zz"}))
        .await;
    let forged = reqwest::get(server.url("/api/v1/agents/runner/runs?cursor=zz"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_keeps_a_large_request_only_as_a_trimmed_preview() {
    let server = TestServer::start().await;
    let mut client = Client::new(server.connect("trim").await);
    bare_agent(&mut client, "trim").await;
    let note = "x".repeat(40_000);
    client
        .send(json!({"type": "execute", "agent_id": "trim", "data": {"note": note}}))
        .await;
    client.until("execute_response").await;
    client.until("execute_response").await;
    let runs = client
        .ok("list_runs", json!({"agent_id": "trim", "limit": 1}))
        .await;
    let request = &runs["runs"][0]["request"];
    assert_eq!(request["trimmed"], json!(true), "{request}");
    assert!(request["bytes"].as_u64().unwrap() > 40_000);
    assert!(request.to_string().len() < 4096);
    server.shutdown().await.unwrap();
}
