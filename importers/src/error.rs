//! What reading an input can fail with.

use domain::ValidationError;

/// A file that cannot be read, or whose content breaks a rule. Nothing is
/// written when a reader fails during the checking pass. The message names
/// the file (and the entry) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file (or folder) could not be opened or read.
    #[error("{context}")]
    Io {
        /// What was being done, e.g. `opening /x/skill_metrics.json`.
        context: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// An entry breaks a rule of the store.
    #[error("{context}")]
    Invalid {
        /// Which file and entry, e.g. `/x/skill_metrics.json: skills["a"]`.
        context: String,
        /// The field and the rule.
        #[source]
        source: ValidationError,
    },
    /// The input is not what it should be (missing, empty, corrupt,
    /// truncated); the message says which and why.
    #[error("{0}")]
    Input(String),
}

impl ReadError {
    /// An I/O failure while `context` (e.g. `opening PATH`).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
