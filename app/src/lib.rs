//! **skill-metrics** as a library: record how AI-assistant skills are used and
//! read exact per-skill metrics, on SQLite or PostgreSQL, chosen by URL.
//!
//! ```
//! use skill_metrics::SkillMetricsStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // `sqlite://metrics.db` for a file, `postgres://user:pass@host/db` for PostgreSQL.
//! let store = SkillMetricsStore::connect("sqlite::memory:").await?;
//!
//! store.start_session("session-42", chrono::Utc::now(), Some("/work/shop")).await?;
//! let run = store.track("crackerjack-run").workflow("daily").session("session-42").start()?;
//! // ... the skill does its work ...
//! run.complete_with(["git commit"]).await?;
//!
//! store.track("crackerjack-run").start()?.fail("TimeoutError").await?;
//!
//! let metrics = store.metrics(&["crackerjack-run"]).await?;
//! assert_eq!(metrics[0].total_invocations, 2);
//! assert_eq!(metrics[0].completion_rate, 50.0);
//! assert_eq!(store.summary().await?.most_used_skill.as_deref(), Some("crackerjack-run"));
//! # Ok::<(), skill_metrics::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! Errors are [`StoreError`]s that callers match on: [`StoreError::Invalid`]
//! (with the field), [`StoreError::Duplicate`], [`StoreError::NotFound`],
//! [`StoreError::Database`]. For tests, enable the `test-support` feature of
//! the `infrastructure` crate and use `testing::TestStore`.

pub use domain;
pub use importers;
pub use infrastructure::*;
