//! Reading what the aggregates must be, in bounded pieces (decision D91):
//! the log one skill at a time, in windows of time, for `skill_metrics` and
//! `skill_rollups`; then one chunk of sessions at a time for `session_skill`
//! and `sessions`. `verify` compares each piece with the stored rows of the
//! same keys and `rebuild` writes it, so neither holds more than one piece
//! (plus, for `verify`, one skill's durations for its exact quantiles).
//!
//! Every piece is chosen by the database's own comparisons (`=` on a skill,
//! ranges of time, ranges of session ids), never by an order computed here,
//! so both backends' collations cut the log and the stored rows alike.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use domain::{Invocation, SkillAggregate, hour_of};
use entity::{
    session_skill_pruned, sessions, skill_invocation, skill_metrics_balance, skill_metrics_pruned,
    skill_rollups, skill_rollups_pruned,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, JsonValue, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select, Statement,
};

use crate::StoreError;
use crate::direct::{bindings, json_at, required_timestamp_at};
use crate::recompute::{Recomputed, SessionFacts, load_balances, load_pruned_skills};
use crate::rows::logged_invocation;
use crate::sql::ts;

/// How large the pieces are. The defaults are what `verify` and `rebuild`
/// use; tests cut a small store into many pieces with small ones.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct PieceSizes {
    /// Most log rows in one window of a skill, unless a single hour holds more.
    pub window_rows: u64,
    /// Longest window, in hours: bounds the stored rollups one window reads
    /// where the log is sparse (after a prune, say).
    pub window_hours: i64,
    /// Sessions per chunk.
    pub session_chunk: u64,
    /// Rows fetched at a time from a PostgreSQL cursor.
    pub cursor_rows: u64,
}

impl Default for PieceSizes {
    fn default() -> Self {
        Self {
            window_rows: 20_000,
            window_hours: 31 * 24,
            session_chunk: 1_000,
            cursor_rows: 5_000,
        }
    }
}

/// One piece of the recomputation, with the keys it covers.
pub(crate) enum Piece {
    /// Every skill after `after` and before `before` (open where `None`),
    /// whole: their aggregates with their balances, and their rollups.
    /// Skills no log row, rollup or balance knows are absent.
    Range {
        after: Option<String>,
        before: Option<String>,
        log: Recomputed,
    },
    /// A skill's rollups for the hours in `[from, to)`.
    Rollups {
        skill: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        log: Recomputed,
    },
    /// A skill's whole aggregate, balances included; `log.aggregates.skills`
    /// is empty when neither the log nor a balance knows the skill.
    Skill { name: String, log: Recomputed },
    /// The sessions with ids in `(after, through]` (unbounded where `None`):
    /// their `session_skill` rows and what the log fixes of each session,
    /// with the stored `sessions` rows of the range.
    Sessions {
        after: Option<String>,
        through: Option<String>,
        log: Recomputed,
        stored: Vec<sessions::Model>,
    },
}

/// The part of a log row the aggregates need, in [`LOG_COLUMNS`] order:
/// read by position, which costs less than by name.
type LogRow = (
    String,
    String,
    DateTime<Utc>,
    Option<String>,
    bool,
    Option<f64>,
    Option<String>,
    Option<String>,
    JsonValue,
    Option<String>,
);

const LOG_COLUMNS: [skill_invocation::Column; 10] = [
    skill_invocation::Column::Id,
    skill_invocation::Column::SkillName,
    skill_invocation::Column::InvokedAt,
    skill_invocation::Column::WorkflowPath,
    skill_invocation::Column::Completed,
    skill_invocation::Column::DurationSeconds,
    skill_invocation::Column::ErrorType,
    skill_invocation::Column::SessionId,
    skill_invocation::Column::FollowUpActions,
    skill_invocation::Column::ProjectPath,
];

/// Folds the log rows `stmt` selects (as [`LOG_COLUMNS`]) into `each`, one
/// at a time as rusqlite steps through them.
fn fold_lite(
    conn: &rusqlite::Connection,
    stmt: Statement,
    each: &mut impl FnMut(Invocation) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let values = stmt.values.map(|v| v.0).unwrap_or_default();
    let lite = crate::error::from_rusqlite;
    let mut st = conn.prepare_cached(&stmt.sql).map_err(lite)?;
    let values = bindings(values).map_err(lite)?;
    let mut rows = st.query(rusqlite::params_from_iter(values)).map_err(lite)?;
    while let Some(row) = rows.next().map_err(lite)? {
        let decoded: rusqlite::Result<LogRow> = (|| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                required_timestamp_at(row, 2, "invoked_at")?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                json_at(row, 8)?,
                row.get(9)?,
            ))
        })();
        each(invocation(decoded.map_err(lite)?)?)?;
    }
    Ok(())
}

/// `query` narrowed to the skills (named by `column`) after `after` and
/// before `before`, each bound left open when `None`, by the database's
/// own comparisons.
pub(crate) fn skills_between<E: EntityTrait>(
    mut query: Select<E>,
    column: E::Column,
    (after, before): (Option<&str>, Option<&str>),
) -> Select<E>
where
    E::Column: ColumnTrait,
{
    if let Some(after) = after {
        query = query.filter(column.gt(after));
    }
    if let Some(before) = before {
        query = query.filter(column.lt(before));
    }
    query
}

/// The skill name (in `column`) `rows` rows after `after` in `E`, in the
/// database's order: one seek and a walk on an index that starts with it.
async fn skill_after_rows<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    column: E::Column,
    after: Option<&str>,
    rows: u64,
) -> Result<Option<String>, StoreError>
where
    E::Column: ColumnTrait,
{
    Ok(skills_between(E::find(), column, (after, None))
        .select_only()
        .column(column)
        .order_by_asc(column)
        .offset(rows)
        .limit(1)
        .into_tuple::<String>()
        .one(conn)
        .await?)
}

/// The invocation of a log row, checked by the domain's rules.
fn invocation(row: LogRow) -> Result<Invocation, StoreError> {
    let (
        id,
        skill_name,
        invoked_at,
        workflow_path,
        completed,
        duration_seconds,
        error_type,
        session_id,
        follow_up_actions,
        project_path,
    ) = row;
    logged_invocation(skill_invocation::Model {
        id,
        skill_name,
        invoked_at,
        workflow_path,
        completed,
        duration_seconds,
        error_type,
        session_id,
        follow_up_actions,
        schema_version: 0,
        project_path,
        user_context: None,
        search_text: String::new(),
        seq: 0,
    })
}

/// Where the sweep is.
enum Stage {
    /// The skills after the given name (from the first when `None`): a
    /// range of small ones next, then the skill that ends it.
    Range(Option<String>),
    /// A skill's windows, from `next` (none left when `None`).
    Skill {
        name: String,
        next: Option<DateTime<Utc>>,
        agg: Option<Box<SkillAggregate>>,
        durations: Vec<f64>,
    },
    /// Sessions after the given id (from the first when `None`).
    Sessions(Option<String>),
    Done,
}

/// The log and the balances, read piece by piece: call [`Sweep::next`]
/// until it returns `None`.
pub(crate) struct Sweep {
    sizes: PieceSizes,
    keep_durations: bool,
    /// Whether any pruned row was ingested back (D83): only then does a
    /// read filter them out.
    tombstones: bool,
    stage: Stage,
    /// On a SQLite file, a connection of the sweep's own in a read
    /// transaction with the caller's snapshot, for the log's rows.
    lite: Option<rusqlite::Connection>,
    /// Log rows read, each once.
    pub(crate) read: u64,
}

impl Sweep {
    /// Starts a sweep of every skill the log, the stored rows or a balance
    /// names, then of every session. With `keep_durations`, each skill's
    /// piece carries its completed durations (8 bytes each, one skill at a
    /// time) for exact quantiles.
    pub(crate) async fn start(
        conn: &impl ConnectionTrait,
        sizes: PieceSizes,
        keep_durations: bool,
        lite: Option<rusqlite::Connection>,
    ) -> Result<Self, StoreError> {
        let tombstones = entity::pruned_invocations::Entity::find()
            .one(conn)
            .await?
            .is_some();
        Ok(Self {
            sizes,
            keep_durations,
            tombstones,
            stage: Stage::Range(None),
            lite,
            read: 0,
        })
    }

    /// The next piece, or `None` when the whole store has been read.
    pub(crate) async fn next(
        &mut self,
        conn: &impl ConnectionTrait,
    ) -> Result<Option<Piece>, StoreError> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Skill {
                name,
                next,
                agg,
                durations,
            } => {
                let next = match (next, &agg) {
                    (Some(at), _) => Some(at),
                    // Not started: from the first hour anything names.
                    (None, None) => Self::first_at_or_after(conn, &name, None).await?,
                    (None, Some(_)) => None,
                };
                let mut agg = agg.unwrap_or_default();
                let mut durations = durations;
                match next {
                    Some(from) => {
                        let (piece, to) = self
                            .window(conn, &name, from, &mut agg, &mut durations)
                            .await?;
                        let next = Self::first_at_or_after(conn, &name, Some(to)).await?;
                        self.stage = match next {
                            Some(at) => Stage::Skill {
                                name,
                                next: Some(at),
                                agg: Some(agg),
                                durations,
                            },
                            // The skill's windows are done: its piece next.
                            None => Stage::Skill {
                                name,
                                next: None,
                                agg: Some(agg),
                                durations,
                            },
                        };
                        Ok(Some(piece))
                    }
                    None => {
                        let piece = Self::skill_piece(
                            self.keep_durations,
                            conn,
                            name.clone(),
                            *agg,
                            durations,
                        )
                        .await?;
                        self.stage = Stage::Range(Some(name));
                        Ok(Some(piece))
                    }
                }
            }
            Stage::Range(after) => {
                let before = Self::boundary(conn, after.as_deref(), self.sizes.window_rows).await?;
                let piece = self.range(conn, after, before.clone()).await?;
                self.stage = match before {
                    Some(name) => Stage::Skill {
                        name,
                        next: None,
                        agg: None,
                        durations: Vec::new(),
                    },
                    None => Stage::Sessions(None),
                };
                Ok(Some(piece))
            }
            Stage::Sessions(after) => {
                let piece = self.sessions(conn, after).await?;
                if let Piece::Sessions {
                    through: Some(through),
                    ..
                } = &piece
                {
                    self.stage = Stage::Sessions(Some(through.clone()));
                }
                Ok(Some(piece))
            }
            Stage::Done => Ok(None),
        }
    }

    /// Folds the log's rows of `query` into `each`, without those a prune
    /// had removed and an import restored (they are in the prune's
    /// balances, D83). The rows stream: on a SQLite file through rusqlite,
    /// on PostgreSQL through a cursor a page at a time; only an in-memory
    /// SQLite store (held in memory whole anyway) reads them at once.
    async fn fold_rows(
        &mut self,
        conn: &impl ConnectionTrait,
        mut query: Select<skill_invocation::Entity>,
        mut each: impl FnMut(Invocation) -> Result<(), StoreError> + Send,
    ) -> Result<(), StoreError> {
        if self.tombstones {
            query = query.filter(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM pruned_invocations p WHERE p.id = skill_invocation.id)",
            ));
        }
        let query = query.select_only().columns(LOG_COLUMNS);
        if let Some(lite) = &self.lite {
            return fold_lite(lite, query.build(DbBackend::Sqlite), &mut each);
        }
        let backend = conn.get_database_backend();
        if backend != DbBackend::Postgres {
            for row in query.into_tuple::<LogRow>().all(conn).await? {
                each(invocation(row)?)?;
            }
            return Ok(());
        }
        let stmt = query.build(backend);
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("DECLARE sweep_rows NO SCROLL CURSOR FOR {}", stmt.sql),
            stmt.values.map(|v| v.0).unwrap_or_default(),
        ))
        .await?;
        let fetch = format!("FETCH {} FROM sweep_rows", self.sizes.cursor_rows.max(1));
        loop {
            let page = conn
                .query_all_raw(Statement::from_string(backend, fetch.as_str()))
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                each(invocation(row.try_get_many_by_index::<LogRow>()?)?)?;
            }
        }
        conn.execute_unprepared("CLOSE sweep_rows").await?;
        Ok(())
    }

    /// Where the range of skills after `after` ends: at the first skill
    /// whose rows, in the log or in either rollup table, reach the window's
    /// size counted from `after` (that skill is then read in windows of
    /// time); `None` when every table has fewer rows left.
    async fn boundary(
        conn: &impl ConnectionTrait,
        after: Option<&str>,
        rows: u64,
    ) -> Result<Option<String>, StoreError> {
        let candidates: Vec<String> = [
            skill_after_rows::<skill_invocation::Entity>(
                conn,
                skill_invocation::Column::SkillName,
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
    async fn range(
        &mut self,
        conn: &impl ConnectionTrait,
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
                skill_invocation::Entity::find(),
                skill_invocation::Column::SkillName,
                bounds,
            ),
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
        log.read = read;
        for row in skills_between(
            skill_rollups_pruned::Entity::find(),
            skill_rollups_pruned::Column::SkillName,
            bounds,
        )
        .all(conn)
        .await?
        {
            let (key, pruned) = crate::rollups::from_pruned_model(row)?;
            let skill = key.0.clone();
            log.aggregates
                .rollups
                .entry(key)
                .or_default()
                .merge(&pruned)
                .map_err(|e| crate::rows::digest_err(&skill, &e))?;
        }
        let mut balances: BTreeMap<String, SkillAggregate> = BTreeMap::new();
        for row in skills_between(
            skill_metrics_balance::Entity::find(),
            skill_metrics_balance::Column::SkillName,
            bounds,
        )
        .all(conn)
        .await?
        {
            let into = balances.entry(row.skill_name.clone()).or_default();
            crate::rows::merge_skill(
                &row.skill_name,
                into,
                &crate::rows::aggregate_from_balance(&row),
            )?;
        }
        let mut pruned: BTreeMap<String, SkillAggregate> = BTreeMap::new();
        for row in skills_between(
            skill_metrics_pruned::Entity::find(),
            skill_metrics_pruned::Column::SkillName,
            bounds,
        )
        .all(conn)
        .await?
        {
            pruned.insert(
                row.skill_name.clone(),
                crate::rows::aggregate_from_pruned(&row)?,
            );
        }
        log.pruned_durations = pruned
            .iter()
            .filter(|(_, b)| b.duration_count > 0)
            .map(|(name, _)| name.clone())
            .collect();
        crate::recompute::add_balances(&mut log.aggregates.skills, balances)?;
        crate::recompute::add_balances(&mut log.aggregates.skills, pruned)?;
        if keep {
            log.durations = Some(durations);
        }
        Ok(Piece::Range { after, before, log })
    }

    /// The first hour at or after `from` (from the beginning when `None`)
    /// that the log, the stored rollups or the pruned rollups of `skill` hold.
    async fn first_at_or_after(
        conn: &impl ConnectionTrait,
        skill: &str,
        from: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        use skill_invocation::Column as L;
        let mut log = skill_invocation::Entity::find()
            .select_only()
            .column(L::InvokedAt)
            .filter(L::SkillName.eq(skill))
            .order_by_asc(L::InvokedAt)
            .limit(1);
        if let Some(from) = from {
            log = log.filter(L::InvokedAt.gte(ts(conn.get_database_backend(), from)));
        }
        let log = log.into_tuple::<DateTime<Utc>>().one(conn).await?;
        use skill_rollups::Column as R;
        let mut stored = skill_rollups::Entity::find()
            .select_only()
            .column(R::BucketStart)
            .filter(R::SkillName.eq(skill))
            .order_by_asc(R::BucketStart)
            .limit(1);
        if let Some(from) = from {
            stored = stored.filter(R::BucketStart.gte(ts(conn.get_database_backend(), from)));
        }
        let stored = stored.into_tuple::<DateTime<Utc>>().one(conn).await?;
        use skill_rollups_pruned::Column as P;
        let mut pruned = skill_rollups_pruned::Entity::find()
            .select_only()
            .column(P::BucketStart)
            .filter(P::SkillName.eq(skill))
            .order_by_asc(P::BucketStart)
            .limit(1);
        if let Some(from) = from {
            pruned = pruned.filter(P::BucketStart.gte(ts(conn.get_database_backend(), from)));
        }
        let pruned = pruned.into_tuple::<DateTime<Utc>>().one(conn).await?;
        Ok([log, stored, pruned]
            .into_iter()
            .flatten()
            .min()
            .map(hour_of))
    }

    /// The rollups of `skill` in the window starting at `from`, folding its
    /// rows into `agg` (and `durations`) on the way; returns the piece and
    /// the window's end.
    async fn window(
        &mut self,
        conn: &impl ConnectionTrait,
        skill: &str,
        from: DateTime<Utc>,
        agg: &mut SkillAggregate,
        durations: &mut Vec<f64>,
    ) -> Result<(Piece, DateTime<Utc>), StoreError> {
        use skill_invocation::Column as L;
        // The hour after the window's last allowed row, at least one hour on.
        let nth = skill_invocation::Entity::find()
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
        let cap = from + Duration::hours(self.sizes.window_hours.max(1));
        let to = nth.map_or(cap, |at| {
            hour_of(at).max(from + Duration::hours(1)).min(cap)
        });
        let mut log = Recomputed::default();
        let keep = self.keep_durations;
        let folded = &mut log.aggregates;
        let mut read = 0u64;
        self.fold_rows(
            conn,
            skill_invocation::Entity::find()
                .filter(L::SkillName.eq(skill))
                .filter(L::InvokedAt.gte(ts(conn.get_database_backend(), from)))
                .filter(L::InvokedAt.lt(ts(conn.get_database_backend(), to))),
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
        log.read = read;
        // The window's part of the skill's aggregate.
        if let Some(part) = log.aggregates.skills.remove(skill) {
            crate::rows::merge_skill(skill, agg, &part)?;
        }
        use skill_rollups_pruned::Column as P;
        for row in skill_rollups_pruned::Entity::find()
            .filter(P::SkillName.eq(skill))
            .filter(P::BucketStart.gte(ts(conn.get_database_backend(), from)))
            .filter(P::BucketStart.lt(ts(conn.get_database_backend(), to)))
            .all(conn)
            .await?
        {
            let (key, pruned) = crate::rollups::from_pruned_model(row)?;
            log.aggregates
                .rollups
                .entry(key)
                .or_default()
                .merge(&pruned)
                .map_err(|e| crate::rows::digest_err(skill, &e))?;
        }
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
    async fn skill_piece(
        keep_durations: bool,
        conn: &impl ConnectionTrait,
        name: String,
        agg: SkillAggregate,
        durations: Vec<f64>,
    ) -> Result<Piece, StoreError> {
        let only = std::slice::from_ref(&name);
        let balances = load_balances(conn, Some(only)).await?;
        let pruned = load_pruned_skills(conn, Some(only)).await?;
        let mut log = Recomputed::default();
        let known = agg.total > 0 || !balances.is_empty() || !pruned.is_empty();
        if pruned.values().any(|b| b.duration_count > 0) {
            log.pruned_durations.insert(name.clone());
        }
        if known {
            let mut skills = BTreeMap::from([(name.clone(), agg)]);
            crate::recompute::add_balances(&mut skills, balances)?;
            crate::recompute::add_balances(&mut skills, pruned)?;
            log.aggregates.skills = skills;
        }
        if keep_durations {
            log.durations = Some(BTreeMap::from([(name.clone(), durations)]));
        }
        Ok(Piece::Skill { name, log })
    }

    /// The next chunk of sessions after `after`.
    async fn sessions(
        &mut self,
        conn: &impl ConnectionTrait,
        after: Option<String>,
    ) -> Result<Piece, StoreError> {
        let mut stored = sessions::Entity::find()
            .order_by_asc(sessions::Column::Id)
            .limit(self.sizes.session_chunk.max(1));
        if let Some(after) = &after {
            stored = stored.filter(sessions::Column::Id.gt(after.as_str()));
        }
        let stored = stored.all(conn).await?;
        // A short chunk is the last: it also takes every later id the log
        // names without a stored session.
        let through = if stored.len() as u64 == self.sizes.session_chunk.max(1) {
            stored.last().map(|s| s.id.clone())
        } else {
            None
        };
        use skill_invocation::Column as L;
        let mut query = skill_invocation::Entity::find().filter(L::SessionId.is_not_null());
        let mut pruned = session_skill_pruned::Entity::find();
        if let Some(after) = &after {
            query = query.filter(L::SessionId.gt(after.as_str()));
            pruned = pruned.filter(session_skill_pruned::Column::SessionId.gt(after.as_str()));
        }
        if let Some(through) = &through {
            query = query.filter(L::SessionId.lte(through.as_str()));
            pruned = pruned.filter(session_skill_pruned::Column::SessionId.lte(through.as_str()));
        }
        let mut log = Recomputed::default();
        let (folded, facts) = (&mut log.aggregates, &mut log.sessions);
        self.fold_rows(conn, query, |inv| {
            folded.add_to_session(&inv);
            if let Some(session) = &inv.session_id {
                facts
                    .entry(session.as_str().to_owned())
                    .and_modify(|f| f.add(&inv))
                    .or_insert_with(|| SessionFacts::of(&inv));
            }
            Ok(())
        })
        .await?;
        for row in pruned.all(conn).await? {
            let balance = domain::SessionSkillAggregate {
                invocation_count: row.invocation_count,
                first_invoked_at: row.first_invoked_at,
                last_invoked_at: row.last_invoked_at,
                total_duration_micros: row.total_duration_micros,
            };
            log.aggregates
                .session_skills
                .entry((row.session_id, row.skill_name))
                .and_modify(|have| have.merge(&balance))
                .or_insert(balance);
        }
        Ok(Piece::Sessions {
            after,
            through,
            log,
            stored,
        })
    }
}
