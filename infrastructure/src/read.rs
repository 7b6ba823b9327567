//! Reads: metrics by skill, invocations by search.

use domain::{Invocation, parse_search_query};
use entity::{skill_invocation, skill_metrics};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    Value,
};

use crate::rows::invocation_from_model;
use crate::sql::stmt;
use crate::{SkillMetricsStore, StoreError};

/// A `skill_metrics` row as stored.
pub use entity::skill_metrics::Model as SkillMetrics;

impl SkillMetricsStore {
    /// The metrics of the named skills (every skill when `names` is empty),
    /// in one query, ordered by name. Unknown names are simply absent.
    ///
    /// # Errors
    /// A database failure.
    pub async fn metrics(&self, names: &[&str]) -> Result<Vec<SkillMetrics>, StoreError> {
        let mut query =
            skill_metrics::Entity::find().order_by_asc(skill_metrics::Column::SkillName);
        if !names.is_empty() {
            query = query.filter(skill_metrics::Column::SkillName.is_in(names.iter().copied()));
        }
        query.all(&self.db).await.map_err(|e| self.err(e))
    }

    /// Invocations whose skill name or workflow path hold every word of
    /// `query` (`word*` matches by prefix), newest first. Any text is safe:
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
                stmt(
                    backend,
                    "SELECT * FROM skill_invocation WHERE search_vector @@ to_tsquery('simple', $1) \
                     ORDER BY invoked_at DESC, id DESC LIMIT $2",
                    vec![Value::from(q.join(" & ")), Value::from(limit)],
                )
            }
            _ => {
                let q: Vec<String> = terms
                    .iter()
                    .map(|t| format!("\"{}\"{}", t.word, if t.prefix { "*" } else { "" }))
                    .collect();
                stmt(
                    backend,
                    "SELECT i.* FROM skill_invocation_fts f JOIN skill_invocation i ON i.rowid = f.rowid \
                     WHERE skill_invocation_fts MATCH $1 ORDER BY i.invoked_at DESC, i.id DESC LIMIT $2",
                    vec![Value::from(q.join(" ")), Value::from(limit)],
                )
            }
        };
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| {
                let model =
                    skill_invocation::Model::from_query_result(row, "").map_err(|e| self.err(e))?;
                Ok(invocation_from_model(model)?)
            })
            .collect()
    }
}
