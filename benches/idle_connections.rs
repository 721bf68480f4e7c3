//! What an idle WebSocket costs the server in memory.
//!
//! Runs the release binary twice — with its default 1 KiB read buffers and with
//! tungstenite's default 128 KiB — opens N idle WebSockets to each, and reports
//! the resident memory added per connection and the ratio between the two runs.
//! The machine is shared, so only the ratio is meant to be compared over time.
//!
//! `cargo bench --bench idle_connections` (N from `IDLE_CONNECTIONS`, default 5000).

use std::process::Stdio;

use futures_util::SinkExt;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_agentport");

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Resident KiB per idle connection, with `read_buffer` bytes of read buffer.
async fn kib_per_connection(connections: usize, read_buffer: usize) -> f64 {
    let mut child = Command::new(BIN)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("LOG_FORMAT", "json")
        .env("AGENTPORT_WS_READ_BUFFER_BYTES", read_buffer.to_string())
        // Every connection comes from this one address: the per-client limit
        // on new connections would refuse all but the first few.
        .env("AGENTPORT_WS_CONNECTIONS_PER_SECOND", "0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next_line().await.unwrap().expect("server log");
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if entry["message"] == "listening" {
            let addr: std::net::SocketAddr = entry["addr"].as_str().unwrap().parse().unwrap();
            break addr.port();
        }
    };
    // Warm up: one connection and one exchange, so that lazily allocated state is
    // in the baseline.
    let url = format!("ws://127.0.0.1:{port}/ws/agent/idle");
    let (mut warm, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    warm.send(Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    let before = rss_kib(pid);

    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        // One round trip each: every connection has read at least once.
        ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        sockets.push(ws);
    }
    for ws in &mut sockets {
        use futures_util::StreamExt;
        ws.next().await.unwrap().unwrap();
    }
    let after = rss_kib(pid);
    drop(sockets);
    drop(warm);
    let _ = child.kill().await;
    (after.saturating_sub(before)) as f64 / connections as f64
}

#[tokio::main]
async fn main() {
    let connections: usize = std::env::var("IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let small = kib_per_connection(connections, 1024).await;
    let large = kib_per_connection(connections, 128 * 1024).await;
    println!("idle websockets: {connections}");
    println!("resident memory per connection, 1 KiB read buffer:   {small:.1} KiB");
    println!("resident memory per connection, 128 KiB read buffer: {large:.1} KiB");
    println!("ratio (1 KiB / 128 KiB): {:.2}", small / large);
}
