//! Progress bars for the importers' progress reports, on a terminal only.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::import::Progress;

/// Draws one bar per pass the library reports.
pub(crate) struct Bars {
    shown: bool,
    bar: ProgressBar,
}

impl Bars {
    /// Bars on standard error when it is a terminal and `wanted`.
    pub(crate) fn new(wanted: bool) -> Self {
        Self {
            shown: wanted && std::io::stderr().is_terminal(),
            bar: ProgressBar::hidden(),
        }
    }

    /// Takes one report; pass `|p| bars.update(p)` as the progress callback.
    pub(crate) fn update(&mut self, p: Progress) {
        match p {
            Progress::Start { label, total } if self.shown => {
                self.bar = ProgressBar::new(total);
                self.bar.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                self.bar.set_message(label);
            }
            Progress::Start { .. } => {}
            Progress::Read(n) => self.bar.inc(n),
            Progress::Done => self.bar.finish_and_clear(),
        }
    }
}
