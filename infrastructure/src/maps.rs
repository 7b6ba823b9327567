//! Keeping the per-skill maps bounded (decision D86) on every write path.
//! A map lists every key inline until it would pass [`MAP_LIMIT`]; from
//! then on `skill_map_counts` holds every key's exact count, a write adds
//! to the rows of the keys it touches and reads their new counts back, and
//! the stored map lists only the largest (`domain::apply_exact`). A write
//! costs the same whatever the number of keys.

use std::collections::BTreeMap;

use domain::{CountMap, MAP_LIMIT, MapKind, SkillAggregate, apply_exact, stays_inline, top};
use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::StoreError;
use crate::rows::merge_skill;
use crate::sql::{chunk_rows, placeholders, stmt};
use crate::write::{Piece, metrics_sql};

/// One key's row in `skill_map_counts`: skill, map, key, count (or delta).
pub(crate) type KeyCount = (String, MapKind, String, i64);

/// What a write must do in `skill_map_counts`.
#[derive(Default)]
pub(crate) struct Spill {
    /// The whole maps spilling with this write, as they were before it.
    seed: Vec<KeyCount>,
    /// The deltas of this write to maps that have spilled (or do now).
    add: Vec<KeyCount>,
}

impl Spill {
    /// Nothing to do: no touched map has outgrown the limit.
    pub(crate) fn is_empty(&self) -> bool {
        self.add.is_empty()
    }
}

/// Merges `partial` into `into`, the stored aggregate of `skill`: maps that
/// stay inline by adding counts; maps that have spilled, or spill now, are
/// left to [`finish`], with what `skill_map_counts` needs in `spill`.
///
/// # Errors
/// [`StoreError::Digest`] when the digests cannot be merged.
pub(crate) fn merge_bounded(
    skill: &str,
    into: &mut SkillAggregate,
    partial: &SkillAggregate,
    spill: &mut Spill,
) -> Result<(), StoreError> {
    let spills = |kind| {
        let delta = partial.map(kind);
        !delta.is_empty() && !stays_inline(into.map(kind), into.other(kind), delta)
    };
    if !MapKind::ALL.into_iter().any(spills) {
        // The usual case: every touched map stays inline.
        return merge_skill(skill, into, partial);
    }
    let mut rest = partial.clone();
    for kind in MapKind::ALL {
        let (listed, other) = into.map_mut(kind);
        let (delta, _) = rest.map_mut(kind);
        if delta.is_empty() || stays_inline(listed, *other, delta) {
            continue;
        }
        if *other == 0 {
            // Spilling now: every key so far is listed, with its exact count.
            spill.seed.extend(
                listed
                    .iter()
                    .map(|(k, v)| (skill.to_owned(), kind, k.clone(), *v)),
            );
        }
        spill.add.extend(
            std::mem::take(delta)
                .into_iter()
                .map(|(k, v)| (skill.to_owned(), kind, k, v)),
        );
    }
    merge_skill(skill, into, &rest)
}

fn values(rows: &[KeyCount]) -> Vec<Value> {
    let mut values = Vec::with_capacity(rows.len() * 4);
    for (skill, kind, item, n) in rows {
        values.extend([
            Value::from(skill.as_str()),
            Value::from(kind.as_str()),
            Value::from(item.as_str()),
            Value::from(*n),
        ]);
    }
    values
}

fn insert_sql(rows: &[KeyCount], on_conflict: &str) -> Vec<Piece> {
    rows.chunks(chunk_rows(4))
        .map(|chunk| {
            (
                format!(
                    "INSERT INTO skill_map_counts (skill_name, kind, item, count) VALUES {} \
                     ON CONFLICT (skill_name, kind, item) DO UPDATE SET {on_conflict}",
                    placeholders(chunk.len(), 4)
                ),
                values(chunk),
            )
        })
        .collect()
}

/// The statements setting whole counts: the maps spilling now (run first).
pub(crate) fn seed_sql(spill: &Spill) -> Vec<Piece> {
    insert_sql(&spill.seed, "count = excluded.count")
}

/// The statements adding this write's deltas; each returns the keys' new
/// counts (`skill_name`, `kind`, `item`, `count`).
pub(crate) fn add_sql(spill: &Spill) -> Vec<Piece> {
    insert_sql(
        &spill.add,
        "count = skill_map_counts.count + excluded.count RETURNING skill_name, kind, item, count",
    )
}

/// Brings the spilled maps in `stored` up to date with the counts the
/// `add_sql` statements returned.
///
/// # Errors
/// [`StoreError::Unsupported`] when a returned row names an unknown map.
pub(crate) fn finish(
    stored: &mut BTreeMap<String, SkillAggregate>,
    spill: &Spill,
    returned: Vec<(String, String, String, i64)>,
) -> Result<(), StoreError> {
    let deltas: BTreeMap<(&str, MapKind, &str), i64> = spill
        .add
        .iter()
        .map(|(s, k, i, d)| ((s.as_str(), *k, i.as_str()), *d))
        .collect();
    let mut exact: BTreeMap<(String, MapKind), BTreeMap<String, (i64, i64)>> = BTreeMap::new();
    for (skill, kind, item, count) in returned {
        let kind = MapKind::parse(&kind).ok_or_else(|| StoreError::Unsupported {
            what: format!("skill_map_counts kind {kind:?}"),
            hint: "run `skill-metrics rebuild`".into(),
        })?;
        let delta = deltas
            .get(&(skill.as_str(), kind, item.as_str()))
            .copied()
            .unwrap_or(0);
        exact
            .entry((skill, kind))
            .or_default()
            .insert(item, (delta, count));
    }
    for ((skill, kind), touched) in exact {
        if let Some(agg) = stored.get_mut(&skill) {
            let (listed, other) = agg.map_mut(kind);
            apply_exact(listed, other, &touched);
        }
    }
    Ok(())
}

/// Writes whole `skill_metrics` rows of aggregates whose maps are complete
/// (recomputed from the log): a map over the limit is cut to its largest
/// keys, and every key's count goes to `skill_map_counts`, replacing what
/// it held for the skills `names` (every skill when `None`).
///
/// # Errors
/// A database failure.
pub(crate) async fn replace_metrics(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    rows: BTreeMap<String, SkillAggregate>,
    names: Option<&[String]>,
) -> Result<(), StoreError> {
    for (sql, values) in replace_metrics_sql(backend, rows, names) {
        conn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// The statements of [`replace_metrics`], in order, for any connection.
pub(crate) fn replace_metrics_sql(
    backend: DbBackend,
    rows: BTreeMap<String, SkillAggregate>,
    names: Option<&[String]>,
) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = match names {
        Some(names) => names
            .chunks(chunk_rows(1))
            .map(|chunk| {
                (
                    format!(
                        "DELETE FROM skill_map_counts WHERE skill_name IN (VALUES {})",
                        placeholders(chunk.len(), 1)
                    ),
                    chunk.iter().map(|n| Value::from(n.as_str())).collect(),
                )
            })
            .collect(),
        None => vec![("DELETE FROM skill_map_counts".to_owned(), Vec::new())],
    };
    pieces.extend(metrics_rows_sql(backend, rows));
    pieces
}

/// The statements that write whole `skill_metrics` rows, and the
/// `skill_map_counts` rows of their maps over the limit, where neither
/// table holds rows of these skills (emptied, or just cleared by
/// [`replace_metrics_sql`]).
pub(crate) fn metrics_rows_sql(
    backend: DbBackend,
    mut rows: BTreeMap<String, SkillAggregate>,
) -> Vec<Piece> {
    let mut spill = Spill::default();
    for (skill, agg) in &mut rows {
        for kind in MapKind::ALL {
            let (map, other) = agg.map_mut(kind);
            if map.len() <= MAP_LIMIT {
                continue;
            }
            let whole: CountMap = std::mem::take(map);
            let (listed, rest) = top(&whole);
            *map = listed;
            *other = rest;
            spill
                .seed
                .extend(whole.into_iter().map(|(k, v)| (skill.clone(), kind, k, v)));
        }
    }
    let mut pieces = seed_sql(&spill);
    pieces.extend(metrics_sql(backend, &rows));
    pieces
}

impl crate::SkillMetricsStore {
    /// Recomputes, from the log, the skills whose stored maps list more
    /// keys than the limit without having spilled (written before version
    /// 9): their rows then list the largest keys and `skill_map_counts`
    /// every key (D86). Reads only the per-skill rows when there are none.
    pub(crate) async fn bound_oversized_maps(&self) -> Result<(), StoreError> {
        let names: Vec<String> = self
            .metrics(&[])
            .await?
            .into_iter()
            .filter(|m| {
                [
                    (&m.workflow_paths, m.workflow_paths_other),
                    (&m.common_errors, m.common_errors_other),
                    (&m.follow_up_actions, m.follow_up_actions_other),
                ]
                .iter()
                .any(|(map, _)| map.len() > domain::MAP_LIMIT)
            })
            .map(|m| m.skill_name)
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let names = std::sync::Arc::new(names);
        let count = names.len();
        self.write(move |txn| {
            let names = std::sync::Arc::clone(&names);
            Box::pin(async move {
                crate::balance::lock_out_writers(txn).await?;
                crate::balance::rebuild_skills(txn, &names).await
            })
        })
        .await?;
        tracing::info!(
            skills = count,
            "bounded the maps of skills over the limit (migration 9)"
        );
        Ok(())
    }
}
