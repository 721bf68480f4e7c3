//! The run's write-ahead journal: each signed transaction becomes an action
//! row (state `sent`) in a committed transaction before it is broadcast, and
//! is settled when it is final.

use futures_util::{FutureExt, future::BoxFuture};
use serde_json::Value;

use crate::{
    agents::{
        executor::{Journal, Settled, SignedTx},
        recorder::{Recorder, internal},
    },
    model::{Action, ActionState, Agent},
};

pub(super) struct RunJournal<'a> {
    pub rec: &'a Recorder,
    /// A stopped run sends nothing more, even if it was already signing.
    pub cancel: &'a tokio_util::sync::CancellationToken,
    pub agent: &'a Agent,
    pub run_id: &'a str,
    pub function: &'a str,
    pub args: &'a Value,
    pub value_wei: String,
}

impl Journal for RunJournal<'_> {
    fn signed<'a>(&'a self, tx: SignedTx<'a>) -> BoxFuture<'a, Result<(), String>> {
        async move {
            if self.cancel.is_cancelled() {
                return Err("the run was stopped before the transaction was sent".into());
            }
            let action = Action {
                action_id: uuid::Uuid::new_v4().to_string(),
                run_id: self.run_id.to_string(),
                agent_id: self.agent.agent_id.clone(),
                function: self.function.to_string(),
                args: self.args.to_string(),
                value_wei: self.value_wei.clone(),
                nonce: tx.nonce,
                tx_hash: tx.tx_hash.to_string(),
                from: tx.from.to_string(),
                raw_tx: tx.raw.to_string(),
                state: ActionState::Sent,
                gas_used: None,
                block: None,
                created_at: crate::model::now(),
            };
            let mut change = self.rec.begin().await.map_err(|e| e.to_string())?;
            let inserted = change.tx.insert_action(&action).await;
            inserted.map_err(|e| internal(e).to_string())?;
            let contract = &self.agent.contract_id;
            self.rec
                .commit(change, contract)
                .await
                .map_err(|_| "the action could not be recorded: nothing was sent".to_string())
        }
        .boxed()
    }

    fn settled<'a>(&'a self, tx_hash: &'a str, settled: Settled) -> BoxFuture<'a, ()> {
        settle(self.rec, &self.agent.contract_id, tx_hash, settled).boxed()
    }

    fn withdrawn<'a>(&'a self, tx_hash: &'a str) -> BoxFuture<'a, ()> {
        async move {
            let done = async {
                let mut change = self.rec.begin().await?;
                change.tx.withdraw_action(tx_hash).await.map_err(internal)?;
                self.rec.commit(change, &self.agent.contract_id).await
            };
            if let Err(error) = done.await {
                tracing::warn!(%error, tx_hash, "a refused transaction stays recorded");
            }
        }
        .boxed()
    }
}

/// Records where the action of `tx_hash` ended.
pub(crate) async fn settle(rec: &Recorder, contract: &str, tx_hash: &str, settled: Settled) {
    let done = async {
        let mut change = rec.begin().await?;
        let tx = &mut change.tx;
        tx.settle_action_by_hash(tx_hash, settled.state, settled.gas_used, settled.block)
            .await
            .map_err(internal)?;
        rec.commit(change, contract).await
    };
    if let Err(error) = done.await {
        tracing::warn!(%error, tx_hash, "an action's end was not recorded; reconciliation will");
    }
}
