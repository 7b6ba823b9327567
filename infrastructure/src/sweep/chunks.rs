//! The sessions' pieces: chunks of session ids.

use entity::{session_skill_pruned, sessions, skill_invocation};
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
            .limit(self.sizes.session_chunk.max(1));
        if let Some(after) = &after {
            stored = stored.filter(sessions::Column::Id.gt(after.as_str()));
        }
        let stored = stored.all(conn).await?;
        // A short chunk is the last: it takes every later session (the
        // log names a session only by a stored session's number, D112).
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
