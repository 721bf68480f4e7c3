//! TLS on the one port: `https://` health checks and `wss://` sockets end to end,
//! and a certificate swapped on disk taking effect on SIGHUP.

mod common;

use std::{path::Path, sync::Arc};

use common::{process::Process, *};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_tungstenite::tungstenite::Message;

/// Writes a fresh self-signed certificate for localhost; returns its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    certified.cert.der().clone()
}

/// A TLS client that trusts only `root`.
async fn tls_connect(port: u16, root: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the expected certificate")
}

async fn https_health(port: u16, root: &CertificateDer<'static>) -> String {
    let mut tls = tls_connect(port, root).await;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    response
}

#[tokio::test]
async fn https_health_and_wss_ping_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let root = write_cert(dir.path());
    let server = TestServer::start_with(|c| {
        c.tls_cert = Some(dir.path().join("cert.pem"));
        c.tls_key = Some(dir.path().join("key.pem"));
    })
    .await;
    let port = server.addr.port();

    let response = https_health(port, &root).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("OK"), "{response}");

    let tls = tls_connect(port, &root).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws/agent/secure", tls)
        .await
        .unwrap();
    ws.send(Message::text(json!({"type": "ping", "id": 1}).to_string()))
        .await
        .unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(text) => break serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(reply, json!({"type": "pong", "id": 1, "data": {}}));

    // Plain HTTP on a TLS port is not served.
    assert!(reqwest::get(server.url("/health")).await.is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_open_sockets_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let mut process = Process::start(&[
        ("AGENTPORT_TLS_CERT", cert.to_str().unwrap()),
        ("AGENTPORT_TLS_KEY", key.to_str().unwrap()),
    ])
    .await;
    let port = process.port;
    assert!(https_health(port, &first).await.starts_with("HTTP/1.1 200"));
    let tls = tls_connect(port, &first).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws/agent/a", tls)
        .await
        .unwrap();

    let second = write_cert(dir.path());
    process.signal("HUP");
    process.log_line("TLS certificate reloaded").await;
    assert!(
        https_health(port, &second)
            .await
            .starts_with("HTTP/1.1 200")
    );

    // A broken file on the next SIGHUP keeps the current certificate.
    std::fs::write(&cert, "not a certificate").unwrap();
    process.signal("HUP");
    let failed = process
        .log_line("TLS reload failed, keeping the old certificate")
        .await;
    assert!(
        failed["error"].as_str().unwrap().contains("cert.pem"),
        "{failed}"
    );
    assert!(
        https_health(port, &second)
            .await
            .starts_with("HTTP/1.1 200")
    );

    send_json_tls(&mut ws).await;
    process.signal("TERM");
    // Reading to the end answers the server's Close (1001).
    while let Some(Ok(_)) = ws.next().await {}
    assert_eq!(process.exit_code(DEADLINE).await, Some(0));
}

async fn send_json_tls<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(r#"{"type":"ping","id":"old"}"#))
        .await
        .unwrap();
    loop {
        if let Message::Text(text) = ws.next().await.unwrap().unwrap() {
            assert!(text.contains(r#""id":"old""#));
            return;
        }
    }
}
