//! Abuse by load: connection churn, clients that never read, ten thousand
//! sockets at shutdown, and a crash in the middle of mixed work. Each test
//! checks what a user or an operator would see — close codes on the wire,
//! counts on `/metrics`, rows after a restart, the process's memory — and runs
//! alone in this binary (`SERIAL`): they use every core of the machine.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    abuse::{SERIAL, connect_from, hub_subscriptions, rss_bytes, scrape, source_address},
    client::{Client, TOKEN, bare_agent},
    process::Process,
    *,
};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

/// Loopback source addresses the clients of one test spread over.
const SOURCES: usize = 4;

// ---------------------------------------------------------------------------
// Churn.

/// Two agents a churning client follows: one by its path, one by `subscribe`.
const CHURN_AGENTS: [&str; 2] = ["churn-agent-a", "churn-agent-b"];

/// One connect / subscribe / disconnect cycle; `i` picks how it ends: a close
/// handshake after the subscription is confirmed, a reset (RST) after it, a
/// close sent right behind the request, or a reset with the request unanswered.
async fn churn_cycle(server: SocketAddr, i: usize) {
    let abrupt = i % 2 == 1;
    let (path, other) = (CHURN_AGENTS[i % 2], CHURN_AGENTS[(i + 1) % 2]);
    let source = source_address(i, SOURCES);
    let mut ws = connect_from(source, server, &format!("/ws/agent/{path}"), |socket| {
        if abrupt {
            socket.set_zero_linger().unwrap();
        }
    })
    .await;
    send_json(
        &mut ws,
        json!({"type": "subscribe", "id": i, "data": {"agent_id": other}}),
    )
    .await;
    if i % 4 < 2 {
        let reply = recv_json(&mut ws).await;
        assert_eq!(
            (reply["type"].as_str(), &reply["id"]),
            (Some("subscribe_response"), &json!(i))
        );
    }
    if abrupt {
        drop(ws);
        return;
    }
    ws.close(None).await.unwrap();
    let closed = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(_)) = ws.next().await {}
    });
    closed.await.expect("the server ends the close handshake");
}

/// `cycles` churn cycles, `CONCURRENCY` at a time.
async fn churn(server: SocketAddr, cycles: std::ops::Range<usize>) {
    const CONCURRENCY: usize = 32;
    stream::iter(cycles)
        .for_each_concurrent(CONCURRENCY, |i| churn_cycle(server, i))
        .await;
}

/// Creates the agents churning clients follow.
async fn churn_agents(url: String) {
    for agent in CHURN_AGENTS {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}{agent}"))
            .await
            .unwrap();
        let mut client = Client::new(ws);
        bare_agent(&mut client, agent).await;
        client.ws.close(None).await.unwrap();
    }
}

/// Waits until the server reports no open connection and no subscription,
/// and its tasks are back to `tasks` (a margin of 2 for timers of the moment).
async fn wait_settled(server: SocketAddr, tasks: f64) {
    wait_until("connections, subscriptions and tasks back", || async {
        scrape(server, "agentport_ws_connections_open").await == 0.0
            && scrape(server, "agentport_hub_subscriptions").await == 0.0
            && scrape(server, "agentport_tasks_alive").await <= tasks + 2.0
    })
    .await;
}

/// A long-running server sees endless connects and disconnects, many of them
/// resets: every session, hub subscription and task they make must go away
/// with them, or the server slowly fills up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscribe_cycles_leave_no_session_subscription_or_task_behind() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start().await;
    churn_agents(server.ws_url("")).await;
    churn(server.addr, 0..320).await;
    wait_until("warm-up over", || async {
        server.state.registry.is_empty()
    })
    .await;
    let tasks = scrape(server.addr, "agentport_tasks_alive").await;

    let started = Instant::now();
    churn(server.addr, 0..10_000).await;
    eprintln!("10 000 cycles in {:?}", started.elapsed());
    wait_until("registry empty", || async {
        server.state.registry.is_empty()
    })
    .await;
    wait_until("hub empty", || async {
        hub_subscriptions(&server.state.manager) == 0
    })
    .await;
    wait_settled(server.addr, tasks).await;
    let (_, _, ready) = get(&server.url("/ready")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&ready).unwrap()["connections"],
        0
    );
    server.shutdown().await.unwrap();
}

/// The same churn against the real binary: after it, its resident memory is
/// back within a small margin of the figure after a warm-up.
///
/// The margin: the warm-up runs the same cycles at the same concurrency, so
/// the allocator's arenas, the runtime's task slabs and the database's caches
/// are already at their steady size; what is left is fragmentation, bounded by
/// what 32 sessions in flight hold (well under 1 MiB). 4 MiB is above that
/// noise and below what a leak of half a kilobyte per cycle would add over
/// 10 000 (4.8 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_on_the_real_binary_gives_its_memory_back() {
    let _serial = SERIAL.lock().await;
    let mut process = Process::start(&[]).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", process.port).parse().unwrap();
    let pid = process.child.id().unwrap();
    churn_agents(format!("ws://{addr}/ws/agent/")).await;
    churn(addr, 0..2_000).await;
    wait_until("warm-up over", || async {
        scrape(addr, "agentport_ws_connections_open").await == 0.0
    })
    .await;
    let tasks = scrape(addr, "agentport_tasks_alive").await;
    let warm = rss_bytes(pid);

    churn(addr, 0..10_000).await;
    wait_settled(addr, tasks).await;
    let after = rss_bytes(pid);
    eprintln!("RSS after warm-up {warm}, after 10 000 cycles {after}");
    assert!(
        after <= warm + (4 << 20),
        "RSS grew from {warm} to {after} bytes"
    );
    process.signal("TERM");
    assert_eq!(process.exit_code(DEADLINE).await, Some(0));
}

/// `agentport_hub_subscriptions` is how an operator sees subscriptions pile up
/// (the churn tests read it back to zero): it must count what sessions follow
/// right now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_subscriptions_gauge_counts_what_sessions_follow() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start().await;
    churn_agents(server.ws_url("")).await;
    let mut sockets = Vec::new();
    for i in 0..8 {
        let mut ws = server.connect(CHURN_AGENTS[i % 2]).await;
        let other = CHURN_AGENTS[(i + 1) % 2];
        send_json(
            &mut ws,
            json!({"type": "subscribe", "data": {"agent_id": other}}),
        )
        .await;
        assert_eq!(recv_json(&mut ws).await["type"], "subscribe_response");
        sockets.push(ws);
    }
    assert_eq!(hub_subscriptions(&server.state.manager), 16);
    assert_eq!(
        scrape(server.addr, "agentport_hub_subscriptions").await,
        16.0
    );
    drop(sockets);
    wait_until("the gauge back to 0", || async {
        scrape(server.addr, "agentport_hub_subscriptions").await == 0.0
    })
    .await;
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------
// Slow consumers.

const SLOW_AGENT: &str = "slow-consumer-agent";
/// Clients that never read while the agent changes.
const SLOW_CLIENTS: usize = 16;
/// Bytes of padding in each description: every other event is this large.
const EVENT_PAD: usize = 9_000;
/// The server's bounds per connection.
const OUTBOUND_BYTES: usize = 256 * 1024;
const MAX_MESSAGE: usize = 64 * 1024;

fn slow_env() -> Vec<(&'static str, String)> {
    vec![
        ("AGENTPORT_WS_MESSAGES_PER_SECOND", "0".into()),
        ("AGENTPORT_WS_OUTBOUND_FRAMES", "64".into()),
        ("AGENTPORT_WS_OUTBOUND_BYTES", OUTBOUND_BYTES.to_string()),
        ("AGENTPORT_MAX_MESSAGE_BYTES", MAX_MESSAGE.to_string()),
        // A closed slow client gets its 1013 once it reads again.
        ("AGENTPORT_WS_CLOSE_TIMEOUT_SECS", "120".into()),
    ]
}

/// Updates the agent's description `count` times, one at a time (each waits
/// for its own `status` event), stamped with the time it was sent. Samples the
/// server's memory as it goes; returns the last seq and the largest sample.
async fn produce(
    producer: &mut Ws,
    base: Instant,
    updates: std::ops::Range<usize>,
    pid: u32,
) -> (u64, u64) {
    let (mut last, mut peak) = (0, 0);
    for n in updates {
        let stamp = base.elapsed().as_micros();
        let description = format!("n={n};t={stamp};{}", "x".repeat(EVENT_PAD));
        let config = json!({"description": description});
        send_json(
            producer,
            json!({"action": "updateConfig", "agentId": SLOW_AGENT, "config": config}),
        )
        .await;
        last = loop {
            let frame = recv_json(producer).await;
            if frame["type"] == "status" {
                break frame["seq"].as_u64().unwrap();
            }
        };
        if n % 10 == 0 {
            peak = peak.max(rss_bytes(pid));
        }
    }
    (last, peak)
}

/// Reads a connection into a channel, each frame with the moment it arrived.
fn record(mut ws: Ws) -> tokio::sync::mpsc::UnboundedReceiver<(Instant, Value)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            if tx
                .send((Instant::now(), serde_json::from_str(&text).unwrap()))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// What a subscriber got up to `last`: every seq in order, and how long each
/// description update took to reach it, by phase (`n` < `split` or not).
async fn received(
    frames: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, Value)>,
    base: Instant,
    last: u64,
    split: usize,
) -> (Vec<u64>, [Vec<Duration>; 2]) {
    let (mut seqs, mut delays) = (Vec::new(), [Vec::new(), Vec::new()]);
    while seqs.last() != Some(&last) {
        let (at, frame) = tokio::time::timeout(DEADLINE, frames.recv())
            .await
            .unwrap()
            .unwrap();
        seqs.push(frame["seq"].as_u64().expect("only events"));
        let Some(description) = frame["data"]["description"].as_str() else {
            continue;
        };
        let fields: Vec<&str> = description.splitn(3, ';').collect();
        let n: usize = fields[0][2..].parse().unwrap();
        let sent = Duration::from_micros(fields[1][2..].parse().unwrap());
        delays[usize::from(n >= split)].push(at - base - sent);
    }
    (seqs, delays)
}

/// Reads a client that did not read until now, to its end: the seqs it had
/// got, and the close code.
async fn read_slow_client(mut ws: Ws) -> (Vec<u64>, Option<CloseCode>) {
    let mut seqs = Vec::new();
    loop {
        match next_message(&mut ws).await {
            Some(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                seqs.push(frame["seq"].as_u64().expect("only events"));
            }
            Some(Message::Close(close)) => {
                while let Ok(Some(Ok(_))) = tokio::time::timeout(DEADLINE, ws.next()).await {}
                return (seqs, close.map(|c| c.code));
            }
            Some(_) => {}
            None => return (seqs, None),
        }
    }
}

/// A slow client that reconnects with `since`: the seqs it gets up to `last`.
async fn resume(addr: SocketAddr, since: u64, last: u64) -> Vec<u64> {
    let url = format!("ws://{addr}/ws/agent/{SLOW_AGENT}?since={since}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut seqs = Vec::new();
    while seqs.last().is_none_or(|seq| *seq < last) {
        seqs.push(
            recv_json(&mut ws).await["seq"]
                .as_u64()
                .expect("only events"),
        );
    }
    seqs
}

fn percentile(delays: &[Duration], p: usize) -> Duration {
    let mut sorted = delays.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

/// Clients that connect (with a small receive buffer) and never read.
async fn connect_slow_clients(addr: SocketAddr) -> Vec<Ws> {
    let mut slow = Vec::new();
    for i in 0..SLOW_CLIENTS {
        let path = format!("/ws/agent/{SLOW_AGENT}");
        let small_buffer = |s: &tokio::net::TcpSocket| s.set_recv_buffer_size(4096).unwrap();
        slow.push(connect_from(source_address(i, SOURCES), addr, &path, small_buffer).await);
    }
    slow
}

/// Each slow client, reading at last: its queued events without a gap, then
/// 1013; reconnecting with `since` its last seq, every event up to `last`.
async fn check_slow_clients_resume(addr: SocketAddr, slow: Vec<Ws>, joined_after: u64, last: u64) {
    let readers = slow.into_iter().map(read_slow_client);
    for (got, close) in futures_util::future::join_all(readers).await {
        assert_eq!(close, Some(CloseCode::Again), "closed as a slow consumer");
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 1),
            "what it got has no gap"
        );
        assert!(got.first().is_none_or(|first| *first == joined_after + 1));
        let since = got.last().copied().unwrap_or(joined_after);
        let missed = resume(addr, since, last).await;
        assert_eq!(
            missed,
            (since + 1..=last).collect::<Vec<_>>(),
            "resumed with nothing lost"
        );
    }
}

/// The last seq of the slow agent, as stored.
async fn last_seq(addr: SocketAddr) -> u64 {
    let url = format!("http://{addr}/api/v1/agents/{SLOW_AGENT}/events?since=0");
    let (_, _, body) = get(&url).await;
    serde_json::from_str::<Value>(&body).unwrap()["last_seq"]
        .as_u64()
        .unwrap()
}

/// Clients that stop reading while an agent produces events: each is closed
/// with 1013 once its bounded queue is full, the server's memory stays within
/// those bounds, a normal subscriber of the same agent gets every event in
/// order and as fast as without them, and each slow client that reconnects
/// with `since` gets every event it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_closed_with_1013_and_cost_neither_memory_nor_others_latency() {
    let _serial = SERIAL.lock().await;
    let env = slow_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let process = Process::start(&env).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", process.port).parse().unwrap();
    let pid = process.child.id().unwrap();
    let mut producer = Client::new(process.connect(SLOW_AGENT).await);
    bare_agent(&mut producer, SLOW_AGENT).await;
    let mut producer = producer.ws;
    let created = last_seq(addr).await;
    let mut subscriber = record(process.connect(SLOW_AGENT).await);
    let base = Instant::now();
    let (baseline_last, _) = produce(&mut producer, base, 0..200, pid).await;

    let slow = connect_slow_clients(addr).await;
    let before = rss_bytes(pid);
    let (last, peak) = produce(&mut producer, base, 200..1200, pid).await;
    let slow_consumers = scrape(addr, "agentport_ws_slow_consumers_total").await;
    assert_eq!(slow_consumers, SLOW_CLIENTS as f64);
    let per_client = OUTBOUND_BYTES + 2 * OUTBOUND_BYTES.max(MAX_MESSAGE);
    let bound = before + (SLOW_CLIENTS * per_client) as u64 + (32 << 20);
    eprintln!("RSS {before} before the slow clients, {peak} at most with them (bound {bound})");
    assert!(
        peak <= bound,
        "memory grew past the queues' bounds: {peak} > {bound}"
    );

    let (seqs, delays) = received(&mut subscriber, base, last, 200).await;
    assert_eq!(
        seqs,
        (created + 1..=last).collect::<Vec<_>>(),
        "every event, in order"
    );
    check_latency(&delays);
    check_slow_clients_resume(addr, slow, baseline_last, last).await;
}

/// The subscriber's delays with the slow clients against those without: the
/// median within three times (plus 5 ms of scheduling noise), the 90th
/// percentile within five times (plus 20 ms), none over a second.
fn check_latency(delays: &[Vec<Duration>; 2]) {
    let [without, with] = delays;
    let (p50, p90) = (percentile(without, 50), percentile(without, 90));
    let (slow_p50, slow_p90) = (percentile(with, 50), percentile(with, 90));
    eprintln!(
        "subscriber latency p50/p90: {p50:?}/{p90:?} alone, {slow_p50:?}/{slow_p90:?} beside slow clients"
    );
    assert!(
        slow_p50 <= p50 * 3 + Duration::from_millis(5),
        "median {slow_p50:?} against {p50:?}"
    );
    assert!(
        slow_p90 <= p90 * 5 + Duration::from_millis(20),
        "p90 {slow_p90:?} against {p90:?}"
    );
    let worst = with.iter().max().unwrap();
    assert!(*worst < Duration::from_secs(1), "an event took {worst:?}");
}

// ---------------------------------------------------------------------------
// Drain at scale.

/// Reads a connection to its close frame; the close code, if one came.
async fn close_code(mut ws: Ws) -> Option<u16> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => {
                // Reading on sends the close reply and sees the stream end.
                while let Some(Ok(_)) = ws.next().await {}
                return frame.map(|f| u16::from(f.code));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// Opens `count` WebSockets over the loopback source addresses, 64 handshakes
/// at a time; each is then read by a task of its own until its close frame.
async fn open_many(addr: SocketAddr, count: usize) -> Vec<tokio::task::JoinHandle<Option<u16>>> {
    stream::iter(0..count)
        .map(|i| async move {
            let path = format!("/ws/agent/drain-{i}");
            connect_from(source_address(i, SOURCES), addr, &path, |_| {}).await
        })
        .buffer_unordered(64)
        .map(|ws| tokio::spawn(close_code(ws)))
        .collect()
        .await
}

/// A deploy stops the server with SIGTERM while it holds ten thousand
/// clients: every one of them must be told to reconnect (1001), and the
/// process must exit cleanly before the platform's patience runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_ten_thousand_sockets_with_1001_and_exits_0_within_the_grace_period() {
    const SOCKETS: usize = 10_000;
    const GRACE: Duration = Duration::from_secs(10);
    let _serial = SERIAL.lock().await;
    let mut process = Process::start(&[("AGENTPORT_SHUTDOWN_GRACE_SECS", "10")]).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", process.port).parse().unwrap();
    let started = Instant::now();
    let readers = open_many(addr, SOCKETS).await;
    wait_until("every socket registered", || async {
        scrape(addr, "agentport_ws_connections_open").await == SOCKETS as f64
    })
    .await;
    eprintln!("{SOCKETS} sockets open in {:?}", started.elapsed());

    let signalled = Instant::now();
    process.signal("TERM");
    let codes = tokio::time::timeout(GRACE, futures_util::future::join_all(readers))
        .await
        .expect("every socket closed within the grace period");
    let mut by_code = BTreeMap::new();
    for code in codes {
        *by_code.entry(code.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(by_code, BTreeMap::from([(Some(1001), SOCKETS)]));
    let left = GRACE.saturating_sub(signalled.elapsed());
    assert_eq!(process.exit_code(left).await, Some(0));
    eprintln!("closed and exited {:?} after SIGTERM", signalled.elapsed());
}

// ---------------------------------------------------------------------------
// Crash in the middle of mixed work.

const OPERATORS: usize = 4;
const AGENTS_PER_OPERATOR: usize = 2;

/// What one operator was told before the crash.
#[derive(Debug, Default)]
struct Acks {
    /// Agents created, scheduled and started.
    active: Vec<String>,
    /// The last description revision acknowledged, per agent.
    revisions: BTreeMap<String, u64>,
    /// Runs whose success was reported, with their agent.
    runs: Vec<(String, String)>,
}

/// Sends a request and reads to its reply of type `reply` (skipping events);
/// `None` once the server is gone.
async fn ask(ws: &mut Ws, request: Value, reply: &str) -> Option<Value> {
    ws.send(Message::text(request.to_string())).await.ok()?;
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            return None;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == reply && frame["data"]["status"] != "processing" {
            return Some(frame["data"].clone());
        }
    }
}

fn agent_request(agent: &str, revision: u64) -> Value {
    json!({"type": "create_agent", "data": {"agent_id": agent, "contractId": TOKEN,
        "status": "active", "description": format!("rev-{revision}")}})
}

/// Creates, schedules (every second) and starts each agent, acknowledged.
async fn set_up(ws: &mut Ws, agents: &[String], acks: &mut Acks) {
    for agent in agents {
        let schedule = json!({"type": "create_schedule", "data": {"agent_id": agent,
            "schedule_type": "interval", "interval_seconds": 1}});
        let start = json!({"type": "start_agent", "data": {"agent_id": agent}});
        let steps = [
            (agent_request(agent, 0), "create_agent_response"),
            (schedule, "create_schedule_response"),
            (start, "start_agent_response"),
        ];
        for (request, reply) in steps {
            let data = ask(ws, request, reply)
                .await
                .expect("set up before the crash");
            assert_eq!(data["status"], "success", "{data}");
        }
        acks.active.push(agent.clone());
        acks.revisions.insert(agent.clone(), 0);
    }
}

/// Sets up its agents, then updates and executes them in turn until the
/// server is gone, counting each acknowledged pair in `acked`.
async fn operator(addr: SocketAddr, index: usize, acked: Arc<AtomicUsize>) -> Acks {
    let url = format!("ws://{addr}/ws/agent/operator-{index}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let agents: Vec<String> = (0..AGENTS_PER_OPERATOR)
        .map(|k| format!("crash-{index}-{k}"))
        .collect();
    let mut acks = Acks::default();
    set_up(&mut ws, &agents, &mut acks).await;
    for revision in 1.. {
        for agent in &agents {
            let update = agent_request(agent, revision);
            let Some(data) = ask(&mut ws, update, "create_agent_response").await else {
                return acks;
            };
            assert_eq!(data["status"], "success", "{data}");
            acks.revisions.insert(agent.clone(), revision);
            let execute = json!({"type": "execute", "agent_id": agent});
            let Some(outcome) = ask(&mut ws, execute, "execute_response").await else {
                return acks;
            };
            if outcome["status"] == "success" {
                let run_id = outcome["run_id"].as_str().unwrap().to_string();
                acks.runs.push((agent.clone(), run_id));
            }
            acked.fetch_add(1, Ordering::SeqCst);
        }
    }
    unreachable!()
}

/// Follows every agent of the contract and keeps each event it is sent, per
/// agent and seq, until the server is gone.
async fn follower(addr: SocketAddr) -> Seen {
    let url = format!("ws://{addr}/ws/agent/{TOKEN}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut seen = Seen::new();
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        let agent = frame["agent_id"]
            .as_str()
            .or(frame["data"]["agent_id"].as_str())
            .unwrap()
            .to_string();
        let events = seen.entry(agent).or_default();
        let seq = frame["seq"].as_u64().unwrap();
        if let Some(previous) = events.keys().next_back() {
            assert_eq!(
                seq,
                previous + 1,
                "events reach a follower in order, without gap"
            );
        }
        events.insert(seq, frame);
    }
    seen
}

async fn rest(process: &Process, path: &str) -> Value {
    let (status, _, body) = get(&process.url(path)).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Every event an agent has stored, checked gap-free from seq 1.
async fn stored_events(process: &Process, agent: &str) -> Vec<Value> {
    let page = rest(
        process,
        &format!("/api/v1/agents/{agent}/events?since=0&limit=5000"),
    )
    .await;
    let events = page["events"].as_array().unwrap().clone();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "{agent}: seqs 1..last"
    );
    // The agents run meanwhile: the page may hold events after its bounds.
    assert!(page["last_seq"].as_u64().unwrap() <= seqs.len() as u64);
    events
}

/// What was acknowledged before the crash is there after it.
async fn check_acknowledged(process: &Process, acks: &Acks) {
    for (agent, revision) in &acks.revisions {
        let view = rest(process, &format!("/api/v1/agents/{agent}")).await;
        let stored: u64 = view["agent"]["description"].as_str().unwrap()[4..]
            .parse()
            .unwrap();
        assert!(
            stored >= *revision,
            "{agent}: rev-{stored} after acknowledging rev-{revision}"
        );
        assert_eq!(view["agent"]["status"], "active", "{agent}");
    }
    for (agent, run_id) in &acks.runs {
        let runs = rest(process, &format!("/api/v1/agents/{agent}/runs?limit=500")).await;
        let run = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == run_id.as_str());
        assert_eq!(
            run.map(|r| r["status"].clone()),
            Some(json!("succeeded")),
            "{agent}: run {run_id}"
        );
    }
}

/// Waits for a scheduled run of `agent` after the ones it has now.
async fn wait_for_new_scheduled_run(process: &Process, agent: &str) {
    let path = format!("/api/v1/agents/{agent}/runs?limit=500");
    let ids = |runs: Value| -> Vec<(String, Value)> {
        let runs = runs.as_array().unwrap().iter();
        runs.map(|r| (r["run_id"].as_str().unwrap().into(), r["trigger"].clone()))
            .collect()
    };
    let known: HashSet<String> = ids(rest(process, &path).await)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    wait_for("a scheduled run after the restart", || async {
        let runs = ids(rest(process, &path).await);
        runs.into_iter()
            .find(|(id, trigger)| trigger == "schedule" && !known.contains(id))
    })
    .await;
}

/// The events a follower was sent, per agent and seq.
type Seen = BTreeMap<String, BTreeMap<u64, Value>>;

/// Runs operators and followers against the process and kills it (-9) once
/// they have 100 acknowledged updates: what each operator was told, and what
/// each follower was sent.
async fn kill_under_load(process: &mut Process) -> (Vec<Acks>, Vec<Seen>) {
    let addr: SocketAddr = format!("127.0.0.1:{}", process.port).parse().unwrap();
    let mut admin = Client::new(process.connect("admin").await);
    let contract = json!({"address": TOKEN, "chain_id": 1, "abi": "[]"});
    admin.ok("create_contract", contract).await;
    let followers: Vec<_> = (0..2).map(|_| tokio::spawn(follower(addr))).collect();
    let acked = Arc::new(AtomicUsize::new(0));
    let operators: Vec<_> = (0..OPERATORS)
        .map(|i| tokio::spawn(operator(addr, i, acked.clone())))
        .collect();
    wait_until("work under way", || async {
        acked.load(Ordering::SeqCst) >= 100
    })
    .await;
    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();
    let acks = futures_util::future::try_join_all(operators).await.unwrap();
    let seen = futures_util::future::try_join_all(followers).await.unwrap();
    let runs: usize = acks.iter().map(|a| a.runs.len()).sum();
    let events: usize = seen
        .iter()
        .flat_map(|s| s.values())
        .map(BTreeMap::len)
        .sum();
    let updates = acked.load(Ordering::SeqCst);
    eprintln!("acknowledged before the kill: {updates} updates, {runs} runs, {events} events sent");
    (acks, seen)
}

/// A crash can come at any moment: after kill -9 in the middle of commands,
/// runs and deliveries, and a restart on the same database, every change and
/// event the server acknowledged is there, each agent's events are numbered
/// 1..last with no gap, and the agents that were active run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_mixed_load_loses_nothing_acknowledged() {
    let _serial = SERIAL.lock().await;
    let env = [("AGENTPORT_WS_MESSAGES_PER_SECOND", "0")];
    let mut process = Process::start(&env).await;
    let (acks, seen) = kill_under_load(&mut process).await;
    let Process { dir, .. } = process;
    let process = Process::start_in(dir, &env).await;

    for acks in &acks {
        check_acknowledged(&process, acks).await;
    }
    let active: Vec<&String> = acks.iter().flat_map(|a| &a.active).collect();
    for agent in &active {
        let events = stored_events(&process, agent).await;
        for (seq, frame) in seen.iter().filter_map(|s| s.get(*agent)).flatten() {
            let stored = &events[*seq as usize - 1];
            assert_eq!(stored, frame, "{agent}: event {seq} as it was sent");
        }
    }
    let runs_again = active
        .iter()
        .map(|agent| wait_for_new_scheduled_run(&process, agent));
    futures_util::future::join_all(runs_again).await;
}
