//! Writing planned legacy files: their invocations in batches, then each
//! file's opening balance under its content key (D50).

use std::collections::{BTreeMap, BTreeSet};

use importers::Progress;
use importers::legacy::{FilePlan, SOURCE_PREFIX, path_source, read_invocations};

use super::ImportError;
use super::batches::write_streamed;
use crate::SkillMetricsStore;

/// What writing legacy files did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyImport {
    /// Invocations added to the log.
    pub inserted: usize,
    /// Invocations that were already there.
    pub already_present: usize,
    /// Files whose opening balance was written.
    pub balances_written: usize,
    /// Balance sources an older version keyed by file path that remain: a
    /// file that has moved since counts its balance twice until it is
    /// imported once from the path named.
    pub path_keyed_left: Vec<String>,
}

impl SkillMetricsStore {
    /// Writes legacy files planned by `importers::legacy::plan_file`: each
    /// file's invocations in batches of `batch_size`, then its opening
    /// balances, replacing any earlier import of the same file. `progress`
    /// hears one `importing` pass per file.
    ///
    /// # Errors
    /// When a file can no longer be read as planned, or the store fails;
    /// files and batches written before stay, and the error names the step
    /// (a re-run finishes it and counts nothing twice).
    pub async fn import_legacy(
        &self,
        plans: Vec<FilePlan>,
        batch_size: usize,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<LegacyImport, ImportError> {
        // Balances an older version keyed by path (D50): each file's own is
        // moved to its content key below; the rest are named at the end.
        let mut by_path: BTreeSet<String> = self
            .balances()
            .await?
            .into_iter()
            .map(|(_, source, _)| source)
            .filter(|s| !s.starts_with(SOURCE_PREFIX))
            .collect();
        let mut done = LegacyImport::default();
        for plan in plans {
            let shown = plan.path.display().to_string();
            let reread = plan.clone();
            let (written, result) = write_streamed(self, batch_size, progress, move |sink, r| {
                let mut on_progress = |p| r.report(p);
                read_invocations(&reread, &mut on_progress, &mut |inv| sink.push(inv))?;
                Ok(())
            })
            .await;
            done.inserted += written.inserted;
            done.already_present += written.duplicates;
            result.map_err(|e| e.step(format!("importing {shown} (re-run to finish)")))?;
            // Two transactions: a failure between them leaves this file's
            // balance out (never doubled) until the import is re-run.
            let old = path_source(&plan.path);
            if by_path.remove(&old) {
                self.put_balances(&old, BTreeMap::new())
                    .await
                    .map_err(|e| {
                        ImportError::from(e)
                            .step(format!("re-keying the balance of {old} (re-run to finish)"))
                    })?;
            }
            self.put_balances(&plan.source, plan.balances)
                .await
                .map_err(|e| {
                    ImportError::from(e).step(format!(
                        "writing the opening balance of {shown} (re-run to finish)"
                    ))
                })?;
            done.balances_written += 1;
        }
        done.path_keyed_left = by_path.into_iter().collect();
        Ok(done)
    }
}
