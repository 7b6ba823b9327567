//! Group commit for the OTLP receiver: requests that arrive while the store
//! is busy with an earlier one are written together, in one transaction,
//! and each is answered when that transaction has committed (decision D79).
//!
//! A request's invocations are never split across transactions, so each
//! request stays all or nothing; a failed transaction fails every request
//! in it only after each has been tried alone, so that one request the
//! store refuses does not fail the others (those that fail get 503, which
//! exporters retry, and ids make a retry count once).

use std::sync::{Arc, OnceLock};

use domain::Invocation;
use infrastructure::SkillMetricsStore;
use tokio::sync::{mpsc, oneshot};

/// No transaction takes more than this many invocations from waiting
/// requests (one request alone may be larger; it is never split).
const MAX_GROUP: usize = 8192;

/// Requests waiting for the writer, at most (more wait to be queued).
const QUEUE: usize = 256;

struct Job {
    invocations: Vec<Invocation>,
    done: oneshot::Sender<Result<(), Refused>>,
}

/// Why a write did not happen, and whether a retry may go through.
#[derive(Debug)]
pub(crate) struct Refused {
    /// What went wrong, in words.
    pub(crate) message: String,
    /// Seconds after which a retry may go through: the store was busy
    /// (D89). `None`: retrying will not help now.
    pub(crate) retry_after: Option<u64>,
}

impl Refused {
    fn stopped() -> Self {
        Self {
            message: "the writer has stopped".to_owned(),
            retry_after: None,
        }
    }
}

/// The writer task's queue, started on first use (inside the runtime).
#[derive(Clone, Default)]
pub(crate) struct GroupWriter(Arc<OnceLock<mpsc::Sender<Job>>>);

impl GroupWriter {
    /// Records `invocations` in a transaction shared with the requests
    /// waiting beside it, and returns once it has committed.
    pub(crate) async fn write(
        &self,
        store: &SkillMetricsStore,
        invocations: Vec<Invocation>,
    ) -> Result<(), Refused> {
        let queue = self.0.get_or_init(|| start(store.clone()));
        let (done, answer) = oneshot::channel();
        queue
            .send(Job { invocations, done })
            .await
            .map_err(|_| Refused::stopped())?;
        answer.await.map_err(|_| Refused::stopped())?
    }
}

fn start(store: SkillMetricsStore) -> mpsc::Sender<Job> {
    let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
    tokio::spawn(async move {
        while let Some(first) = jobs.recv().await {
            let mut size = first.invocations.len();
            let mut group = vec![first];
            while size < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => {
                        size += job.invocations.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            if group.len() > 1 {
                // Each request's records are kept too, to be retried alone
                // if the shared transaction fails.
                let mut all = Vec::with_capacity(size);
                for job in &group {
                    all.extend(job.invocations.iter().cloned());
                }
                if store.record_batch(all).await.is_ok() {
                    for job in group {
                        // A request whose client went away needs no answer.
                        let _ = job.done.send(Ok(()));
                    }
                    continue;
                }
            }
            // Alone (nothing to copy), or after a shared transaction failed:
            // one request's records may be what the store refused, and the
            // others must not fail with it.
            for job in group {
                let outcome = store
                    .record_batch(job.invocations)
                    .await
                    .map(|_| ())
                    .map_err(|e| Refused {
                        message: e.to_string(),
                        retry_after: match e {
                            infrastructure::StoreError::Busy { seconds } => Some(seconds),
                            _ => None,
                        },
                    });
                if let Err(e) = &outcome {
                    tracing::error!(error = %e.message, "cannot record OTLP events");
                }
                let _ = job.done.send(outcome);
            }
        }
    });
    queue
}
