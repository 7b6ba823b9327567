//! The write transaction on the store's own writer connection: the shared
//! write path's SQL (`write.rs`), bound from the same values, so that both
//! paths write identical rows.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use domain::{Aggregates, Invocation, RollupAggregate};
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use sea_orm::DbBackend;

use super::values::{SELECT_ONE_METRICS, bindings, metrics_row, rollup_row, uuid_at};
use crate::StoreError;
use crate::error::from_rusqlite as db_err;
use crate::maps::{self, Spill, merge_bounded};
use crate::rollups;
use crate::rows::aggregate_from_model;
use crate::sql::sqlite_placeholders;
use crate::write::{
    BatchOutcome, Piece, SESSION_SKILL, distinct, log_sql, metrics_sql, restored_sql,
    session_skills_sql, sessions_sql, settle, uncounted,
};

/// The general path's `apply` on this connection: sessions, log (present
/// ids skipped and reported), metrics rows folded, session-skill rows.
pub(super) fn apply(
    conn: &mut Connection,
    batch: &[Invocation],
) -> Result<BatchOutcome, StoreError> {
    let backend = DbBackend::Sqlite;
    let (fresh, repeated) = distinct(batch);
    let mut outcome = BatchOutcome {
        inserted: 0,
        duplicates: repeated,
    };
    let txn = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    for piece in sessions_sql(backend, &fresh) {
        execute(&txn, piece).map_err(db_err)?;
    }
    // The log is append-only and a rowid table: the rows this batch adds are
    // the ones past its largest rowid now. Counting them is enough when all
    // or none of the ids are new (always so for one event); only otherwise
    // are the inserted ids read back (cheaper than RETURNING every id).
    let before: Option<i64> = (fresh.len() > 1)
        .then(|| {
            txn.query_row(
                "SELECT coalesce(max(seq), 0) FROM skill_invocation_log",
                [],
                |r| r.get(0),
            )
        })
        .transpose()
        .map_err(db_err)?;
    let mut added = 0;
    for (sql, values) in log_sql(backend, &fresh, false) {
        added += txn
            .prepare_cached(&sqlite_placeholders(&sql))
            .and_then(|mut st| st.execute(params_from_iter(bindings(values)?)))
            .map_err(db_err)?;
    }
    let kept = if added == fresh.len() {
        outcome.inserted = added;
        fresh
    } else {
        let inserted = match before {
            Some(before) if added > 0 => txn
                .prepare_cached("SELECT id FROM skill_invocation_log WHERE seq > ?")
                .and_then(|mut st| {
                    st.query_map([before], |r| uuid_at(r, 0))?
                        .collect::<rusqlite::Result<HashSet<uuid::Uuid>>>()
                })
                .map_err(db_err)?,
            _ => HashSet::new(),
        };
        settle(&fresh, &inserted, &mut outcome)
    };

    let mut restored = HashSet::new();
    for (sql, values) in restored_sql(&kept) {
        let mut st = txn
            .prepare_cached(&sqlite_placeholders(&sql))
            .map_err(db_err)?;
        let ids = st
            .query_map(params_from_iter(bindings(values).map_err(db_err)?), |r| {
                uuid_at(r, 0)
            })
            .map_err(db_err)?;
        for id in ids {
            restored.insert(id.map_err(db_err)?);
        }
    }
    let kept = uncounted(kept, &restored);
    if kept.is_empty() {
        if outcome.inserted > 0 {
            // Restored from a prune's archive: logged, counted already.
            txn.commit().map_err(db_err)?;
        }
        // Otherwise dropping the transaction rolls back any session upsert.
        return Ok(outcome);
    }
    let folded = Aggregates::<&str>::of(kept);
    let mut stored = BTreeMap::new();
    let mut spill = Spill::default();
    {
        let mut create = txn
            .prepare_cached(
                "INSERT INTO skill_metrics (skill_name) VALUES (?) ON CONFLICT (skill_name) DO NOTHING",
            )
            .map_err(db_err)?;
        let mut select = txn.prepare_cached(&SELECT_ONE_METRICS).map_err(db_err)?;
        for (name, partial) in &folded.skills {
            create.execute([name]).map_err(db_err)?;
            let row = select.query_row([name], metrics_row).map_err(db_err)?;
            let mut agg = aggregate_from_model(&row)?;
            merge_bounded(name, &mut agg, partial, &mut spill)?;
            stored.insert((*name).to_owned(), agg);
        }
    }
    if !spill.is_empty() {
        for piece in maps::seed_sql(&spill) {
            execute(&txn, piece).map_err(db_err)?;
        }
        let mut counts = Vec::new();
        for (sql, values) in maps::add_sql(&spill) {
            let mut st = txn
                .prepare_cached(&sqlite_placeholders(&sql))
                .map_err(db_err)?;
            let rows = st
                .query_map(params_from_iter(bindings(values).map_err(db_err)?), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(db_err)?;
            for row in rows {
                counts.push(row.map_err(db_err)?);
            }
        }
        maps::finish(&mut stored, &spill, counts)?;
    }
    for piece in metrics_sql(backend, &stored)
        .into_iter()
        .chain(session_skills_sql(
            backend,
            SESSION_SKILL,
            &folded.session_skills,
        ))
    {
        execute(&txn, piece).map_err(db_err)?;
    }
    // The hours' and the days' rollups: read, merged, written back whole
    // (as `write.rs`).
    write_rollups(&txn, backend, rollups::ROLLUPS, &folded.rollups)?;
    let days = rollups::days_of(&folded.rollups)?;
    write_rollups(&txn, backend, rollups::DAYS, &days)?;
    txn.commit().map_err(db_err)?;
    Ok(outcome)
}

/// Merges `partials` into the rollup rows of `table`.
fn write_rollups(
    txn: &Connection,
    backend: DbBackend,
    table: &str,
    partials: &BTreeMap<(&str, DateTime<Utc>, &str), RollupAggregate>,
) -> Result<(), StoreError> {
    let keys: Vec<_> = partials.keys().copied().collect();
    let mut current = BTreeMap::new();
    for (sql, values) in rollups::select_sql(backend, table, &keys) {
        let mut st = txn
            .prepare_cached(&sqlite_placeholders(&sql))
            .map_err(db_err)?;
        let rows = st
            .query_map(
                params_from_iter(bindings(values).map_err(db_err)?),
                rollup_row,
            )
            .map_err(db_err)?;
        for row in rows {
            let (key, value) = rollups::from_model(row.map_err(db_err)?)?;
            current.insert(key, value);
        }
    }
    let merged = rollups::merged(current, partials.iter().map(|(k, v)| (*k, v)))?;
    for piece in rollups::upsert_sql(backend, table, &merged) {
        execute(txn, piece).map_err(db_err)?;
    }
    Ok(())
}

pub(super) fn execute(conn: &Connection, (sql, values): Piece) -> rusqlite::Result<()> {
    conn.prepare_cached(&sqlite_placeholders(&sql))?
        .execute(params_from_iter(bindings(values)?))?;
    Ok(())
}
