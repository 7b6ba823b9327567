//! Reading what the aggregates must be, in bounded pieces (decision D91):
//! the log one skill at a time, in windows of whole UTC days, for
//! `skill_metrics`, `skill_rollups` and `skill_rollups_daily`; then one chunk of sessions at a time for `session_skill`
//! and `sessions`. `verify` compares each piece with the stored rows of the
//! same keys and `rebuild` writes it, so neither holds more than one piece
//! (plus, for `verify`, one skill's durations for its exact quantiles).
//!
//! Every piece is chosen by the database's own comparisons (`=` on a skill,
//! ranges of time, sessions after a number, D114), never by an order
//! computed here, so both backends' collations cut the log and the stored
//! rows alike.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::SkillAggregate;
use entity::sessions;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::StoreError;
use crate::recompute::Recomputed;

/// How large the pieces are. The defaults are what `verify` and `rebuild`
/// use; tests cut a small store into many pieces with small ones.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct PieceSizes {
    /// Most log rows in one window of a skill, unless a single day holds more.
    pub window_rows: u64,
    /// Longest window, in UTC days (a window holds whole days): bounds the
    /// stored rollups one window reads where the log is sparse (after a
    /// prune, say).
    pub window_days: i64,
    /// Sessions per chunk.
    pub session_chunk: u64,
}

impl Default for PieceSizes {
    fn default() -> Self {
        Self {
            window_rows: 20_000,
            window_days: 31,
            session_chunk: 1_000,
        }
    }
}

/// Which pieces a sweep reads. Each half reads the whole log once, so
/// `verify` and `rebuild` can run the two at once, on two connections whose
/// snapshots start at the same point (D110).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Every piece: the skills', then the sessions'.
    All,
    /// The skills' pieces: aggregates, balances and rollups.
    Skills,
    /// The sessions' pieces: `session_skill` and `sessions`.
    Sessions,
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
    /// A skill's rollups for the hours in `[from, to)`, whole UTC days.
    Rollups {
        skill: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        log: Recomputed,
    },
    /// A skill's whole aggregate, balances included; `log.aggregates.skills`
    /// is empty when neither the log nor a balance knows the skill.
    Skill { name: String, log: Recomputed },
    /// A chunk of sessions in the order of their numbers, through the
    /// number `through` (`None` in the chunk that ends the sweep, which
    /// takes every later session): their `session_skill` rows and what the
    /// log fixes of each session, with the stored `sessions` rows of the
    /// chunk and their numbers (`names`: number to text id), by which the
    /// log and `session_skill`'s table name them (D112, D114).
    Sessions {
        through: Option<i64>,
        log: Recomputed,
        stored: Vec<sessions::Model>,
        names: HashMap<i64, String>,
    },
}

mod chunks;
mod rows;
mod skills;

/// The settings of a sweep's transactions on PostgreSQL (D113). Each
/// piece is small and the halves run at once on connections of their own,
/// so a parallel or compiled plan only takes cores from the other half. No
/// piece joins tables but for the filter of restored rows (D101), a probe
/// of `pruned_invocations`' key per log row, where a hash or merge join
/// would read every recorded id for each piece. Public for the query-plan
/// test.
#[doc(hidden)]
pub const SWEEP_SETTINGS: [&str; 4] = [
    "max_parallel_workers_per_gather = 0",
    "jit = off",
    "enable_hashjoin = off",
    "enable_mergejoin = off",
];

/// What [`Sweep::fold_rows`] turns off for each statement that streams log
/// rows on PostgreSQL, on top of [`SWEEP_SETTINGS`]: plain index scans, so
/// that the log is read by bitmap scans (D113). Public for the query-plan
/// test.
#[doc(hidden)]
pub const STREAM_SETTING: &str = "enable_indexscan = off";

/// The most sessions a chunk holds, whatever [`PieceSizes`] asks: their
/// numbers are bound one parameter each (SQLite allows 32,766).
const MOST_SESSIONS: u64 = 10_000;

pub(crate) use rows::skills_between;
pub use rows::sweep_reads_sql;

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
    /// Sessions after the given number (from the first when `None`).
    Sessions(Option<i64>),
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
    part: Part,
    /// On a SQLite file, a connection of the sweep's own in a read
    /// transaction with the caller's snapshot, for the log's rows.
    lite: Option<rusqlite::Connection>,
    /// On PostgreSQL, the transaction's `enable_indexscan`, which
    /// `fold_rows` turns off for each statement and back to this after it.
    index_scans: Option<String>,
    /// Log rows read, each once.
    pub(crate) read: u64,
}

impl Sweep {
    /// Whether any row a prune removed is in the log again (an archive
    /// ingested back, D83): only then does a read of the log filter them
    /// out. A prune alone leaves none of the ids it records in the log. One
    /// pass over the recorded ids in their order, each looked up in the
    /// log's id index, spares every read of the log a lookup per row
    /// (D101); in the ids' order the lookups walk that index forwards (at
    /// 1M recorded ids against 9M rows on PostgreSQL, 1.8 s where the
    /// table's order took 4.2, D113). Asked once for a `verify` or
    /// `rebuild`, and given to each of its sweeps.
    pub(crate) async fn restored(conn: &DatabaseTransaction) -> Result<bool, StoreError> {
        let backend = conn.get_database_backend();
        let sql = match backend {
            // A lookup that stops at its first row may not become a join,
            // whatever the transaction's settings (a merge join would walk
            // the whole id index when nothing is found).
            DbBackend::Postgres => {
                "SELECT 1 AS restored FROM (SELECT id FROM pruned_invocations ORDER BY id) p \
                 CROSS JOIN LATERAL (SELECT 1 FROM skill_invocation_log s WHERE s.id = p.id \
                 LIMIT 1) found LIMIT 1"
            }
            _ => {
                "SELECT 1 AS restored FROM (SELECT id FROM pruned_invocations ORDER BY id) p \
                 WHERE EXISTS (SELECT 1 FROM skill_invocation_log s WHERE s.id = p.id) LIMIT 1"
            }
        };
        Ok(conn
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .is_some())
    }

    /// Starts a sweep of every skill the log, the stored rows or a balance
    /// names, then of every session (of one of the two with `part`). With
    /// `keep_durations`, each skill's piece carries its completed durations
    /// (8 bytes each, one skill at a time) for exact quantiles. `restored`
    /// is [`Sweep::restored`]'s answer in the same snapshot.
    pub(crate) async fn start(
        conn: &DatabaseTransaction,
        sizes: PieceSizes,
        keep_durations: bool,
        restored: bool,
        lite: Option<rusqlite::Connection>,
        part: Part,
    ) -> Result<Self, StoreError> {
        let mut index_scans = None;
        if conn.get_database_backend() == DbBackend::Postgres {
            for setting in SWEEP_SETTINGS {
                conn.execute_unprepared(&format!("SET LOCAL {setting}"))
                    .await?;
            }
            // What `fold_rows` puts back after each statement.
            index_scans = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT current_setting('enable_indexscan') AS value",
                ))
                .await?
                .map(|row| row.try_get::<String>("", "value"))
                .transpose()?;
        }
        Ok(Self {
            sizes,
            keep_durations,
            tombstones: restored,
            stage: match part {
                Part::Sessions => Stage::Sessions(None),
                Part::All | Part::Skills => Stage::Range(None),
            },
            part,
            lite,
            index_scans,
            read: 0,
        })
    }

    /// The next piece, or `None` when the whole store has been read.
    pub(crate) async fn next(
        &mut self,
        conn: &DatabaseTransaction,
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
                    // Not started: from the first day anything names.
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
                    None if self.part == Part::Skills => Stage::Done,
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
                    self.stage = Stage::Sessions(Some(*through));
                }
                Ok(Some(piece))
            }
            Stage::Done => Ok(None),
        }
    }
}
