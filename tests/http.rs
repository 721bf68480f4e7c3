//! The plain HTTP side of the one port: health, readiness, metrics, and what a
//! non-WebSocket request to the WebSocket path gets.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn both_health_paths_answer_ok_as_plain_text() {
    let server = TestServer::start().await;
    for path in ["/", "/health"] {
        let (status, content_type, body) = get(&server.url(path)).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            content_type.starts_with("text/plain"),
            "{path}: {content_type}"
        );
        assert_eq!(body, "OK", "{path}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_accepts_any_host_header_like_railways_checker() {
    let server = TestServer::start().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"GET /health HTTP/1.1\r\nHost: healthcheck.railway.app\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nOK"), "{response}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ready_is_200_while_serving_and_503_once_shutdown_starts() {
    let mut server = TestServer::start_with(|c| {
        c.shutdown_drain = Duration::from_secs(5);
    })
    .await;
    let (status, _, body) = get(&server.url("/ready")).await;
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["connections"], 0);

    let url = server.url("/ready");
    server.begin_shutdown();
    // During the drain the port still answers, but not ready.
    let body = wait_for("ready turns 503", || async {
        let (status, _, body) = get(&url).await;
        (status == 503).then_some(body)
    })
    .await;
    let reason: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reason["status"], "shutting_down");
    assert!(reason["reason"].as_str().unwrap().contains("shutting down"));

    // And a WebSocket upgrade is refused while draining.
    let refused = tokio_tungstenite::connect_async(server.ws_url("x")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_get_on_the_websocket_path_is_a_clear_4xx() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/ws/agent/some-channel"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 426);
    assert_eq!(response.headers()["upgrade"], "websocket");
    assert!(response.text().await.unwrap().contains("WebSocket"));

    let response = reqwest::Client::new()
        .post(server.url("/ws/agent/some-channel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_expose_connections_frames_errors_and_latency() {
    let server = TestServer::start().await;
    let mut ws = server.connect("metrics-channel").await;
    send_json(&mut ws, serde_json::json!({"type": "ping"})).await;
    recv_json(&mut ws).await;
    ws.send_text("not json").await;
    recv_json(&mut ws).await;

    let (status, content_type, text) = get(&server.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    assert!(
        metric(&text, "agentport_ws_connections_open") >= 1.0,
        "{text}"
    );
    assert!(metric(&text, "agentport_ws_connections_accepted_total") >= 1.0);
    assert!(metric(&text, "agentport_ws_frames_in_total{type=\"ping\"}") >= 1.0);
    assert!(metric(&text, "agentport_ws_frames_out_total{type=\"pong\"}") >= 1.0);
    assert!(metric(&text, "agentport_ws_errors_total{code=\"invalid_json\"}") >= 1.0);
    assert!(text.contains("agentport_ws_message_handling_seconds_bucket{type=\"ping\",le="));
    assert!(
        metric(
            &text,
            "agentport_http_requests_total{route=\"/metrics\",status=\"200\"}"
        ) >= 0.0
    );

    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    wait_until("closed connection counted", || async {
        let (_, _, text) = get(&server.url("/metrics")).await;
        metric(
            &text,
            "agentport_ws_connections_closed_total{code=\"1000\"}",
        ) >= 1.0
    })
    .await;
    server.shutdown().await.unwrap();
}

trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl SendText for Ws {
    async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn http_connections_are_bounded_and_websockets_do_not_hold_a_slot() {
    let server = TestServer::start_with(|c| c.max_http_connections = 2).await;
    // Upgraded connections leave the HTTP slots: three WebSockets, then a GET.
    let mut sockets = Vec::new();
    for i in 0..3 {
        sockets.push(server.connect(&format!("w{i}")).await);
    }
    assert_eq!(get(&server.url("/health")).await.0, 200);

    // Two idle keep-alive connections take both slots...
    let idle_a = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let idle_b = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let url = server.url("/health");
    let mut waiting = tokio::spawn(async move { get(&url).await });
    // ...so a third waits (a bounded look: it must not be answered meanwhile)...
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "a third connection was served while both slots were taken"
    );
    // ...until one of them goes away.
    drop(idle_a);
    let (status, _, body) = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "OK"));
    drop(idle_b);
    drop(sockets);
    server.shutdown().await.unwrap();
}
