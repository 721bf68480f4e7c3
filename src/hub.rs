//! Per-agent fan-out of events to the subscribers of this process.
//!
//! Subscribers follow topics: an agent id, or a contract address (every agent
//! acting on it). An event is encoded once and shared by reference with every
//! subscriber; each subscriber orders, de-duplicates and gap-fills what it gets
//! (see `ws::subscriptions`), so the hub itself never waits on one. The hub
//! knows nothing of what a subscriber is: an inbox that takes an event or is full.
//!
//! Publishing only queues the event: one fan-out task hands it to the
//! subscribers, so a command's cost does not grow with the number of people
//! watching its agent. The queue is bounded; a publisher waits only when the
//! fan-out is that far behind (memory stays bounded under any load).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::{model::EventKind, telemetry::names};

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

type Followers = HashMap<u64, Subscriber>;
type Topics = HashMap<Topic, Followers>;

/// Events waiting for the fan-out task before publishers wait.
const FANOUT_QUEUE: usize = 4096;

/// What the fan-out task works through, in order.
enum Job {
    Event(Arc<Event>),
    /// Answered once every event queued before it has been handed over.
    Barrier(oneshot::Sender<()>),
}

pub struct Hub {
    topics: Arc<RwLock<Topics>>,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscriptions", &self.subscription_count())
            .finish()
    }
}

impl Hub {
    /// Starts the fan-out task (on the current runtime); it ends with the hub.
    pub fn start() -> Arc<Hub> {
        let topics = Arc::new(RwLock::new(Topics::new()));
        let (jobs, queue) = mpsc::channel(FANOUT_QUEUE);
        tokio::spawn(fan_out(queue, Arc::clone(&topics)));
        Arc::new(Hub { topics, jobs })
    }

    /// `id` names the subscriber: one copy of an event per id.
    pub fn subscribe(&self, topic: Topic, id: u64, subscriber: Subscriber) {
        let mut topics = write(&self.topics);
        if topics
            .entry(topic)
            .or_default()
            .insert(id, subscriber)
            .is_none()
        {
            metrics::gauge!(names::HUB_SUBSCRIPTIONS).increment(1.0);
        }
    }

    pub fn unsubscribe(&self, topic: &Topic, id: u64) {
        let mut topics = write(&self.topics);
        let Some(followers) = topics.get_mut(topic) else {
            return;
        };
        if followers.remove(&id).is_some() {
            metrics::gauge!(names::HUB_SUBSCRIPTIONS).decrement(1.0);
        }
        if followers.is_empty() {
            topics.remove(topic);
        }
    }

    /// Queues an event for the subscribers of its agent and of its contract
    /// (once per subscriber). Waits only while the fan-out queue is full.
    pub async fn publish(&self, event: Arc<Event>) {
        // Fails only once the runtime is shutting down: nobody is left to tell.
        let _ = self.jobs.send(Job::Event(event)).await;
    }

    /// Returns once every event published before this call has been offered to
    /// its subscribers: what is sent after it reaches an inbox after them.
    pub async fn settled(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Barrier(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Subscriptions held now (for tests and metrics).
    pub fn subscription_count(&self) -> usize {
        read(&self.topics).values().map(HashMap::len).sum()
    }
}

async fn fan_out(mut queue: mpsc::Receiver<Job>, topics: Arc<RwLock<Topics>>) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Event(event) => deliver(&read(&topics), &event),
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Offers the event to its agent's followers, then to its contract's followers
/// that do not also follow the agent. Nothing is cloned per subscriber but the
/// reference to the event; the lock is held once per event, not per delivery.
fn deliver(topics: &Topics, event: &Arc<Event>) {
    let agent = topics.get(&Topic::Agent(event.agent_id.clone()));
    let contract = topics.get(&Topic::Contract(event.contract.clone()));
    let offer = |subscriber: &Subscriber| {
        if !subscriber.offer(event) {
            subscriber.overflowed();
        }
    };
    agent.iter().flat_map(|f| f.values()).for_each(offer);
    for (id, subscriber) in contract.iter().flat_map(|f| f.iter()) {
        if !agent.is_some_and(|a| a.contains_key(id)) {
            offer(subscriber);
        }
    }
}

fn read(topics: &RwLock<Topics>) -> std::sync::RwLockReadGuard<'_, Topics> {
    topics.read().unwrap_or_else(|e| e.into_inner())
}

fn write(topics: &RwLock<Topics>) -> std::sync::RwLockWriteGuard<'_, Topics> {
    topics.write().unwrap_or_else(|e| e.into_inner())
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

    #[tokio::test]
    async fn events_reach_agent_and_contract_subscribers_once_each() {
        let hub = Hub::start();
        let (one, mut rx1) = channel(8);
        let (two, mut rx2) = channel(8);
        let (three, mut rx3) = channel(8);
        hub.subscribe(Topic::Agent("a".into()), 1, one.clone());
        hub.subscribe(Topic::Contract("0xab".into()), 1, one);
        hub.subscribe(Topic::Contract("0xab".into()), 2, two);
        hub.subscribe(Topic::Agent("b".into()), 3, three);
        hub.publish(event("a", 1)).await;
        hub.settled().await;
        assert_eq!(rx1.try_recv().unwrap().seq, 1);
        assert!(rx1.try_recv().is_err(), "one copy per subscriber");
        assert_eq!(rx2.try_recv().unwrap().seq, 1);
        assert!(rx3.try_recv().is_err(), "never other agents' events");
        hub.unsubscribe(&Topic::Agent("a".into()), 1);
        hub.unsubscribe(&Topic::Contract("0xab".into()), 1);
        assert_eq!(hub.subscription_count(), 2);
    }

    #[tokio::test]
    async fn a_full_inbox_is_told_so_and_others_still_receive() {
        let hub = Hub::start();
        let (slow, _rx) = channel(1);
        let (fast, mut fast_rx) = channel(8);
        hub.subscribe(Topic::Agent("a".into()), 1, slow.clone());
        hub.subscribe(Topic::Agent("a".into()), 2, fast);
        hub.publish(event("a", 1)).await;
        hub.settled().await;
        assert!(!slow.overflowed.load(Ordering::SeqCst));
        hub.publish(event("a", 2)).await;
        hub.settled().await;
        assert!(slow.overflowed.load(Ordering::SeqCst));
        assert_eq!(fast_rx.try_recv().unwrap().seq, 1);
        assert_eq!(fast_rx.try_recv().unwrap().seq, 2);
    }

    /// Takes events only once the test lets it: a subscriber stuck mid-delivery.
    struct Stuck(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

    impl Inbox for Stuck {
        fn offer(&self, _: &Arc<Event>) -> bool {
            let _ = self.0.lock().unwrap().recv();
            true
        }

        fn overflowed(&self) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publisher_never_waits_on_a_subscriber() {
        let hub = Hub::start();
        let (release, stuck) = std::sync::mpsc::channel();
        hub.subscribe(Topic::Agent("a".into()), 1, Arc::new(Stuck(stuck.into())));
        let (fast, mut fast_rx) = channel(8);
        hub.subscribe(Topic::Agent("b".into()), 2, fast);
        let publish = async {
            hub.publish(event("a", 1)).await;
            hub.publish(event("b", 1)).await;
        };
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), publish).await;
        assert!(
            waited.is_ok(),
            "publish returned while a subscriber was stuck"
        );
        release.send(()).unwrap();
        hub.settled().await;
        assert_eq!(fast_rx.try_recv().unwrap().seq, 1, "delivered once unstuck");
    }
}
