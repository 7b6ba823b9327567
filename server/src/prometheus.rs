//! `GET /metrics` (read scope): per-skill counters and duration summaries
//! in Prometheus' text exposition format, from the per-skill aggregates
//! (never the log), so a scrape costs the same on any size of store.
//!
//! Label cardinality is bounded: one `skill` label value per skill, for
//! at most [`MAX_SKILLS`] skills; the rest are summed under
//! `skill="other",folded="true"`. `outcome` is `completed` or `abandoned`.
//!
//! Which skills have series of their own is chosen once per process and
//! kept (D107): the busiest at the first scrape, then each new skill while
//! there is room. A skill that later overtakes one of them stays folded, so
//! that every series, the folded one included, only ever grows, as a
//! Prometheus counter must (a fall reads as a reset and a spike in `rate`).

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use infrastructure::{SkillMetrics, SkillMetricsStore};

use crate::error::ApiError;

/// The most skills given a label value of their own.
pub const MAX_SKILLS: usize = 500;

/// A label value with `\`, `"` and newlines escaped, as the format says.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Stands for the skills past the cap (never a skill's name: it holds a NUL,
/// which no skill name may).
const FOLDED: &str = "\0other";

/// The labels that name a skill's series, or the folded tail's.
fn skill_labels(skill: &str) -> String {
    if skill == FOLDED {
        "skill=\"other\",folded=\"true\"".to_owned()
    } else {
        format!("skill=\"{}\"", label(skill))
    }
}

/// The skills given series of their own in this process, at most
/// [`MAX_SKILLS`]; a skill once in stays in.
#[derive(Clone, Default)]
pub(crate) struct Exposed(Arc<Mutex<HashSet<String>>>);

impl Exposed {
    /// Splits `metrics` (the busiest first) into the skills with series of
    /// their own and the folded rest, first letting in the busiest of the
    /// skills not yet seen while there is room.
    fn split(&self, metrics: Vec<SkillMetrics>) -> (Vec<SkillMetrics>, Vec<SkillMetrics>) {
        let mut exposed = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for m in &metrics {
            if exposed.len() >= MAX_SKILLS {
                break;
            }
            if !exposed.contains(&m.skill_name) {
                exposed.insert(m.skill_name.clone());
            }
        }
        metrics
            .into_iter()
            .partition(|m| exposed.contains(&m.skill_name))
    }
}

impl FromRef<crate::Shared> for Exposed {
    fn from_ref(shared: &crate::Shared) -> Self {
        shared.exposed.clone()
    }
}

/// One exposition line per figure; a missing percentile is left out.
fn exposition(mut metrics: Vec<SkillMetrics>, exposed: &Exposed) -> String {
    // The busiest first: they are let in first, and listed first.
    metrics.sort_by(|a, b| {
        b.total_invocations
            .cmp(&a.total_invocations)
            .then_with(|| a.skill_name.cmp(&b.skill_name))
    });
    let (metrics, folded) = exposed.split(metrics);
    let other = (!folded.is_empty()).then(|| {
        folded.iter().fold((0i64, 0i64, 0f64, 0i64), |acc, m| {
            (
                acc.0 + m.completed_invocations,
                acc.1 + m.abandoned_invocations,
                acc.2 + m.total_duration_seconds,
                acc.3 + m.duration_count,
            )
        })
    });
    let mut out = String::new();
    out.push_str(
        "# HELP skill_metrics_invocations_total Skill invocations recorded, by outcome.\n\
         # TYPE skill_metrics_invocations_total counter\n",
    );
    // The tail's series carry `folded="true"` besides `skill="other"`, so
    // that a skill really named "other" keeps series of its own.
    let mut counts = |skill: &str, completed: i64, abandoned: i64| {
        for (outcome, n) in [("completed", completed), ("abandoned", abandoned)] {
            let _ = writeln!(
                out,
                "skill_metrics_invocations_total{{{},outcome=\"{outcome}\"}} {n}",
                skill_labels(skill)
            );
        }
    };
    for m in metrics.iter() {
        counts(
            &m.skill_name,
            m.completed_invocations,
            m.abandoned_invocations,
        );
    }
    if let Some((completed, abandoned, _, _)) = other {
        counts(FOLDED, completed, abandoned);
    }
    out.push_str(
        "# HELP skill_metrics_invocation_duration_seconds Durations of completed invocations \
         (quantiles within the digest's 1 % bound).\n\
         # TYPE skill_metrics_invocation_duration_seconds summary\n",
    );
    let mut summary = |skill: &str, quantiles: [(f64, Option<f64>); 3], sum: f64, count: i64| {
        let skill = skill_labels(skill);
        for (q, value) in quantiles {
            if let Some(v) = value {
                let _ = writeln!(
                    out,
                    "skill_metrics_invocation_duration_seconds{{{skill},quantile=\"{q}\"}} {v}"
                );
            }
        }
        let _ = writeln!(
            out,
            "skill_metrics_invocation_duration_seconds_sum{{{skill}}} {sum}"
        );
        let _ = writeln!(
            out,
            "skill_metrics_invocation_duration_seconds_count{{{skill}}} {count}"
        );
    };
    for m in metrics.iter() {
        summary(
            &m.skill_name,
            [
                (0.5, m.p50_duration_seconds),
                (0.95, m.p95_duration_seconds),
                (0.99, m.p99_duration_seconds),
            ],
            m.total_duration_seconds,
            m.duration_count,
        );
    }
    if let Some((_, _, sum, count)) = other {
        // Quantiles of a sum of skills are not the skills' quantiles.
        summary(
            FOLDED,
            [(0.5, None), (0.95, None), (0.99, None)],
            sum,
            count,
        );
    }
    out
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "read",
    responses((status = 200, description = "Prometheus text exposition (0.0.4): skill_metrics_invocations_total{skill,outcome} and the summary skill_metrics_invocation_duration_seconds{skill,quantile}; at most 500 skills by name (the busiest at the first scrape, then new ones while there is room; chosen once per process), the rest as skill=\"other\",folded=\"true\"", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
pub(crate) async fn metrics(
    State(store): State<SkillMetricsStore>,
    State(exposed): State<Exposed>,
) -> Result<Response, ApiError> {
    let rows = store.metrics(&[]).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        exposition(rows, &exposed),
    )
        .into_response())
}
