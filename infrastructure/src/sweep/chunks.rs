//! The sessions' pieces: chunks of session ids.

use std::collections::HashMap;

use entity::{session_skill_pruned, sessions, skill_invocation_log};
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{Piece, Sweep};
use crate::StoreError;
use crate::recompute::{Recomputed, SessionFacts};

impl Sweep {
    /// The next chunk of sessions after `after`.
    pub(super) async fn sessions(
        &mut self,
        conn: &DatabaseTransaction,
        after: Option<String>,
    ) -> Result<Piece, StoreError> {
        let mut stored = sessions::Entity::find()
            .order_by_asc(sessions::Column::Id)
            .limit(self.sizes.session_chunk.clamp(1, super::MOST_SESSIONS));
        if let Some(after) = &after {
            stored = stored.filter(sessions::Column::Id.gt(after.as_str()));
        }
        let stored = stored.all(conn).await?;
        // A short chunk is the last: it takes every later session (the
        // log names a session only by a stored session's number, D112).
        let through =
            if stored.len() as u64 == self.sizes.session_chunk.clamp(1, super::MOST_SESSIONS) {
                stored.last().map(|s| s.id.clone())
            } else {
                None
            };
        // The numbers of the chunk's sessions, by which the log names them
        // (D112). Their rows are read by number, each an index probe of
        // `(session_num, invoked_at)`: through the view PostgreSQL scanned
        // every session for each chunk to find the range of text ids (D113).
        let mut numbers = sessions::Entity::find()
            .select_only()
            .column(sessions::Column::Id)
            .expr(Expr::col((sessions::Entity, Alias::new("num"))));
        let mut pruned = session_skill_pruned::Entity::find();
        if let Some(after) = &after {
            numbers = numbers.filter(sessions::Column::Id.gt(after.as_str()));
            pruned = pruned.filter(session_skill_pruned::Column::SessionId.gt(after.as_str()));
        }
        if let Some(through) = &through {
            numbers = numbers.filter(sessions::Column::Id.lte(through.as_str()));
            pruned = pruned.filter(session_skill_pruned::Column::SessionId.lte(through.as_str()));
        }
        let names: HashMap<i64, String> = numbers
            .into_tuple::<(String, i64)>()
            .all(conn)
            .await?
            .into_iter()
            .map(|(id, num)| (num, id))
            .collect();
        let mut log = Recomputed::default();
        let (folded, facts) = (&mut log.aggregates, &mut log.sessions);
        let mut numbers: Vec<i64> = names.keys().copied().collect();
        numbers.sort_unstable();
        let query = session_rows(numbers);
        // No session in the chunk: no row of the log names one.
        let folding = if names.is_empty() { None } else { Some(query) };
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
        if let Some(query) = folding {
            self.fold_rows(conn, query, Some(&names), &mut each).await?;
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

/// The log rows of the sessions numbered `numbers`: a probe of `(session_num,
/// invoked_at)` each.
pub(super) fn session_rows(numbers: Vec<i64>) -> sea_orm::Select<skill_invocation_log::Entity> {
    skill_invocation_log::Entity::find()
        .filter(skill_invocation_log::Column::SessionNum.is_in(numbers))
}
