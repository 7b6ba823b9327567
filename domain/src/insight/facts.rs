//! The findings that are facts and rankings, not tests: retire
//! candidates and hot spots (decision D95).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{Finding, FindingKind, InsightSettings, Side, SkillHistory, finding, secs, times};
use crate::{RollupAggregate, is_tool};

pub(super) fn retire_candidates(
    history: &BTreeMap<String, SkillHistory>,
    now: DateTime<Utc>,
    s: &InsightSettings,
) -> Vec<Finding> {
    let quiet_since = now - Duration::days(s.retire_after_days);
    let mut out = Vec::new();
    for (name, h) in history {
        let (Some(first), Some(last)) = (h.first_invoked, h.last_invoked) else {
            continue;
        };
        if is_tool(name) {
            continue;
        }
        // Used after `now` (a window ending in the past): not a candidate
        // as of then.
        if last > now {
            continue;
        }
        let in_window = h.in_window;
        let days = (now - last).num_days();
        let summary = if last < quiet_since {
            format!(
                "{name} was last used {} ago ({} in all)",
                times(days, "day", "days"),
                times(h.invocations, "invocation", "invocations")
            )
        } else if first < quiet_since && in_window < s.retire_floor {
            format!(
                "{name} was used {} in the window, under the floor of {} ({} in all)",
                times(in_window, "time", "times"),
                s.retire_floor,
                h.invocations
            )
        } else {
            continue;
        };
        let mut f = finding(FindingKind::RetireCandidate, name, "days_since_last_use");
        f.window_value = Some(days as f64);
        f.window_count = in_window;
        f.last_invoked = Some(last);
        f.lifetime_invocations = Some(h.invocations);
        f.summary = summary;
        out.push(f);
    }
    out.sort_by(|a, b| {
        a.last_invoked
            .cmp(&b.last_invoked)
            .then_with(|| a.skill_name.cmp(&b.skill_name))
    });
    out
}

pub(super) fn hot_spots(
    window: &Side<'_>,
    baseline: &Side<'_>,
    s: &InsightSettings,
) -> Vec<Finding> {
    let mean = |r: &RollupAggregate| {
        (r.duration_count > 0)
            .then(|| r.total_duration_micros as f64 / 1e6 / r.duration_count as f64)
    };
    let mut slow: Vec<(f64, Finding)> = Vec::new();
    let mut failing: Vec<(f64, Finding)> = Vec::new();
    for (name, w) in window.skills {
        let spent = w.total_duration_micros as f64 / 1e6;
        if spent > 0.0 {
            let mut f = finding(FindingKind::SlowHotSpot, name, "time_spent_seconds");
            f.window_value = Some(spent);
            f.window_count = w.duration_count;
            f.summary = format!(
                "{name} took {} in all over {}",
                secs(spent),
                times(
                    w.duration_count,
                    "completed invocation",
                    "completed invocations"
                )
            );
            slow.push((spent, f));
        }
        let failed = w.total - w.completed;
        if failed > 0 {
            // A failure is taken to cost what a completed invocation does
            // on average (the window's, else the baseline's).
            let each = mean(w)
                .or_else(|| baseline.skills.get(name).and_then(mean))
                .unwrap_or(0.0);
            let lost = each * failed as f64;
            let mut f = finding(FindingKind::FailingHotSpot, name, "time_lost_seconds");
            f.window_value = Some(lost);
            f.window_count = failed;
            f.summary = format!(
                "{name} failed {} ({:.1} %), about {} lost",
                times(failed, "time", "times"),
                failed as f64 / w.total as f64 * 100.0,
                secs(lost)
            );
            failing.push((lost + failed as f64 * 1e-9, f));
        }
    }
    let mut out = Vec::new();
    for mut list in [slow, failing] {
        list.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.skill_name.cmp(&b.1.skill_name))
        });
        out.extend(list.into_iter().take(s.hot_spots).map(|(_, f)| f));
    }
    out
}
