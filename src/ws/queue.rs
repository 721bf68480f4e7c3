//! A bounded queue with one consumer, for a session's outbox and inbox.
//!
//! Every connection has two, so they must cost nothing while empty: a
//! `VecDeque` behind a mutex allocates on its first item and keeps a few
//! slots, where tokio's channel allocates a block of 32 up front (more than a
//! third of an idle connection's memory was those blocks).

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

/// Why an item was not queued; it is handed back.
#[derive(Debug)]
pub enum Refused<T> {
    /// At its bound in items or in bytes.
    Full(T),
    /// The consumer is gone.
    Closed(T),
}

#[derive(Debug)]
pub struct Queue<T> {
    state: Mutex<State<T>>,
    max_items: usize,
    max_bytes: usize,
    /// An item arrived, or the queue closed.
    ready: Notify,
    /// An item left, or the queue closed.
    room: Notify,
    /// Pushers waiting for room: a pop wakes them only when there are any
    /// (waking takes a lock, and most pops have nobody to wake).
    waiting: AtomicUsize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    closed: bool,
}

impl<T> Queue<T> {
    /// At most `max_items`, and `max_bytes` in all (one item larger than that
    /// still fits an empty queue).
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
            }),
            max_items: max_items.max(1),
            max_bytes,
            ready: Notify::new(),
            room: Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` (weighing `bytes`) without waiting.
    pub fn try_push(&self, item: T, bytes: usize) -> Result<(), Refused<T>> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed(item));
        }
        let over_bytes = state.bytes > 0 && state.bytes + bytes > self.max_bytes;
        if state.items.len() >= self.max_items || over_bytes {
            return Err(Refused::Full(item));
        }
        state.items.push_back((item, bytes));
        state.bytes += bytes;
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues `item`, waiting up to `wait` for room (`None`: as long as it
    /// takes). Gives the item back if there was no room in time.
    pub async fn push(
        &self,
        item: T,
        bytes: usize,
        wait: Option<Duration>,
    ) -> Result<(), Refused<T>> {
        let deadline = wait.map(|wait| tokio::time::Instant::now() + wait);
        let _counted = Waiting::count(&self.waiting);
        self.push_waiting(item, bytes, deadline).await
    }

    /// Counted in `waiting` before it looks for room, so that a pop that frees
    /// some after the look sees it and wakes this one.
    async fn push_waiting(
        &self,
        mut item: T,
        bytes: usize,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), Refused<T>> {
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            match self.try_push(item, bytes) {
                Err(Refused::Full(back)) => item = back,
                done => return done,
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, room).await.is_err() {
                        return Err(Refused::Full(item));
                    }
                }
                None => room.await,
            }
        }
    }

    /// The oldest item, if any.
    pub fn try_pop(&self) -> Option<T> {
        let mut state = self.lock();
        let (item, bytes) = state.items.pop_front()?;
        state.bytes -= bytes;
        drop(state);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
        Some(item)
    }

    /// The oldest item, waiting for one; `None` once closed. Cancel-safe: an
    /// item stays queued until it is returned.
    pub async fn pop(&self) -> Option<T> {
        loop {
            let ready = self.ready.notified();
            let mut ready = std::pin::pin!(ready);
            ready.as_mut().enable();
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.lock().closed {
                return None;
            }
            ready.await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// No more items are taken; what is queued can still be popped.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
        self.room.notify_waiters();
    }
}

/// One pusher waiting for room, for as long as it exists (also when the
/// waiting push is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn bounded_in_items_and_in_bytes() {
        let queue = Queue::new(2, 10);
        assert!(
            queue.try_push("a", 8).is_ok(),
            "larger than the rest, on an empty queue"
        );
        assert!(matches!(queue.try_push("b", 3), Err(Refused::Full("b"))));
        assert_eq!(queue.try_pop(), Some("a"));
        assert!(queue.try_push("c", 1).is_ok());
        assert!(queue.try_push("d", 1).is_ok());
        assert!(matches!(queue.try_push("e", 1), Err(Refused::Full("e"))));
        queue.close();
        assert!(matches!(queue.try_push("f", 1), Err(Refused::Closed("f"))));
        assert_eq!(
            queue.try_pop(),
            Some("c"),
            "what was queued still comes out"
        );
    }

    #[tokio::test]
    async fn a_waiting_push_gets_the_room_a_pop_makes() {
        let queue = Arc::new(Queue::new(1, usize::MAX));
        queue.try_push(1, 0).unwrap();
        let pusher = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.push(2, 0, None).await.is_ok() }
        });
        assert_eq!(queue.pop().await, Some(1));
        assert!(pusher.await.unwrap());
        assert_eq!(queue.pop().await, Some(2));
        let refused = queue.push(3, 0, Some(Duration::ZERO)).await;
        assert!(refused.is_ok(), "room now");
        let late = queue.push(4, 0, Some(Duration::from_millis(1))).await;
        assert!(matches!(late, Err(Refused::Full(4))), "no room in time");
        queue.close();
        assert_eq!(queue.pop().await, Some(3));
        assert_eq!(queue.pop().await, None, "closed and empty");
    }
}
