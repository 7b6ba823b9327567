//! The skills' pieces: ranges of small skills, and a large skill's windows of time.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use domain::{SkillAggregate, day_of};
use entity::{
    skill_invocation_log, skill_metrics_balance, skill_metrics_pruned, skill_rollups,
    skill_rollups_daily, skill_rollups_pruned,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::rows::{skill_after_rows, skills_between};
use super::{Piece, Sweep};
use crate::StoreError;
use crate::recompute::{
    Recomputed, balances_of, load_balances, load_pruned_skills, pruned_skills_of,
};
use crate::sql::ts;

impl Sweep {
    /// Where the range of skills after `after` ends: at the first skill
    /// whose rows, in the log or in either rollup table, reach the window's
    /// size counted from `after` (that skill is then read in windows of
    /// time); `None` when every table has fewer rows left.
    pub(super) async fn boundary(
        conn: &DatabaseTransaction,
        after: Option<&str>,
        rows: u64,
    ) -> Result<Option<String>, StoreError> {
        let candidates: Vec<String> = [
            skill_after_rows::<skill_invocation_log::Entity>(
                conn,
                skill_invocation_log::Column::SkillName,
                after,
                rows,
            )
            .await?,
            skill_after_rows::<skill_rollups::Entity>(
                conn,
                skill_rollups::Column::SkillName,
                after,
                rows,
            )
            .await?,
            skill_after_rows::<skill_rollups_pruned::Entity>(
                conn,
                skill_rollups_pruned::Column::SkillName,
                after,
                rows,
            )
            .await?,
        ]
        .into_iter()
        .flatten()
        .collect();
        if candidates.len() <= 1 {
            return Ok(candidates.into_iter().next());
        }
        // The first of them in the database's order, not Rust's.
        let backend = conn.get_database_backend();
        let union = (1..=candidates.len())
            .map(|i| format!("SELECT CAST(${i} AS TEXT) AS n"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let row = conn
            .query_one_raw(crate::sql::stmt(
                backend,
                &format!("SELECT MIN(n) AS n FROM ({union}) AS c"),
                candidates.into_iter().map(sea_orm::Value::from).collect(),
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<String>>("", "n")?,
            None => None,
        })
    }

    /// The skills after `after` and before `before`, whole: their log rows
    /// (fewer than the window's size), rollups and balances.
    pub(super) async fn range(
        &mut self,
        conn: &DatabaseTransaction,
        after: Option<String>,
        before: Option<String>,
    ) -> Result<Piece, StoreError> {
        let bounds = (after.as_deref(), before.as_deref());
        let mut log = Recomputed::default();
        let keep = self.keep_durations;
        let mut durations: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let folded = &mut log.aggregates;
        let mut read = 0u64;
        self.fold_rows(
            conn,
            skills_between(
                skill_invocation_log::Entity::find(),
                skill_invocation_log::Column::SkillName,
                bounds,
            ),
            None,
            |inv| {
                read += 1;
                if let (true, true, Some(d)) = (keep, inv.completed, inv.duration_seconds) {
                    durations
                        .entry(inv.skill_name.as_str().to_owned())
                        .or_default()
                        .push(d);
                }
                folded.add_to_skill(&inv);
                Ok(())
            },
        )
        .await?;
        self.read += read;
        let pruned_rollups = skills_between(
            skill_rollups_pruned::Entity::find(),
            skill_rollups_pruned::Column::SkillName,
            bounds,
        )
        .all(conn)
        .await?;
        add_pruned_rollups(pruned_rollups, &mut log)?;
        let balances = balances_of(
            conn,
            skills_between(
                skill_metrics_balance::Entity::find(),
                skill_metrics_balance::Column::SkillName,
                bounds,
            ),
        )
        .await?;
        let pruned = pruned_skills_of(
            conn,
            skills_between(
                skill_metrics_pruned::Entity::find(),
                skill_metrics_pruned::Column::SkillName,
                bounds,
            ),
        )
        .await?;
        add_skill_balances(&mut log, balances, pruned)?;
        if keep {
            log.durations = Some(durations);
        }
        Ok(Piece::Range { after, before, log })
    }

    /// The UTC day of the first time at or after `from` (from the
    /// beginning when `None`) that the log, the stored rollups (hourly or
    /// daily) or the pruned rollups of `skill` hold.
    pub(super) async fn first_at_or_after(
        conn: &DatabaseTransaction,
        skill: &str,
        from: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        use skill_invocation_log::Column as L;
        use skill_rollups::Column as R;
        use skill_rollups_daily::Column as D;
        use skill_rollups_pruned::Column as P;
        let log = first_time::<skill_invocation_log::Entity>(
            conn,
            (L::SkillName, L::InvokedAt),
            skill,
            from,
        );
        let stored =
            first_time::<skill_rollups::Entity>(conn, (R::SkillName, R::BucketStart), skill, from);
        let days = first_time::<skill_rollups_daily::Entity>(
            conn,
            (D::SkillName, D::BucketStart),
            skill,
            from,
        );
        let pruned = first_time::<skill_rollups_pruned::Entity>(
            conn,
            (P::SkillName, P::BucketStart),
            skill,
            from,
        );
        Ok([log.await?, stored.await?, days.await?, pruned.await?]
            .into_iter()
            .flatten()
            .min()
            .map(day_of))
    }

    /// The rollups of `skill` in the window starting at `from`, folding its
    /// rows into `agg` (and `durations`) on the way; returns the piece and
    /// the window's end.
    pub(super) async fn window(
        &mut self,
        conn: &DatabaseTransaction,
        skill: &str,
        from: DateTime<Utc>,
        agg: &mut SkillAggregate,
        durations: &mut Vec<f64>,
    ) -> Result<(Piece, DateTime<Utc>), StoreError> {
        use skill_invocation_log::Column as L;
        // The UTC day after the window's last allowed row, at least one day
        // on: a window holds whole days, so its daily rollups are whole too.
        let nth = skill_invocation_log::Entity::find()
            .select_only()
            .column(L::InvokedAt)
            .filter(L::SkillName.eq(skill))
            .filter(L::InvokedAt.gte(ts(conn.get_database_backend(), from)))
            .order_by_asc(L::InvokedAt)
            .offset(self.sizes.window_rows)
            .limit(1)
            .into_tuple::<DateTime<Utc>>()
            .one(conn)
            .await?;
        let cap = from + Duration::days(self.sizes.window_days.max(1));
        let to = nth.map_or(cap, |at| day_of(at).max(from + Duration::days(1)).min(cap));
        let mut log = Recomputed::default();
        let keep = self.keep_durations;
        let folded = &mut log.aggregates;
        let mut read = 0u64;
        self.fold_rows(
            conn,
            window_rows(conn.get_database_backend(), skill, from, to),
            None,
            |inv| {
                read += 1;
                if let (true, true, Some(d)) = (keep, inv.completed, inv.duration_seconds) {
                    durations.push(d);
                }
                folded.add_to_skill(&inv);
                Ok(())
            },
        )
        .await?;
        self.read += read;
        // The window's part of the skill's aggregate.
        if let Some(part) = log.aggregates.skills.remove(skill) {
            crate::rows::merge_skill(skill, agg, &part)?;
        }
        use skill_rollups_pruned::Column as P;
        let pruned_rollups = skill_rollups_pruned::Entity::find()
            .filter(P::SkillName.eq(skill))
            .filter(P::BucketStart.gte(ts(conn.get_database_backend(), from)))
            .filter(P::BucketStart.lt(ts(conn.get_database_backend(), to)))
            .all(conn)
            .await?;
        add_pruned_rollups(pruned_rollups, &mut log)?;
        let piece = Piece::Rollups {
            skill: skill.to_owned(),
            from,
            to,
            log,
        };
        Ok((piece, to))
    }

    /// A skill's whole aggregate: what its windows folded, plus its opening
    /// and pruned balances.
    pub(super) async fn skill_piece(
        keep_durations: bool,
        conn: &DatabaseTransaction,
        name: String,
        agg: SkillAggregate,
        durations: Vec<f64>,
    ) -> Result<Piece, StoreError> {
        let only = std::slice::from_ref(&name);
        let balances = load_balances(conn, Some(only)).await?;
        let pruned = load_pruned_skills(conn, Some(only)).await?;
        let mut log = Recomputed::default();
        if agg.total > 0 {
            log.aggregates.skills.insert(name.clone(), agg);
        }
        add_skill_balances(&mut log, balances, pruned)?;
        if keep_durations {
            log.durations = Some(BTreeMap::from([(name.clone(), durations)]));
        }
        Ok(Piece::Skill { name, log })
    }
}

/// The first time (in `columns.1`) at or after `from` (from the beginning
/// when `None`) that `E` holds for `skill` (in `columns.0`).
async fn first_time<E: EntityTrait>(
    conn: &DatabaseTransaction,
    (skill_column, time_column): (E::Column, E::Column),
    skill: &str,
    from: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, StoreError>
where
    E::Column: ColumnTrait,
{
    let mut query = E::find()
        .select_only()
        .column(time_column)
        .filter(skill_column.eq(skill))
        .order_by_asc(time_column)
        .limit(1);
    if let Some(from) = from {
        query = query.filter(time_column.gte(ts(conn.get_database_backend(), from)));
    }
    Ok(query.into_tuple::<DateTime<Utc>>().one(conn).await?)
}

/// Adds the pruned rollup `rows` (D83) into `log`'s rollups.
fn add_pruned_rollups(
    rows: Vec<skill_rollups_pruned::Model>,
    log: &mut Recomputed,
) -> Result<(), StoreError> {
    for row in rows {
        let (key, pruned) = crate::rollups::from_pruned_model(row)?;
        let skill = key.0.clone();
        log.aggregates
            .rollups
            .entry(key)
            .or_default()
            .merge(&pruned)
            .map_err(|e| crate::rows::digest_err(&skill, &e))?;
    }
    Ok(())
}

/// Adds the opening and the pruned balances into `log`'s skills (a skill
/// only a balance knows gets a row), and marks the skills some of whose
/// durations left with a prune: their quantiles can only be checked
/// against the merged digest.
fn add_skill_balances(
    log: &mut Recomputed,
    balances: BTreeMap<String, SkillAggregate>,
    pruned: BTreeMap<String, SkillAggregate>,
) -> Result<(), StoreError> {
    log.pruned_durations.extend(
        pruned
            .iter()
            .filter(|(_, b)| b.duration_count > 0)
            .map(|(name, _)| name.clone()),
    );
    crate::recompute::add_balances(&mut log.aggregates.skills, balances)?;
    crate::recompute::add_balances(&mut log.aggregates.skills, pruned)
}

/// A skill's log rows in `[from, to)`: one range of `(skill_name,
/// invoked_at)`.
pub(super) fn window_rows(
    backend: sea_orm::DbBackend,
    skill: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sea_orm::Select<skill_invocation_log::Entity> {
    use skill_invocation_log::Column as L;
    skill_invocation_log::Entity::find()
        .filter(L::SkillName.eq(skill))
        .filter(L::InvokedAt.gte(ts(backend, from)))
        .filter(L::InvokedAt.lt(ts(backend, to)))
}
