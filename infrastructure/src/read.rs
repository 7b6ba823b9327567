//! Reads: metrics, sessions, recent invocations, search (timelines: `timeline.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{Invocation, Percentiles, exact_percentiles, parse_search_query};
use entity::{session_skill, sessions, skill_invocation, skill_metrics};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};

use crate::rows::invocation_from_model;
use crate::sql::{log_columns, log_page_sql, stmt, ts};
use crate::views::{Session, SessionSkill, SessionView, SkillMetrics};
use crate::{SkillMetricsStore, StoreError};

/// Filters for [`SkillMetricsStore::recent`].
#[derive(Debug, Clone, Default)]
pub struct RecentFilter {
    /// Only this skill.
    pub skill: Option<String>,
    /// Only this session.
    pub session: Option<String>,
}

fn to_invocations(models: Vec<skill_invocation::Model>) -> Result<Vec<Invocation>, StoreError> {
    models
        .into_iter()
        .map(|m| invocation_from_model(m).map_err(StoreError::from))
        .collect()
}

impl SkillMetricsStore {
    /// The metrics of the named skills (every skill when `names` is empty),
    /// in one query, ordered by name. Unknown names are simply absent.
    ///
    /// # Errors
    /// A database failure.
    pub async fn metrics(&self, names: &[&str]) -> Result<Vec<SkillMetrics>, StoreError> {
        let rows = match &self.direct {
            Some(direct) => direct.metrics(names)?,
            None => {
                let mut query =
                    skill_metrics::Entity::find().order_by_asc(skill_metrics::Column::SkillName);
                if !names.is_empty() {
                    query =
                        query.filter(skill_metrics::Column::SkillName.is_in(names.iter().copied()));
                }
                query.all(&self.db).await.map_err(|e| self.err(e))?
            }
        };
        Ok(rows.into_iter().map(SkillMetrics::from_row).collect())
    }

    /// p50/p95/p99 of each named skill's completed durations computed from
    /// the log (exact, not from the stored distribution), in one query.
    ///
    /// # Errors
    /// A database failure.
    pub async fn exact_percentiles(
        &self,
        names: &[&str],
    ) -> Result<BTreeMap<String, Percentiles>, StoreError> {
        let mut query = skill_invocation::Entity::find()
            .select_only()
            .column(skill_invocation::Column::SkillName)
            .column(skill_invocation::Column::DurationSeconds)
            .filter(skill_invocation::Column::Completed.eq(true))
            .filter(skill_invocation::Column::DurationSeconds.is_not_null());
        if !names.is_empty() {
            query = query.filter(skill_invocation::Column::SkillName.is_in(names.iter().copied()));
        }
        let rows: Vec<(String, f64)> = query
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        let mut by_skill: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (skill, d) in rows {
            by_skill.entry(skill).or_default().push(d);
        }
        Ok(by_skill
            .into_iter()
            .map(|(k, mut v)| (k, exact_percentiles(&mut v)))
            .collect())
    }

    /// A session, its skills and its invocations.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown session; a database failure.
    pub async fn session(&self, id: &str) -> Result<SessionView, StoreError> {
        let session = sessions::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("session {id:?}"),
            })?;
        let skills = session_skill::Entity::find()
            .filter(session_skill::Column::SessionId.eq(id))
            .order_by_asc(session_skill::Column::SkillName)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        let invocations = skill_invocation::Entity::find()
            .filter(skill_invocation::Column::SessionId.eq(id))
            .order_by_asc(skill_invocation::Column::InvokedAt)
            .order_by_asc(skill_invocation::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(SessionView {
            session: Session::from_row(session),
            skills: skills.into_iter().map(SessionSkill::from_row).collect(),
            invocations: to_invocations(invocations)?,
        })
    }

    /// The sessions that started last, newest first, at most `limit`.
    ///
    /// # Errors
    /// A database failure.
    pub async fn recent_sessions(&self, limit: u64) -> Result<Vec<Session>, StoreError> {
        let rows = sessions::Entity::find()
            .order_by_desc(sessions::Column::StartedAt)
            .order_by_desc(sessions::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(Session::from_row).collect())
    }

    /// Starts a session (or widens an existing one's start to `at`).
    ///
    /// # Errors
    /// An invalid id; a database failure.
    pub async fn start_session(
        &self,
        id: &str,
        at: DateTime<Utc>,
        project_path: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = domain::SessionId::parse(id)?;
        let backend = self.backend();
        let statement = stmt(
            backend,
            "INSERT INTO sessions (id, started_at, project_path) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET started_at = CASE WHEN excluded.started_at < sessions.started_at \
             THEN excluded.started_at ELSE sessions.started_at END, \
             project_path = COALESCE(sessions.project_path, excluded.project_path)",
            vec![
                Value::from(id.as_str()),
                ts(backend, domain::truncate_to_micros(at)),
                Value::from(project_path.map(str::to_owned)),
            ],
        );
        self.db
            .execute_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that a session ended at `at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown session; a database failure.
    pub async fn end_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let backend = self.backend();
        let statement = stmt(
            backend,
            "UPDATE sessions SET ended_at = $1 WHERE id = $2",
            vec![ts(backend, domain::truncate_to_micros(at)), Value::from(id)],
        );
        let result = self
            .db
            .execute_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("session {id:?}"),
            });
        }
        Ok(())
    }

    /// The newest invocations first, at most `limit`, optionally of one
    /// skill or one session.
    ///
    /// # Errors
    /// A database failure.
    pub async fn recent(
        &self,
        filter: &RecentFilter,
        limit: u64,
    ) -> Result<Vec<Invocation>, StoreError> {
        let backend = self.backend();
        let mut conditions = vec!["TRUE".to_owned()];
        let mut values = Vec::new();
        if let Some(skill) = &filter.skill {
            values.push(Value::from(skill.as_str()));
            conditions.push(format!("skill_name = ${}", values.len()));
        }
        if let Some(session) = &filter.session {
            values.push(Value::from(session.as_str()));
            conditions.push(format!(
                "session_num = (SELECT num FROM sessions WHERE id = ${})",
                values.len()
            ));
        }
        values.push(Value::from(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = log_page_sql(
            &conditions.join(" AND "),
            &[("invoked_at", "DESC"), ("id", "DESC")],
            &format!("${}", values.len()),
        );
        self.log_rows(stmt(backend, &sql, values)).await
    }

    /// Invocations whose skill name or workflow path hold every word of
    /// `query` (`word*` matches by prefix), the newest written first (decision
    /// D80), at most `limit`, stopping there. Any text is safe:
    /// it is read as literal words, never as query syntax.
    ///
    /// # Errors
    /// A database failure.
    pub async fn search(&self, query: &str, limit: u64) -> Result<Vec<Invocation>, StoreError> {
        let terms = parse_search_query(query);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let backend = self.backend();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = match backend {
            DbBackend::Postgres => {
                let q: Vec<String> = terms
                    .iter()
                    .map(|t| {
                        if t.prefix {
                            format!("{}:*", t.word)
                        } else {
                            t.word.clone()
                        }
                    })
                    .collect();
                // Newest written first: on a common word the planner walks
                // the `seq` index backwards and stops at the limit.
                stmt(
                    backend,
                    &log_page_sql(
                        "search_vector @@ to_tsquery('simple', $1)",
                        &[("seq", "DESC")],
                        "$2",
                    ),
                    vec![Value::from(q.join(" & ")), Value::from(limit)],
                )
            }
            _ => {
                let q: Vec<String> = terms
                    .iter()
                    .map(|t| format!("\"{}\"{}", t.word, if t.prefix { "*" } else { "" }))
                    .collect();
                // The index's entries are numbered by the log's `seq` (D84):
                // FTS5 walks them backwards and stops at the limit, never
                // collecting every match.
                stmt(
                    backend,
                    &format!(
                        "SELECT {} FROM (SELECT rowid AS seq FROM skill_invocation_fts \
                         WHERE skill_invocation_fts MATCH $1 ORDER BY rowid DESC LIMIT $2) f \
                         JOIN skill_invocation i ON i.seq = f.seq ORDER BY i.seq DESC",
                        log_columns("i.")
                    ),
                    vec![Value::from(q.join(" ")), Value::from(limit)],
                )
            }
        };
        self.log_rows(statement).await
    }

    /// The invocations of the log rows `statement` selects (as the view's
    /// columns), in its order.
    async fn log_rows(&self, statement: Statement) -> Result<Vec<Invocation>, StoreError> {
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        let models = rows
            .iter()
            .map(|row| skill_invocation::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        to_invocations(models)
    }
}
