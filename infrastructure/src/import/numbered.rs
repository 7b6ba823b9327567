//! Lines that versions before D72 ingested under ids derived from their
//! line number keep those ids while they stay where they were, so
//! re-ingesting such a file after the upgrade counts nothing twice.

use std::collections::HashSet;

use domain::{Invocation, InvocationId};
use entity::skill_invocation::{Column, Entity};
use importers::jsonl::Line;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::ImportError;
use super::batches::Sink;
use crate::{SkillMetricsStore, StoreError};

/// Lines looked up together (well inside both backends' parameter limits).
const CHUNK: usize = 1000;

/// Holds valid lines until a chunk is full, then gives each line already
/// logged under its line-numbered id that id (so it counts as a duplicate),
/// and pushes them on. Runs on the reader thread; queries through `runtime`.
pub(crate) struct Renumber {
    store: SkillMetricsStore,
    runtime: tokio::runtime::Handle,
    held: Vec<Line>,
}

impl Renumber {
    pub(crate) fn new(store: SkillMetricsStore, runtime: tokio::runtime::Handle) -> Self {
        Self {
            store,
            runtime,
            held: Vec::with_capacity(CHUNK),
        }
    }

    /// Takes one line; pushes a chunk when it is full.
    pub(crate) fn push(&mut self, line: Line, sink: &mut Sink) -> Result<(), ImportError> {
        self.held.push(line);
        if self.held.len() >= CHUNK {
            self.flush(sink)?;
        }
        Ok(())
    }

    /// Pushes every line held.
    pub(crate) fn flush(&mut self, sink: &mut Sink) -> Result<(), ImportError> {
        let numbered: Vec<InvocationId> = self.held.iter().filter_map(|l| l.numbered_id).collect();
        let known = if numbered.is_empty() {
            HashSet::new()
        } else {
            self.runtime.block_on(self.store.logged(&numbered))?
        };
        for line in self.held.drain(..) {
            let mut inv: Invocation = line.invocation;
            if let Some(old) = line.numbered_id.filter(|id| known.contains(id)) {
                inv.id = old;
            }
            sink.push(inv)
                .map_err(|e| ImportError::Read(importers::ReadError::Input(e)))?;
        }
        Ok(())
    }
}

impl SkillMetricsStore {
    /// Those of `ids` that are in the log.
    async fn logged(&self, ids: &[InvocationId]) -> Result<HashSet<InvocationId>, StoreError> {
        let rows: Vec<uuid::Uuid> = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::Id.is_in(ids.iter().map(|id| *id.as_uuid())))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(InvocationId::from).collect())
    }
}
