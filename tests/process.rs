//! The built binary as a platform runs it: configured by environment variables,
//! logging JSON when not on a terminal, and stopped by signals.

mod common;

use std::time::Duration;

use common::{process::*, *};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn sigterm_closes_every_socket_with_1001_and_exits_0_within_the_grace_period() {
    let mut process = Process::start(&[
        ("AGENTPORT_SHUTDOWN_GRACE_SECS", "8"),
        ("AGENTPORT_SHUTDOWN_CLOSE_BATCH", "10"),
    ])
    .await;
    let mut sockets = Vec::new();
    for i in 0..50 {
        let mut ws = process.connect(&format!("agent-{i}")).await;
        send_json(&mut ws, json!({"type": "ping"})).await;
        assert_eq!(recv_json(&mut ws).await["type"], "pong");
        sockets.push(ws);
    }
    process.signal("TERM");
    let closes = futures_util::future::join_all(sockets.iter_mut().map(recv_close)).await;
    for close in closes {
        assert_eq!(close.code, CloseCode::Away);
        assert_eq!(close.reason.as_str(), "server shutting down");
    }
    process.log_line("shutdown complete").await;
    assert_eq!(process.exit_code(Duration::from_secs(8)).await, Some(0));
    // The port is closed: nothing answers any more.
    assert!(reqwest::get(process.url("/health")).await.is_err());
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let mut process = Process::start(&[
        ("AGENTPORT_SHUTDOWN_GRACE_SECS", "120"),
        ("AGENTPORT_WS_CLOSE_TIMEOUT_SECS", "100"),
    ])
    .await;
    // A client that never answers the close handshake keeps shutdown waiting.
    let _stuck = process.connect("stuck").await;
    wait_until("the connection is registered", || async {
        let (_, _, body) = get(&process.url("/ready")).await;
        serde_json::from_str::<Value>(&body).unwrap()["connections"] == 1
    })
    .await;
    process.signal("TERM");
    process.log_line("closing websockets").await;
    process.signal("INT");
    assert_eq!(process.exit_code(DEADLINE).await, Some(130));
}

#[tokio::test]
async fn default_host_is_dual_stack_and_port_comes_from_the_environment() {
    let mut process = Process::start(&[]).await;
    for host in ["127.0.0.1", "[::1]"] {
        let (status, _, body) = get(&format!("http://{host}:{}/health", process.port)).await;
        assert_eq!((status, body.as_str()), (200, "OK"), "{host}");
    }
    process.signal("TERM");
    assert_eq!(process.exit_code(DEADLINE).await, Some(0));
}

#[tokio::test]
async fn help_documents_every_setting_with_its_environment_variable() {
    let output = Command::new(BIN).arg("--help").output().await.unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for var in [
        "PORT",
        "HOST",
        "LOG_FORMAT",
        "AGENTPORT_TLS_CERT",
        "AGENTPORT_MAX_CONNECTIONS",
        "AGENTPORT_MAX_MESSAGE_BYTES",
        "AGENTPORT_WS_PING_INTERVAL_SECS",
        "AGENTPORT_WS_IDLE_TIMEOUT_SECS",
        "AGENTPORT_SHUTDOWN_GRACE_SECS",
    ] {
        assert!(
            help.contains(&format!("[env: {var}=")),
            "--help lacks {var}:\n{help}"
        );
    }
}

#[tokio::test]
async fn logs_carry_no_message_payload_at_info() {
    let mut process = Process::start(&[]).await;
    let mut ws = process.connect("secret-channel").await;
    send_json(
        &mut ws,
        json!({"type": "ping", "data": {"token": "s3cr3t-payload"}}),
    )
    .await;
    recv_json(&mut ws).await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        "{broken s3cr3t-payload",
    ))
    .await
    .ok();
    recv_json(&mut ws).await;
    drop(ws);
    process.signal("TERM");
    let mut rest = String::new();
    while let Ok(Some(line)) = process.logs.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(
        rest.contains("shutdown complete"),
        "{rest}\nexit: {:?}",
        process.child.wait().await
    );
    assert!(
        !rest.contains("s3cr3t-payload"),
        "payload leaked into logs:\n{rest}"
    );
    assert_eq!(process.exit_code(DEADLINE).await, Some(0));
}
