//! Streaming writes: a reader thread produces invocations in batches while
//! the async side writes each batch in its own transaction and passes the
//! reader's progress on to the caller, on the caller's task.

use domain::Invocation;
use importers::Progress;
use tokio::sync::mpsc;

use super::ImportError;
use crate::SkillMetricsStore;

/// Bytes read before the reader reports them (fewer, smaller messages).
const REPORT_EVERY: u64 = 64 * 1024;

/// Where a producer puts invocations; full batches go to the writer.
pub(crate) struct Sink {
    batch: Vec<Invocation>,
    size: usize,
    tx: mpsc::Sender<Vec<Invocation>>,
}

/// The writer stopped (a batch failed); its error is the one reported.
pub(crate) const WRITER_STOPPED: &str = "the writer stopped";

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
                .map_err(|_| WRITER_STOPPED.to_owned())?;
        }
        Ok(())
    }
}

/// The producer's side of the caller's progress callback: `Read`s are summed
/// and sent every [`REPORT_EVERY`] bytes, everything else at once.
pub(crate) struct Reporter {
    tx: mpsc::UnboundedSender<Progress>,
    unsent: u64,
}

impl Reporter {
    /// Passes `p` on.
    pub(crate) fn report(&mut self, p: Progress) {
        match p {
            Progress::Read(n) => {
                self.unsent += n;
                if self.unsent >= REPORT_EVERY {
                    let _ = self
                        .tx
                        .send(Progress::Read(std::mem::take(&mut self.unsent)));
                }
            }
            other => {
                if self.unsent > 0 {
                    let _ = self
                        .tx
                        .send(Progress::Read(std::mem::take(&mut self.unsent)));
                }
                let _ = self.tx.send(other);
            }
        }
    }
}

/// What the batches did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Invocations added to the log and counted.
    pub inserted: usize,
    /// Invocations already in the log: not counted again.
    pub duplicates: usize,
}

/// Runs `produce` on a thread of its own and writes what it pushes, `size`
/// at a time, each batch one transaction. Returns the totals so far and
/// `produce`'s result, or the first failure: a failed batch (earlier
/// batches stay committed) before a failed read.
pub(crate) async fn write_streamed<T, F>(
    store: &SkillMetricsStore,
    size: usize,
    progress: &mut (dyn FnMut(Progress) + Send),
    produce: F,
) -> (Written, Result<T, ImportError>)
where
    T: Send + 'static,
    F: FnOnce(&mut Sink, &mut Reporter) -> Result<T, ImportError> + Send + 'static,
{
    let size = size.max(1);
    let (tx, mut rx) = mpsc::channel::<Vec<Invocation>>(2);
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let reader = std::thread::spawn(move || {
        let mut sink = Sink {
            batch: Vec::with_capacity(size),
            size,
            tx,
        };
        let mut reporter = Reporter { tx: ptx, unsent: 0 };
        let out = produce(&mut sink, &mut reporter)?;
        if !sink.batch.is_empty() {
            let _ = sink.tx.blocking_send(std::mem::take(&mut sink.batch));
        }
        Ok::<T, ImportError>(out)
    });
    let mut written = Written::default();
    let mut failure = None;
    loop {
        tokio::select! {
            biased;
            Some(p) = prx.recv() => progress(p),
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                match store.record_batch(batch).await {
                    Ok(outcome) => {
                        written.inserted += outcome.inserted;
                        written.duplicates += outcome.duplicates.len();
                    }
                    Err(e) => {
                        failure = Some(ImportError::Store(e));
                        break;
                    }
                }
            }
        }
    }
    drop(rx);
    // The reader may block on a full batch channel; with `rx` gone it fails
    // and ends, so joining on a blocking thread cannot hang.
    let read = tokio::task::spawn_blocking(move || reader.join())
        .await
        .map_err(|_| ImportError::Panicked)
        .and_then(|joined| joined.map_err(|_| ImportError::Panicked))
        .and_then(|r| r);
    while let Ok(p) = prx.try_recv() {
        progress(p);
    }
    (written, failure.map_or(read, Err))
}
