//! Keeping `skill_rollups` (decision D81): the SQL both write paths run to
//! read the rows a batch touches and write them back merged, and the rows
//! as domain values. Counts could be added in SQL, but a digest can only be
//! merged here, so each touched row is read, merged and written whole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::RollupAggregate;
use entity::{skill_rollups, skill_rollups_pruned};
use sea_orm::{DbBackend, Value};

use crate::StoreError;
use crate::rows::{digest_err, digest_of};
use crate::sql::{chunk_rows, placeholders, ts};
use crate::write::Piece;

/// A rollup's key: skill, UTC hour, project (`""` for none).
pub(crate) type RollupKey = (String, DateTime<Utc>, String);

/// The columns, in the order the statements below use them.
pub(crate) const ROLLUP_COLS: [&str; 9] = [
    "skill_name",
    "bucket_start",
    "project_path",
    "invocations",
    "completed",
    "duration_count",
    "total_duration_micros",
    "duration_digest",
    "error_counts",
];

/// The rollups kept in every write.
pub(crate) const ROLLUPS: &str = "skill_rollups";
/// What pruned invocations contributed to them (D83).
pub(crate) const ROLLUPS_PRUNED: &str = "skill_rollups_pruned";
/// The daily rollups, each the merge of its day's hours (D92).
pub(crate) const DAYS: &str = "skill_rollups_daily";

/// Hourly partials folded into the daily rows they add to.
pub(crate) fn days_of<'a, K: Ord + Clone + AsRef<str> + 'a>(
    hours: impl IntoIterator<Item = (&'a (K, DateTime<Utc>, K), &'a RollupAggregate)>,
) -> Result<domain::Rollups<K>, StoreError> {
    domain::days_of(hours).map_err(|(skill, e)| digest_err(skill.as_ref(), &e))
}

/// Reads the stored rows of `keys` from `table` (one of the two above), in chunks.
pub(crate) fn select_sql(
    backend: DbBackend,
    table: &str,
    keys: &[(&str, DateTime<Utc>, &str)],
) -> Vec<Piece> {
    keys.chunks(chunk_rows(3))
        .map(|chunk| {
            let sql = format!(
                "SELECT {} FROM {table} WHERE (skill_name, bucket_start, project_path) IN (VALUES {})",
                ROLLUP_COLS.join(", "),
                placeholders(chunk.len(), 3)
            );
            let mut values = Vec::with_capacity(chunk.len() * 3);
            for (skill, hour, project) in chunk {
                values.extend([
                    Value::from(*skill),
                    ts(backend, *hour),
                    Value::from(*project),
                ]);
            }
            (sql, values)
        })
        .collect()
}

/// Writes `rows` whole into `table`, replacing what is stored under their keys.
pub(crate) fn upsert_sql<'a>(
    backend: DbBackend,
    table: &str,
    rows: impl IntoIterator<Item = (&'a RollupKey, &'a RollupAggregate)>,
) -> Vec<Piece> {
    let all: Vec<_> = rows.into_iter().collect();
    let updates = ROLLUP_COLS[3..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    all.chunks(chunk_rows(ROLLUP_COLS.len()))
        .map(|chunk| {
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {} \
                 ON CONFLICT (skill_name, bucket_start, project_path) DO UPDATE SET {updates}",
                ROLLUP_COLS.join(", "),
                placeholders(chunk.len(), ROLLUP_COLS.len())
            );
            let mut values = Vec::with_capacity(chunk.len() * ROLLUP_COLS.len());
            for ((skill, hour, project), r) in chunk {
                values.extend([
                    Value::from(skill.as_str()),
                    ts(backend, *hour),
                    Value::from(project.as_str()),
                    Value::from(r.total),
                    Value::from(r.completed),
                    Value::from(r.duration_count),
                    Value::from(r.total_duration_micros),
                    Value::from((r.duration_count > 0).then(|| r.digest.to_bytes())),
                    Value::from(r.errors_json()),
                ]);
            }
            (sql, values)
        })
        .collect()
}

/// A stored row as its key and aggregate.
pub(crate) fn from_model(
    m: skill_rollups::Model,
) -> Result<(RollupKey, RollupAggregate), StoreError> {
    let digest = digest_of(&m.skill_name, m.duration_digest.as_deref())?;
    let mut agg = RollupAggregate {
        total: m.invocations,
        completed: m.completed,
        duration_count: m.duration_count,
        total_duration_micros: m.total_duration_micros,
        digest,
        ..RollupAggregate::default()
    };
    agg.set_errors_json(m.error_counts.as_deref())
        .map_err(|reason| StoreError::Digest {
            skill: m.skill_name.clone(),
            reason,
        })?;
    Ok(((m.skill_name, m.bucket_start, m.project_path), agg))
}

/// A pruned balance row as its key and aggregate.
pub(crate) fn from_pruned_model(
    m: skill_rollups_pruned::Model,
) -> Result<(RollupKey, RollupAggregate), StoreError> {
    from_model(skill_rollups::Model {
        skill_name: m.skill_name,
        bucket_start: m.bucket_start,
        project_path: m.project_path,
        invocations: m.invocations,
        completed: m.completed,
        duration_count: m.duration_count,
        total_duration_micros: m.total_duration_micros,
        duration_digest: m.duration_digest,
        error_counts: m.error_counts,
    })
}

/// `stored` with `partials` merged in: the rows to write back.
pub(crate) fn merged<'a>(
    mut stored: BTreeMap<RollupKey, RollupAggregate>,
    partials: impl IntoIterator<Item = ((&'a str, DateTime<Utc>, &'a str), &'a RollupAggregate)>,
) -> Result<BTreeMap<RollupKey, RollupAggregate>, StoreError> {
    for ((skill, hour, project), partial) in partials {
        stored
            .entry((skill.to_owned(), hour, project.to_owned()))
            .or_default()
            .merge(partial)
            .map_err(|e| digest_err(skill, &e))?;
    }
    Ok(stored)
}

impl crate::SkillMetricsStore {
    /// No rebuild has filled the rollups since version 7 made them.
    pub(crate) async fn rollups_missing(&self) -> Result<bool, StoreError> {
        use sea_orm::ConnectionTrait;
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.backend(),
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM skill_rollups_state WHERE filled) \
                 THEN 0 ELSE 1 END AS missing",
            ))
            .await
            .map_err(|e| self.err(e))?;
        let missing: i32 = match row {
            Some(row) => row.try_get("", "missing").map_err(|e| self.err(e))?,
            None => 0,
        };
        Ok(missing == 1)
    }
}
