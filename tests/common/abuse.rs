//! Helpers of the abuse suites (`tests/abuse_*.rs`): WebSocket frames written
//! byte by byte (what no client library sends), many clients with small buffers
//! from chosen loopback addresses, scrapes that leave no client task behind,
//! and the resident memory of a process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_tungstenite::{MaybeTlsStream, tungstenite::protocol::WebSocketConfig};

use super::{DEADLINE, Ws, metric};

/// Load tests use every core of the machine: one at a time per test binary
/// (metrics are per process too).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

/// One masked client frame of any length: `fin`, the three RSV bits (`rsv`,
/// 0..=7), the opcode and the payload.
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend((len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend((len as u64).to_be_bytes());
        }
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    out.extend(key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A complete text frame.
pub fn text(payload: &[u8]) -> Vec<u8> {
    frame(true, 0, TEXT, payload)
}

/// Opens a WebSocket by hand on a plain TCP stream, for writing raw frames.
pub async fn raw_handshake(addr: SocketAddr, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// The next server frame on a raw stream, `(opcode, payload)`; `None` once
/// the stream ended (or broke).
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let head = tcp.read_u16().await.ok()?;
        assert_eq!(head & 0x80, 0, "server frames are not masked");
        let len = match head & 0x7f {
            126 => usize::from(tcp.read_u16().await.ok()?),
            127 => usize::try_from(tcp.read_u64().await.ok()?).unwrap(),
            n => usize::from(n),
        };
        let mut payload = vec![0; len];
        tcp.read_exact(&mut payload).await.ok()?;
        Some(((head >> 8) as u8 & 0x0f, payload))
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a server frame or the end of the stream in time")
}

/// What a raw connection received up to the end of its stream: the text
/// frames, then the code of the server's Close frame (`None`: none came).
pub async fn read_to_close(tcp: &mut TcpStream) -> (Vec<String>, Option<u16>) {
    let mut texts = Vec::new();
    while let Some((opcode, payload)) = read_frame(tcp).await {
        match opcode {
            TEXT => texts.push(String::from_utf8(payload).unwrap()),
            CLOSE => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (texts, Some(code));
            }
            _ => {}
        }
    }
    (texts, None)
}

/// Client settings for tests that hold thousands of sockets: a 4 KiB read
/// buffer instead of tungstenite's 128 KiB.
pub fn small_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

/// The `n`th of `count` loopback source addresses, 127.0.0.2 and up: each has
/// its own range of ephemeral ports towards the server.
pub fn source_address(n: usize, count: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % count) as u8))
}

/// A WebSocket to `server` at `path` from the loopback address `source`;
/// `prepare` sets socket options before the connection is made (a zero linger
/// for resets, a small receive buffer for slow clients).
pub async fn connect_from(
    source: IpAddr,
    server: SocketAddr,
    path: &str,
    prepare: impl FnOnce(&TcpSocket),
) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    prepare(&socket);
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let tcp = socket.connect(server).await.expect("tcp connect");
    let url = format!("ws://{server}{path}");
    let stream = MaybeTlsStream::Plain(tcp);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(small_config()))
        .await
        .expect("websocket handshake");
    ws
}

/// A GET on a connection of its own, closed after the answer, so that no
/// pooled client task outlives it: the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tcp.read_to_end(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("an HTTP answer in time");
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// One sample of the server's `/metrics`.
pub async fn scrape(addr: SocketAddr, sample: &str) -> f64 {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    metric(&body, sample)
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The hub's subscription count of an in-process server, as its `Debug`
/// prints it (the hub is not reachable otherwise from outside the crate).
pub fn hub_subscriptions(manager: &impl std::fmt::Debug) -> usize {
    let text = format!("{manager:?}");
    let start = text
        .find("Hub { subscriptions: ")
        .expect("the hub in the manager")
        + 21;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}
