use std::borrow::Cow;
use std::ffi::c_int;
use std::sync::Arc;

use domain::ValidationError;
use sea_orm::sqlx;
use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
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
    /// Another writer held the store for longer than this write waits (a
    /// rebuild or prune of a large store, say): nothing was written.
    #[error(
        "the store stayed busy for {seconds} s: another writer holds it (a rebuild, prune or import \
         may be running); nothing was written, try again when it is done"
    )]
    Busy {
        /// How long the write waited.
        seconds: u64,
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
        matches!(self, Self::Busy { .. }) || matches!(self, Self::Database(e) if is_retryable(e))
    }
}

/// The database's own code for `e`: SQLite's extended result code (as
/// decimal text) or PostgreSQL's SQLSTATE, from sqlx or from the store's
/// own SQLite connections alike.
#[cfg(test)]
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

/// SQLite's primary result codes for "another connection holds the lock".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Whether `e` is a refusal that retrying the whole transaction may get
/// past: SQLite busy or locked (any extended code of the two), PostgreSQL
/// serialization failure (40001) or deadlock (40P01). Known by code only,
/// and each code read as its own backend's: a PostgreSQL SQLSTATE such as
/// 42501 is never taken for a SQLite number. The message is never read.
pub(crate) fn is_retryable(e: &DbErr) -> bool {
    let runtime = match e {
        DbErr::Exec(r) | DbErr::Query(r) | DbErr::Conn(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(error) = runtime else {
        return false;
    };
    let Some(database) = error.as_database_error() else {
        return false;
    };
    let code = database.code();
    let sqlite = database
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
        || database.try_downcast_ref::<SqliteFailure>().is_some();
    if sqlite {
        return code
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED));
    }
    database
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
        // Serialization failure, deadlock, lock wait past `lock_timeout`.
        && matches!(code.as_deref(), Some("40001" | "40P01" | "55P03"))
}

/// A failure of the store's own SQLite connections (rusqlite) as the
/// `DbErr` sqlx would have produced for it: SQLite's extended result code
/// and message, so that [`is_retryable`] recognises it exactly as it does
/// sqlx's. Errors that did not come from SQLite itself
/// (a value that cannot be converted, say) carry no code.
pub(crate) fn from_rusqlite(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => sqlite_err(
            failure.extended_code,
            &message.unwrap_or_else(|| failure.to_string()),
        ),
        other => StoreError::Database(DbErr::Custom(other.to_string())),
    }
}

/// A SQLite failure with extended result `code` and `message`.
pub(crate) fn sqlite_err(code: c_int, message: &str) -> StoreError {
    let failure = SqliteFailure {
        code,
        message: message.to_owned(),
    };
    StoreError::Database(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
        sqlx::Error::Database(Box::new(failure)),
    ))))
}

/// What SQLite reported, as sqlx's SQLite driver reports it.
#[derive(Debug)]
struct SqliteFailure {
    /// The extended result code.
    code: c_int,
    message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: &StoreError) -> Option<String> {
        match e {
            StoreError::Database(e) => db_code(e),
            _ => None,
        }
    }

    #[test]
    fn busy_and_locked_are_known_by_code_not_text() {
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_LOCKED_SHAREDCACHE.
        for code in [5, 517, 6, 262] {
            assert!(sqlite_err(code, "anything").is_retryable(), "{code}");
        }
        // The old text with another code, and the text alone, are not enough.
        assert!(!sqlite_err(19, "database is locked").is_retryable());
        assert!(!StoreError::Database(DbErr::Custom("database is locked".into())).is_retryable());
    }

    /// A database error from neither SQLite driver, with a numeric code.
    #[derive(Debug)]
    struct Foreign(&'static str);

    impl std::fmt::Display for Foreign {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("permission denied")
        }
    }

    impl std::error::Error for Foreign {}

    impl DatabaseError for Foreign {
        fn message(&self) -> &str {
            "permission denied"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    #[test]
    fn a_sqlstate_is_never_read_as_a_sqlite_code() {
        // 42501 (insufficient privilege) & 0xff is SQLite's BUSY (5).
        for code in ["42501", "22021", "22022"] {
            let e = StoreError::Database(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
                sqlx::Error::Database(Box::new(Foreign(code))),
            ))));
            assert!(!e.is_retryable(), "{code}");
        }
    }

    #[test]
    fn rusqlite_failures_keep_their_extended_code() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)")
            .unwrap();
        let e = from_rusqlite(conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err());
        assert_eq!(code_of(&e).as_deref(), Some("1555"));
        assert!(e.to_string().contains("UNIQUE constraint failed"), "{e}");
        assert!(!e.is_retryable());
    }
}
