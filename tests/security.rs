//! Who may do what: authentication (static tokens, JWT; header, subprotocol,
//! path prefix), the role × message matrix over the WebSocket and REST, agent
//! scopes on every way events leave, ownership, browser origins, cross-site
//! writes, and the refusal to serve a signing key to anyone.

mod common;

use agentport::{App, Config, config::AuthMode};
use common::{
    TestServer,
    client::{Client, TOKEN, bare_agent, erc20_abi},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

const ADMIN: &str = "admin-token-0123456789";
const ADMIN_TWO: &str = "admin-token-two-0123456789";
const OPERATOR: &str = "operator-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
/// An operator who may see only `scoped-one`.
const SCOPED: &str = "scoped-token-0123456789";

async fn token_server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.tokens = Some(agentport::config::Secret::new(format!(
            "admin:{ADMIN},admin:{ADMIN_TWO},operator:{OPERATOR},viewer:{VIEWER},\
             operator:{SCOPED}:scoped-one"
        )));
    })
    .await
}

/// Opens the agent WebSocket with `Authorization: Bearer token`; `Err` is the
/// HTTP status of the refusal.
async fn connect(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes());
        request
            .headers_mut()
            .insert(name.unwrap(), HeaderValue::from_str(value).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(Client::new(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("{other}"),
    }
}

async fn as_(server: &TestServer, channel: &str, token: &str) -> Client {
    let auth = format!("Bearer {token}");
    connect(
        server,
        &format!("/ws/agent/{channel}"),
        &[("authorization", &auth)],
    )
    .await
    .expect("an authenticated connection")
}

/// Sends one request and returns its reply's `data` (`status` success or error).
async fn ask(client: &mut Client, kind: &str, data: Value) -> Value {
    client.send(json!({"type": kind, "data": data})).await;
    let reply = match kind {
        "websocket_execution" => loop {
            let frame = client.until("execute_response").await;
            if frame["data"]["status"] != "processing" {
                break frame;
            }
        },
        _ => client.until(&format!("{kind}_response")).await,
    };
    reply["data"].clone()
}

/// An agent on TOKEN with one read function, made by `token`.
async fn agent(server: &TestServer, token: &str, agent_id: &str) {
    let mut admin = as_(server, agent_id, token).await;
    let abi = erc20_abi();
    admin
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 31337, "abi": abi.to_string()}),
        )
        .await;
    admin
        .ok(
            "create_agent",
            json!({"contractId": TOKEN, "name": agent_id}),
        )
        .await;
}

#[tokio::test]
async fn no_or_bad_token_gets_401_on_the_websocket_and_rest() {
    let server = token_server().await;
    assert_eq!(connect(&server, "/ws/agent/x", &[]).await.err(), Some(401));
    let bad = [("authorization", "Bearer not-a-token-at-all")];
    assert_eq!(connect(&server, "/ws/agent/x", &bad).await.err(), Some(401));
    let http = reqwest::Client::new();
    let anonymous = http.get(server.url("/api/v1/agents")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let legacy = http
        .get(server.url(&format!("/api/db/agents/{TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status().as_u16(), 401);
    // Health and readiness stay open for the platform's probes.
    assert_eq!(
        reqwest::get(server.url("/health")).await.unwrap().status(),
        200
    );
    server.shutdown().await.unwrap();
}

/// Every message type against every role: allowed, or `forbidden` with
/// nothing changed.
#[tokio::test]
async fn roles_decide_every_message_type_over_the_websocket() {
    let server = token_server().await;
    agent(&server, ADMIN, "matrix").await;
    let id = "matrix";
    let cases: Vec<(&str, Value, usize)> = vec![
        ("get_agent", json!({"agent_id": id}), 0),
        ("list_runs", json!({"agent_id": id}), 0),
        ("subscribe", json!({"agent_id": id}), 0),
        ("start_agent", json!({"agent_id": id}), 1),
        ("stop_agent", json!({"agent_id": id}), 1),
        ("configure_agent", json!({"agent_id": id}), 1),
        (
            "create_function",
            json!({"agent_id": id, "function_name": "balanceOf",
            "function_signature": "balanceOf(address)", "function_type": "read"}),
            1,
        ),
        (
            "create_schedule",
            json!({"agent_id": id, "schedule_type": "interval",
            "interval_seconds": 3600, "is_active": false}),
            1,
        ),
        (
            "create_notification",
            json!({"agent_id": id, "notification_type": "webhook",
            "configuration": {"url": "http://127.0.0.1:9/hook"}}),
            1,
        ),
        ("websocket_execution", json!({"agent_id": id}), 1),
        (
            "create_contract",
            json!({"address": TOKEN, "chain_id": 31337, "abi": "[]"}),
            2,
        ),
        (
            "create_agent",
            json!({"agent_id": id, "contractId": TOKEN, "name": "renamed"}),
            2,
        ),
    ];
    for (rank, token) in [VIEWER, OPERATOR, ADMIN].into_iter().enumerate() {
        let mut client = as_(&server, "elsewhere", token).await;
        let last_seq = async |client: &mut Client| {
            ask(client, "get_agent", json!({"agent_id": id})).await["state"]["last_seq"].clone()
        };
        let before = last_seq(&mut client).await;
        for (kind, data, least) in &cases {
            let reply = ask(&mut client, kind, data.clone()).await;
            if rank >= *least {
                assert_ne!(reply["code"], "forbidden", "{token} {kind}: {reply}");
            } else {
                assert_eq!(reply["status"], "error", "{token} {kind}: {reply}");
                assert_eq!(reply["code"], "forbidden", "{token} {kind}: {reply}");
            }
        }
        if rank == 0 {
            // Every change is an event: a viewer's requests made none.
            assert_eq!(last_seq(&mut client).await, before);
        }
    }
    // Nothing a refused request asked for happened: the viewer's and the
    // operator's `create_agent` did not rename it; only the admin's did.
    let mut viewer = as_(&server, "elsewhere", VIEWER).await;
    let details = ask(&mut viewer, "get_agent", json!({"agent_id": id})).await;
    assert_eq!(details["agent"]["name"], "renamed");
    for token in [VIEWER, OPERATOR] {
        let mut client = as_(&server, "elsewhere", token).await;
        let reply = ask(&mut client, "remove_agent", json!({"agent_id": id})).await;
        assert_eq!(reply["code"], "forbidden");
    }
    let mut admin = as_(&server, "elsewhere", ADMIN).await;
    assert_eq!(
        ask(&mut admin, "remove_agent", json!({"agent_id": id})).await["status"],
        "success"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_start_changes_nothing_and_is_reported_with_both_frames() {
    let server = token_server().await;
    agent(&server, ADMIN, "kept-paused").await;
    let mut viewer = as_(&server, "kept-paused", VIEWER).await;
    let message = viewer
        .fails("start_agent", json!({"agent_id": "kept-paused"}))
        .await;
    assert!(message.contains("forbidden"), "{message}");
    let details = ask(&mut viewer, "get_agent", json!({"agent_id": "kept-paused"})).await;
    assert_eq!(details["agent"]["status"], "paused");
    assert_eq!(details["state"]["running"], false);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn roles_decide_rest_calls_too() {
    let server = token_server().await;
    agent(&server, ADMIN, "rest-matrix").await;
    let http = reqwest::Client::new();
    let call_with = |method: reqwest::Method, path: &str, token: &str, body: String| {
        http.request(method, server.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let call = |method, path: &str, token: &str| call_with(method, path, token, "{}".into());
    use reqwest::Method;
    let contract = json!({"address": TOKEN, "chain_id": 31337, "abi": "[]"});
    let function = json!({"function_name": "balanceOf", "function_signature": "balanceOf(address)",
                          "function_type": "read"});
    let schedule = json!({"schedule_type": "interval", "interval_seconds": 60, "is_active": false});
    let hook =
        json!({"notification_type": "webhook", "configuration": {"url": "http://127.0.0.1:9/h"}});
    let cases = [
        (Method::GET, "/api/v1/agents/rest-matrix", json!({}), 0),
        (Method::GET, "/api/v1/agents", json!({}), 0),
        (Method::GET, "/api/v1/agents/rest-matrix/runs", json!({}), 0),
        (
            Method::GET,
            "/api/v1/agents/rest-matrix/events",
            json!({}),
            0,
        ),
        (
            Method::POST,
            "/api/v1/agents/rest-matrix/start",
            json!({}),
            1,
        ),
        (
            Method::POST,
            "/api/v1/agents/rest-matrix/stop",
            json!({}),
            1,
        ),
        (
            Method::POST,
            "/api/v1/agents/rest-matrix/execute",
            json!({}),
            1,
        ),
        (
            Method::POST,
            "/api/v1/agents/rest-matrix/functions",
            function,
            1,
        ),
        (
            Method::PUT,
            "/api/v1/agents/rest-matrix/schedule",
            schedule,
            1,
        ),
        (
            Method::POST,
            "/api/v1/agents/rest-matrix/notifications",
            hook,
            1,
        ),
        (Method::POST, "/api/v1/contracts", contract, 2),
        (
            Method::PUT,
            "/api/v1/agents/rest-matrix",
            json!({"contractId": TOKEN}),
            2,
        ),
        (
            Method::POST,
            "/api/v1/agents",
            json!({"contractId": TOKEN}),
            2,
        ),
    ];
    for (rank, token) in [VIEWER, OPERATOR, ADMIN].into_iter().enumerate() {
        for (method, path, body, least) in &cases {
            let sent = call_with(method.clone(), path, token, body.to_string());
            let status = sent.await.unwrap().status();
            if rank >= *least {
                assert!(status.is_success(), "{token} {method} {path}: {status}");
            } else {
                assert_eq!(status.as_u16(), 403, "{token} {method} {path}");
            }
        }
    }
    for token in [VIEWER, OPERATOR] {
        let status = call(Method::DELETE, "/api/v1/agents/rest-matrix", token)
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 403);
    }
    let status = call(Method::DELETE, "/api/v1/agents/rest-matrix", ADMIN)
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
    server.shutdown().await.unwrap();
}

/// A scoped caller sees its agents on every path events and lists take, and
/// nothing of the others, not even whether they exist.
#[tokio::test]
async fn a_scope_bounds_channels_subscriptions_replays_and_lists() {
    let server = token_server().await;
    agent(&server, ADMIN, "scoped-one").await;
    agent(&server, ADMIN, "scoped-two").await;
    // The contract channel: only the agent in scope.
    let mut scoped = as_(&server, TOKEN, SCOPED).await;
    let mut admin = as_(&server, "scoped-two", ADMIN).await;
    for id in ["scoped-two", "scoped-one"] {
        admin.ok("start_agent", json!({"agent_id": id})).await;
    }
    let started = scoped.until("agent_started").await;
    assert_eq!(started["agent_id"], "scoped-one");
    // Subscriptions and replays of another agent are refused.
    let refused = ask(
        &mut scoped,
        "subscribe",
        json!({"agent_id": "scoped-two", "since": 0}),
    )
    .await;
    assert_eq!(refused["code"], "forbidden");
    let absent = ask(
        &mut scoped,
        "get_agent",
        json!({"agent_id": "no-such-agent"}),
    )
    .await;
    assert_eq!(absent["code"], "forbidden", "existence is not revealed");
    // A path channel out of scope follows nothing, and its replay sends nothing.
    let auth = format!("Bearer {SCOPED}");
    let mut outside = connect(
        &server,
        "/ws/agent/scoped-two?since=0",
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    outside
        .send(json!({"type": "ping", "data": {"n": 1}}))
        .await;
    let first = outside.next().await;
    assert_eq!(
        first["type"], "pong",
        "no event of scoped-two first: {first}"
    );
    // REST lists and reads.
    let http = reqwest::Client::new();
    let get = |path: String| http.get(server.url(&path)).bearer_auth(SCOPED).send();
    let list: Value = get("/api/v1/agents".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agentId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["scoped-one"]);
    let legacy: Value = get(format!("/api/db/agents/{TOKEN}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(legacy.as_array().unwrap().len(), 1);
    for path in [
        "/api/v1/agents/scoped-two",
        "/api/v1/agents/scoped-two/events",
    ] {
        assert_eq!(
            get(path.into()).await.unwrap().status().as_u16(),
            403,
            "{path}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_its_creator_replaces_an_agent() {
    let server = token_server().await;
    agent(&server, ADMIN, "owned").await;
    let mut other = as_(&server, "owned", ADMIN_TWO).await;
    let reply = ask(
        &mut other,
        "create_agent",
        json!({"agent_id": "owned", "contractId": TOKEN, "name": "taken over"}),
    )
    .await;
    assert_eq!(reply["code"], "forbidden");
    let details = ask(&mut other, "get_agent", json!({"agent_id": "owned"})).await;
    assert_eq!(details["agent"]["name"], "owned");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn browsers_send_the_token_as_a_subprotocol_and_get_bearer_back() {
    let server = token_server().await;
    let offered = format!("bearer, {VIEWER}");
    let mut request = format!("ws://{}/ws/agent/x", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&offered).unwrap(),
    );
    let (_, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "bearer");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_path_token_prefixes_every_route_and_never_shows_in_metrics() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.tokens = Some(agentport::config::Secret::new(format!("viewer:{VIEWER}")));
        c.path_tokens = true;
    })
    .await;
    let legacy = reqwest::get(server.url(&format!("/t/{VIEWER}/api/db/agents/{TOKEN}")))
        .await
        .unwrap();
    assert_eq!(legacy.status().as_u16(), 200);
    let wrong = reqwest::get(server.url("/t/wrong-token-0123456789/api/v1/agents"))
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let mut client = connect(&server, &format!("/t/{VIEWER}/ws/agent/x"), &[])
        .await
        .unwrap();
    client.send(json!({"type": "ping", "data": {}})).await;
    assert_eq!(client.next().await["type"], "pong");
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains(VIEWER));
    assert!(metrics.contains("/ws/agent/{channel}"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn jwts_are_checked_for_signature_expiry_and_audience() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "a-jwt-secret-for-tests-only";
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Jwt;
        c.jwt_secret = Some(agentport::config::Secret::new(secret));
        c.jwt_audience = Some("agentport".into());
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let token = |claims: Value, key: &str| {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(key.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let good = token(
        json!({"sub": "alice", "role": "admin", "agents": "*", "aud": "agentport", "exp": now + 600}),
        secret,
    );
    let base = server.url("/api/v1/agents");
    let status = |jwt: String| {
        let base = base.clone();
        async move {
            let sent = reqwest::Client::new().get(base).bearer_auth(jwt).send();
            sent.await.unwrap().status().as_u16()
        }
    };
    assert_eq!(status(good).await, 200);
    let expired = json!({"sub": "alice", "role": "admin", "aud": "agentport", "exp": now - 600});
    assert_eq!(status(token(expired, secret)).await, 401);
    let other_audience = json!({"sub": "alice", "aud": "someone-else", "exp": now + 600});
    assert_eq!(status(token(other_audience, secret)).await, 401);
    let no_audience = json!({"sub": "alice", "role": "admin", "agents": "*", "exp": now + 600});
    assert_eq!(status(token(no_audience, secret)).await, 401);
    let forged = json!({"sub": "alice", "role": "admin", "aud": "agentport", "exp": now + 600});
    assert_eq!(status(token(forged, "another-secret-entirely")).await, 401);
    let not_yet = json!({"sub": "alice", "aud": "agentport", "exp": now + 600, "nbf": now + 300});
    assert_eq!(status(token(not_yet, secret)).await, 401);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_page_of_another_origin_may_not_open_the_websocket() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let evil = [("origin", "https://evil.example.com")];
    assert_eq!(
        connect(&server, "/ws/agent/x", &evil).await.err(),
        Some(403)
    );
    let allowed = [("origin", "https://app.example.com")];
    assert!(connect(&server, "/ws/agent/x", &allowed).await.is_ok());
    // While authentication is off, local development pages are allowed too.
    let local = [("origin", "http://localhost:5173")];
    assert!(connect(&server, "/ws/agent/x", &local).await.is_ok());
    let host = server.addr.to_string();
    let same = format!("http://{host}");
    assert!(
        connect(&server, "/ws/agent/x", &[("origin", &same)])
            .await
            .is_ok()
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cross_site_text_plain_post_changes_nothing() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let body = json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}).to_string();
    let form = http
        .post(server.url("/api/v1/contracts"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    let agents = http
        .post(server.url("/api/v1/agents"))
        .header("content-type", "text/plain")
        .body(json!({"contractId": TOKEN}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(agents.status().as_u16(), 415);
    let list: Value = reqwest::get(server.url("/api/v1/agents"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let json = http
        .post(server.url("/api/v1/contracts"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_open_server_with_a_signing_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let mut config = Config::for_tests(&url);
    config.allow_unauthenticated = false;
    config.evm_private_key = Some(agentport::config::Secret::new(
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ));
    let error = App::bind(config.clone()).await.err().expect("refused");
    assert!(format!("{error:#}").contains("AGENTPORT_AUTH"), "{error:#}");
    config.allow_unauthenticated = true;
    assert!(App::bind(config.clone()).await.is_ok());
    config.allow_unauthenticated = false;
    config.auth = AuthMode::Token;
    config.tokens = Some(agentport::config::Secret::new(format!("admin:{ADMIN}")));
    assert!(App::bind(config).await.is_ok());
}

#[tokio::test]
async fn notifications_may_not_point_into_the_servers_network() {
    let server = TestServer::start_with(|c| c.allow_private_targets = false).await;
    let mut client = Client::new(server.connect("probe").await);
    bare_agent(&mut client, "probe").await;
    for url in [
        "http://127.0.0.1:8080/admin",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:6379/",
        "http://[::1]:5432/",
        "http://0x7f000001/",
    ] {
        for (kind, key) in [("webhook", "url"), ("discord", "webhookUrl")] {
            let message = client
                .fails(
                    "create_notification",
                    json!({"agent_id": "probe", "notification_type": kind,
                           "configuration": {key: url}}),
                )
                .await;
            assert!(message.contains(key), "{url}: {message}");
        }
    }
    let details = ask(&mut client, "get_agent", json!({"agent_id": "probe"})).await;
    assert_eq!(details["notifications"], json!([]));
    server.shutdown().await.unwrap();
}

/// Distinctive values in every secret setting; every path driven, failures
/// included (an unreachable RPC whose URL carries a key, notifications that
/// fail); none of them in any log line, frame or database byte.
#[tokio::test]
async fn no_configured_secret_leaves_the_server() {
    let secrets = [
        "rpc-password-5f1e",
        "rpc-path-key-9c3a77d1e5b2",
        "rpc-query-key-0b9d",
        "sk-openai-secret-4e2f8a",
        "telegram-secret-77aa",
        "smtp-secret-3c1d",
        "jwt-secret-value-6b0c",
        "admin-token-secret-8e21",
        common::chain::OWNER_KEY.trim_start_matches("0x"),
    ];
    let rpc = "http://rpcuser:rpc-password-5f1e@127.0.0.1:1/v2/rpc-path-key-9c3a77d1e5b2\
               ?apikey=rpc-query-key-0b9d";
    let env = [
        ("EVM_RPC_URL", rpc),
        ("EVM_PRIVATE_KEY", common::chain::OWNER_KEY),
        ("OPENAI_API_KEY", "sk-openai-secret-4e2f8a"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1"),
        ("TELEGRAM_BOT_TOKEN", "123456:telegram-secret-77aa"),
        ("AGENTPORT_TELEGRAM_API_URL", "http://127.0.0.1:1"),
        ("SMTP_URL", "smtp://mailer:smtp-secret-3c1d@127.0.0.1:1"),
        ("AGENTPORT_AUTH", "token"),
        ("AGENTPORT_TOKENS", "admin:admin-token-secret-8e21"),
        ("AGENTPORT_JWT_SECRET", "jwt-secret-value-6b0c"),
        ("AGENTPORT_ALLOW_PRIVATE_TARGETS", "1"),
        ("AGENTPORT_NOTIFY_ATTEMPTS", "1"),
        ("RUST_LOG", "debug"),
    ];
    let mut process = common::process::Process::start(&env).await;
    let url = format!("ws://127.0.0.1:{}/ws/agent/leaky", process.port);
    let mut request = url.into_client_request().unwrap();
    let auth = HeaderValue::from_static("Bearer admin-token-secret-8e21");
    request.headers_mut().insert("authorization", auth);
    let mut client = Client::new(tokio_tungstenite::connect_async(request).await.unwrap().0);
    common::client::wizard(&mut client, "leaky", TOKEN).await;
    for (kind, configuration) in [
        ("telegram", json!({"chatId": "42"})),
        (
            "webhook",
            json!({"url": "http://127.0.0.1:1/hook?token=hook-secret-1a2b"}),
        ),
    ] {
        client
            .ok(
                "create_notification",
                json!({"agent_id": "leaky", "notification_type": kind,
                       "configuration": configuration}),
            )
            .await;
    }
    client
        .ok(
            "create_agent",
            json!({"agent_id": "leaky", "contractId": TOKEN,
                                   "policy": {"kind": "llm"}}),
        )
        .await;
    let outcome = ask(
        &mut client,
        "websocket_execution",
        json!({"agent_id": "leaky"}),
    )
    .await;
    assert_eq!(outcome["status"], "error", "{outcome}");
    // The notifications fail, and say so in events.
    let mut failures = 0;
    while failures < 3 {
        let frame = client.until("log").await;
        if frame["message"]
            .as_str()
            .unwrap_or("")
            .contains("notification failed")
        {
            failures += 1;
        }
    }
    let details = ask(&mut client, "get_agent", json!({"agent_id": "leaky"})).await;
    assert_eq!(details["notifications"].as_array().unwrap().len(), 4);
    let mut frames: String = client.frames.iter().map(Value::to_string).collect();
    drop(client);
    // REST replies too.
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/agents/leaky",
        "/api/v1/agents/leaky/runs",
        "/api/v1/agents/leaky/events",
    ] {
        let url = format!("http://127.0.0.1:{}{path}", process.port);
        let sent = http.get(url).bearer_auth("admin-token-secret-8e21").send();
        frames.push_str(&sent.await.unwrap().text().await.unwrap());
    }
    process.signal("TERM");
    let mut logs = String::new();
    while let Ok(Some(line)) = process.logs.next_line().await {
        logs.push_str(&line);
    }
    assert!(
        frames.contains("EVM node unreachable"),
        "the failure is reported"
    );
    assert!(
        logs.contains("notification failed"),
        "failed deliveries are logged"
    );
    assert!(
        !frames.contains("hook-secret-1a2b"),
        "a URL's query value in a frame"
    );
    assert!(
        !logs.contains("hook-secret-1a2b"),
        "a URL's query value in the logs"
    );
    let db = std::fs::read(process.dir.path().join("agentport.db")).unwrap();
    let wal = std::fs::read(process.dir.path().join("agentport.db-wal")).unwrap_or_default();
    let stored = format!(
        "{}{}",
        String::from_utf8_lossy(&db),
        String::from_utf8_lossy(&wal)
    );
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} is in the logs");
        assert!(!frames.contains(secret), "{secret} is in a frame");
        assert!(!stored.contains(secret), "{secret} is in the database");
    }
}

#[tokio::test]
async fn a_flooding_connection_is_told_to_slow_down_then_closed_with_1008() {
    let server = TestServer::start_with(|c| c.ws_messages_per_second = 5).await;
    let mut calm = Client::new(server.connect("calm").await);
    let mut flood = server.connect("flood").await;
    for n in 0..20 {
        common::send_json(&mut flood, json!({"type": "ping", "data": {"n": n}})).await;
    }
    let mut limited = 0;
    for _ in 0..20 {
        let frame = common::recv_json(&mut flood).await;
        if frame["data"]["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(limited >= 5, "{limited} of 20 refused");
    // Going on: closed with 1008.
    use futures_util::SinkExt;
    for _ in 0..200 {
        let text = json!({"type": "ping"}).to_string();
        if flood
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(u16::from(common::recv_close(&mut flood).await.code), 1008);
    // The other connection carries on.
    calm.send(json!({"type": "ping", "id": "still"})).await;
    assert_eq!(calm.until("pong").await["id"], "still");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn new_connections_per_client_address_are_limited() {
    let server = TestServer::start_with(|c| {
        c.ws_connections_per_second = 1;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let mut refused = None;
    let mut open = Vec::new();
    for n in 0..10 {
        match connect(&server, "/ws/agent/x", &[]).await {
            Ok(client) => open.push(client),
            Err(status) => {
                refused = Some((n, status));
                break;
            }
        }
    }
    let (n, status) = refused.expect("a refusal");
    assert_eq!(status, 429);
    assert!(n >= 2, "the burst is allowed");
    // Behind a trusted proxy, each forwarded client has its own budget.
    for client in ["203.0.113.1", "203.0.113.2"] {
        let forwarded = [("x-forwarded-for", client)];
        assert!(
            connect(&server, "/ws/agent/x", &forwarded).await.is_ok(),
            "{client}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_owner_creates_a_bounded_number_of_agents() {
    let server = TestServer::start_with(|c| c.max_agents_per_owner = 2).await;
    let mut client = Client::new(server.connect("quota").await);
    client
        .ok(
            "create_contract",
            json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}),
        )
        .await;
    for id in ["q1", "q2"] {
        client
            .ok("create_agent", json!({"agent_id": id, "contractId": TOKEN}))
            .await;
    }
    let reply = ask(
        &mut client,
        "create_agent",
        json!({"agent_id": "q3", "contractId": TOKEN}),
    )
    .await;
    assert_eq!(reply["code"], "conflict", "{reply}");
    client.until("error").await;
    // Updating one of its own is not a new agent.
    client
        .ok(
            "create_agent",
            json!({"agent_id": "q1", "contractId": TOKEN, "name": "again"}),
        )
        .await;
    server.shutdown().await.unwrap();
}

/// Base64url without padding, as JWKs write their numbers.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn es256_jwts_verify_with_a_public_key_file_or_a_jwks() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("jwt.pub.pem");
    std::fs::write(&pem, key.public_key_pem()).unwrap();
    let point = key.public_key_raw();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "x": base64url(&point[1..33]), "y": base64url(&point[33..65])}]});
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let claims = json!({"sub": "bob", "role": "viewer", "agents": "*",
                        "exp": chrono::Utc::now().timestamp() + 600});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let token = encode(&header, &claims, &signing).unwrap();
    for (by_file, by_jwks) in [(Some(pem.clone()), None), (None, Some(jwks_file.clone()))] {
        let server = TestServer::start_with(|c| {
            c.auth = AuthMode::Jwt;
            c.jwt_public_key_file = by_file;
            c.jwks_file = by_jwks;
        })
        .await;
        let http = reqwest::Client::new();
        let get = |token: &str| {
            http.get(server.url("/api/v1/agents"))
                .bearer_auth(token)
                .send()
        };
        assert_eq!(get(&token).await.unwrap().status().as_u16(), 200);
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert_eq!(get(&forged).await.unwrap().status().as_u16(), 401);
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn tokens_may_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        format!("# operators' tokens\nviewer:{VIEWER}\n\nadmin:{ADMIN}:some-agent\n"),
    )
    .unwrap();
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.tokens_file = Some(file);
    })
    .await;
    let mut viewer = as_(&server, "x", VIEWER).await;
    let refused = ask(
        &mut viewer,
        "start_agent",
        json!({"agent_id": "some-agent"}),
    )
    .await;
    assert_eq!(refused["code"], "forbidden");
    let mut admin = as_(&server, "x", ADMIN).await;
    let out_of_scope = ask(&mut admin, "get_agent", json!({"agent_id": "other-agent"})).await;
    assert_eq!(out_of_scope["code"], "forbidden");
    server.shutdown().await.unwrap();
}

/// An RSA key pair made for this test alone (`tests/fixtures`), never used
/// anywhere else.
#[tokio::test]
async fn rs256_jwts_verify_with_a_public_key_file() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let private = std::fs::read(fixtures.join("jwt-rsa-test-only.key.pem")).unwrap();
    let signing = EncodingKey::from_rsa_pem(&private).unwrap();
    let public = fixtures.join("jwt-rsa-test-only.pub.pem");
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Jwt;
        c.jwt_public_key_file = Some(public);
        c.jwt_issuer = Some("https://issuer.example".into());
    })
    .await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = |claims: Value| encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap();
    let http = reqwest::Client::new();
    let status = |jwt: String| {
        let sent = http
            .get(server.url("/api/v1/agents"))
            .bearer_auth(jwt)
            .send();
        async move { sent.await.unwrap().status().as_u16() }
    };
    let good = json!({"sub": "carol", "agents": "*", "iss": "https://issuer.example", "exp": exp});
    assert_eq!(status(token(good)).await, 200);
    let stranger = json!({"sub": "carol", "iss": "https://elsewhere.example", "exp": exp});
    assert_eq!(status(token(stranger)).await, 401);
    let nobody = json!({"sub": "carol", "agents": "*", "exp": exp});
    assert_eq!(status(token(nobody)).await, 401);
    // An HS256 token signed with the public key as a secret: the classic confusion.
    let pem = std::fs::read(fixtures.join("jwt-rsa-test-only.pub.pem")).unwrap();
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "mallory", "role": "admin", "agents": "*",
                "iss": "https://issuer.example", "exp": exp}),
        &EncodingKey::from_secret(&pem).unwrap(),
    )
    .unwrap();
    assert_eq!(status(confused).await, 401);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn viewers_never_read_where_notifications_go() {
    let server = token_server().await;
    agent(&server, ADMIN, "notified").await;
    let mut viewer = as_(&server, "notified", VIEWER).await;
    let mut admin = as_(&server, "notified", ADMIN).await;
    let hook = "https://discord.com/api/webhooks/123/secret-webhook-token";
    admin
        .ok(
            "create_notification",
            json!({"agent_id": "notified", "notification_type": "discord",
                   "configuration": {"webhookUrl": hook}}),
        )
        .await;
    let event = viewer.until("agent_updated").await;
    assert_eq!(
        event["data"]["notification"]["configuration"]["webhookUrl"],
        "***"
    );
    let seen = ask(&mut viewer, "get_agent", json!({"agent_id": "notified"})).await;
    assert_eq!(
        seen["notifications"][0]["configuration"]["webhookUrl"],
        "***"
    );
    let mut operator = as_(&server, "notified", OPERATOR).await;
    let seen = ask(&mut operator, "get_agent", json!({"agent_id": "notified"})).await;
    assert_eq!(
        seen["notifications"][0]["configuration"]["webhookUrl"],
        hook
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_open_server_answers_no_rebound_host() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let evil = format!("evil.example:{port}");
    let page = format!("http://{evil}");
    let rebound = [("host", evil.as_str()), ("origin", page.as_str())];
    let refused = connect(&server, "/ws/agent/x", &rebound).await;
    assert_eq!(refused.err(), Some(403));
    let http = reqwest::Client::new();
    let post = http
        .post(server.url("/api/v1/contracts"))
        .header("host", &evil)
        .header("sec-fetch-mode", "cors")
        .header("content-type", "application/json")
        .body(json!({"address": TOKEN, "chain_id": 1, "abi": "[]"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 403);
    let health = http
        .get(server.url("/health"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "probes answer any host");
    assert!(
        connect(&server, "/ws/agent/x", &[]).await.is_ok(),
        "127.0.0.1 is fine"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn another_admin_can_neither_remove_nor_inherit_an_agents_history() {
    let server = token_server().await;
    agent(&server, ADMIN, "inherited").await;
    let mut first = as_(&server, "inherited", ADMIN).await;
    first
        .ok(
            "create_agent",
            json!({"agent_id": "inherited", "contractId": TOKEN,
                                   "name": "first-owners-secret-plan"}),
        )
        .await;
    let mut other = as_(&server, "x", ADMIN_TWO).await;
    let refused = ask(&mut other, "remove_agent", json!({"agent_id": "inherited"})).await;
    assert_eq!(refused["code"], "forbidden");
    first
        .ok("remove_agent", json!({"agent_id": "inherited"}))
        .await;
    // The id is free again; its old history is not part of the new agent.
    other
        .ok(
            "create_agent",
            json!({"agent_id": "inherited", "contractId": TOKEN}),
        )
        .await;
    let auth = format!("Bearer {ADMIN_TWO}");
    let mut replay = connect(
        &server,
        "/ws/agent/inherited?since=0",
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    replay.send(json!({"type": "ping", "id": "end"})).await;
    loop {
        let frame = replay.next().await;
        assert!(
            !frame.to_string().contains("first-owners-secret-plan"),
            "{frame}"
        );
        if frame["type"] == "pong" {
            break;
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_session_ends_when_its_jwt_expires() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "a-jwt-secret-for-tests-only";
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Jwt;
        c.jwt_secret = Some(agentport::config::Secret::new(secret));
    })
    .await;
    let exp = chrono::Utc::now().timestamp() + 2;
    let claims = json!({"sub": "dora", "agents": "*", "exp": exp});
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    let token = encode(&Header::default(), &claims, &key).unwrap();
    let auth = format!("Bearer {token}");
    let mut ws = connect(&server, "/ws/agent/x", &[("authorization", &auth)])
        .await
        .unwrap()
        .ws;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    let code = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still open after expiry"
        );
        common::send_json(&mut ws, json!({"type": "ping"})).await;
        match common::next_message(&mut ws).await {
            Some(tokio_tungstenite::tungstenite::Message::Close(Some(frame))) => break frame.code,
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            None => panic!("closed without a close frame"),
        }
    };
    assert_eq!(u16::from(code), 1008);
    server.shutdown().await.unwrap();
}
