//! The old tracker's `skill_metrics.json`: finding it, planning its import
//! and streaming its invocations.
//!
//! [`plan_file`] reads a file whole and builds the full report: what its
//! invocations explain per skill, what is pending, and the opening balance
//! its `skills` section holds beyond that. Any unreadable entry fails the
//! plan, so nothing is written. [`read_invocations`] then streams the same
//! file again for writing (ids derive from position and content, D19, so
//! re-running adds only what is new).

mod source;
mod stream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use domain::{Invocation, LegacySkill, SkillAggregate, legacy_invocation};
use serde_json::Value;

pub use source::{SOURCE_PREFIX, balance_source, path_source};

use crate::{LocalZone, Progress, ReadError};

/// Where the old trackers kept the file, relative to a working directory.
const KNOWN_PLACES: &[&str] = &[
    ".session-buddy/skill_metrics.json",
    ".crackerjack/skill_metrics.json",
    "metrics/skill_metrics.json",
];

/// The legacy files at `path`: the file itself, or in a folder the known
/// places first, then any `skill_metrics.json` below it (skipping `.git`,
/// `target` and `node_modules`), in name order.
///
/// # Errors
/// When `path` does not exist, a folder cannot be read, or none is found.
pub fn find_files(path: &Path) -> Result<Vec<PathBuf>, ReadError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(ReadError::Input(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let mut found: Vec<PathBuf> = KNOWN_PLACES
        .iter()
        .map(|p| path.join(p))
        .filter(|p| p.is_file())
        .collect();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let reading = || format!("reading {}", dir.display());
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| ReadError::io(reading(), e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type().map_err(|e| ReadError::io(reading(), e))?;
            let p = entry.path();
            let skipped = matches!(
                entry.file_name().to_str(),
                Some(".git" | "target" | "node_modules")
            );
            if kind.is_dir() && !skipped {
                stack.push(p);
            } else if kind.is_file()
                && entry.file_name() == "skill_metrics.json"
                && !found.contains(&p)
            {
                found.push(p);
            }
        }
    }
    if found.is_empty() {
        return Err(ReadError::Input(format!(
            "no skill_metrics.json under {}",
            path.display()
        )));
    }
    Ok(found)
}

/// What importing one file will do, read before anything is written.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// The file.
    pub path: PathBuf,
    /// The zone its naive times are read in.
    pub zone: LocalZone,
    /// The key its opening balance is stored under ([`balance_source`]).
    pub source: String,
    /// Invocations listed.
    pub invocations: u64,
    /// Per skill, listed invocations never reported complete (they become
    /// abandoned, marked `legacy_pending`).
    pub pending: BTreeMap<String, i64>,
    /// Per skill, what the other listed invocations add up to.
    pub explained: BTreeMap<String, SkillAggregate>,
    /// Per skill, the figures of the `skills` section.
    pub legacy: BTreeMap<String, LegacySkill>,
    /// Per skill, what `skills` holds beyond the listed invocations.
    pub balances: BTreeMap<String, SkillAggregate>,
}

fn convert(index: u64, value: &Value, zone: LocalZone) -> Result<domain::LegacyInvocation, String> {
    legacy_invocation(index, value, &|naive| zone.resolve(naive))
        .map_err(|e| format!("invocation #{index}: {e}"))
}

/// Reads `path` whole (one `checking` pass reported to `progress`) and plans
/// its import.
///
/// # Errors
/// When the file cannot be opened, is empty, corrupt or truncated, or an
/// invocation or skill in it breaks a rule (named with its index or name).
pub fn plan_file(
    path: &Path,
    zone: LocalZone,
    progress: &mut dyn FnMut(Progress),
) -> Result<FilePlan, ReadError> {
    let mut p = FilePlan {
        path: path.to_path_buf(),
        zone,
        source: String::new(),
        invocations: 0,
        pending: BTreeMap::new(),
        explained: BTreeMap::new(),
        legacy: BTreeMap::new(),
        balances: BTreeMap::new(),
    };
    let mut first = None;
    let mut on = |index: u64, value: Value| -> Result<(), String> {
        let item = convert(index, &value, zone)?;
        if index == 0 {
            first = Some(item.invocation.id);
        }
        p.invocations += 1;
        let name = item.invocation.skill_name.as_str().to_owned();
        if item.pending {
            *p.pending.entry(name).or_insert(0) += 1;
        } else {
            p.explained.entry(name).or_default().fold(&item.invocation);
        }
        Ok(())
    };
    let skills = stream::stream_file(path, "checking", progress, &mut on)?;
    p.source = balance_source(first, &skills);
    for (name, value) in skills {
        let legacy =
            LegacySkill::from_json(&value, &|naive| zone.resolve(naive)).map_err(|source| {
                ReadError::Invalid {
                    context: format!("{}: skills[{name:?}]", path.display()),
                    source,
                }
            })?;
        let explained = p.explained.get(&name).cloned().unwrap_or_default();
        p.balances
            .insert(name.clone(), legacy.balance_beyond(&explained));
        p.legacy.insert(name, legacy);
    }
    Ok(p)
}

/// Streams the planned file again (one `importing` pass), handing each
/// invocation to `each`; an error from `each` stops the read.
///
/// # Errors
/// As [`plan_file`], or the error `each` returned (in the file's message).
pub fn read_invocations(
    plan: &FilePlan,
    progress: &mut dyn FnMut(Progress),
    each: &mut dyn FnMut(Invocation) -> Result<(), String>,
) -> Result<(), ReadError> {
    let zone = plan.zone;
    let mut on = |index: u64, value: Value| each(convert(index, &value, zone)?.invocation);
    stream::stream_file(&plan.path, "importing", progress, &mut on).map(|_| ())
}
