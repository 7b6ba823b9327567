//! `verify`'s comparisons: stored rows against the recomputation, every
//! difference listed.

use std::collections::BTreeMap;

use domain::{CountMap, DIGEST_BOUND, MapKind, RollupAggregate, SessionSkillAggregate};
use entity::{session_skill_numbered, sessions, skill_metrics, skill_rollups};

use super::{Difference, VerifyReport};
use crate::recompute::Recomputed;
use crate::rollups::RollupKey;
mod skill;
use skill::compare_skill;

/// Every `skill_metrics` row against the log's aggregate of its skill.
pub(super) fn skills(
    log: &Recomputed,
    stored: Vec<skill_metrics::Model>,
    children: &BTreeMap<String, BTreeMap<MapKind, CountMap>>,
    report: &mut VerifyReport,
) {
    let no_children = BTreeMap::new();
    let mut stored: BTreeMap<String, skill_metrics::Model> = stored
        .into_iter()
        .map(|m| (m.skill_name.clone(), m))
        .collect();
    let none = Vec::new();
    for (name, want) in &log.aggregates.skills {
        report.skills_checked += 1;
        match stored.remove(name) {
            Some(model) => {
                let exact = log
                    .durations
                    .as_ref()
                    .and_then(|all| all.get(name))
                    .unwrap_or(&none);
                // Part of the durations left the log with a prune: the
                // reference is the digest of the log's and the balance's.
                let pruned = log.pruned_durations.contains(name);
                let mine = children.get(name).unwrap_or(&no_children);
                compare_skill(
                    name,
                    &model,
                    want,
                    (exact, pruned),
                    mine,
                    &mut report.differences,
                );
            }
            None => {
                report
                    .differences
                    .push(diff("skill_metrics", name, "row", "missing", "present"))
            }
        }
    }
    for name in stored.keys() {
        report.differences.push(diff(
            "skill_metrics",
            name,
            "row",
            "present",
            "missing (no invocations)",
        ));
    }
}

/// A stored `session_skill` row with the name of its session: the text
/// id, or for a row whose number no session has, that number (D114).
pub(super) type StoredPair = (String, session_skill_numbered::Model);

/// A stored `session_skill` row's key: its session's number and its skill.
pub(super) type PairKey = (i64, String);

/// The label of a row of session number `num` that no session has.
pub(super) fn no_session(num: i64) -> String {
    format!("(no session numbered {num})")
}

/// Every `session_skill` row against the log's.
pub(super) fn session_skills(
    log: &Recomputed,
    stored_pairs: Vec<StoredPair>,
    report: &mut VerifyReport,
) {
    let mut stored_pairs: BTreeMap<(String, String), session_skill_numbered::Model> = stored_pairs
        .into_iter()
        .map(|(session, m)| ((session, m.skill_name.clone()), m))
        .collect();
    for (key, want) in &log.aggregates.session_skills {
        report.session_skills_checked += 1;
        let label = format!("{} / {}", key.0, key.1);
        match stored_pairs.remove(key) {
            Some(m) => {
                let d = &mut report.differences;
                let t = "session_skill";
                check(
                    d,
                    t,
                    &label,
                    "invocation_count",
                    m.invocation_count,
                    want.invocation_count,
                );
                check(
                    d,
                    t,
                    &label,
                    "first_invoked_at",
                    m.first_invoked_at,
                    want.first_invoked_at,
                );
                check(
                    d,
                    t,
                    &label,
                    "last_invoked_at",
                    m.last_invoked_at,
                    want.last_invoked_at,
                );
                check(
                    d,
                    t,
                    &label,
                    "total_duration_micros",
                    m.total_duration_micros,
                    want.total_duration_micros,
                );
                check(
                    d,
                    t,
                    &label,
                    "total_duration_seconds",
                    m.total_duration_seconds,
                    want.total_duration_seconds(),
                );
            }
            None => {
                report
                    .differences
                    .push(diff("session_skill", &label, "row", "missing", "present"))
            }
        }
    }
    for (s, k) in stored_pairs.keys() {
        report.differences.push(diff(
            "session_skill",
            &format!("{s} / {k}"),
            "row",
            "present",
            "missing",
        ));
    }
}

/// Whether a stored `session_skill` row holds what the log says, by every
/// column [`session_skills`] compares.
fn holds(m: &session_skill_numbered::Model, want: &SessionSkillAggregate) -> bool {
    m.invocation_count == want.invocation_count
        && m.first_invoked_at == want.first_invoked_at
        && m.last_invoked_at == want.last_invoked_at
        && m.total_duration_micros == want.total_duration_micros
        && m.total_duration_seconds == want.total_duration_seconds()
}

/// What `rebuild` changes of a chunk's stored `session_skill` rows to make
/// them the log's: the keys (session number, skill) of the rows that
/// differ from it or that it does not name (deleted first), and the log's
/// rows to write in their place or where none is stored. Rows that already
/// hold the log's figures stay.
pub(super) fn session_skill_repairs(
    log: &Recomputed,
    stored_pairs: Vec<StoredPair>,
) -> (Vec<PairKey>, BTreeMap<(&str, &str), SessionSkillAggregate>) {
    let mut stored_pairs: BTreeMap<(String, String), session_skill_numbered::Model> = stored_pairs
        .into_iter()
        .map(|(session, m)| ((session, m.skill_name.clone()), m))
        .collect();
    let (mut gone, mut write) = (Vec::new(), BTreeMap::new());
    for (key, want) in &log.aggregates.session_skills {
        match stored_pairs.remove(key) {
            Some(m) if holds(&m, want) => {}
            other => {
                gone.extend(other.map(|m| (m.session_num, m.skill_name)));
                write.insert((key.0.as_str(), key.1.as_str()), *want);
            }
        }
    }
    gone.extend(
        stored_pairs
            .into_values()
            .map(|m| (m.session_num, m.skill_name)),
    );
    (gone, write)
}

/// What `rebuild` changes of a piece's stored rollups (of one table) to
/// make them the log's (D100): the keys of stored rows the log has none of
/// (deleted), and the log's rows that are missing or stored otherwise
/// (written over their keys). A row stays only when every column is what
/// `rebuild` would write, byte for byte.
pub(super) fn rollup_repairs(
    expected: &BTreeMap<RollupKey, RollupAggregate>,
    stored: Vec<skill_rollups::Model>,
) -> (Vec<RollupKey>, Vec<(&RollupKey, &RollupAggregate)>) {
    let mut stored: BTreeMap<RollupKey, skill_rollups::Model> = stored
        .into_iter()
        .map(|m| {
            (
                (m.skill_name.clone(), m.bucket_start, m.project_path.clone()),
                m,
            )
        })
        .collect();
    let mut write = Vec::new();
    for (key, want) in expected {
        let equal = stored.remove(key).is_some_and(|m| rollup_holds(&m, want));
        if !equal {
            write.push((key, want));
        }
    }
    (stored.into_keys().collect(), write)
}

/// Whether a stored rollup row is exactly what `rebuild` writes for `want`.
/// The digest and the error counts are compared as stored, byte for byte
/// (both are written by one deterministic encoding).
fn rollup_holds(m: &skill_rollups::Model, want: &RollupAggregate) -> bool {
    m.invocations == want.total
        && m.completed == want.completed
        && m.duration_count == want.duration_count
        && m.total_duration_micros == want.total_duration_micros
        && m.duration_digest == (want.duration_count > 0).then(|| want.digest.to_bytes())
        && m.error_counts == want.errors_json()
}

/// What the log fixes of each session it names.
pub(super) fn sessions(
    log: &Recomputed,
    stored_sessions: Vec<sessions::Model>,
    report: &mut VerifyReport,
) {
    let stored_sessions: BTreeMap<String, sessions::Model> = stored_sessions
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    for (id, facts) in &log.sessions {
        report.sessions_checked += 1;
        let d = &mut report.differences;
        let Some(m) = stored_sessions.get(id) else {
            d.push(diff("sessions", id, "row", "missing", "present"));
            continue;
        };
        // A session may be started explicitly before its first
        // invocation, never after it.
        if m.started_at > facts.earliest {
            d.push(diff(
                "sessions",
                id,
                "started_at",
                m.started_at,
                format!("at most {} (its first invocation)", facts.earliest),
            ));
        }
        if let (None, Some((_, _, project))) = (&m.project_path, &facts.first_project) {
            d.push(diff(
                "sessions",
                id,
                "project_path",
                "NULL",
                format!("{project:?} (named by its invocations)"),
            ));
        }
    }
}

/// Every row of `table` (`skill_rollups` or `skill_rollups_daily`, read
/// in the hourly shape) against `expected`, what the log says: counts and
/// sums exactly, percentiles within the digest's bound of the log's own
/// digest. Adds the rows compared to `checked`.
pub(super) fn rollups(
    table: &str,
    expected: &BTreeMap<RollupKey, RollupAggregate>,
    stored: Vec<skill_rollups::Model>,
    checked: &mut usize,
    out: &mut Vec<Difference>,
) {
    let mut stored: BTreeMap<RollupKey, skill_rollups::Model> = stored
        .into_iter()
        .map(|m| {
            (
                (m.skill_name.clone(), m.bucket_start, m.project_path.clone()),
                m,
            )
        })
        .collect();
    let key = |(skill, hour, project): &RollupKey| {
        format!(
            "{skill} {} {project}",
            hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    for (k, want) in expected {
        *checked += 1;
        let Some(model) = stored.remove(k) else {
            out.push(diff(table, &key(k), "row", "missing", "present"));
            continue;
        };
        let name = key(k);
        let got = match crate::rollups::from_model(model) {
            Ok((_, got)) => got,
            Err(e) => {
                out.push(diff(table, &name, "duration_digest", e, "a digest"));
                continue;
            }
        };
        for (field, a, b) in [
            ("invocations", got.total, want.total),
            ("completed", got.completed, want.completed),
            ("duration_count", got.duration_count, want.duration_count),
            (
                "total_duration_micros",
                got.total_duration_micros,
                want.total_duration_micros,
            ),
        ] {
            if a != b {
                out.push(diff(table, &name, field, a, b));
            }
        }
        if i64::try_from(got.digest.count()).ok() != Some(got.duration_count) {
            out.push(diff(
                table,
                &name,
                "duration_digest",
                got.digest.count(),
                got.duration_count,
            ));
        }
        let (g, w) = (got.digest.percentiles(), want.digest.percentiles());
        for (field, a, b) in [
            ("p50", g.p50, w.p50),
            ("p95", g.p95, w.p95),
            ("p99", g.p99, w.p99),
        ] {
            let close = match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= DIGEST_BOUND * b.abs().max(1e-9),
                (None, None) => true,
                _ => false,
            };
            if !close {
                out.push(diff(
                    table,
                    &name,
                    field,
                    format!("{a:?}"),
                    format!("{b:?}"),
                ));
            }
        }
        // Error counts: each type exactly while neither side folded any
        // into "other" (which depends on the order they came in, D94);
        // otherwise their sum.
        if got.errors_other == 0 && want.errors_other == 0 {
            if got.errors != want.errors {
                out.push(diff(
                    table,
                    &name,
                    "error_counts",
                    format!("{:?}", got.errors),
                    format!("{:?}", want.errors),
                ));
            }
        } else if got.errors_total() != want.errors_total() {
            out.push(diff(
                table,
                &name,
                "error_counts (sum)",
                got.errors_total(),
                want.errors_total(),
            ));
        }
    }
    for k in stored.keys() {
        out.push(diff(
            table,
            &key(k),
            "row",
            "present",
            "missing (no invocations)",
        ));
    }
}

fn diff(
    table: &str,
    key: &str,
    field: &str,
    stored: impl ToString,
    expected: impl ToString,
) -> Difference {
    Difference {
        table: table.to_owned(),
        key: key.to_owned(),
        field: field.to_owned(),
        stored: stored.to_string(),
        expected: expected.to_string(),
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    d: &mut Vec<Difference>,
    table: &str,
    key: &str,
    field: &str,
    stored: T,
    expected: T,
) {
    if stored != expected {
        d.push(diff(
            table,
            key,
            field,
            format!("{stored:?}"),
            format!("{expected:?}"),
        ));
    }
}

/// `stored` is within the digest's bound of the `exact` quantile (1 %
/// relative, or 1 ns absolute), or both are absent.
fn within_bound(stored: Option<f64>, exact: Option<f64>) -> bool {
    match (stored, exact) {
        (Some(a), Some(b)) => (a - b).abs() <= (b.abs() * DIGEST_BOUND).max(1e-9),
        (a, b) => a.is_none() && b.is_none(),
    }
}
