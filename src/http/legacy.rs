//! The two read endpoints the existing frontend calls on its database API, with
//! the same shapes: JSON arrays of snake_case rows.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    response::IntoResponse,
    routing::get,
};
use serde_json::{Value, json};

use super::{
    api::{Cursor, next_cursor},
    error::ApiError,
};
use crate::{
    agents::commands::{AgentsOfContract, ListFunctions},
    model::{Agent, Caller, abi},
    state::AppState,
};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/db/agents/{id}", get(agents_of_contract))
        .route("/api/db/agents/{id}/functions", get(functions_of_agent))
        .layer(axum::middleware::map_response(super::redacted))
}

/// `GET /api/db/agents/{contract_address}`: the agents acting on a contract,
/// in creation order. The frontend reads one array; it is a page (`limit`,
/// default and at most 1000) and `X-Next-Cursor` says where the next starts.
async fn agents_of_contract(
    State(state): State<Arc<AppState>>,
    Path(address): Path<String>,
    Query(page): Query<Cursor>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let command = AgentsOfContract {
        address,
        after: page.after()?,
        limit: page.limit.unwrap_or(1000).clamp(1, 1000),
    };
    let page = state.manager.handle(&caller, command).await?;
    let rows: Vec<Value> = page.agents.into_iter().map(row).collect();
    Ok((next_cursor(page.next), Json(rows)))
}

/// An agent as the frontend's database API returned it.
fn row(a: Agent) -> Value {
    json!({
        "agent_id": a.agent_id, "contract_id": a.contract_id, "name": a.name,
        "description": a.description, "status": a.status,
        "gas_limit": a.gas_limit, "max_priority_fee": a.max_priority_fee,
        "owner": a.owner, "contract_state": a.contract_state,
        "created_at": a.created_at, "updated_at": a.updated_at,
    })
}

/// `GET /api/db/agents/{agent_id}/functions`: an agent's functions.
async fn functions_of_agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let functions = state
        .manager
        .handle(&caller, ListFunctions { agent_id })
        .await?;
    Ok(Json(
        functions
            .into_iter()
            .map(|f| {
                json!({
                    "function_id": f.function_id, "agent_id": f.agent_id,
                    "function_name": f.function_name, "function_signature": f.function_signature,
                    "function_type": f.function_type, "is_enabled": f.is_enabled,
                    "validation_rules": f.validation_rules,
                    "parameters": abi::parameters(f.abi.as_ref()), "abi": f.abi,
                })
            })
            .collect(),
    ))
}
