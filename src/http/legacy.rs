//! The two read endpoints the existing frontend calls on its database API, with
//! the same shapes: JSON arrays of snake_case rows.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use serde_json::{Value, json};

use super::error::ApiError;
use crate::{
    agents::commands::{AgentsOfContract, ListFunctions},
    model::{Caller, abi},
    state::AppState,
};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/db/agents/{id}", get(agents_of_contract))
        .route("/api/db/agents/{id}/functions", get(functions_of_agent))
        .layer(axum::middleware::map_response(super::redacted))
}

/// `GET /api/db/agents/{contract_address}`: the agents acting on a contract.
async fn agents_of_contract(
    State(state): State<Arc<AppState>>,
    Path(address): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let command = AgentsOfContract { address };
    let agents = state.manager.handle(&caller, command).await?;
    Ok(Json(
        agents
            .into_iter()
            .map(|a| {
                json!({
                    "agent_id": a.agent_id, "contract_id": a.contract_id, "name": a.name,
                    "description": a.description, "status": a.status,
                    "gas_limit": a.gas_limit, "max_priority_fee": a.max_priority_fee,
                    "owner": a.owner, "contract_state": a.contract_state,
                    "created_at": a.created_at, "updated_at": a.updated_at,
                })
            })
            .collect(),
    ))
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
