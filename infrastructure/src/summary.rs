//! The `skill_metrics_summary` view: computed in application code from
//! `skill_metrics` (never by scanning the log), stored, refreshed on demand
//! or by a background task.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{CountMap, Summary, SummaryInput};
use entity::{skill_metrics, skill_metrics_summary};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryOrder, QuerySelect, Value,
};
use serde::Serialize;

use crate::rows::count_map_from_json;
use crate::sql::{json, stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// One refresh of the summary, keyed like the `skill_metrics_summary`
/// columns when serialised; derefs to the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummaryView {
    /// When it was computed.
    pub refresh_time: DateTime<Utc>,
    /// The figures.
    #[serde(flatten)]
    pub summary: Summary,
}

impl std::ops::Deref for SummaryView {
    type Target = Summary;
    fn deref(&self) -> &Summary {
        &self.summary
    }
}

fn ranked(json: Option<&serde_json::Value>) -> Vec<(String, i64)> {
    let mut items: Vec<(String, i64)> = match json {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
            .collect(),
        _ => Vec::new(),
    };
    domain::rank(&mut items);
    items
}

fn object(items: &[(String, i64)]) -> serde_json::Value {
    serde_json::Value::Object(
        items
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect(),
    )
}

impl SummaryView {
    /// Maps the stored row (the table layout stays private).
    fn from_row(m: skill_metrics_summary::Model) -> Self {
        Self {
            refresh_time: m.refresh_time,
            summary: Summary {
                total_skills: m.total_skills,
                total_invocations: m.total_invocations,
                overall_completion_rate: m.overall_completion_rate,
                most_used_skill: m.most_used_skill,
                most_used_count: m.most_used_count,
                avg_duration_seconds: m.avg_duration_seconds,
                top_error_types: ranked(m.top_error_types.as_ref()),
                top_workflow_paths: ranked(m.top_workflow_paths.as_ref()),
            },
        }
    }
}

type SummaryColumns = (String, i64, i64, i64, serde_json::Value, serde_json::Value);

/// Reads `skill_metrics` and replaces the stored summary, inside `txn`.
async fn refresh_in(txn: &DatabaseTransaction) -> Result<SummaryView, StoreError> {
    use skill_metrics::Column as C;
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        // Refreshes queue here, so each reads after the previous one wrote.
        txn.execute_unprepared("LOCK TABLE skill_metrics_summary IN EXCLUSIVE MODE")
            .await?;
    }
    let rows: Vec<SummaryColumns> = skill_metrics::Entity::find()
        .select_only()
        .columns([
            C::SkillName,
            C::TotalInvocations,
            C::CompletedInvocations,
            C::TotalDurationMicros,
            C::WorkflowPaths,
            C::CommonErrors,
        ])
        .into_tuple()
        .all(txn)
        .await?;
    let maps: Vec<(CountMap, CountMap)> = rows
        .iter()
        .map(|r| (count_map_from_json(&r.4), count_map_from_json(&r.5)))
        .collect();
    let inputs = rows
        .iter()
        .zip(&maps)
        .map(|(r, (paths, errors))| SummaryInput {
            skill_name: &r.0,
            total: r.1,
            completed: r.2,
            total_duration_micros: r.3,
            workflow_paths: paths,
            common_errors: errors,
        });
    let v = SummaryView {
        refresh_time: domain::truncate_to_micros(Utc::now()),
        summary: Summary::compute(inputs),
    };
    txn.execute_unprepared("DELETE FROM skill_metrics_summary")
        .await?;
    txn.execute_raw(stmt(
        backend,
        "INSERT INTO skill_metrics_summary (refresh_time, total_skills, total_invocations, \
         overall_completion_rate, most_used_skill, most_used_count, avg_duration_seconds, \
         top_error_types, top_workflow_paths) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            ts(backend, v.refresh_time),
            Value::from(v.total_skills),
            Value::from(v.total_invocations),
            Value::from(v.overall_completion_rate),
            Value::from(v.most_used_skill.clone()),
            Value::from(v.most_used_count),
            Value::from(v.avg_duration_seconds),
            json(backend, Some(object(&v.top_error_types))),
            json(backend, Some(object(&v.top_workflow_paths))),
        ],
    ))
    .await?;
    Ok(v)
}

impl SkillMetricsStore {
    /// The latest stored summary; computed and stored first if there is none.
    /// An empty store gives zeros.
    ///
    /// # Errors
    /// A database failure.
    pub async fn summary(&self) -> Result<SummaryView, StoreError> {
        let latest = skill_metrics_summary::Entity::find()
            .order_by_desc(skill_metrics_summary::Column::RefreshTime)
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        match latest {
            Some(row) => Ok(SummaryView::from_row(row)),
            None => self.refresh_summary().await,
        }
    }

    /// Recomputes the summary from `skill_metrics` and replaces the stored
    /// one. The read and the write are one transaction, and refreshes take
    /// turns (SQLite's write lock; a table lock on PostgreSQL), so the
    /// stored summary is always the most recently read one: two refreshes
    /// racing can never leave the older figures behind (decision D36).
    ///
    /// # Errors
    /// A database failure.
    pub async fn refresh_summary(&self) -> Result<SummaryView, StoreError> {
        self.write(|txn| Box::pin(refresh_in(txn))).await
    }

    /// Refreshes the summary every `interval` (the design says 5 minutes)
    /// in a background task until [`SummaryRefresher::stop`] is called or
    /// the handle is dropped. Failures are logged and retried next time.
    pub fn start_summary_refresher(&self, interval: Duration) -> SummaryRefresher {
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        if let Err(e) = store.refresh_summary().await {
                            tracing::warn!(error = %e, "summary refresh failed");
                        }
                    }
                    _ = stop_rx.changed() => break,
                }
            }
        });
        SummaryRefresher {
            stop: stop_tx,
            task: Some(task),
        }
    }
}

/// The default refresh interval of the background refresher.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);

/// Handle of the background summary refresher.
#[derive(Debug)]
pub struct SummaryRefresher {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SummaryRefresher {
    /// Stops the refresher and waits for a refresh in progress to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SummaryRefresher {
    fn drop(&mut self) {
        // Signal only: the task ends after any refresh in progress.
        let _ = self.stop.send(true);
    }
}
