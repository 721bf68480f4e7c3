//! Per-agent fan-out of events to the sessions of this process.
//!
//! Sessions subscribe to topics: an agent id, or a contract address (every agent
//! acting on it). An event is encoded once and shared by reference with every
//! subscriber; each session orders, de-duplicates and gap-fills what it gets
//! (see `ws::subscriptions`), so the hub itself never waits.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

use crate::{
    protocol::{CloseCode, events},
    store::StoredEvent,
    ws::registry::{Control, Ending},
};

/// What a session can follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    Agent(String),
    /// A contract address, lowercase.
    Contract(String),
}

/// One stored event, ready to be written to any number of sockets.
#[derive(Debug)]
pub struct Event {
    pub agent_id: String,
    pub seq: u64,
    /// The event type, as a bounded metric label.
    pub kind: &'static str,
    pub text: Utf8Bytes,
}

impl Event {
    pub fn from_stored(event: StoredEvent) -> Self {
        Self {
            kind: events::label(&event.kind),
            agent_id: event.agent_id,
            seq: event.seq,
            text: Utf8Bytes::from(event.text),
        }
    }
}

/// What reaches a session's inbox: an event, or a reply finished in the
/// background (e.g. a run's outcome, after the run's own events).
#[derive(Debug)]
pub enum Delivery {
    Event(Arc<Event>),
    Reply(crate::protocol::Frame),
}

/// A session's inbox.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub tx: mpsc::Sender<Delivery>,
    pub control: Control,
}

#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, HashMap<u64, Subscriber>>>,
}

impl Hub {
    pub fn subscribe(&self, topic: Topic, session: u64, subscriber: Subscriber) {
        self.lock()
            .entry(topic)
            .or_default()
            .insert(session, subscriber);
    }

    pub fn unsubscribe(&self, topic: &Topic, session: u64) {
        let mut topics = self.lock();
        if let Some(sessions) = topics.get_mut(topic) {
            sessions.remove(&session);
            if sessions.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Delivers an event of an agent acting on `contract` to the subscribers of
    /// the agent and of the contract, once per session. A session whose inbox is
    /// full is closed with 1013: it resumes with `since`.
    pub fn publish(&self, event: Arc<Event>, contract: &str) {
        let mut targets: HashMap<u64, Subscriber> = HashMap::new();
        {
            let topics = self.lock();
            for topic in [
                Topic::Agent(event.agent_id.clone()),
                Topic::Contract(contract.to_ascii_lowercase()),
            ] {
                if let Some(sessions) = topics.get(&topic) {
                    for (id, subscriber) in sessions {
                        targets.entry(*id).or_insert_with(|| subscriber.clone());
                    }
                }
            }
        }
        for subscriber in targets.into_values() {
            if let Err(mpsc::error::TrySendError::Full(_)) =
                subscriber.tx.try_send(Delivery::Event(Arc::clone(&event)))
            {
                subscriber.control.end(Ending::Server(
                    CloseCode::TryAgainLater,
                    "slow consumer: reconnect with since",
                ));
            }
        }
    }

    /// Subscriptions held now (for tests and metrics).
    pub fn subscription_count(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, HashMap<u64, Subscriber>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(agent: &str, seq: u64) -> Arc<Event> {
        Arc::new(Event {
            agent_id: agent.into(),
            seq,
            kind: "log",
            text: Utf8Bytes::from_static("{}"),
        })
    }

    #[test]
    fn events_reach_agent_and_contract_subscribers_once_each() {
        let hub = Hub::default();
        let (tx1, mut rx1) = mpsc::channel(8);
        let (tx2, mut rx2) = mpsc::channel(8);
        let (tx3, mut rx3) = mpsc::channel(8);
        let sub = |tx| Subscriber {
            tx,
            control: Control::default(),
        };
        hub.subscribe(Topic::Agent("a".into()), 1, sub(tx1.clone()));
        hub.subscribe(Topic::Contract("0xab".into()), 1, sub(tx1));
        hub.subscribe(Topic::Contract("0xab".into()), 2, sub(tx2));
        hub.subscribe(Topic::Agent("b".into()), 3, sub(tx3));
        hub.publish(event("a", 1), "0xAB");
        let seq = |d: Delivery| match d {
            Delivery::Event(e) => e.seq,
            Delivery::Reply(_) => panic!("not an event"),
        };
        assert_eq!(seq(rx1.try_recv().unwrap()), 1);
        assert!(rx1.try_recv().is_err(), "one copy per session");
        assert_eq!(seq(rx2.try_recv().unwrap()), 1);
        assert!(rx3.try_recv().is_err(), "never other agents' events");
        hub.unsubscribe(&Topic::Agent("a".into()), 1);
        hub.unsubscribe(&Topic::Contract("0xab".into()), 1);
        assert_eq!(hub.subscription_count(), 2);
    }

    #[test]
    fn a_full_inbox_closes_that_session_only() {
        let hub = Hub::default();
        let (tx, _rx) = mpsc::channel(1);
        let control = Control::default();
        hub.subscribe(
            Topic::Agent("a".into()),
            1,
            Subscriber {
                tx,
                control: control.clone(),
            },
        );
        hub.publish(event("a", 1), "0x");
        assert!(control.ending().is_none());
        hub.publish(event("a", 2), "0x");
        assert_eq!(
            control.ending(),
            Some(Ending::Server(
                CloseCode::TryAgainLater,
                "slow consumer: reconnect with since"
            ))
        );
    }
}
