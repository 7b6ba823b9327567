//! Progress of a long read, for whoever draws the bar.

use std::io::Read;

/// What a reader reports as it goes. Each pass over the input is one
/// `Start`, any number of `Read`s and one `Done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A pass starts over `total` bytes; `label` names it (`checking`,
    /// `ingesting`, `importing`, `reading`).
    Start {
        /// What the pass does.
        label: &'static str,
        /// Bytes the pass will read (0 when unknown).
        total: u64,
    },
    /// So many more bytes were read.
    Read(u64),
    /// The pass is over.
    Done,
}

/// A reader that reports every byte it reads as [`Progress::Read`].
pub struct CountingReader<'a, R> {
    inner: R,
    progress: &'a mut dyn FnMut(Progress),
}

impl<'a, R: Read> CountingReader<'a, R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: &'a mut dyn FnMut(Progress)) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.progress)(Progress::Read(n as u64));
        }
        Ok(n)
    }
}
