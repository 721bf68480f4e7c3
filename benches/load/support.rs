//! The machinery of the load benchmark: the two servers as pinned child
//! processes and what the kernel says they cost, the clients (WebSocket,
//! pipelined requests, a blocking HTTP/1.1 probe), the PostgreSQL database of a
//! run, and the echo baseline itself (`LOAD_ROLE=echo`).

use std::{
    collections::{BTreeMap, VecDeque},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream as StdStream},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{
    SinkExt, StreamExt,
    stream::{self, SplitSink},
};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    net::{TcpSocket, TcpStream},
    process::{Child, ChildStdout, Command},
    sync::Semaphore,
    task::JoinHandle,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_agentport");
pub type Ws = WebSocketStream<TcpStream>;

/// agentport's application-level ping, the unit of the round-trip figures.
pub const PING: &str = r#"{"type":"ping"}"#;
/// What agentport answers to `PING`, byte for byte: the echo sends the same.
pub const PONG: &str = r#"{"data":{},"type":"pong"}"#;

/// The longest any single expected reply, connection or startup may take: a
/// broken server fails the benchmark with a message instead of hanging it.
pub const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- processes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agentport,
    Echo,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Agentport => "agentport",
            Kind::Echo => "echo baseline",
        }
    }
}

/// How a server process is started.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `taskset -c` list for the server; `None`: not pinned.
    pub cpu: Option<String>,
    /// 0: any free port, read back from the "listening" log line.
    pub port: u16,
    /// agentport's database; `None`: a fresh SQLite file in the temp dir.
    pub database_url: Option<String>,
    /// The echo's WebSocket read buffer.
    pub echo_read_buffer: usize,
}

fn command(kind: Kind, launch: &Launch, dir: &Path) -> Command {
    let program = match kind {
        Kind::Agentport => PathBuf::from(BIN),
        Kind::Echo => std::env::current_exe().expect("path of the benchmark binary"),
    };
    let mut command = match &launch.cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu).arg(&program);
            command
        }
        None => Command::new(&program),
    };
    command
        .current_dir(dir)
        // Nothing from the caller's environment (an EVM_RPC_URL, a RUST_LOG)
        // changes what is measured.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PORT", launch.port.to_string())
        .env("HOST", "127.0.0.1")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    match kind {
        Kind::Agentport => {
            let sqlite = format!("sqlite://{}", dir.join("agentport.db").display());
            let database = launch.database_url.clone().unwrap_or(sqlite);
            command
                .env("DATABASE_URL", database)
                // Load comes from a handful of addresses and floods on purpose.
                .env("AGENTPORT_WS_CONNECTIONS_PER_SECOND", "0")
                .env("AGENTPORT_WS_MESSAGES_PER_SECOND", "0")
                .env("AGENTPORT_MAX_CONNECTIONS", "100000")
                .env("AGENTPORT_MAX_AGENTS_PER_OWNER", "0");
        }
        Kind::Echo => {
            let buffer = launch.echo_read_buffer.to_string();
            command
                .env("LOAD_ROLE", "echo")
                .env("LOAD_ECHO_READ_BUFFER", buffer);
        }
    }
    command
}

/// Warnings and errors a server logged, by message.
#[derive(Debug, Default)]
pub struct LogTally {
    pub by_message: Mutex<BTreeMap<String, u64>>,
}

impl LogTally {
    fn note(&self, line: &str) {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let level = entry["level"].as_str().unwrap_or("");
        if level == "WARN" || level == "ERROR" {
            let message = entry["message"].as_str().unwrap_or(line);
            let key = format!("{level} {message}");
            *self.by_message.lock().unwrap().entry(key).or_default() += 1;
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let tally = self.by_message.lock().unwrap();
        tally.iter().map(|(m, n)| format!("{n} × {m}")).collect()
    }
}

/// A server running as a child process (killed when dropped).
pub struct Server {
    pub kind: Kind,
    pub pid: u32,
    pub port: u16,
    pub log: Arc<LogTally>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(kind: Kind, launch: &Launch) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = command(kind, launch, dir.path())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
        let pid = child.id().expect("pid of the server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(DEADLINE, listening_port(&mut lines))
            .await
            .unwrap_or_else(|_| panic!("{} logged no \"listening\" within 30 s", kind.name()));
        let log = Arc::new(LogTally::default());
        // The pipe must be drained, or a server that logs blocks on it.
        let tally = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tally.note(&line);
            }
        });
        Server {
            kind,
            pid,
            port,
            log,
            child,
            _dir: dir,
        }
    }

    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(self.pid)
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid)
    }

    /// Sockets the server holds (its database files and pipes left out).
    pub fn open_sockets(&self) -> usize {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid)) else {
            return 0;
        };
        dir.filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Panics if the server died: every figure after that would be a lie.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited during the benchmark: {status}", self.kind.name());
        }
    }

    pub async fn stop(mut self) -> Vec<String> {
        self.assert_alive();
        let _ = self.child.kill().await;
        self.log.lines()
    }
}

async fn listening_port(lines: &mut Lines<BufReader<ChildStdout>>) -> u16 {
    loop {
        let line = lines
            .next_line()
            .await
            .expect("read the server's log")
            .expect("the server exited before listening");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["message"] == "listening" {
            let addr = entry["addr"].as_str().expect("addr in the listening line");
            let addr: SocketAddr = addr.parse().expect("a socket address");
            return addr.port();
        }
    }
}

/// Milliseconds from spawning the server to its first `200` on `/health`.
pub async fn cold_start(kind: Kind, cpu: Option<String>, echo_read_buffer: usize) -> f64 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let launch = Launch {
        cpu,
        port,
        database_url: None,
        echo_read_buffer,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = command(kind, &launch, dir.path());
    command.stdout(Stdio::null());
    let spawned = Instant::now();
    let _child = command.spawn().expect("start the server");
    let deadline = spawned + DEADLINE;
    let ready = tokio::task::spawn_blocking(move || poll_health(port, deadline))
        .await
        .unwrap();
    let ready = ready.unwrap_or_else(|| panic!("{}: no 200 on /health in 30 s", kind.name()));
    ready.duration_since(spawned).as_secs_f64() * 1000.0
}

/// When `/health` first answered 200, polled every millisecond.
fn poll_health(port: u16, deadline: Instant) -> Option<Instant> {
    while Instant::now() < deadline {
        if let Ok(200) = HttpConn::connect(port).and_then(|mut c| c.get("/health")) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

// ------------------------------------------------------------ what it costs

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds of a process, all its threads.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is field 3,
    // utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    let (user, system) = (ticks(11).unwrap_or(0.0), ticks(12).unwrap_or(0.0));
    (user + system) / clock_ticks()
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Moves every thread of `pid` to `cpu` (threads created later inherit it).
pub fn pin_process(pid: u32, cpu: &str) {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset -a -p -c {cpu} {pid} failed");
}

/// The core the servers are pinned to, when it is a single one: its busy time
/// beyond the server's own is the machine's noise.
static SERVER_CORE: OnceLock<usize> = OnceLock::new();

pub fn set_server_core(core: usize) {
    let _ = SERVER_CORE.set(core);
}

/// Seconds core `core` was busy (anything but idle and iowait) since boot.
fn core_busy_secs(core: usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let name = format!("cpu{core}");
    let Some(line) = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&name))
    else {
        return f64::NAN;
    };
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    (total - idle) / clock_ticks()
}

/// CPU time of the server and of this process over a stretch, next to the
/// wall time and to what else ran on the server's core.
pub struct Stopwatch {
    started: Instant,
    server: f64,
    client: f64,
    core: f64,
    pid: u32,
}

/// Seconds of a stretch: wall, server CPU, client CPU, and the server core's
/// time taken by other processes (NaN when the server is not on one core).
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub wall: f64,
    pub server: f64,
    pub client: f64,
    pub others: f64,
}

impl Stopwatch {
    pub fn start(server: &Server) -> Stopwatch {
        Stopwatch {
            started: Instant::now(),
            server: server.cpu_secs(),
            client: cpu_secs(std::process::id()),
            core: SERVER_CORE.get().map_or(f64::NAN, |c| core_busy_secs(*c)),
            pid: server.pid,
        }
    }

    pub fn stop(&self) -> Spent {
        let server = cpu_secs(self.pid) - self.server;
        let core = SERVER_CORE.get().map_or(f64::NAN, |c| core_busy_secs(*c)) - self.core;
        Spent {
            wall: self.started.elapsed().as_secs_f64(),
            server,
            client: cpu_secs(std::process::id()) - self.client,
            others: (core - server).max(0.0),
        }
    }
}

// --------------------------------------------------------------- histograms

pub type Shared = Arc<Mutex<Histogram<u64>>>;

/// Microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

pub fn shared() -> Shared {
    Arc::new(Mutex::new(histogram()))
}

pub fn micros(elapsed: Duration) -> u64 {
    elapsed.as_micros().min(u64::MAX as u128) as u64
}

/// The `q` quantile in milliseconds (NaN when nothing was recorded).
pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return f64::NAN;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

// ---------------------------------------------------------------- WebSocket

/// Opens client WebSockets, each bound to one of several source addresses so
/// that tens of thousands of them do not run out of ephemeral ports.
pub struct Dialer {
    pub port: u16,
    sources: Vec<Ipv4Addr>,
    read_buffer: usize,
}

impl Dialer {
    /// `sources` addresses 127.0.0.2 …; 0: the kernel's choice.
    pub fn new(port: u16, sources: usize, read_buffer: usize) -> Dialer {
        let sources = (0..sources.min(250))
            .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i as u8))
            .collect();
        Dialer {
            port,
            sources,
            read_buffer,
        }
    }

    pub async fn connect(&self, path: &str, index: usize) -> Result<Ws, String> {
        tokio::time::timeout(DEADLINE, self.try_connect(path, index))
            .await
            .map_err(|_| format!("connect {path}: no handshake within 30 s"))?
    }

    async fn try_connect(&self, path: &str, index: usize) -> Result<Ws, String> {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        if !self.sources.is_empty() {
            let source = self.sources[index % self.sources.len()];
            socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
            let bind = SocketAddr::new(source.into(), 0);
            socket.bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
        }
        let server = SocketAddr::from(([127, 0, 0, 1], self.port));
        let stream = socket
            .connect(server)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        let config = WebSocketConfig::default().read_buffer_size(self.read_buffer);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        Ok(ws)
    }

    /// Opens `n` WebSockets, `concurrency` handshakes at a time: the ones that
    /// opened (with their index) and the errors of the others.
    pub async fn connect_many(
        &self,
        n: usize,
        concurrency: usize,
        path: impl Fn(usize) -> String,
    ) -> (Vec<(usize, Ws)>, Vec<String>) {
        let attempts = stream::iter(0..n)
            .map(|i| {
                let path = path(i);
                async move { (i, self.connect(&path, i).await) }
            })
            .buffer_unordered(concurrency.max(1));
        let results: Vec<_> = attempts.collect().await;
        let mut open = Vec::with_capacity(n);
        let mut errors = Vec::new();
        for (i, result) in results {
            match result {
                Ok(ws) => open.push((i, ws)),
                Err(error) => errors.push(error),
            }
        }
        (open, errors)
    }

    /// Like `connect_many`, but every one must open.
    pub async fn connect_all(
        &self,
        n: usize,
        concurrency: usize,
        path: impl Fn(usize) -> String,
    ) -> Vec<(usize, Ws)> {
        let (open, errors) = self.connect_many(n, concurrency, path).await;
        if let Some(first) = errors.first() {
            panic!("{} of {n} WebSockets failed to open: {first}", errors.len());
        }
        open
    }
}

/// The next text frame, skipping control frames; an error if the socket ends
/// or nothing comes within the deadline.
pub async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .map_err(|_| "no frame within 30 s".to_string())?;
        match message {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed by the server: {frame:?}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(format!("read: {error}")),
            None => return Err("the connection ended".into()),
        }
    }
}

/// Sends a JSON request and returns the reply of type `<type>_response` (or
/// `pong`), skipping events on the way.
pub async fn request(ws: &mut Ws, frame: Value) -> Value {
    let kind = frame["type"].as_str().unwrap_or("").to_string();
    let reply = if kind == "ping" {
        "pong".to_string()
    } else {
        format!("{kind}_response")
    };
    ws.send(Message::text(frame.to_string()))
        .await
        .unwrap_or_else(|e| panic!("send {kind}: {e}"));
    loop {
        let text = next_text(ws)
            .await
            .unwrap_or_else(|e| panic!("waiting for {reply}: {e}"));
        let value: Value = serde_json::from_str(&text).expect("a JSON frame");
        if value["type"] == reply.as_str() {
            return value;
        }
    }
}

/// One ping and its pong.
pub async fn ping_once(ws: &mut Ws) {
    ws.send(Message::text(PING)).await.expect("send ping");
    next_text(ws).await.expect("pong");
}

/// `inflight` pings outstanding on one connection until `until`, each pong
/// answered by the next ping (replies come in order); returns the round trips.
pub async fn ping_loop(
    mut ws: Ws,
    inflight: usize,
    until: Instant,
    hist: Shared,
) -> Result<u64, String> {
    let mut sent = VecDeque::with_capacity(inflight);
    let mut local = histogram();
    for _ in 0..inflight {
        sent.push_back(Instant::now());
        ws.feed(Message::text(PING))
            .await
            .map_err(|e| e.to_string())?;
    }
    ws.flush().await.map_err(|e| e.to_string())?;
    let mut done = 0;
    while let Some(stamp) = sent.pop_front() {
        next_text(&mut ws).await?;
        local.saturating_record(micros(stamp.elapsed()));
        done += 1;
        if Instant::now() < until {
            sent.push_back(Instant::now());
            ws.send(Message::text(PING))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    hist.lock().unwrap().add(&local).expect("same bounds");
    Ok(done)
}

// ------------------------------------------------------- pipelined requests

/// Replies and events one pipelined connection received.
#[derive(Debug, Default)]
pub struct PipeStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub events: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

/// Requests sent with at most `window` awaiting their reply; a reader task
/// counts replies (each frees a place in the window) and events.
pub struct Pipeline {
    sink: SplitSink<Ws, Message>,
    window: Arc<Semaphore>,
    size: u32,
    pub stats: Arc<PipeStats>,
    reader: JoinHandle<()>,
}

impl Pipeline {
    pub fn new(ws: Ws, window: usize) -> Pipeline {
        let (sink, mut stream) = ws.split();
        let size = window.max(1) as u32;
        let window = Arc::new(Semaphore::new(size as usize));
        let stats = Arc::new(PipeStats::default());
        let (permits, counts) = (Arc::clone(&window), Arc::clone(&stats));
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    count_frame(&text, &counts, &permits);
                }
            }
        });
        Pipeline {
            sink,
            window,
            size,
            stats,
            reader,
        }
    }

    /// Sends once a place in the window is free.
    pub async fn send(&mut self, frame: String) {
        self.reserve().await;
        self.write(frame).await;
    }

    /// Takes a place in the window, for a `write` right after.
    pub async fn reserve(&self) {
        let permit = tokio::time::timeout(DEADLINE, self.window.acquire())
            .await
            .expect("a reply within 30 s (the pipeline's window stayed full)")
            .expect("window open");
        permit.forget();
    }

    pub async fn write(&mut self, frame: String) {
        self.sink
            .send(Message::text(frame))
            .await
            .expect("send a pipelined request");
    }

    /// Waits for the replies of everything sent.
    pub async fn drain(&self) {
        let all = tokio::time::timeout(DEADLINE, self.window.acquire_many(self.size))
            .await
            .expect("every pipelined request answered within 30 s")
            .expect("window open");
        drop(all);
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn count_frame(text: &str, stats: &PipeStats, window: &Semaphore) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if frame.get("seq").is_some() {
        stats.events.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let kind = frame["type"].as_str().unwrap_or("");
    if !(kind.ends_with("_response") || kind == "pong") {
        return;
    }
    if frame["data"]["status"] == "error" {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = stats.first_error.lock().unwrap();
        first.get_or_insert_with(|| text.chars().take(300).collect());
    } else {
        stats.ok.fetch_add(1, Ordering::Relaxed);
    }
    window.add_permits(1);
}

/// The top-level `seq` of an event frame, read without parsing the JSON.
pub fn seq_of(text: &str) -> Option<u64> {
    let start = text.find("\"seq\":")? + 6;
    let digits = text[start..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

// -------------------------------------------------------------- HTTP probe

/// A kept-alive HTTP/1.1 connection, blocking, for `GET` requests.
pub struct HttpConn {
    stream: StdStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn connect(port: u16) -> std::io::Result<HttpConn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = StdStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// The status of `GET path`, its whole response read.
    pub fn get(&mut self, path: &str) -> std::io::Result<u16> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.stream.write_all(request.as_bytes())?;
        self.buf.clear();
        let head = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill()?;
        };
        let text = String::from_utf8_lossy(&self.buf[..head]).to_ascii_lowercase();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| std::io::Error::other("no content-length"))?;
        while self.buf.len() < head + length {
            self.fill()?;
        }
        Ok(status)
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What the health probe saw.
pub struct ProbeReport {
    pub hist: Histogram<u64>,
    pub failed: u64,
    pub first_error: Option<String>,
}

/// `GET /health` at a steady rate from a thread of its own (so that it is
/// never queued behind the load generator's tasks).
pub struct HealthProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<ProbeReport>,
}

impl HealthProbe {
    pub fn start(port: u16, per_second: u32) -> HealthProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || probe(port, per_second.max(1), &flag));
        HealthProbe { stop, thread }
    }

    pub fn finish(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("health probe thread")
    }
}

fn probe(port: u16, per_second: u32, stop: &AtomicBool) -> ProbeReport {
    let period = Duration::from_secs_f64(1.0 / per_second as f64);
    let mut report = ProbeReport {
        hist: histogram(),
        failed: 0,
        first_error: None,
    };
    let mut conn: Option<HttpConn> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = match conn.as_mut() {
            Some(conn) => conn.get("/health"),
            None => HttpConn::connect(port).and_then(|c| conn.insert(c).get("/health")),
        };
        match result {
            Ok(200) => report.hist.saturating_record(micros(started.elapsed())),
            other => {
                report.failed += 1;
                report.first_error.get_or_insert(format!("{other:?}"));
                conn = None;
            }
        }
        next += period;
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            None => next = now,
        }
    }
    report
}

// --------------------------------------------------------------- PostgreSQL

/// A database of its own for one run, dropped (with its connections) at the end.
pub struct PgDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> Result<PgDatabase, String> {
        use sqlx::{Connection, Executor};
        let connect = sqlx::PgConnection::connect(admin);
        let mut conn = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| format!("PostgreSQL at {admin} did not answer within 5 s"))?
            .map_err(|e| format!("PostgreSQL at {admin}: {e}"))?;
        let name = format!("agentport_bench_{}", uuid::Uuid::new_v4().simple());
        let sql = format!("CREATE DATABASE {name}");
        let create = conn.execute(sqlx::AssertSqlSafe(sql));
        tokio::time::timeout(DEADLINE, create)
            .await
            .map_err(|_| format!("CREATE DATABASE on {admin}: no answer within 30 s"))?
            .map_err(|e| format!("CREATE DATABASE on {admin}: {e}"))?;
        let _ = conn.close().await;
        Ok(PgDatabase {
            url: with_database(admin, &name),
            name,
            admin: admin.to_string(),
        })
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    format!("{root}/{name}{query}")
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (name, admin) = (self.name.clone(), self.admin.clone());
        // Drop runs inside the runtime: clean up from a thread of its own.
        let _ = std::thread::spawn(move || {
            use sqlx::{Connection, Executor};
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let connect = sqlx::PgConnection::connect(&admin);
                if let Ok(Ok(mut conn)) = tokio::time::timeout(DEADLINE, connect).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let drop = conn.execute(sqlx::AssertSqlSafe(sql));
                    let _ = tokio::time::timeout(DEADLINE, drop).await;
                }
            });
        })
        .join();
    }
}

// ------------------------------------------------------------ echo baseline

/// `LOAD_ROLE=echo`: the baseline server. hyper and axum's WebSocket, as
/// agentport, with nothing else: every text frame is answered with `PONG`,
/// `/health` with 200 `OK`. Logs its address as agentport does.
pub fn serve_echo() {
    use axum::{extract::ws::WebSocketUpgrade, routing::get};
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let read_buffer: usize = std::env::var("LOAD_ECHO_READ_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let upgrade = move |ws: WebSocketUpgrade| async move {
            ws.read_buffer_size(read_buffer).on_upgrade(echo)
        };
        let app = axum::Router::new()
            .route("/health", get(|| async { "OK" }))
            .route("/ws/agent/{channel}", get(upgrade));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the echo server");
        let addr = listener.local_addr().expect("local address");
        let line =
            serde_json::json!({"level": "INFO", "message": "listening", "addr": addr.to_string()});
        println!("{line}");
        axum::serve(listener, app).await.expect("serve");
    });
}

async fn echo(mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::{Message, Utf8Bytes};
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Text(_) = message {
            let pong = Message::Text(Utf8Bytes::from_static(PONG));
            if socket.send(pong).await.is_err() {
                return;
            }
        }
    }
}
