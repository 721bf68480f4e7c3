//! Local stand-ins for remote services a test cannot reach (an LLM API, the
//! contract API, notification receivers): real HTTP servers on 127.0.0.1 that
//! record what they receive and answer from a script.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::{Value, json};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Answers per path prefix, used in order; the last one repeats.
    answers: Vec<(String, VecDeque<(u16, Value)>)>,
    /// Paths that never answer (to hold a run in progress).
    hang: Vec<String>,
}

#[derive(Clone, Default)]
pub struct FakeServer {
    shared: Arc<Mutex<Shared>>,
    pub addr: Option<SocketAddr>,
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let mut server = FakeServer::default();
        let app = Router::new()
            .route("/{*path}", post(handle))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        server.addr = Some(listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr.unwrap(), path)
    }

    /// Answers requests whose path starts with `prefix` with `answers` in turn.
    pub fn script(&self, prefix: &str, answers: Vec<(u16, Value)>) {
        let mut shared = self.shared.lock().unwrap();
        shared.answers.retain(|(p, _)| p != prefix);
        shared.answers.push((prefix.to_string(), answers.into()));
    }

    pub fn hang(&self, prefix: &str) {
        self.shared.lock().unwrap().hang.push(prefix.to_string());
    }

    pub fn unhang(&self) {
        self.shared.lock().unwrap().hang.clear();
    }

    pub fn received(&self, prefix: &str) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

async fn handle(
    State(server): State<FakeServer>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let path = format!("/{path}");
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let (answer, hang) = {
        let mut shared = server.shared.lock().unwrap();
        shared.received.push(Received {
            path: path.clone(),
            headers,
            body,
        });
        let hang = shared.hang.iter().any(|p| path.starts_with(p.as_str()));
        let answer = shared
            .answers
            .iter_mut()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .and_then(|(_, queue)| {
                if queue.len() > 1 {
                    queue.pop_front()
                } else {
                    queue.front().cloned()
                }
            });
        (answer, hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let (status, body) = answer.unwrap_or((200, json!({"ok": true})));
    (StatusCode::from_u16(status).unwrap(), Json(body))
}
