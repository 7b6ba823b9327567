use domain::ValidationError;
use sea_orm::{DbErr, RuntimeErr};

/// Everything a store operation can fail with. Callers match on the kind;
/// messages never contain a connection password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A value broke a domain rule; nothing was written.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// An invocation with this id is already in the log; it was not counted again.
    #[error("invocation {id} is already recorded")]
    Duplicate {
        /// The id that is already present.
        id: String,
    },
    /// The thing asked for does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `session "abc"`.
        what: String,
    },
    /// The connection URL is not one this store understands.
    #[error("unsupported database URL {url}: use sqlite:PATH, sqlite::memory: or postgres://...")]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
    },
    /// An applied migration no longer matches the code, or the database is
    /// newer than this program, or migrations are pending in check-only mode.
    #[error("schema check failed for migration version {version}: {detail}")]
    Schema {
        /// The migration version at fault.
        version: i64,
        /// What is wrong and what to do.
        detail: String,
    },
    /// A PostgreSQL URL that cannot be read.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The PostgreSQL server could not be reached or refused the login.
    #[error("cannot connect to the server: {detail}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's reason, password redacted.
        detail: String,
    },
    /// A skill's stored duration digest cannot be decoded or merged; its
    /// percentiles cannot be kept up to date until `rebuild` recomputes it.
    #[error(
        "skill {skill:?}: {reason}; nothing was written (run `skill-metrics rebuild` to recompute it from the log)"
    )]
    Digest {
        /// The skill whose digest is at fault.
        skill: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The operation does not apply to this store.
    #[error("{what} is not supported here: {hint}")]
    Unsupported {
        /// What was asked.
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// The database refused or failed (message redacted).
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        Self::Database(e)
    }
}

impl StoreError {
    /// `true` when retrying the whole transaction may succeed: SQLite busy or
    /// locked, PostgreSQL serialization failure or deadlock.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Database(e) if is_retryable(e))
    }
}

pub(crate) fn db_code(e: &DbErr) -> Option<String> {
    let runtime = match e {
        DbErr::Exec(r) | DbErr::Query(r) | DbErr::Conn(r) => r,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(sqlx) => sqlx
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        RuntimeErr::Internal(_) => None,
    }
}

pub(crate) fn is_retryable(e: &DbErr) -> bool {
    match db_code(e).as_deref() {
        // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
        Some(code)
            if code
                .parse::<i64>()
                .is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6) =>
        {
            true
        }
        Some("40001" | "40P01") => true,
        _ => {
            let text = e.to_string();
            text.contains("database is locked") || text.contains("database table is locked")
        }
    }
}
