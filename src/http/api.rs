//! The REST API under `/api/v1`, over the same agent manager as the WebSocket:
//! the same fields, the same validation, the same events for subscribers.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, IntoResponseParts},
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::error::ApiError;
use crate::{
    agents::{
        Command, RunOutcome,
        commands::{
            AddFunction, AgentView, CreateAgent, Describe, Execute, ListAgents, ListRuns,
            RegisterContract, Remove, SetNotification, SetSchedule, Start, Stop,
        },
    },
    model::{
        Agent, AgentDetails, AgentState, Caller, Contract, Function, Notification, PageCursor, Run,
        Schedule,
    },
    protocol::{ErrorCode, MessageType, ProtocolError, Request, requests::AgentRequest},
    state::AppState,
};

type Result<T> = std::result::Result<T, ApiError>;

pub fn router() -> Router<Arc<AppState>> {
    let routes = Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/contracts", post(create_contract))
        .route("/api/v1/agents", get(list_agents).post(create_agent))
        .route(
            "/api/v1/agents/{id}",
            get(get_agent).put(put_agent).delete(delete_agent),
        )
        .route("/api/v1/agents/{id}/functions", post(create_function))
        .route("/api/v1/agents/{id}/schedule", put(put_schedule))
        .route(
            "/api/v1/agents/{id}/notifications",
            post(create_notification),
        )
        .route("/api/v1/agents/{id}/start", post(start_agent))
        .route("/api/v1/agents/{id}/stop", post(stop_agent))
        .route("/api/v1/agents/{id}/execute", post(execute_agent))
        .route("/api/v1/agents/{id}/runs", get(list_runs))
        .route("/api/v1/agents/{id}/events", get(list_events));
    routes
        .layer(axum::middleware::from_fn(super::same_site_writes))
        .layer(axum::middleware::map_response(super::redacted))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentport",
        description = "Agents over REST; the same manager as the agent WebSocket."
    ),
    paths(
        create_contract,
        list_agents,
        create_agent,
        get_agent,
        put_agent,
        delete_agent,
        create_function,
        put_schedule,
        create_notification,
        start_agent,
        stop_agent,
        execute_agent,
        list_runs,
        list_events
    ),
    components(schemas(
        Agent,
        AgentDetails,
        AgentState,
        AgentView,
        Contract,
        Function,
        Schedule,
        Notification,
        Run
    ))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: generated from the handlers below.
async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// A JSON object body; anything else is a clear 400.
fn object(body: &Bytes) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => {
            Err(ProtocolError::new(ErrorCode::InvalidJson, "the body must be a JSON object").into())
        }
        Err(e) => Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            format!("invalid JSON body: {e}"),
        )
        .into()),
    }
}

/// Parses `body` as a request of type `kind`, the agent id taken from the path.
fn request(
    kind: MessageType,
    mut body: Map<String, Value>,
    agent_id: Option<&str>,
) -> Result<Request> {
    if let Some(id) = agent_id {
        body.insert("agent_id".into(), json!(id));
    }
    Ok(Request::from_body(kind, body)?)
}

/// Carries out a command as `caller`.
async fn handle<C: Command>(state: &AppState, caller: &Caller, command: C) -> Result<C::Output> {
    Ok(state.manager.handle(caller, command).await?)
}

/// The request's `AgentRequest`: `pick` takes it out of the parsed request.
fn parsed<T>(
    kind: MessageType,
    body: &Bytes,
    agent_id: Option<&str>,
    pick: impl FnOnce(Request) -> Option<AgentRequest<T>>,
) -> Result<AgentRequest<T>> {
    let request = request(kind, object(body)?, agent_id)?;
    Ok(pick(request).expect("the parser returns the type it was asked for"))
}

#[utoipa::path(post, path = "/api/v1/contracts", request_body(content = Object,
    description = "As `create_contract`: address, chain_id, name, type, abi (array or JSON string)…"),
    responses((status = 200, body = Contract), (status = 400, description = "invalid field")))]
async fn create_contract(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Contract>> {
    let r = parsed(MessageType::CreateContract, &body, None, |r| match r {
        Request::CreateContract(r) => Some(r),
        _ => None,
    })?;
    Ok(Json(
        handle(&state, &caller, RegisterContract(r.body)).await?,
    ))
}

/// A page of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct Cursor {
    /// Most items returned (default 100, at most 1000).
    pub(super) limit: Option<u32>,
    /// Where this page starts: the previous page's `X-Next-Cursor`.
    cursor: Option<String>,
}

impl Cursor {
    pub(super) fn after(&self) -> Result<Option<PageCursor>> {
        let cursor = self.cursor.as_deref().map(PageCursor::decode);
        Ok(cursor.transpose()?)
    }
}

#[utoipa::path(get, path = "/api/v1/agents", params(Cursor),
    responses((status = 200, body = Vec<Agent>,
               description = "a page; `X-Next-Cursor` names where the next one starts")))]
async fn list_agents(
    State(state): State<Arc<AppState>>,
    Query(page): Query<Cursor>,
    caller: Caller,
) -> Result<impl IntoResponse> {
    let command = ListAgents {
        after: page.after()?,
        limit: page.limit.unwrap_or(100).clamp(1, 1000),
    };
    let page = handle(&state, &caller, command).await?;
    Ok((next_cursor(page.next), Json(page.agents)))
}

fn agent_request(
    body: &Bytes,
    agent_id: Option<&str>,
) -> Result<AgentRequest<crate::model::NewAgent>> {
    parsed(MessageType::CreateAgent, body, agent_id, |r| match r {
        Request::CreateAgent(r) => Some(r),
        _ => None,
    })
}

#[utoipa::path(post, path = "/api/v1/agents", request_body(content = Object,
    description = "As `create_agent`: agent_id (optional; generated when missing), contractId, name, description, status, gas_limit, max_priority_fee, owner, contract_state, policy"),
    responses((status = 201, body = Agent), (status = 400), (status = 404, description = "contract not registered")))]
async fn create_agent(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let r = agent_request(&body, None)?;
    let agent_id = r
        .agent_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let command = CreateAgent {
        agent_id,
        agent: r.body,
    };
    Ok((
        StatusCode::CREATED,
        Json(handle(&state, &caller, command).await?),
    ))
}

#[utoipa::path(put, path = "/api/v1/agents/{id}", request_body(content = Object, description = "As `create_agent`"),
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = 400), (status = 404)))]
async fn put_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Agent>> {
    let r = agent_request(&body, Some(&id))?;
    let command = CreateAgent {
        agent_id: id,
        agent: r.body,
    };
    Ok(Json(handle(&state, &caller, command).await?))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = AgentView), (status = 404)))]
async fn get_agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
) -> Result<Json<AgentView>> {
    Ok(Json(handle(&state, &caller, Describe { agent_id }).await?))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", params(("id" = String, Path, description = "agent id")),
    responses((status = 204), (status = 404)))]
async fn delete_agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
) -> Result<StatusCode> {
    handle(&state, &caller, Remove { agent_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/functions", request_body(content = Object,
    description = "As `create_function`"), params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Function), (status = 400), (status = 404)))]
async fn create_function(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Function>> {
    let r = parsed(
        MessageType::CreateFunction,
        &body,
        Some(&agent_id),
        |r| match r {
            Request::CreateFunction(r) => Some(r),
            _ => None,
        },
    )?;
    let function = r.body;
    Ok(Json(
        handle(&state, &caller, AddFunction { agent_id, function }).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/agents/{id}/schedule", request_body(content = Object,
    description = "As `create_schedule`"), params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Schedule), (status = 400), (status = 404)))]
async fn put_schedule(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Schedule>> {
    let r = parsed(
        MessageType::CreateSchedule,
        &body,
        Some(&agent_id),
        |r| match r {
            Request::CreateSchedule(r) => Some(r),
            _ => None,
        },
    )?;
    let schedule = r.body;
    Ok(Json(
        handle(&state, &caller, SetSchedule { agent_id, schedule }).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/notifications", request_body(content = Object,
    description = "As `create_notification`"), params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Notification), (status = 400), (status = 404)))]
async fn create_notification(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Notification>> {
    let kind = MessageType::CreateNotification;
    let r = parsed(kind, &body, Some(&agent_id), |r| match r {
        Request::CreateNotification(r) => Some(r),
        _ => None,
    })?;
    let notification = r.body;
    let command = SetNotification {
        agent_id,
        notification,
    };
    Ok(Json(handle(&state, &caller, command).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/start", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = 404)))]
async fn start_agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
) -> Result<Json<Agent>> {
    Ok(Json(handle(&state, &caller, Start { agent_id }).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/stop", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = 404)))]
async fn stop_agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
) -> Result<Json<Agent>> {
    Ok(Json(handle(&state, &caller, Stop { agent_id }).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/execute", params(("id" = String, Path, description = "agent id")),
    request_body(content = Object, description = "optional: {functions, contract} as the execution view sends them"),
    responses((status = 200, description = "the run: status, run_id, message, results, logs"), (status = 404)))]
async fn execute_agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>> {
    // Stored with the run: bounded like the WebSocket's `data`.
    if body.len() > 64 * 1024 {
        let error = ProtocolError::new(ErrorCode::TooLarge, "the body is longer than 65536 bytes");
        return Err(error.into());
    }
    let params = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        Value::Object(object(&body)?)
    };
    let command = Execute {
        agent_id: agent_id.clone(),
        run_id: uuid::Uuid::new_v4().to_string(),
        params,
    };
    let run: RunOutcome = handle(&state, &caller, command).await?;
    Ok(Json(json!({
        "status": if run.ok { "success" } else { "error" },
        "agent_id": agent_id, "run_id": run.run_id, "message": run.message,
        "results": run.results, "logs": run.logs,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct Page {
    /// Most items returned (default 50, at most 500).
    limit: Option<u32>,
    /// Events with a seq above this one.
    since: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/runs", params(("id" = String, Path, description = "agent id"), Cursor),
    responses((status = 200, body = Vec<Run>), (status = 404)))]
async fn list_runs(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    Query(page): Query<Cursor>,
    caller: Caller,
) -> Result<impl IntoResponse> {
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let command = ListRuns {
        agent_id,
        limit,
        before: page.after()?,
    };
    let page = handle(&state, &caller, command).await?;
    Ok((next_cursor(page.next), Json(page.runs)))
}

/// `X-Next-Cursor`, when there may be a next page.
pub(super) fn next_cursor(next: Option<String>) -> impl IntoResponseParts {
    let next = next.and_then(|n| axum::http::HeaderValue::from_str(&n).ok());
    let name = axum::http::HeaderName::from_static("x-next-cursor");
    axum::response::AppendHeaders(next.map(|n| (name, n)))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/events", params(("id" = String, Path, description = "agent id"), Page),
    responses((status = 200, description = "{agent_id, last_seq, oldest_seq, events: [frames]}"),
              (status = 410, description = "history_truncated: `since` is older than what is kept")))]
async fn list_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
    caller: Caller,
) -> Result<Json<Value>> {
    let since = page.since.unwrap_or(0);
    let limit = page.limit.unwrap_or(500).clamp(1, 5000);
    let feed = state.manager.feed();
    let bounds = feed.bounds(&caller, &id).await?;
    if let Some(oldest) = bounds.truncated_after(since) {
        let mut error = ApiError::from(ProtocolError::new(
            ErrorCode::HistoryTruncated,
            format!("events after seq {since} are no longer kept; the oldest kept is {oldest}"),
        ));
        error.extra = json!({"oldest_seq": oldest});
        return Err(error);
    }
    let events = feed.events_since(&caller, &id, since, limit).await?;
    let events: Vec<Value> = events
        .into_iter()
        .filter_map(|e| serde_json::from_str(&e.text).ok())
        .collect();
    Ok(Json(json!({"agent_id": id, "last_seq": bounds.last_seq,
                   "oldest_seq": bounds.oldest_seq, "events": events})))
}
