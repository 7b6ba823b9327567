//! The sessions' pieces: chunks of sessions, in the order of their numbers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{session_skill_pruned, sessions, skill_invocation_log};
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{Piece, Sweep};
use crate::StoreError;
use crate::recompute::{Recomputed, SessionFacts};

impl Sweep {
    /// The next chunk of sessions after the number `after`.
    pub(super) async fn sessions(
        &mut self,
        conn: &DatabaseTransaction,
        after: Option<i64>,
    ) -> Result<Piece, StoreError> {
        use sessions::Column as S;
        // The chunk's sessions with their numbers, by which the log and
        // `session_skill`'s table name them (D112, D114), in the numbers'
        // order: their rows are then read by number, each an index probe of
        // `(session_num, invoked_at)` (where through the view PostgreSQL
        // scanned every session for each chunk, D113), and `rebuild` writes
        // `session_skill`'s rows near the end of its key, not all over it.
        let chunk = self.sizes.session_chunk.clamp(1, super::MOST_SESSIONS);
        let num = || Expr::col((sessions::Entity, Alias::new("num")));
        let mut numbered = sessions::Entity::find()
            .select_only()
            .columns([S::Id, S::StartedAt, S::EndedAt, S::ProjectPath])
            .expr(num())
            .order_by_asc(num())
            .limit(chunk);
        if let Some(after) = after {
            numbered = numbered.filter(num().gt(after));
        }
        let numbered = numbered
            .into_tuple::<(
                String,
                DateTime<Utc>,
                Option<DateTime<Utc>>,
                Option<String>,
                i64,
            )>()
            .all(conn)
            .await?;
        // A short chunk is the last: it takes every later session (the
        // log names a session only by a stored session's number, D112).
        let through = if numbered.len() as u64 == chunk {
            numbered.last().map(|s| s.4)
        } else {
            None
        };
        let mut numbers = Vec::with_capacity(numbered.len());
        let mut names = HashMap::with_capacity(numbered.len());
        let mut stored = Vec::with_capacity(numbered.len());
        for (id, started_at, ended_at, project_path, num) in numbered {
            numbers.push(num);
            names.insert(num, id.clone());
            stored.push(sessions::Model {
                id,
                started_at,
                ended_at,
                project_path,
            });
        }
        // The balances of pruned rows (D83) name their sessions by text id:
        // the chunk's, and in the last chunk also those of no stored
        // session, which no chunk names.
        let mut which = Condition::any()
            .add(session_skill_pruned::Column::SessionId.is_in(names.values().cloned()));
        if through.is_none() {
            which = which.add(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM sessions s \
                 WHERE s.id = session_skill_pruned.session_id)",
            ));
        }
        let pruned = session_skill_pruned::Entity::find().filter(which);
        let mut log = Recomputed::default();
        let (folded, facts) = (&mut log.aggregates, &mut log.sessions);
        let mut each = |inv: domain::Invocation| {
            folded.add_to_session(&inv);
            if let Some(session) = &inv.session_id {
                facts
                    .entry(session.as_str().to_owned())
                    .and_modify(|f| f.add(&inv))
                    .or_insert_with(|| SessionFacts::of(&inv));
            }
            Ok(())
        };
        // No session in the chunk: no row of the log names one.
        if !numbers.is_empty() {
            self.fold_rows(conn, session_rows(numbers), Some(&names), &mut each)
                .await?;
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
            through,
            log,
            stored,
            names,
        })
    }
}

/// The log rows of the sessions numbered `numbers`: a probe of `(session_num,
/// invoked_at)` each.
pub(super) fn session_rows(numbers: Vec<i64>) -> sea_orm::Select<skill_invocation_log::Entity> {
    skill_invocation_log::Entity::find()
        .filter(skill_invocation_log::Column::SessionNum.is_in(numbers))
}
