//! The library's public read types. Rows are mapped into these inside the
//! store, so the table layout stays private: a column added or renamed is
//! not a breaking change for an embedder. Each is `Serialize`, and the
//! CLI's `--json` output is their serialisation (keys sorted; times in RFC
//! 3339 with microseconds and `Z`).

use chrono::{DateTime, Utc};
// Every time here is written as the JSON contract writes them: RFC 3339,
// six digits, `Z`.
use domain::{
    CountMap, Invocation, serialize_micros as micros, serialize_opt_micros as opt_micros,
};
use entity::{session_skill, sessions, skill_metrics};
use serde::Serialize;

use crate::rows::count_map_from_json;

/// The JSON contract's text of `value`, as the CLI prints it and the
/// server answers it: keys sorted, pretty-printed, a newline at the end.
///
/// # Errors
/// When `value` cannot be represented as JSON (a map with non-text keys).
pub fn contract_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(&serde_json::to_value(value)?)?;
    text.push('\n');
    Ok(text)
}

/// One skill's metrics, kept exact on every write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillMetrics {
    /// The skill.
    pub skill_name: String,
    /// Every invocation recorded (plus legacy opening balances).
    pub total_invocations: i64,
    /// Of which completed.
    pub completed_invocations: i64,
    /// Of which abandoned (failed, interrupted or rejected).
    pub abandoned_invocations: i64,
    /// Sum of the completed durations, in seconds.
    pub total_duration_seconds: f64,
    /// How many completed invocations had a duration.
    pub duration_count: i64,
    /// Shortest completed duration.
    pub min_duration_seconds: Option<f64>,
    /// Longest completed duration.
    pub max_duration_seconds: Option<f64>,
    /// Median completed duration (within the digest's 1 % bound).
    pub p50_duration_seconds: Option<f64>,
    /// 95th percentile completed duration.
    pub p95_duration_seconds: Option<f64>,
    /// 99th percentile completed duration.
    pub p99_duration_seconds: Option<f64>,
    /// Mean completed duration.
    pub avg_duration_seconds: Option<f64>,
    /// completed / total × 100 (0 when there are none).
    pub completion_rate: f64,
    /// completed / total × 100 when there are any invocations, else none.
    pub success_rate: Option<f64>,
    /// Invocations per workflow path.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, i64>))]
    pub workflow_paths: CountMap,
    /// Abandoned invocations per error type.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, i64>))]
    pub common_errors: CountMap,
    /// Follow-up actions, counted.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, i64>))]
    pub follow_up_actions: CountMap,
    /// Only once `workflow_paths` has outgrown its limit (100 keys, D86): it
    /// then lists the 100 largest, and this is the exact sum of the rest.
    #[serde(skip_serializing_if = "is_zero")]
    pub workflow_paths_other: i64,
    /// The same for `common_errors`.
    #[serde(skip_serializing_if = "is_zero")]
    pub common_errors_other: i64,
    /// The same for `follow_up_actions`.
    #[serde(skip_serializing_if = "is_zero")]
    pub follow_up_actions_other: i64,
    /// The earliest invocation.
    #[serde(serialize_with = "opt_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub first_invoked: Option<DateTime<Utc>>,
    /// The latest invocation.
    #[serde(serialize_with = "opt_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_invoked: Option<DateTime<Utc>>,
    /// When these figures were last written.
    #[serde(serialize_with = "opt_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_aggregated_at: Option<DateTime<Utc>>,
    /// The version of the aggregate's layout.
    pub schema_version: i32,
}

impl SkillMetrics {
    /// The most frequent error type (the first by name among equals).
    pub fn top_error(&self) -> Option<&str> {
        self.common_errors
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name)))
            .map(|(name, _)| name.as_str())
    }
}

impl SkillMetrics {
    /// Maps a stored row (the table layout stays private).
    pub(crate) fn from_row(m: skill_metrics::Model) -> Self {
        Self {
            workflow_paths: count_map_from_json(&m.workflow_paths),
            common_errors: count_map_from_json(&m.common_errors),
            follow_up_actions: count_map_from_json(&m.follow_up_actions),
            skill_name: m.skill_name,
            total_invocations: m.total_invocations,
            completed_invocations: m.completed_invocations,
            abandoned_invocations: m.abandoned_invocations,
            total_duration_seconds: m.total_duration_seconds,
            duration_count: m.duration_count,
            min_duration_seconds: m.min_duration_seconds,
            max_duration_seconds: m.max_duration_seconds,
            p50_duration_seconds: m.p50_duration_seconds,
            p95_duration_seconds: m.p95_duration_seconds,
            p99_duration_seconds: m.p99_duration_seconds,
            avg_duration_seconds: m.avg_duration_seconds,
            completion_rate: m.completion_rate,
            success_rate: m.success_rate,
            first_invoked: m.first_invoked,
            last_invoked: m.last_invoked,
            last_aggregated_at: m.last_aggregated_at,
            schema_version: m.schema_version,
            workflow_paths_other: m.workflow_paths_other,
            common_errors_other: m.common_errors_other,
            follow_up_actions_other: m.follow_up_actions_other,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde's `skip_serializing_if` calls
fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A session: when it started and ended, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// Its id.
    pub id: String,
    /// Its first invocation, or its recorded start if earlier.
    #[serde(serialize_with = "micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: DateTime<Utc>,
    /// When it was ended, if it was.
    #[serde(serialize_with = "opt_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<DateTime<Utc>>,
    /// The project it ran in, when known.
    pub project_path: Option<String>,
}

impl Session {
    /// Maps a stored row (the table layout stays private).
    pub(crate) fn from_row(m: sessions::Model) -> Self {
        Self {
            id: m.id,
            started_at: m.started_at,
            ended_at: m.ended_at,
            project_path: m.project_path,
        }
    }
}

/// One skill's use within one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionSkill {
    /// `SESSION/SKILL`'s stable row id.
    pub id: String,
    /// The session.
    pub session_id: String,
    /// The skill.
    pub skill_name: String,
    /// Its invocations in the session.
    pub invocation_count: i64,
    /// The first of them.
    #[serde(serialize_with = "micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub first_invoked_at: DateTime<Utc>,
    /// The last of them.
    #[serde(serialize_with = "micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_invoked_at: DateTime<Utc>,
    /// Their completed durations, summed, in seconds.
    pub total_duration_seconds: f64,
}

impl SessionSkill {
    /// Maps a stored row (the table layout stays private).
    pub(crate) fn from_row(m: session_skill::Model) -> Self {
        Self {
            id: m.id,
            session_id: m.session_id,
            skill_name: m.skill_name,
            invocation_count: m.invocation_count,
            first_invoked_at: m.first_invoked_at,
            last_invoked_at: m.last_invoked_at,
            total_duration_seconds: m.total_duration_seconds,
        }
    }
}

/// A session with its per-skill figures and its invocations in time order.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// The session.
    #[serde(flatten)]
    pub session: Session,
    /// Its skills, by name.
    pub skills: Vec<SessionSkill>,
    /// Its invocations, oldest first.
    pub invocations: Vec<Invocation>,
}
