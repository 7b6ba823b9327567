//! Mapping between entity models and domain types.

use chrono::Utc;
use domain::{
    CountMap, DigestError, DurationDigest, Invocation, InvocationId, SessionId, SkillAggregate,
    SkillName, ValidationError,
};
use entity::{skill_invocation, skill_metrics, skill_metrics_balance, skill_metrics_pruned};
use serde_json::Value as Json;

use crate::StoreError;

pub(crate) fn count_map_to_json(map: &CountMap) -> Json {
    Json::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Json::from(*v)))
            .collect(),
    )
}

pub(crate) fn count_map_from_json(json: &Json) -> CountMap {
    match json {
        Json::Object(obj) => obj
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
            .collect(),
        // Stored as text by an older writer or a hand edit: read it as JSON.
        Json::String(s) => serde_json::from_str(s)
            .map(|j| count_map_from_json(&j))
            .unwrap_or_default(),
        _ => CountMap::new(),
    }
}

/// The aggregate a stored row of `skill_metrics` or `skill_metrics_pruned`
/// holds (both name its columns alike), with `others` as its maps' rests;
/// `?` on an undecodable digest.
macro_rules! stored_aggregate {
    ($m:expr, $others:expr) => {{
        let m = $m;
        SkillAggregate {
            total: m.total_invocations,
            completed: m.completed_invocations,
            abandoned: m.abandoned_invocations,
            total_duration_micros: m.total_duration_micros,
            duration_count: m.duration_count,
            min_duration_seconds: m.min_duration_seconds,
            max_duration_seconds: m.max_duration_seconds,
            workflow_paths: count_map_from_json(&m.workflow_paths),
            common_errors: count_map_from_json(&m.common_errors),
            follow_up_actions: count_map_from_json(&m.follow_up_actions),
            first_invoked: m.first_invoked,
            last_invoked: m.last_invoked,
            digest: digest_of(&m.skill_name, m.duration_digest.as_deref())?,
            others: $others,
        }
    }};
}

/// A stored aggregate row as the domain's aggregate.
///
/// # Errors
/// [`StoreError::Digest`] naming the skill when its stored duration digest
/// cannot be decoded (a row just created, with no digest yet, starts empty).
pub(crate) fn aggregate_from_model(m: &skill_metrics::Model) -> Result<SkillAggregate, StoreError> {
    let others = [
        m.workflow_paths_other,
        m.common_errors_other,
        m.follow_up_actions_other,
    ];
    Ok(stored_aggregate!(m, others))
}

/// A pruned balance (D83) as an aggregate: everything the removed
/// invocations contributed, digest included.
pub(crate) fn aggregate_from_pruned(
    m: &skill_metrics_pruned::Model,
) -> Result<SkillAggregate, StoreError> {
    Ok(stored_aggregate!(m, [0; 3]))
}

/// An opening balance as an aggregate: counts and sums, no durations of
/// its own (so no digest, minimum or maximum).
pub(crate) fn aggregate_from_balance(m: &skill_metrics_balance::Model) -> SkillAggregate {
    SkillAggregate {
        total: m.total_invocations,
        completed: m.completed_invocations,
        abandoned: m.abandoned_invocations,
        total_duration_micros: m.total_duration_micros,
        duration_count: m.completed_invocations,
        min_duration_seconds: None,
        max_duration_seconds: None,
        workflow_paths: count_map_from_json(&m.workflow_paths),
        common_errors: count_map_from_json(&m.common_errors),
        follow_up_actions: count_map_from_json(&m.follow_up_actions),
        first_invoked: m.first_invoked,
        last_invoked: m.last_invoked,
        digest: DurationDigest::default(),
        others: [0; 3],
    }
}

/// A stored digest of `skill` (none: empty).
pub(crate) fn digest_of(skill: &str, bytes: Option<&[u8]>) -> Result<DurationDigest, StoreError> {
    bytes.map_or_else(
        || Ok(DurationDigest::default()),
        |b| DurationDigest::from_bytes(b).map_err(|e| digest_err(skill, &e)),
    )
}

/// A digest failure as the store's error, naming the skill.
pub(crate) fn digest_err(skill: &str, e: &DigestError) -> StoreError {
    StoreError::Digest {
        skill: skill.to_owned(),
        reason: e.to_string(),
    }
}

/// `partial` added into `into`, the aggregate of `skill`.
///
/// # Errors
/// [`StoreError::Digest`] when the two digests cannot be merged (nothing changes).
pub(crate) fn merge_skill(
    skill: &str,
    into: &mut SkillAggregate,
    partial: &SkillAggregate,
) -> Result<(), StoreError> {
    into.merge(partial).map_err(|e| digest_err(skill, &e))
}

/// A log row as a domain invocation. Rows were validated on the way in; a
/// row that fails now was written by another client and is reported as such.
pub(crate) fn invocation_from_model(
    m: skill_invocation::Model,
) -> Result<Invocation, ValidationError> {
    let follow_up_actions = match m.follow_up_actions {
        Json::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Json::String(s) => serde_json::from_str(&s).unwrap_or_default(),
        _ => Vec::new(),
    };
    let user_context = match m.user_context {
        Some(Json::Object(map)) => Some(map),
        Some(Json::String(s)) => serde_json::from_str(&s).ok(),
        _ => None,
    };
    Ok(Invocation {
        id: InvocationId::from(m.id),
        skill_name: SkillName::parse(m.skill_name)?,
        invoked_at: m.invoked_at.with_timezone(&Utc),
        workflow_path: m.workflow_path,
        completed: m.completed,
        duration_seconds: m.duration_seconds,
        error_type: m.error_type,
        session_id: m.session_id.map(SessionId::parse).transpose()?,
        follow_up_actions,
        project_path: m.project_path,
        user_context,
    })
}

/// A logged row as an invocation, or an error naming the row when it breaks
/// the domain's rules (only another client can have written it).
pub(crate) fn logged_invocation(m: skill_invocation::Model) -> Result<Invocation, StoreError> {
    let id = m.id;
    invocation_from_model(m).map_err(|e| {
        StoreError::Invalid(ValidationError::new(
            e.field,
            format!(
                "{} (in logged invocation {id}, written by another client)",
                e.reason
            ),
        ))
    })
}
