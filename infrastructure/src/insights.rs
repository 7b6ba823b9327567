//! Insights over a window against its baseline (decision D95): both folded
//! from the rollups by [`SkillMetricsStore::fold_span`], each skill's
//! lifetime from `skill_metrics`, the findings from `domain`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use domain::{Finding, InsightSettings, RollupAggregate, Side, SkillHistory, ValidationError};
use serde::Serialize;

use crate::{SkillMetricsStore, StoreError};

/// What the window is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The stretch of the window's length just before it.
    Previous,
    /// [since, until).
    Range(DateTime<Utc>, DateTime<Utc>),
}

impl Baseline {
    /// `previous`, or a range `FROM..TO` of two RFC 3339 times.
    ///
    /// # Errors
    /// Anything else, naming `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        if text.trim() == "previous" {
            return Ok(Self::Previous);
        }
        let (from, to) = domain::parse_range(field, text)?;
        Ok(Self::Range(from, to))
    }
}

/// The longest window (and baseline) insights compare.
pub const MAX_INSIGHT_DAYS: i64 = 366;

/// The findings of one comparison, with what was compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insights {
    /// The window's start (inclusive).
    #[serde(serialize_with = "domain::serialize_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub window_since: DateTime<Utc>,
    /// The window's end (exclusive).
    #[serde(serialize_with = "domain::serialize_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub window_until: DateTime<Utc>,
    /// The baseline's start (inclusive).
    #[serde(serialize_with = "domain::serialize_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub baseline_since: DateTime<Utc>,
    /// The baseline's end (exclusive).
    #[serde(serialize_with = "domain::serialize_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub baseline_until: DateTime<Utc>,
    /// The project compared (`""`: invocations with none); retire
    /// candidates are judged over every project.
    pub project: Option<String>,
    /// Invocations in the window.
    pub window_invocations: i64,
    /// Invocations in the baseline.
    pub baseline_invocations: i64,
    /// The thresholds used.
    pub settings: InsightSettings,
    /// How many statistical tests were run: the family whose false
    /// discovery rate is held to `settings.alpha`.
    pub tests_run: usize,
    /// The findings, most important kinds first.
    pub findings: Vec<Finding>,
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, message.into()))
}

/// Refuses thresholds that would make the findings meaningless.
fn check(s: &InsightSettings) -> Result<(), StoreError> {
    if !(s.alpha > 0.0 && s.alpha < 1.0) {
        return Err(invalid("alpha", "must be between 0 and 1, exclusive"));
    }
    for (field, v) in [
        ("latency_change", s.latency_change),
        ("completion_drop_points", s.completion_drop_points),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(field, "must be a number of 0 or more"));
        }
    }
    for (field, v) in [
        ("error_rise", s.error_rise),
        ("usage_factor", s.usage_factor),
    ] {
        if !(v.is_finite() && v >= 1.0) {
            return Err(invalid(field, "must be a factor of 1 or more"));
        }
    }
    for (field, v) in [
        ("min_p50_samples", s.min_p50_samples),
        ("min_p95_samples", s.min_p95_samples),
        ("min_invocations", s.min_invocations),
        ("min_errors", s.min_errors),
        ("min_usage", s.min_usage),
    ] {
        if v < 1 {
            return Err(invalid(field, "must be 1 or more"));
        }
    }
    if !(1..=36_500).contains(&s.retire_after_days) {
        return Err(invalid("retire_after_days", "must be 1 to 36500 days"));
    }
    if s.retire_floor < 0 {
        return Err(invalid("retire_floor", "must be 0 or more"));
    }
    Ok(())
}

impl SkillMetricsStore {
    /// The findings of the `window` ending at `until` (now when `None`)
    /// against `baseline`, of `project`'s invocations (`Some("")`: those
    /// with none) or all.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a window or baseline that is empty,
    /// longer than 366 days, in the wrong order or overlapping the window,
    /// or thresholds out of range; a database failure.
    pub async fn insights(
        &self,
        window: Duration,
        until: Option<DateTime<Utc>>,
        baseline: Baseline,
        project: Option<&str>,
        settings: &InsightSettings,
    ) -> Result<Insights, StoreError> {
        check(settings)?;
        let longest = Duration::days(MAX_INSIGHT_DAYS);
        if window <= Duration::zero() || window > longest {
            return Err(invalid(
                "window",
                "must be longer than 0 and at most 366 days",
            ));
        }
        let now = Utc::now();
        let until = until.unwrap_or(now);
        let since = until - window;
        let (base_since, base_until) = match baseline {
            Baseline::Previous => (since - window, since),
            Baseline::Range(a, b) => (a, b),
        };
        if base_since >= base_until || base_until - base_since > longest {
            return Err(invalid(
                "against",
                "the baseline must start before it ends and last at most 366 days",
            ));
        }
        if base_since < until && since < base_until {
            return Err(invalid(
                "against",
                "the baseline overlaps the window: choose a stretch before or after it",
            ));
        }
        let window_rows = self.per_skill(project, since, until).await?;
        let baseline_rows = self.per_skill(project, base_since, base_until).await?;
        // The retire rule counts uses over every project.
        let everywhere = match project {
            Some(_) => self.per_skill(None, since, until).await?,
            None => BTreeMap::new(),
        };
        let in_window = |name: &str| {
            let rows = if project.is_some() {
                &everywhere
            } else {
                &window_rows
            };
            rows.get(name).map_or(0, |r| r.total)
        };
        let history: BTreeMap<String, SkillHistory> = self
            .metrics(&[])
            .await?
            .into_iter()
            .map(|m| {
                let h = SkillHistory {
                    invocations: m.total_invocations,
                    first_invoked: m.first_invoked,
                    last_invoked: m.last_invoked,
                    in_window: in_window(&m.skill_name),
                };
                (m.skill_name, h)
            })
            .collect();
        // Rates of use count only time the store has data for: from its
        // first invocation to now (or its last, if later: a clock ahead),
        // so that a young store's baseline is not read as days without use.
        let first = history
            .values()
            .filter_map(|h| h.first_invoked)
            .min()
            .unwrap_or(now);
        let latest = history
            .values()
            .filter_map(|h| h.last_invoked)
            .max()
            .map_or(now, |last| last.max(now));
        let clip = |a: DateTime<Utc>, b: DateTime<Utc>| {
            let a = a.max(first);
            (a, b.min(latest).max(a))
        };
        let (w_since, w_until) = clip(since, until);
        let (b_since, b_until) = clip(base_since, base_until);
        let found = domain::find_insights(
            Side {
                since: w_since,
                until: w_until,
                skills: &window_rows,
            },
            Side {
                since: b_since,
                until: b_until,
                skills: &baseline_rows,
            },
            &history,
            until.min(latest),
            settings,
        );
        Ok(Insights {
            window_since: since,
            window_until: until,
            baseline_since: base_since,
            baseline_until: base_until,
            project: project.map(str::to_owned),
            window_invocations: window_rows.values().map(|r| r.total).sum(),
            baseline_invocations: baseline_rows.values().map(|r| r.total).sum(),
            settings: settings.clone(),
            tests_run: found.tests_run,
            findings: found.findings,
        })
    }

    /// Every skill's invocations in [since, until), one aggregate each.
    async fn per_skill(
        &self,
        project: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<BTreeMap<String, RollupAggregate>, StoreError> {
        let folded = self
            .fold_span(None, project, (Some(since), Some(until)), true, |_, _| {
                Some(())
            })
            .await?;
        Ok(folded
            .into_iter()
            .map(|((skill, ()), agg)| (skill, agg))
            .collect())
    }
}
