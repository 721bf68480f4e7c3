//! One way to try again: bounded attempts with exponential backoff, for every
//! outbound call that may fail for a moment (the LLM, notifications, RPC).

use std::{future::Future, time::Duration};

/// How many attempts, and the pause before the second (doubling after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
}

/// What a failed attempt means for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<E> {
    /// Worth trying again (a timeout, a 5xx, a 429).
    Again(E),
    /// Trying again would fail the same way.
    Fatal(E),
}

/// Why the calls gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp<E> {
    Fatal(E),
    /// Every attempt failed; this was the last error.
    Exhausted {
        last: E,
        attempts: u32,
    },
}

impl Retry {
    /// Calls `attempt` until it succeeds, fails fatally, or the attempts run out.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, GaveUp<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        let attempts = self.attempts.max(1);
        let mut made = 0;
        loop {
            if made > 0 {
                tokio::time::sleep(self.backoff * 2u32.saturating_pow(made - 1)).await;
            }
            made += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Attempt::Fatal(error)) => return Err(GaveUp::Fatal(error)),
                Err(Attempt::Again(last)) if made >= attempts => {
                    return Err(GaveUp::Exhausted {
                        last,
                        attempts: made,
                    });
                }
                Err(Attempt::Again(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const QUICK: Retry = Retry {
        attempts: 3,
        backoff: Duration::from_millis(1),
    };

    #[tokio::test]
    async fn retries_until_success_or_the_last_attempt() {
        let calls = Cell::new(0);
        let ok = QUICK
            .run(|| async {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(Attempt::Again("busy"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(ok, Ok(7));
        calls.set(0);
        let failed: Result<(), _> = QUICK
            .run(|| async {
                calls.set(calls.get() + 1);
                Err(Attempt::Again("down"))
            })
            .await;
        assert_eq!(
            failed,
            Err(GaveUp::Exhausted {
                last: "down",
                attempts: 3
            })
        );
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn a_fatal_error_stops_at_once() {
        let calls = Cell::new(0);
        let failed: Result<(), _> = QUICK
            .run(|| async {
                calls.set(calls.get() + 1);
                Err(Attempt::Fatal("400"))
            })
            .await;
        assert_eq!(failed, Err(GaveUp::Fatal("400")));
        assert_eq!(calls.get(), 1);
    }
}
