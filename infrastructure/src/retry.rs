//! The one retry policy for writes another writer is in the way of.
//!
//! A write refused because the database is busy or locked (SQLite) or
//! because of a serialization failure or deadlock (PostgreSQL) — see
//! [`StoreError::is_retryable`], which knows them by their error codes — is
//! run again, whole, after a short sleep: 1 ms, doubling up to 20 ms, each
//! with up to 1 ms of jitter so that waiting writers do not retry in step.
//! It stops at the first other outcome or once the store's busy timeout has
//! passed since the first refusal (after at least one retry, however long
//! the refused attempt itself ran), and then returns the last error.
//!
//! Sleeps are async, so a waiting write never holds a runtime thread. The
//! store's own SQLite writer does not wait inside SQLite at all (its busy
//! timeout is zero): this policy is all its waiting. Short pauses matter
//! there: several processes recording at once take turns within
//! milliseconds.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::StoreError;

/// The first pause.
const FIRST: Duration = Duration::from_millis(1);
/// The longest pause.
const LONGEST: Duration = Duration::from_millis(20);

/// Pauses between attempts, for at most a budget of time counted from the
/// first pause: an attempt that ran long before it was refused (a large
/// batch, a rebuild) still gets its retries.
#[derive(Debug)]
pub(crate) struct Backoff {
    budget: Duration,
    deadline: Option<Instant>,
    pause: Duration,
}

impl Backoff {
    /// Pacing for attempts until `budget` has passed from the first pause.
    pub(crate) fn new(budget: Duration) -> Self {
        Self {
            budget,
            deadline: None,
            pause: FIRST,
        }
    }

    /// Sleeps before the next attempt and returns `true`, or returns
    /// `false` at once when the budget is spent. The first call always
    /// sleeps.
    pub(crate) async fn pause(&mut self) -> bool {
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + self.budget);
        if Instant::now() >= deadline {
            return false;
        }
        let jitter = Duration::from_micros(rand::random::<u64>() % 1000);
        tokio::time::sleep(self.pause + jitter).await;
        self.pause = (self.pause * 2).min(LONGEST);
        true
    }
}

/// Runs `attempt` until it returns anything but a retryable error, pausing
/// between attempts as [`Backoff`] says, for at most `budget`.
///
/// # Errors
/// The last attempt's error when it is not retryable, or
/// [`StoreError::Busy`] once `budget` has passed.
pub(crate) async fn retry<T, F, Fut>(budget: Duration, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(budget);
    let mut attempts = 1u32;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && backoff.pause().await => {
                attempts += 1;
                tracing::debug!(attempts, error = %e, "write refused by another writer, retrying");
            }
            Err(e) if e.is_retryable() => {
                tracing::debug!(attempts, error = %e, "write still refused, giving up");
                return Err(StoreError::Busy {
                    seconds: budget.as_secs_f64().ceil() as u64,
                });
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbErr;

    fn busy() -> StoreError {
        crate::error::sqlite_err(5, "database is locked")
    }

    #[tokio::test]
    async fn retries_a_busy_write_until_it_succeeds() {
        let mut left = 3;
        let out = retry(Duration::from_secs(5), || {
            left -= 1;
            let done = if left == 0 { Ok(7) } else { Err(busy()) };
            async move { done }
        })
        .await;
        assert_eq!(out.unwrap(), 7);
    }

    #[tokio::test]
    async fn gives_up_once_the_budget_is_spent() {
        let started = Instant::now();
        let mut tries = 0;
        let out: Result<(), _> = retry(Duration::from_millis(50), || {
            tries += 1;
            async { Err(busy()) }
        })
        .await;
        assert!(out.unwrap_err().is_retryable());
        assert!(tries > 2, "{tries} attempts");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn an_attempt_longer_than_the_budget_is_still_retried() {
        let mut tries = 0;
        let out = retry(Duration::from_millis(20), || {
            tries += 1;
            let first = tries == 1;
            async move {
                if first {
                    // Refused only after running past the whole budget.
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    Err(busy())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(out.is_ok());
        assert_eq!(tries, 2);
    }

    #[tokio::test]
    async fn does_not_retry_other_errors() {
        let mut tries = 0;
        let out: Result<(), _> = retry(Duration::from_secs(5), || {
            tries += 1;
            async { Err(StoreError::Database(DbErr::Custom("no".into()))) }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(tries, 1);
    }
}
