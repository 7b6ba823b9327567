//! The yardstick of `bench --scenario bulk` on SQLite: a loader written by
//! hand over rusqlite, doing the work the store's batch path does, into a
//! second fresh store of the same schema. The store is to be at least as
//! fast as this plain code.
//!
//! Per batch, in one immediate transaction: each event's log row (its
//! search entry by the schema's trigger, every index of the log), its
//! session, and then the touched skills' `skill_metrics` rows (digests,
//! maps, derived figures), session-skill rows and hour and day rollups,
//! written whole. It is lean where a hand-written loader would be: it
//! knows its input is new (plain inserts, no duplicate check), it keeps
//! every aggregate in memory between batches instead of reading rows back,
//! it inserts the log 2,500 rows a statement (as many as the store's
//! statements hold) and every other row one a statement, each statement
//! prepared once. Its time runs until its log is copied into its file, as
//! the store's is compared (`bench` checkpoints the store before stopping
//! that clock). Its maps are unbounded,
//! which the bench's mix (20 paths, 5 errors, 5 follow-ups) never reaches.
//! After the timed load, `verify` reads its store: the log and every
//! aggregate must agree, so the loader did the same work, not less.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::{
    Aggregates, CountMap, Invocation, RollupAggregate, SessionSkillAggregate, SkillAggregate,
};
use migration::sqlite_timestamp as ts;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};

type Hour = (String, DateTime<Utc>, String);

/// Everything folded so far: what the rows hold.
#[derive(Default)]
struct Folded {
    skills: BTreeMap<String, SkillAggregate>,
    pairs: BTreeMap<(String, String), SessionSkillAggregate>,
    hours: BTreeMap<Hour, RollupAggregate>,
    days: BTreeMap<Hour, RollupAggregate>,
}

/// Log rows per insert statement: as many as 30,000 parameters hold, the
/// store's rule. One row a statement would cost far more: each statement
/// with a trigger opens a savepoint, and FTS5 writes its pending terms out
/// at every savepoint.
const LOG_ROWS: usize = 30_000 / 12;

fn insert_log(rows: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)";
    format!(
        "INSERT INTO skill_invocation_log (id, skill_name, invoked_at, workflow_path, completed, \
         duration_seconds, error_type, session_num, follow_up_actions, schema_version, \
         project_path, user_context, search_text) \
         SELECT column1, column2, column3, column4, column5, column6, column7, \
         (SELECT num FROM sessions WHERE id = column8), column9, column10, column11, \
         column12, column13 FROM (VALUES {})",
        vec![row; rows].join(", ")
    )
}

/// One event's values for [`insert_log`], in its column order.
fn log_values(inv: &Invocation, out: &mut Vec<SqlValue>) -> anyhow::Result<()> {
    let text = |t: Option<String>| t.map_or(SqlValue::Null, SqlValue::Text);
    out.extend([
        SqlValue::Blob(inv.id.as_uuid().as_bytes().to_vec()),
        SqlValue::Text(inv.skill_name.as_str().to_owned()),
        SqlValue::Text(ts(inv.invoked_at)),
        text(inv.workflow_path.clone()),
        SqlValue::Integer(i64::from(inv.completed)),
        inv.duration_seconds.map_or(SqlValue::Null, SqlValue::Real),
        text(inv.error_type.clone()),
        text(inv.session_id.as_ref().map(|s| s.as_str().to_owned())),
        SqlValue::Text(serde_json::to_string(&inv.follow_up_actions)?),
        text(inv.project_path.clone()),
        text(
            inv.user_context
                .as_ref()
                .map(|c| serde_json::Value::Object(c.clone()).to_string()),
        ),
        SqlValue::Text(domain::search_text(
            inv.skill_name.as_str(),
            inv.workflow_path.as_deref(),
        )),
    ]);
    Ok(())
}

const UPSERT_SESSION: &str = "INSERT INTO sessions (id, started_at, project_path) VALUES (?, ?, ?) \
     ON CONFLICT (id) DO UPDATE SET \
       started_at = min(sessions.started_at, excluded.started_at), \
       project_path = coalesce(sessions.project_path, excluded.project_path)";

const UPSERT_METRICS: &str = "INSERT INTO skill_metrics (skill_name, total_invocations, \
     completed_invocations, abandoned_invocations, total_duration_seconds, min_duration_seconds, \
     max_duration_seconds, p50_duration_seconds, p95_duration_seconds, p99_duration_seconds, \
     workflow_paths, common_errors, follow_up_actions, first_invoked, last_invoked, \
     completion_rate, avg_duration_seconds, schema_version, last_aggregated_at, duration_count, \
     duration_digest, success_rate, total_duration_micros, workflow_paths_other, \
     common_errors_other, follow_up_actions_other) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (skill_name) DO UPDATE SET total_invocations = excluded.total_invocations, \
     completed_invocations = excluded.completed_invocations, \
     abandoned_invocations = excluded.abandoned_invocations, \
     total_duration_seconds = excluded.total_duration_seconds, \
     min_duration_seconds = excluded.min_duration_seconds, \
     max_duration_seconds = excluded.max_duration_seconds, \
     p50_duration_seconds = excluded.p50_duration_seconds, \
     p95_duration_seconds = excluded.p95_duration_seconds, \
     p99_duration_seconds = excluded.p99_duration_seconds, \
     workflow_paths = excluded.workflow_paths, common_errors = excluded.common_errors, \
     follow_up_actions = excluded.follow_up_actions, first_invoked = excluded.first_invoked, \
     last_invoked = excluded.last_invoked, completion_rate = excluded.completion_rate, \
     avg_duration_seconds = excluded.avg_duration_seconds, \
     last_aggregated_at = excluded.last_aggregated_at, duration_count = excluded.duration_count, \
     duration_digest = excluded.duration_digest, success_rate = excluded.success_rate, \
     total_duration_micros = excluded.total_duration_micros, \
     workflow_paths_other = excluded.workflow_paths_other, \
     common_errors_other = excluded.common_errors_other, \
     follow_up_actions_other = excluded.follow_up_actions_other";

const UPSERT_PAIR: &str = "INSERT INTO session_skill_numbered (id, session_num, skill_name, \
     invocation_count, first_invoked_at, last_invoked_at, total_duration_seconds, \
     total_duration_micros) \
     SELECT ?1, (SELECT num FROM sessions WHERE id = ?2), ?3, ?4, ?5, ?6, ?7, ?8 WHERE true \
     ON CONFLICT (session_num, skill_name) DO UPDATE SET \
     invocation_count = excluded.invocation_count, first_invoked_at = excluded.first_invoked_at, \
     last_invoked_at = excluded.last_invoked_at, \
     total_duration_seconds = excluded.total_duration_seconds, \
     total_duration_micros = excluded.total_duration_micros";

fn upsert_rollup(table: &str) -> String {
    format!(
        "INSERT INTO {table} (skill_name, bucket_start, project_path, invocations, completed, \
         duration_count, total_duration_micros, duration_digest, error_counts) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (skill_name, bucket_start, project_path) DO UPDATE SET \
         invocations = excluded.invocations, completed = excluded.completed, \
         duration_count = excluded.duration_count, \
         total_duration_micros = excluded.total_duration_micros, \
         duration_digest = excluded.duration_digest, error_counts = excluded.error_counts"
    )
}

fn map_json(map: &CountMap) -> String {
    serde_json::Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect(),
    )
    .to_string()
}

/// Loads `batches` into the migrated, empty SQLite store at `path` (with
/// the store's settings: WAL, `synchronous=NORMAL`, foreign keys, 64 MiB
/// of page cache, temporary data in memory; SQLite's own checkpoints, at
/// the 10,000 pages where the store's checkpoint thread copies its log,
/// D30); returns the time the load took, its last checkpoint included.
pub(super) fn load(path: &Path, batches: &[Vec<Invocation>]) -> anyhow::Result<Duration> {
    let mut conn = Connection::open(path).context("opening the loader's store")?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = 10000;",
    )?;
    let mut all = Folded::default();
    let started = Instant::now();
    for batch in batches {
        write_batch(&mut conn, batch, &mut all)?;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(started.elapsed())
}

fn write_batch(
    conn: &mut Connection,
    batch: &[Invocation],
    all: &mut Folded,
) -> anyhow::Result<()> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut session = txn.prepare_cached(UPSERT_SESSION)?;
        // A session's earliest event and first project in this batch.
        let mut sessions: BTreeMap<&str, (DateTime<Utc>, Option<&str>)> = BTreeMap::new();
        for inv in batch {
            if let Some(id) = &inv.session_id {
                let entry = sessions
                    .entry(id.as_str())
                    .or_insert((inv.invoked_at, None));
                entry.0 = entry.0.min(inv.invoked_at);
                entry.1 = entry.1.or(inv.project_path.as_deref());
            }
        }
        for (id, (started, project)) in &sessions {
            session.execute(params![id, ts(*started), project])?;
        }
        let mut values = Vec::with_capacity(LOG_ROWS * 12);
        for rows in batch.chunks(LOG_ROWS) {
            values.clear();
            for inv in rows {
                log_values(inv, &mut values)?;
            }
            txn.prepare_cached(&insert_log(rows.len()))?
                .execute(params_from_iter(&values))?;
        }
    }
    let part = Aggregates::<&str>::of(batch);
    let now = ts(Utc::now());
    {
        let mut metrics = txn.prepare_cached(UPSERT_METRICS)?;
        for (name, partial) in &part.skills {
            let agg = all.skills.entry((*name).to_owned()).or_default();
            agg.merge(partial)?;
            let p = agg.percentiles();
            let rate = agg.completion_rate();
            metrics.execute(params![
                name,
                agg.total,
                agg.completed,
                agg.abandoned,
                agg.total_duration_seconds(),
                agg.min_duration_seconds,
                agg.max_duration_seconds,
                p.p50,
                p.p95,
                p.p99,
                map_json(&agg.workflow_paths),
                map_json(&agg.common_errors),
                map_json(&agg.follow_up_actions),
                agg.first_invoked.map(ts),
                agg.last_invoked.map(ts),
                rate,
                agg.avg_duration_seconds(),
                now,
                agg.duration_count,
                agg.digest.to_bytes(),
                rate,
                agg.total_duration_micros,
                agg.others[0],
                agg.others[1],
                agg.others[2],
            ])?;
        }
    }
    {
        let mut pair = txn.prepare_cached(UPSERT_PAIR)?;
        for ((session, skill), partial) in &part.session_skills {
            let key = ((*session).to_owned(), (*skill).to_owned());
            let row = match all.pairs.get_mut(&key) {
                Some(row) => {
                    row.merge(partial);
                    row
                }
                None => all.pairs.entry(key).or_insert(*partial),
            };
            pair.execute(params![
                uuid::Uuid::now_v7().as_bytes().as_slice(),
                session,
                skill,
                row.invocation_count,
                ts(row.first_invoked_at),
                ts(row.last_invoked_at),
                row.total_duration_seconds(),
                row.total_duration_micros,
            ])?;
        }
    }
    let days = domain::days_of(part.rollups.iter())
        .map_err(|(skill, e)| anyhow::anyhow!("{skill}: {e}"))?;
    for (table, partials, running) in [
        ("skill_rollups", &part.rollups, &mut all.hours),
        ("skill_rollups_daily", &days, &mut all.days),
    ] {
        let mut upsert = txn.prepare_cached(&upsert_rollup(table))?;
        for ((skill, start, project), partial) in partials {
            let key = ((*skill).to_owned(), *start, (*project).to_owned());
            let row = running.entry(key).or_default();
            row.merge(partial)?;
            upsert.execute(params![
                skill,
                ts(*start),
                project,
                row.total,
                row.completed,
                row.duration_count,
                row.total_duration_micros,
                (row.duration_count > 0).then(|| row.digest.to_bytes()),
                row.errors_json(),
            ])?;
        }
    }
    txn.commit()?;
    Ok(())
}
