//! The skill-metrics store: one API over SQLite and PostgreSQL, chosen by the
//! connection URL alone.
//!
//! [`SkillMetricsStore`] owns the transactions, the locking and the SQL that
//! differs per backend; the rules themselves live in the `domain` crate.

mod balance;
mod carry;
mod dashboard;
mod data;
mod direct;
mod error;
pub mod import;
mod info;
mod insights;
mod integrity;
mod maps;
mod overview;
mod prune;
mod push;
mod range;
mod read;
mod recompute;
mod retry;
mod rollups;
mod rows;
mod span;
mod sql;
mod store;
mod summary;
mod sweep;
mod timeline;
mod tokens;
mod track;
mod tuning;
mod url;
mod views;
mod write;

#[cfg(feature = "test-support")]
pub mod testing;

pub use chrono_tz;
pub use dashboard::{DASHBOARD_SESSION_LIFETIME, LOGIN_CODE_LIFETIME};
pub use data::{ExportCursor, ExportFilter, MaintenanceStep, export_sql};
pub use domain;
pub use error::StoreError;
pub use info::{StorageUse, StoreInfo};
pub use insights::{Baseline, Insights, MAX_INSIGHT_DAYS};
pub use integrity::{Difference, VerifyReport};
pub use migration::{LedgerEntry, LedgerState};
pub use overview::{Kind, Overview, OverviewBucket, OverviewSkill, bucket_for};
pub use prune::PruneReport;
pub use push::{Logged, PushCursor};
pub use range::{RangeSkill, RangeSummary};
pub use read::RecentFilter;
pub use store::{ConnectOptions, MigrationMode, SkillMetricsStore};
pub use summary::{DEFAULT_REFRESH_INTERVAL, SummaryRefresher, SummaryView};
pub use sweep::{PieceSizes, STREAM_SETTING, SWEEP_SETTINGS, sweep_reads_sql};
pub use timeline::{Bucket, TimelineBucket};
pub use tokens::{NewToken, TOKEN_PREFIX, TokenInfo};
pub use track::{DROPPED_ERROR, TrackBuilder, Tracking};
pub use tuning::{SqliteTuning, tune_sqlite};
pub use url::{DatabaseUrl, redact_url};
pub use views::{Session, SessionSkill, SessionView, SkillMetrics, contract_json};
pub use write::BatchOutcome;

/// Result of every fallible store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
