//! The durable per-agent event stream: gap-free sequence numbers allocated in
//! the transaction that stores the event, replay after a seq, and retention.

use sqlx::{Row, any::AnyRow};

use super::{Result, Store, StoreError, StoreTx};
use crate::model::{EventBody, EventKind, StoredEvent, StreamBounds, now};

fn stored(row: &AnyRow) -> Result<StoredEvent> {
    let kind: String = row.try_get("event_type")?;
    Ok(StoredEvent {
        agent_id: row.try_get("agent_id")?,
        seq: row.try_get::<i64, _>("seq")?.max(0) as u64,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("event type `{kind}`")))?,
        text: row.try_get("frame")?,
    })
}

impl StoreTx {
    /// Deletes an agent's stored events; its seq goes on from where it was,
    /// so a later agent with the same id never replays this one's history.
    pub async fn delete_events(&mut self, agent_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM events WHERE agent_id = $1")
            .bind(agent_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Gives the event the agent's next seq and stores it. In PostgreSQL the
    /// stream row stays locked until commit, so seqs commit in order.
    pub async fn append_event(
        &mut self,
        agent_id: &str,
        event: impl EventBody,
    ) -> Result<StoredEvent> {
        let seq: i64 = sqlx::query(
            "INSERT INTO agent_streams (agent_id, last_seq) VALUES ($1, 1) \
             ON CONFLICT (agent_id) DO UPDATE SET last_seq = agent_streams.last_seq + 1 \
             RETURNING last_seq",
        )
        .bind(agent_id)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("last_seq")?;
        let text = event.render(seq as u64);
        sqlx::query(
            "INSERT INTO events (agent_id, seq, event_type, frame, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(agent_id)
        .bind(seq)
        .bind(event.kind().as_str())
        .bind(&text)
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(StoredEvent {
            agent_id: agent_id.to_string(),
            seq: seq as u64,
            kind: event.kind(),
            text,
        })
    }
}

impl Store {
    /// Stored events of `agent_id` with seq > `since`, oldest first, at most `limit`.
    pub async fn events_since(
        &self,
        agent_id: &str,
        since: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        sqlx::query(
            "SELECT agent_id, seq, event_type, frame FROM events \
             WHERE agent_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(agent_id)
        .bind(since.min(i64::MAX as u64) as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(stored)
        .collect()
    }

    pub async fn stream_bounds(&self, agent_id: &str) -> Result<StreamBounds> {
        let row = sqlx::query(
            "SELECT (SELECT last_seq FROM agent_streams WHERE agent_id = $1) AS last_seq, \
             (SELECT MIN(seq) FROM events WHERE agent_id = $1) AS oldest_seq",
        )
        .bind(agent_id)
        .fetch_one(&self.pool)
        .await?;
        let last: Option<i64> = row.try_get("last_seq")?;
        let oldest: Option<i64> = row.try_get("oldest_seq")?;
        Ok(StreamBounds {
            last_seq: last.unwrap_or(0).max(0) as u64,
            oldest_seq: oldest.map(|s| s.max(0) as u64),
        })
    }

    /// Applies retention: keeps at most `keep_per_agent` events per agent, and
    /// none older than `older_than` (RFC 3339). Returns how many were removed.
    pub async fn prune_events(
        &self,
        keep_per_agent: Option<u64>,
        older_than: Option<&str>,
    ) -> Result<u64> {
        let _turn = self.write_turn().await;
        let mut removed = 0;
        if let Some(keep) = keep_per_agent {
            removed += sqlx::query(
                "DELETE FROM events WHERE seq <= \
                 (SELECT s.last_seq FROM agent_streams s WHERE s.agent_id = events.agent_id) - $1",
            )
            .bind(keep.min(i64::MAX as u64) as i64)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        if let Some(cutoff) = older_than {
            removed += sqlx::query("DELETE FROM events WHERE created_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }
}
