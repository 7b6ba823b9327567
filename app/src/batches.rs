//! Streaming writes: a reader thread produces invocations in batches while
//! the async side writes each batch in its own transaction.

use domain::Invocation;
use infrastructure::SkillMetricsStore;
use tokio::sync::mpsc;

/// Where a producer puts invocations; full batches go to the writer.
pub(crate) struct Sink {
    batch: Vec<Invocation>,
    size: usize,
    tx: mpsc::Sender<Vec<Invocation>>,
}

impl Sink {
    /// Adds one invocation.
    ///
    /// # Errors
    /// When the writer has stopped (a batch failed): stop producing.
    pub(crate) fn push(&mut self, inv: Invocation) -> Result<(), String> {
        self.batch.push(inv);
        if self.batch.len() >= self.size {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
            self.tx
                .blocking_send(full)
                .map_err(|_| "the writer stopped".to_owned())?;
        }
        Ok(())
    }
}

/// What the batches did.
#[derive(Default)]
pub(crate) struct Written {
    pub(crate) inserted: usize,
    pub(crate) duplicates: usize,
}

/// Runs `produce` on its own thread and writes what it pushes, `size` at a
/// time. Returns the totals so far and the first failure: a failed batch
/// (earlier batches stay committed) before a failed read.
pub(crate) async fn write_streamed<F>(
    store: &SkillMetricsStore,
    size: usize,
    produce: F,
) -> (Written, anyhow::Result<()>)
where
    F: FnOnce(&mut Sink) -> anyhow::Result<()> + Send + 'static,
{
    let size = size.max(1);
    let (tx, mut rx) = mpsc::channel::<Vec<Invocation>>(2);
    let reader = std::thread::spawn(move || {
        let mut sink = Sink {
            batch: Vec::with_capacity(size),
            size,
            tx,
        };
        produce(&mut sink)?;
        if !sink.batch.is_empty() {
            let _ = sink.tx.blocking_send(std::mem::take(&mut sink.batch));
        }
        Ok::<(), anyhow::Error>(())
    });
    let mut written = Written::default();
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        match store.record_batch(batch).await {
            Ok(outcome) => {
                written.inserted += outcome.inserted;
                written.duplicates += outcome.duplicates.len();
            }
            Err(e) => {
                failure = Some(anyhow::Error::new(e));
                break;
            }
        }
    }
    drop(rx);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader thread panicked")));
    (written, failure.map_or(read, Err))
}
