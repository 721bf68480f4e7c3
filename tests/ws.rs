//! The agent WebSocket session over real sockets: replies, errors that keep the
//! connection open, close codes, limits, heartbeat and the connection registry.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

#[tokio::test]
async fn ping_gets_pong_with_same_data_and_id() {
    let server = TestServer::start().await;
    let mut ws = server
        .connect("0x5FbDB2315678afecb367f032d93F642f64180aa3")
        .await;
    send_json(
        &mut ws,
        json!({"type": "ping", "id": 42, "data": {"t": 1.5, "s": "x"}}),
    )
    .await;
    assert_eq!(
        recv_json(&mut ws).await,
        json!({"type": "pong", "id": 42, "data": {"t": 1.5, "s": "x"}})
    );
    send_json(&mut ws, json!({"type": "ping", "id": "abc"})).await;
    assert_eq!(
        recv_json(&mut ws).await,
        json!({"type": "pong", "id": "abc", "data": {}})
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn any_channel_string_is_accepted() {
    let server = TestServer::start().await;
    for channel in [
        "3f1c9a7e-2b4d-4e8f-9a1b-7c6d5e4f3a2b",
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "no-such-agent",
        "with%20space%20and%E2%9C%93",
    ] {
        let mut ws = server.connect(channel).await;
        send_json(&mut ws, json!({"type": "ping"})).await;
        assert_eq!(recv_json(&mut ws).await["type"], "pong", "{channel}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_json_is_answered_and_the_connection_goes_on() {
    let server = TestServer::start().await;
    let mut ws = server.connect("c").await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(
        recv_json(&mut ws).await,
        json!({
            "type": "error",
            "message": "Invalid JSON message",
            "data": {"message": "Invalid JSON message", "code": "invalid_json", "logs": []}
        })
    );
    send_json(&mut ws, json!({"type": "ping", "id": 1})).await;
    assert_eq!(recv_json(&mut ws).await["type"], "pong");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_and_missing_types_are_named_and_the_connection_goes_on() {
    let server = TestServer::start().await;
    let mut ws = server.connect("c").await;
    send_json(&mut ws, json!({"type": "teleport", "id": "t1"})).await;
    let error = recv_json(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["message"], "Unknown message type: teleport");
    assert_eq!(error["data"]["code"], "unknown_type");
    assert_eq!(error["id"], "t1");

    send_json(&mut ws, json!({"data": {}})).await;
    assert_eq!(
        recv_json(&mut ws).await["message"],
        "Unknown message type: None"
    );

    send_json(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await["type"], "pong");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn binary_frame_closes_with_1003() {
    let server = TestServer::start().await;
    let mut ws = server.connect("c").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let close = recv_close(&mut ws).await;
    assert_eq!(close.code, CloseCode::Unsupported);
    wait_until("registry empty", || async {
        server.state.registry.is_empty()
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_message_closes_with_1009_and_others_carry_on() {
    let server = TestServer::start_with(|c| c.max_message_bytes = 64 * 1024).await;
    let mut other = server.connect("other").await;
    let mut ws = server.connect("c").await;
    let big = format!(
        r#"{{"type":"ping","data":{{"pad":"{}"}}}}"#,
        "x".repeat(64 * 1024)
    );
    // The server may close before the whole frame is written: ignore send errors.
    let _ = ws.send(Message::text(big)).await;
    let close = recv_close(&mut ws).await;
    assert_eq!(close.code, CloseCode::Size);

    // A message right under the limit still works on another connection.
    let fits = "y".repeat(60 * 1024);
    send_json(&mut other, json!({"type": "ping", "data": {"pad": fits}})).await;
    assert_eq!(
        recv_json(&mut other).await["data"]["pad"]
            .as_str()
            .unwrap()
            .len(),
        60 * 1024
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(|c| {
        c.ws_idle_timeout = Duration::from_millis(500);
        c.ws_ping_interval = Duration::from_secs(3600);
    })
    .await;
    // A raw client that never answers Pings nor sends anything.
    let mut ws = server.connect("idle").await;
    let close = recv_close(&mut ws).await;
    assert_eq!(close.code, CloseCode::Normal);
    assert_eq!(close.reason.as_str(), "idle timeout");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_pings_and_a_client_that_pongs_stays_connected() {
    let server = TestServer::start_with(|c| {
        c.ws_ping_interval = Duration::from_millis(100);
        c.ws_idle_timeout = Duration::from_millis(700);
    })
    .await;
    let mut ws = server.connect("alive").await;
    // Reading lets tungstenite answer each Ping with a Pong; count a few Pings,
    // spanning well over the idle timeout.
    let mut pings = 0;
    while pings < 15 {
        match next_message(&mut ws).await {
            Some(Message::Ping(_)) => pings += 1,
            other => panic!("expected only pings, got {other:?}"),
        }
    }
    send_json(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await["type"], "pong");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_that_does_not_read_is_closed_with_1013_while_others_get_pongs() {
    let server = TestServer::start_with(|c| {
        c.ws_outbound_frames = 64;
        c.ws_outbound_bytes = 256 * 1024;
        c.ws_close_timeout = Duration::from_secs(10);
        // The session stops reading while a write waits: this bounds the wait.
        c.ws_write_timeout = Duration::from_secs(2);
    })
    .await;
    let slow = server.connect("slow").await;
    let (mut slow_tx, mut slow_rx) = slow.split();
    let pad = "z".repeat(16 * 1024);
    // Flood pings without reading; the pongs fill the socket buffers, then the queue.
    let flood = tokio::spawn(async move {
        let frame = json!({"type": "ping", "data": {"pad": pad}}).to_string();
        for _ in 0..20_000 {
            if slow_tx.send(Message::text(frame.clone())).await.is_err() {
                break;
            }
        }
        slow_tx
    });

    let mut healthy = server.connect("healthy").await;
    // While the slow client fills up, the healthy one keeps its round trips.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        send_json(&mut healthy, json!({"type": "ping"})).await;
        assert_eq!(recv_json(&mut healthy).await["type"], "pong");
        let (_, _, text) = get(&server.url("/metrics")).await;
        if metric(&text, "agentport_ws_slow_consumers_total") >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow client never closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    flood.abort();
    // Now read: the queued pongs, then the Close frame with 1013.
    let close = loop {
        match tokio::time::timeout(DEADLINE, slow_rx.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                // Reading on sends the close reply and ends the stream.
                while let Ok(Some(Ok(_))) = tokio::time::timeout(DEADLINE, slow_rx.next()).await {}
                break frame;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Again);
    wait_until("slow session unregistered", || async {
        server.state.registry.len() == 1
    })
    .await;

    send_json(&mut healthy, json!({"type": "ping", "id": "still"})).await;
    assert_eq!(recv_json(&mut healthy).await["id"], "still");
    let mut server = server;
    server.begin_shutdown();
    assert_eq!(recv_close(&mut healthy).await.code, CloseCode::Away);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_limit_refuses_upgrades_with_503() {
    let server = TestServer::start_with(|c| c.max_connections = 2).await;
    let _a = server.connect("a").await;
    let _b = server.connect("b").await;
    match tokio_tungstenite::connect_async(server.ws_url("c")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    drop(_a);
    wait_until("a place frees up", || async {
        server.state.registry.len() < 2
    })
    .await;
    let mut c = server.connect("c").await;
    send_json(&mut c, json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut c).await["type"], "pong");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn registry_returns_to_zero_after_a_thousand_connect_disconnect_cycles() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for worker in 0..10 {
        let url = server.ws_url(&format!("cycle-{worker}"));
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                match i % 4 {
                    // A polite close handshake.
                    0 => {
                        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                        ws.close(None).await.unwrap();
                    }
                    // An exchange, then the socket is just dropped (TCP FIN, no Close).
                    1 => {
                        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                        ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
                        let _ = ws.next().await;
                        drop(ws);
                    }
                    // An abrupt reset (RST) right after the handshake.
                    2 => {
                        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                        tcp.set_zero_linger().unwrap();
                        let (ws, _) = tokio_tungstenite::client_async(&url, tcp).await.unwrap();
                        drop(ws);
                    }
                    // Dropped straight after the handshake.
                    _ => {
                        let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                        drop(ws);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    wait_until("registry back to zero", || async {
        server.state.registry.is_empty()
    })
    .await;
    let (_, _, body) = get(&server.url("/ready")).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["connections"],
        0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_process_shutdown_closes_every_socket_with_1001() {
    let mut server = TestServer::start_with(|c| c.shutdown_close_batch = 3).await;
    let mut sockets = Vec::new();
    for i in 0..10 {
        sockets.push(server.connect(&format!("s{i}")).await);
    }
    wait_until("all registered", || async {
        server.state.registry.len() == 10
    })
    .await;
    server.begin_shutdown();
    for ws in &mut sockets {
        let close = recv_close(ws).await;
        assert_eq!(close.code, CloseCode::Away);
    }
    server.shutdown().await.unwrap();
}

/// A WebSocket client written by hand, to send frames no library would.
mod raw {
    use tokio::{io::AsyncReadExt, net::TcpStream};

    pub async fn handshake(addr: std::net::SocketAddr, channel: &str) -> TcpStream {
        crate::common::abuse::raw_handshake(addr, &format!("/ws/agent/{channel}")).await
    }

    /// One frame with FIN set; masked unless `mask` is None.
    pub fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut out = vec![0x80 | opcode, payload.len() as u8];
        match mask {
            Some(key) => {
                out[1] |= 0x80;
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// Reads server frames until a Close; returns its code.
    pub async fn close_code(tcp: &mut TcpStream) -> u16 {
        loop {
            let head = tcp.read_u16().await.unwrap();
            let opcode = (head >> 8) as u8 & 0x0f;
            let len = match head as u8 & 0x7f {
                126 => tcp.read_u16().await.unwrap() as usize,
                127 => tcp.read_u64().await.unwrap() as usize,
                n => n as usize,
            };
            let mut payload = vec![0; len];
            tcp.read_exact(&mut payload).await.unwrap();
            if opcode == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }
}

#[tokio::test]
async fn framing_violations_get_their_rfc_close_codes_on_the_wire() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;

    // Text that is not UTF-8: 1007.
    let mut tcp = raw::handshake(server.addr, "raw").await;
    tcp.write_all(&raw::frame(0x1, &[0xff, 0xfe, 0xfd], Some([1, 2, 3, 4])))
        .await
        .unwrap();
    assert_eq!(raw::close_code(&mut tcp).await, 1007);

    // An unmasked client frame: 1002.
    let mut tcp = raw::handshake(server.addr, "raw").await;
    tcp.write_all(&raw::frame(0x1, br#"{"type":"ping"}"#, None))
        .await
        .unwrap();
    assert_eq!(raw::close_code(&mut tcp).await, 1002);

    // A masked, valid frame still works byte for byte.
    let mut tcp = raw::handshake(server.addr, "raw").await;
    tcp.write_all(&raw::frame(
        0x1,
        br#"{"type":"ping","id":1}"#,
        Some([9, 8, 7, 6]),
    ))
    .await
    .unwrap();
    let mut reply = [0u8; 2 + 32];
    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut reply)
        .await
        .unwrap();
    assert_eq!(&reply[..2], &[0x81, 32]);
    assert_eq!(
        &reply[2..],
        br#"{"data":{},"id":1,"type":"pong"}"#.as_slice()
    );
    server.shutdown().await.unwrap();
}
