//! The store on its own, the same suite against a SQLite file and PostgreSQL:
//! transactions that fail change nothing, and sequence numbers are gap-free
//! under concurrent writers.

mod common;

use std::sync::Arc;

use agentport::{
    model::{EventKind, LogLevel, NewAgent},
    protocol::{Inbound, Request, events},
    store::Store,
};
use common::pg::PgSchema;

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("s.db").display());
                super::$name(agentport::store::Store::connect(&url).await.unwrap()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let schema = super::PgSchema::create().await;
                super::$name(agentport::store::Store::connect(&schema.url).await.unwrap()).await;
            }
        }
    )*};
}

on_both_databases!(
    seqs_are_gap_free_under_concurrent_writers,
    a_rolled_back_command_changes_nothing,
    agents_are_listed_page_by_page,
    old_runs_go_and_running_ones_stay,
);

fn create_agent(json: &str) -> NewAgent {
    match Inbound::parse(json).request.unwrap() {
        Request::CreateAgent(r) => r.body,
        other => panic!("{other:?}"),
    }
}

async fn seqs_are_gap_free_under_concurrent_writers(store: Store) {
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut tx = store.begin().await.unwrap();
                let message = format!("w{writer}-{i}");
                tx.append_event(
                    "agent-1",
                    events::log("agent-1", LogLevel::Info, &message, "t"),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = store.events_since("agent-1", 0, 1000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    // The stored frame carries its seq.
    let first: serde_json::Value = serde_json::from_str(&events[0].text).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(store.stream_bounds("agent-1").await.unwrap().last_seq, 200);
}

async fn a_rolled_back_command_changes_nothing(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let contract = match Inbound::parse(
        r#"{"type":"create_contract","data":{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","chain_id":1,"abi":"[]"}}"#,
    )
    .request
    .unwrap()
    {
        Request::CreateContract(c) => c.body,
        other => panic!("{other:?}"),
    };
    tx.upsert_contract(&contract).await.unwrap();
    let agent = create_agent(
        r#"{"type":"create_agent","data":{"contractId":"0x5FbDB2315678afecb367f032d93F642f64180aa3"}}"#,
    );
    tx.upsert_agent("a", &agent, "local").await.unwrap();
    tx.append_event("a", events::lifecycle(EventKind::AgentStarted, "a"))
        .await
        .unwrap();
    drop(tx); // not committed
    assert!(store.agent("a").await.unwrap().is_none());
    assert!(store.events_since("a", 0, 10).await.unwrap().is_empty());
    // The seq a rolled-back event took is given out again: no gap.
    let mut tx = store.begin().await.unwrap();
    let event = tx
        .append_event("a", events::lifecycle(EventKind::AgentStarted, "a"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(event.seq, 1);
}

async fn agents_are_listed_page_by_page(store: Store) {
    let contract = r#"{"type":"create_contract","data":{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","chain_id":1,"abi":"[]"}}"#;
    let Request::CreateContract(c) = Inbound::parse(contract).request.unwrap() else {
        panic!()
    };
    let mut tx = store.begin().await.unwrap();
    tx.upsert_contract(&c.body).await.unwrap();
    let agent = create_agent(
        r#"{"type":"create_agent","data":{"contractId":"0x5FbDB2315678afecb367f032d93F642f64180aa3"}}"#,
    );
    for id in ["a1", "a2", "a3"] {
        tx.upsert_agent(id, &agent, "local").await.unwrap();
    }
    tx.commit().await.unwrap();
    let first = store.agents(None, 2).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    let after = agentport::model::PageCursor::after_agent(&first[1]);
    // The page after "a2" starts right even when "a2" has gone meanwhile.
    let mut tx = store.begin().await.unwrap();
    tx.delete_agent("a2").await.unwrap();
    tx.commit().await.unwrap();
    let rest = store.agents(Some(&after), 2).await.unwrap();
    let ids: Vec<&str> = rest.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["a3"]);
    let of_contract = store
        .agents_of_contract("0x5fbdb2315678afecb367f032d93f642f64180aa3", None, 1)
        .await
        .unwrap();
    assert_eq!(of_contract[0].agent_id, "a1");
}

async fn old_runs_go_and_running_ones_stay(store: Store) {
    use agentport::model::{Run, RunStatus, Trigger};
    let contract = r#"{"type":"create_contract","data":{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","chain_id":1,"abi":"[]"}}"#;
    let Request::CreateContract(c) = Inbound::parse(contract).request.unwrap() else {
        panic!()
    };
    let mut tx = store.begin().await.unwrap();
    tx.upsert_contract(&c.body).await.unwrap();
    let agent = create_agent(
        r#"{"type":"create_agent","data":{"contractId":"0x5FbDB2315678afecb367f032d93F642f64180aa3"}}"#,
    );
    tx.upsert_agent("a", &agent, "local").await.unwrap();
    for (i, status) in [
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Running,
        RunStatus::Succeeded,
    ]
    .into_iter()
    .enumerate()
    {
        let run = Run {
            run_id: format!("r{i}"),
            agent_id: "a".into(),
            trigger: Trigger::Manual,
            status,
            request: None,
            result: None,
            error: None,
            started_at: format!("2024-01-01T00:00:0{i}.000Z"),
            finished_at: None,
        };
        tx.insert_run(&run).await.unwrap();
    }
    tx.commit().await.unwrap();
    // Keep the newest one per agent: r3 stays, r2 is running and stays too.
    assert_eq!(store.prune_runs(1, None).await.unwrap(), 2);
    let mut kept: Vec<String> = store
        .runs("a", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    kept.sort();
    assert_eq!(kept, ["r2", "r3"]);
    // A page after a run that is gone (pruned between two pages) goes on
    // from where that run was.
    let gone = agentport::model::PageCursor {
        at: "2024-01-01T00:00:02.500Z".into(),
        id: "gone".into(),
    };
    let next = store.runs_before("a", Some(&gone), 10).await.unwrap();
    let ids: Vec<&str> = next.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["r2"]);
}

/// A database that holds a lock does not hold a command: it fails within the
/// configured timeout with a clear error, and the server goes on.
#[tokio::test]
async fn a_locked_database_fails_a_command_within_the_timeout() {
    use sqlx::{Connection, Executor};
    let schema = PgSchema::create().await;
    let server = common::TestServer::start_on(&schema.url, |c| {
        c.db_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let mut holder = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE {}.contracts IN ACCESS EXCLUSIVE MODE",
            schema.name
        )))
        .await
        .unwrap();
    let mut client = common::client::Client::new(server.connect("locked").await);
    let started = std::time::Instant::now();
    let message = client
        .fails(
            "create_contract",
            serde_json::json!({"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                               "chain_id": 1, "abi": "[]"}),
        )
        .await;
    assert!(message.contains("internal error"), "{message}");
    assert!(started.elapsed() < common::DEADLINE);
    holder.execute("ROLLBACK").await.unwrap();
    client
        .ok(
            "create_contract",
            serde_json::json!({"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                               "chain_id": 1, "abi": "[]"}),
        )
        .await;
    server.shutdown().await.unwrap();
}
