//! Per-agent fan-out of events to the subscribers of this process.
//!
//! Subscribers follow topics: an agent id, or a contract address (every agent
//! acting on it). An event is encoded once and shared by reference with every
//! subscriber; each subscriber orders, de-duplicates and gap-fills what it gets
//! (see `ws::subscriptions`), so the hub itself never waits. The hub knows
//! nothing of what a subscriber is: an inbox that takes an event or is full.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::extract::ws::Utf8Bytes;

use crate::model::EventKind;

/// What a subscriber can follow.
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
    /// The contract the agent acts on, lowercase.
    pub contract: String,
    pub seq: u64,
    pub kind: EventKind,
    pub text: Utf8Bytes,
}

/// Where the hub puts a subscriber's events.
pub trait Inbox: Send + Sync {
    /// Takes the event without waiting; false when there is no room.
    fn offer(&self, event: &Arc<Event>) -> bool;
    /// Called once the inbox refused an event: the subscriber has lost one and
    /// must catch up (a session closes with 1013 and resumes with `since`).
    fn overflowed(&self);
}

/// A subscriber's inbox, shared by every topic it follows.
pub type Subscriber = Arc<dyn Inbox>;

type Topics = HashMap<Topic, HashMap<u64, Subscriber>>;

#[derive(Default)]
pub struct Hub {
    topics: Mutex<Topics>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscriptions", &self.subscription_count())
            .finish()
    }
}

impl Hub {
    /// `id` names the subscriber: one copy of an event per id.
    pub fn subscribe(&self, topic: Topic, id: u64, subscriber: Subscriber) {
        self.lock().entry(topic).or_default().insert(id, subscriber);
    }

    pub fn unsubscribe(&self, topic: &Topic, id: u64) {
        let mut topics = self.lock();
        if let Some(subscribers) = topics.get_mut(topic) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Delivers an event to the subscribers of its agent and of its contract,
    /// once per subscriber.
    pub fn publish(&self, event: Arc<Event>) {
        let mut targets: HashMap<u64, Subscriber> = HashMap::new();
        {
            let topics = self.lock();
            for topic in [
                Topic::Agent(event.agent_id.clone()),
                Topic::Contract(event.contract.clone()),
            ] {
                if let Some(subscribers) = topics.get(&topic) {
                    for (id, subscriber) in subscribers {
                        targets.entry(*id).or_insert_with(|| Arc::clone(subscriber));
                    }
                }
            }
        }
        for subscriber in targets.into_values() {
            if !subscriber.offer(&event) {
                subscriber.overflowed();
            }
        }
    }

    /// Subscriptions held now (for tests and metrics).
    pub fn subscription_count(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::mpsc;

    use super::*;

    struct Channel {
        tx: mpsc::Sender<Arc<Event>>,
        overflowed: AtomicBool,
    }

    impl Inbox for Channel {
        fn offer(&self, event: &Arc<Event>) -> bool {
            self.tx.try_send(Arc::clone(event)).is_ok()
        }

        fn overflowed(&self) {
            self.overflowed.store(true, Ordering::SeqCst);
        }
    }

    fn channel(capacity: usize) -> (Arc<Channel>, mpsc::Receiver<Arc<Event>>) {
        let (tx, rx) = mpsc::channel(capacity);
        let inbox = Arc::new(Channel {
            tx,
            overflowed: AtomicBool::new(false),
        });
        (inbox, rx)
    }

    fn event(agent: &str, seq: u64) -> Arc<Event> {
        Arc::new(Event {
            agent_id: agent.into(),
            contract: "0xab".into(),
            seq,
            kind: EventKind::Log,
            text: Utf8Bytes::from_static("{}"),
        })
    }

    #[test]
    fn events_reach_agent_and_contract_subscribers_once_each() {
        let hub = Hub::default();
        let (one, mut rx1) = channel(8);
        let (two, mut rx2) = channel(8);
        let (three, mut rx3) = channel(8);
        hub.subscribe(Topic::Agent("a".into()), 1, one.clone());
        hub.subscribe(Topic::Contract("0xab".into()), 1, one);
        hub.subscribe(Topic::Contract("0xab".into()), 2, two);
        hub.subscribe(Topic::Agent("b".into()), 3, three);
        hub.publish(event("a", 1));
        assert_eq!(rx1.try_recv().unwrap().seq, 1);
        assert!(rx1.try_recv().is_err(), "one copy per subscriber");
        assert_eq!(rx2.try_recv().unwrap().seq, 1);
        assert!(rx3.try_recv().is_err(), "never other agents' events");
        hub.unsubscribe(&Topic::Agent("a".into()), 1);
        hub.unsubscribe(&Topic::Contract("0xab".into()), 1);
        assert_eq!(hub.subscription_count(), 2);
    }

    #[test]
    fn a_full_inbox_is_told_so_and_others_still_receive() {
        let hub = Hub::default();
        let (slow, _rx) = channel(1);
        let (fast, mut fast_rx) = channel(8);
        hub.subscribe(Topic::Agent("a".into()), 1, slow.clone());
        hub.subscribe(Topic::Agent("a".into()), 2, fast);
        hub.publish(event("a", 1));
        assert!(!slow.overflowed.load(Ordering::SeqCst));
        hub.publish(event("a", 2));
        assert!(slow.overflowed.load(Ordering::SeqCst));
        assert_eq!(fast_rx.try_recv().unwrap().seq, 1);
        assert_eq!(fast_rx.try_recv().unwrap().seq, 2);
    }
}
