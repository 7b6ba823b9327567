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

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use domain::{Invocation, SkillAggregate, hour_of};
use entity::{
    session_skill_pruned, sessions, skill_invocation, skill_metrics, skill_metrics_balance,
    skill_metrics_pruned, skill_rollups, skill_rollups_pruned,
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
}

impl Default for PieceSizes {
    fn default() -> Self {
        Self {
            window_rows: 20_000,
            window_hours: 31 * 24,
            session_chunk: 1_000,
        }
    }
}

/// One piece of the recomputation, with the keys it covers.
pub(crate) enum Piece {
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

/// The log rows `stmt` selects (as [`LOG_COLUMNS`]), read by rusqlite.
fn read_lite(conn: &rusqlite::Connection, stmt: Statement) -> Result<Vec<LogRow>, StoreError> {
    let values = stmt.values.map(|v| v.0).unwrap_or_default();
    let read = || -> rusqlite::Result<Vec<LogRow>> {
        let mut st = conn.prepare_cached(&stmt.sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(bindings(values)?), |row| {
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
        })?;
        rows.collect()
    };
    read().map_err(crate::error::from_rusqlite)
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
    skills: std::vec::IntoIter<String>,
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
        let mut names: BTreeSet<String> = BTreeSet::new();
        // The log's distinct skills by one index seek each.
        let mut after = String::new();
        while let Some(name) = skill_invocation::Entity::find()
            .select_only()
            .column(skill_invocation::Column::SkillName)
            .filter(skill_invocation::Column::SkillName.gt(after.as_str()))
            .order_by_asc(skill_invocation::Column::SkillName)
            .limit(1)
            .into_tuple::<String>()
            .one(conn)
            .await?
        {
            names.insert(name.clone());
            after = name;
        }
        for table in [
            skill_metrics::Entity::find()
                .select_only()
                .column(skill_metrics::Column::SkillName)
                .into_tuple::<String>()
                .all(conn)
                .await?,
            skill_metrics_balance::Entity::find()
                .select_only()
                .column(skill_metrics_balance::Column::SkillName)
                .into_tuple::<String>()
                .all(conn)
                .await?,
            skill_metrics_pruned::Entity::find()
                .select_only()
                .column(skill_metrics_pruned::Column::SkillName)
                .into_tuple::<String>()
                .all(conn)
                .await?,
        ] {
            names.extend(table);
        }
        let tombstones = entity::pruned_invocations::Entity::find()
            .one(conn)
            .await?
            .is_some();
        Ok(Self {
            sizes,
            keep_durations,
            tombstones,
            skills: names.into_iter().collect::<Vec<_>>().into_iter(),
            stage: Stage::Sessions(None),
            lite,
            read: 0,
        }
        .first_skill())
    }

    fn first_skill(mut self) -> Self {
        self.stage = self.next_skill_stage();
        self
    }

    fn next_skill_stage(&mut self) -> Stage {
        match self.skills.next() {
            Some(name) => Stage::Skill {
                name,
                next: None,
                agg: None,
                durations: Vec::new(),
            },
            None => Stage::Sessions(None),
        }
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
                        let piece =
                            Self::skill_piece(self.keep_durations, conn, name, *agg, durations)
                                .await?;
                        self.stage = self.next_skill_stage();
                        Ok(Some(piece))
                    }
                }
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

    /// The log's rows of `query`, without those a prune had removed and an
    /// import restored (they are in the prune's balances, D83).
    async fn rows(
        &mut self,
        conn: &impl ConnectionTrait,
        mut query: Select<skill_invocation::Entity>,
    ) -> Result<Vec<LogRow>, StoreError> {
        if self.tombstones {
            query = query.filter(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM pruned_invocations p WHERE p.id = skill_invocation.id)",
            ));
        }
        let query = query.select_only().columns(LOG_COLUMNS);
        if let Some(lite) = &self.lite {
            return read_lite(lite, query.build(DbBackend::Sqlite));
        }
        Ok(query.into_tuple::<LogRow>().all(conn).await?)
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
        let rows = self
            .rows(
                conn,
                skill_invocation::Entity::find()
                    .filter(L::SkillName.eq(skill))
                    .filter(L::InvokedAt.gte(ts(conn.get_database_backend(), from)))
                    .filter(L::InvokedAt.lt(ts(conn.get_database_backend(), to))),
            )
            .await?;
        let mut log = Recomputed {
            read: rows.len() as u64,
            ..Recomputed::default()
        };
        for row in rows {
            let inv = &invocation(row)?;
            self.read += 1;
            if let (true, true, Some(d)) =
                (self.keep_durations, inv.completed, inv.duration_seconds)
            {
                durations.push(d);
            }
            log.aggregates.add_to_skill(inv);
        }
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
        let rows = self.rows(conn, query).await?;
        let mut log = Recomputed::default();
        for row in rows {
            let inv = &invocation(row)?;
            log.aggregates.add_to_session(inv);
            if let Some(session) = &inv.session_id {
                log.sessions
                    .entry(session.as_str().to_owned())
                    .and_modify(|f| f.add(inv))
                    .or_insert_with(|| SessionFacts::of(inv));
            }
        }
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
