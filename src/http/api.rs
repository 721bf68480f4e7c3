//! The REST API under `/api/v1`, over the same agent manager as the WebSocket:
//! the same fields, the same validation, the same events for subscribers.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::error::ApiError;
use crate::{
    agents::model::{Agent, AgentDetails, Contract, Function, Notification, Run, Schedule},
    app::AppState,
    protocol::{ErrorCode, ProtocolError, Request},
};

type Result<T> = std::result::Result<T, ApiError>;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
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
        .route("/api/v1/agents/{id}/events", get(list_events))
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
    components(schemas(Agent, AgentDetails, Contract, Function, Schedule, Notification, Run))
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
    kind: &'static str,
    mut body: Map<String, Value>,
    agent_id: Option<&str>,
) -> Result<Request> {
    if let Some(id) = agent_id {
        body.insert("agent_id".into(), json!(id));
    }
    Ok(Request::from_body(kind, body)?)
}

#[utoipa::path(post, path = "/api/v1/contracts", request_body(content = Object,
    description = "As `create_contract`: address, chain_id, name, type, abi (array or JSON string)…"),
    responses((status = 200, body = Contract), (status = 400, description = "invalid field")))]
async fn create_contract(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Contract>> {
    let Request::CreateContract(r) = request("create_contract", object(&body)?, None)? else {
        unreachable!()
    };
    Ok(Json(state.manager.create_contract(&r).await?))
}

#[utoipa::path(get, path = "/api/v1/agents", responses((status = 200, body = Vec<Agent>)))]
async fn list_agents(State(state): State<Arc<AppState>>) -> Result<Json<Vec<Agent>>> {
    Ok(Json(state.manager.agents().await?))
}

#[utoipa::path(post, path = "/api/v1/agents", request_body(content = Object,
    description = "As `create_agent`: agent_id (optional; generated when missing), contractId, name, description, status, gas_limit, max_priority_fee, owner, contract_state, policy"),
    responses((status = 201, body = Agent), (status = 400), (status = 404, description = "contract not registered")))]
async fn create_agent(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let mut body = object(&body)?;
    if !body.contains_key("agent_id") && !body.contains_key("agentId") {
        body.insert("agent_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    let Request::CreateAgent(r) = request("create_agent", body, None)? else {
        unreachable!()
    };
    let id = r.agent_id.clone().expect("set above");
    Ok((
        StatusCode::CREATED,
        Json(state.manager.create_agent(&id, &r).await?),
    ))
}

#[utoipa::path(put, path = "/api/v1/agents/{id}", request_body(content = Object, description = "As `create_agent`"),
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = 400), (status = 404)))]
async fn put_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Agent>> {
    let Request::CreateAgent(r) = request("create_agent", object(&body)?, Some(&id))? else {
        unreachable!()
    };
    Ok(Json(state.manager.create_agent(&id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, description = "the agent, its functions, schedule, notifications and state"), (status = 404)))]
async fn get_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let details = state.manager.details(&id).await?;
    let agent_state = state.manager.state(&details).await?;
    let mut body = serde_json::to_value(&details)
        .map_err(|e| ApiError::from(ProtocolError::new(ErrorCode::Internal, e.to_string())))?;
    body["state"] = agent_state;
    Ok(Json(body))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", params(("id" = String, Path, description = "agent id")),
    responses((status = 204), (status = 404)))]
async fn delete_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.manager.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/functions", request_body(content = Object,
    description = "As `create_function`"), params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Function), (status = 400), (status = 404)))]
async fn create_function(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Function>> {
    let Request::CreateFunction(r) = request("create_function", object(&body)?, Some(&id))? else {
        unreachable!()
    };
    Ok(Json(state.manager.create_function(&id, &r).await?))
}

#[utoipa::path(put, path = "/api/v1/agents/{id}/schedule", request_body(content = Object,
    description = "As `create_schedule`"), params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Schedule), (status = 400), (status = 404)))]
async fn put_schedule(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Schedule>> {
    let Request::CreateSchedule(r) = request("create_schedule", object(&body)?, Some(&id))? else {
        unreachable!()
    };
    Ok(Json(state.manager.create_schedule(&id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/notifications", request_body(content = Object,
    description = "As `create_notification`"), params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Notification), (status = 400), (status = 404)))]
async fn create_notification(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Notification>> {
    let Request::CreateNotification(r) = request("create_notification", object(&body)?, Some(&id))?
    else {
        unreachable!()
    };
    Ok(Json(state.manager.create_notification(&id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/start", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = 404)))]
async fn start_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Agent>> {
    Ok(Json(state.manager.start(&id).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/stop", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = 404)))]
async fn stop_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Agent>> {
    Ok(Json(state.manager.stop(&id).await?))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/execute", params(("id" = String, Path, description = "agent id")),
    request_body(content = Object, description = "optional: {functions, contract} as the execution view sends them"),
    responses((status = 200, description = "the run: status, run_id, message, results, logs"), (status = 404)))]
async fn execute_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    let request = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        Value::Object(object(&body)?)
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let run = state.manager.execute(&id, &run_id, request).await?;
    Ok(Json(json!({
        "status": if run.ok { "success" } else { "error" },
        "agent_id": id, "run_id": run.run_id, "message": run.message,
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

#[utoipa::path(get, path = "/api/v1/agents/{id}/runs", params(("id" = String, Path, description = "agent id"), Page),
    responses((status = 200, body = Vec<Run>), (status = 404)))]
async fn list_runs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Run>>> {
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(state.manager.runs(&id, limit).await?))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/events", params(("id" = String, Path, description = "agent id"), Page),
    responses((status = 200, description = "{agent_id, last_seq, oldest_seq, events: [frames]}"),
              (status = 410, description = "history_truncated: `since` is older than what is kept")))]
async fn list_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Value>> {
    let since = page.since.unwrap_or(0);
    let limit = page.limit.unwrap_or(500).clamp(1, 5000);
    let bounds = state.manager.stream_bounds(&id).await?;
    if let Some(oldest) = bounds.oldest_seq
        && since + 1 < oldest
    {
        return Err(ApiError {
            error: ProtocolError::new(
                ErrorCode::HistoryTruncated,
                format!("events after seq {since} are no longer kept; the oldest kept is {oldest}"),
            ),
            extra: json!({"oldest_seq": oldest}),
        });
    }
    let events = state.manager.events_since(&id, since, limit).await?;
    let events: Vec<Value> = events
        .into_iter()
        .filter_map(|e| serde_json::from_str(&e.text).ok())
        .collect();
    Ok(Json(json!({"agent_id": id, "last_seq": bounds.last_seq,
                   "oldest_seq": bounds.oldest_seq, "events": events})))
}
