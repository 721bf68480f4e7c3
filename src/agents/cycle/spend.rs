//! The daily value limit: wei is reserved before a payable send and given back
//! when the transaction does not go through, so a crash in between counts as
//! spent (the limit fails closed).

use alloy::primitives::U256;

use crate::{
    agents::recorder::{Recorder, internal},
    model::Agent,
};

/// The UTC day a spend counts for.
fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn wei(text: Option<&str>) -> U256 {
    text.and_then(|t| t.parse().ok()).unwrap_or(U256::ZERO)
}

/// Reserves `value` of today's allowance; returns the day it was taken from,
/// or why it does not fit.
pub(super) async fn reserve(rec: &Recorder, agent: &Agent, value: U256) -> Result<String, String> {
    let day = today();
    if value.is_zero() {
        return Ok(day);
    }
    let limit = wei(Some(&agent.max_value_wei_per_day));
    let failed = |e| internal(e).to_string();
    let mut change = rec.begin().await.map_err(|e| e.to_string())?;
    let spent = wei(change
        .tx
        .spent(&agent.agent_id, &day)
        .await
        .map_err(failed)?
        .as_deref());
    let total = spent.saturating_add(value);
    if total > limit {
        return Err(format!(
            "value {value} wei would bring today's total to {total} wei, over the agent's \
             limit of {limit} wei per day"
        ));
    }
    let tx = &mut change.tx;
    tx.set_spent(&agent.agent_id, &day, &total.to_string())
        .await
        .map_err(failed)?;
    rec.commit(change, &agent.contract_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(day)
}

/// Gives back a reservation (of `day`) whose transaction did not go through.
pub(super) async fn release(rec: &Recorder, agent: &Agent, value: U256, day: &str) {
    if value.is_zero() {
        return;
    }
    let released = async {
        let mut change = rec.begin().await?;
        let spent = change
            .tx
            .spent(&agent.agent_id, day)
            .await
            .map_err(internal)?;
        let left = wei(spent.as_deref()).saturating_sub(value).to_string();
        let tx = &mut change.tx;
        tx.set_spent(&agent.agent_id, day, &left)
            .await
            .map_err(internal)?;
        rec.commit(change, &agent.contract_id).await
    };
    if let Err(error) = released.await {
        tracing::warn!(%error, agent = %agent.agent_id, "a value reservation was not given back");
    }
}
