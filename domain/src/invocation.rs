//! One invocation of a skill, validated, and its JSON Lines form (the `ingest`
//! and `export` format: keys named as the `skill_invocation` columns).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::{
    InvocationId, MAX_CONTEXT_BYTES, SessionId, SkillName, ValidationError, parse_timestamp,
    truncate_to_micros,
};

const MAX_TEXT_CHARS: usize = 1000;
const MAX_FOLLOW_UPS: usize = 1000;

/// A validated invocation, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Unique id; a second invocation with the same id is a duplicate.
    pub id: InvocationId,
    /// The skill invoked.
    pub skill_name: SkillName,
    /// When it was invoked (UTC, microseconds).
    pub invoked_at: DateTime<Utc>,
    /// The workflow path taken, if any.
    pub workflow_path: Option<String>,
    /// `true` when it completed; `false` means abandoned.
    pub completed: bool,
    /// How long it ran, in seconds (finite, ≥ 0).
    pub duration_seconds: Option<f64>,
    /// The error's type, if it failed.
    pub error_type: Option<String>,
    /// The session it belongs to, if any.
    pub session_id: Option<SessionId>,
    /// Actions taken afterwards, in order; every one counts.
    pub follow_up_actions: Vec<String>,
    /// The project it ran in.
    pub project_path: Option<String>,
    /// Free-form context: a JSON object of at most 64 KiB.
    pub user_context: Option<Map<String, Value>>,
}

impl Invocation {
    /// A completed-or-abandoned invocation of `skill_name` at `invoked_at`
    /// with a fresh time-ordered id and every optional field empty.
    pub fn new(skill_name: SkillName, invoked_at: DateTime<Utc>, completed: bool) -> Self {
        Self {
            id: InvocationId::new_ordered(),
            skill_name,
            invoked_at: truncate_to_micros(invoked_at),
            workflow_path: None,
            completed,
            duration_seconds: None,
            error_type: None,
            session_id: None,
            follow_up_actions: Vec::new(),
            project_path: None,
            user_context: None,
        }
    }

    /// Checks every rule that the constructor-free fields can break; call it
    /// after filling fields by hand. Values built by [`Invocation::from_json`]
    /// already pass.
    ///
    /// # Errors
    /// The first field that breaks a rule.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(d) = self.duration_seconds {
            check_duration(d)?;
        }
        check_optional_text("workflow_path", self.workflow_path.as_deref())?;
        check_optional_text("error_type", self.error_type.as_deref())?;
        check_optional_text("project_path", self.project_path.as_deref())?;
        if self.follow_up_actions.len() > MAX_FOLLOW_UPS {
            return Err(ValidationError::new(
                "follow_up_actions",
                format!(
                    "holds {} actions; at most {MAX_FOLLOW_UPS}",
                    self.follow_up_actions.len()
                ),
            ));
        }
        for action in &self.follow_up_actions {
            check_text("follow_up_actions", action)?;
        }
        if let Some(ctx) = &self.user_context {
            check_context_size(ctx)?;
            check_context_has_no_nul(ctx)?;
        }
        Ok(())
    }

    /// Reads one JSON Lines record. `id` is generated when absent and
    /// `invoked_at` defaults to `now`; `completed` defaults to `false`.
    ///
    /// # Errors
    /// Names the first offending field: wrong JSON type, invalid value, or an
    /// unknown key (a typo would otherwise silently drop data).
    pub fn from_json(value: &Value, now: DateTime<Utc>) -> Result<Self, ValidationError> {
        let Value::Object(obj) = value else {
            return Err(ValidationError::new("line", "must be a JSON object"));
        };
        for key in obj.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                return Err(ValidationError::new(
                    key.clone(),
                    format!(
                        "is not a column of skill_invocation (expected one of {})",
                        KNOWN_KEYS.join(", ")
                    ),
                ));
            }
        }
        let skill_name = match obj.get("skill_name") {
            Some(Value::String(s)) => SkillName::parse(s.clone())?,
            Some(Value::Null) | None => {
                return Err(ValidationError::new("skill_name", "is required"));
            }
            Some(other) => return Err(wrong_type("skill_name", "a string", other)),
        };
        let id = match opt_str(obj, "id")? {
            Some(s) => InvocationId::parse(s)?,
            None => InvocationId::new_ordered(),
        };
        let invoked_at = match opt_str(obj, "invoked_at")? {
            Some(s) => parse_timestamp("invoked_at", s)?,
            None => truncate_to_micros(now),
        };
        let completed = match obj.get("completed") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(wrong_type("completed", "true or false", other)),
        };
        let duration_seconds = match obj.get("duration_seconds") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                let d = n.as_f64().ok_or_else(|| {
                    ValidationError::new("duration_seconds", "is not a representable number")
                })?;
                Some(d)
            }
            Some(other) => {
                return Err(wrong_type("duration_seconds", "a number of seconds", other));
            }
        };
        let session_id = opt_str(obj, "session_id")?
            .map(SessionId::parse)
            .transpose()?;
        let follow_up_actions = match obj.get("follow_up_actions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(
                        &format!("follow_up_actions[{i}]"),
                        "a string",
                        other,
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(wrong_type(
                    "follow_up_actions",
                    "an array of strings",
                    other,
                ));
            }
        };
        let user_context = match obj.get("user_context") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map.clone()),
            Some(other) => return Err(wrong_type("user_context", "a JSON object", other)),
        };
        if let Some(v) = obj.get("schema_version")
            && !(v.is_null() || v.as_i64() == Some(1))
        {
            return Err(ValidationError::new(
                "schema_version",
                "only version 1 is understood",
            ));
        }
        let invocation = Self {
            id,
            skill_name,
            invoked_at,
            workflow_path: opt_str(obj, "workflow_path")?.map(str::to_owned),
            completed,
            duration_seconds,
            error_type: opt_str(obj, "error_type")?.map(str::to_owned),
            session_id,
            follow_up_actions,
            project_path: opt_str(obj, "project_path")?.map(str::to_owned),
            user_context,
        };
        invocation.validate()?;
        Ok(invocation)
    }

    /// The JSON Lines form, accepted back by [`Invocation::from_json`].
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "skill_name": self.skill_name.as_str(),
            "invoked_at": self.invoked_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "workflow_path": self.workflow_path,
            "completed": self.completed,
            "duration_seconds": self.duration_seconds,
            "error_type": self.error_type,
            "session_id": self.session_id.as_ref().map(SessionId::as_str),
            "follow_up_actions": self.follow_up_actions,
            "schema_version": 1,
            "project_path": self.project_path,
            "user_context": self.user_context,
        })
    }
}

/// Serialises as the JSON Lines form ([`Invocation::to_json`]), the shape
/// every JSON output of an invocation has.
impl serde::Serialize for Invocation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

const KNOWN_KEYS: &[&str] = &[
    "id",
    "skill_name",
    "invoked_at",
    "workflow_path",
    "completed",
    "duration_seconds",
    "error_type",
    "session_id",
    "follow_up_actions",
    "schema_version",
    "project_path",
    "user_context",
];

/// The longest duration accepted (about 31.7 years): durations are summed
/// in whole microseconds in an `i64` (see [`crate::micros`]).
pub const MAX_DURATION_SECONDS: f64 = 1e9;

fn check_duration(d: f64) -> Result<(), ValidationError> {
    if !d.is_finite() {
        return Err(ValidationError::new(
            "duration_seconds",
            format!("{d} is not a finite number"),
        ));
    }
    if d < 0.0 {
        return Err(ValidationError::new(
            "duration_seconds",
            format!("{d} is negative"),
        ));
    }
    if d > MAX_DURATION_SECONDS {
        return Err(ValidationError::new(
            "duration_seconds",
            format!("{d} is longer than the largest accepted, {MAX_DURATION_SECONDS} s"),
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(ValidationError::new(
            field,
            format!("is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

fn check_optional_text(field: &str, value: Option<&str>) -> Result<(), ValidationError> {
    value.map_or(Ok(()), |v| check_text(field, v))
}

/// A NUL character anywhere in the context, key or value: PostgreSQL's
/// `jsonb` cannot hold one, so both backends refuse it alike.
fn check_context_has_no_nul(ctx: &Map<String, Value>) -> Result<(), ValidationError> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if ctx.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(ValidationError::new(
            "user_context",
            "contains the character U+0000, which no store can keep in JSON",
        ));
    }
    Ok(())
}

fn check_context_size(ctx: &Map<String, Value>) -> Result<(), ValidationError> {
    // Serialising a Map cannot fail: keys are strings and values are JSON.
    let bytes = serde_json::to_vec(ctx)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_CONTEXT_BYTES {
        return Err(ValidationError::new(
            "user_context",
            format!("is {bytes} bytes of JSON; at most {MAX_CONTEXT_BYTES} are allowed"),
        ));
    }
    Ok(())
}

fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> ValidationError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ValidationError::new(field, format!("must be {expected}, got {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2025-02-10T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_minimal_line_gets_defaults() {
        let inv = Invocation::from_json(&json!({"skill_name": "a"}), now()).unwrap();
        assert!(!inv.completed);
        assert_eq!(inv.invoked_at, now());
        assert!(inv.follow_up_actions.is_empty());
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (json!({"skill_name": ""}), "skill_name"),
            (json!({"skill_name": "x".repeat(10_000)}), "skill_name"),
            (json!({"skill_name": "a\u{7}b"}), "skill_name"),
            (json!({"skill_name": 5}), "skill_name"),
            (
                json!({"skill_name": "a", "duration_seconds": -1.0}),
                "duration_seconds",
            ),
            (
                json!({"skill_name": "a", "duration_seconds": "5"}),
                "duration_seconds",
            ),
            (
                json!({"skill_name": "a", "invoked_at": "2025-02-10T12:00:00"}),
                "invoked_at",
            ),
            (
                json!({"skill_name": "a", "invoked_at": "yesterday"}),
                "invoked_at",
            ),
            (
                json!({"skill_name": "a", "user_context": [1]}),
                "user_context",
            ),
            (
                json!({"skill_name": "a", "follow_up_actions": "x"}),
                "follow_up_actions",
            ),
            (
                json!({"skill_name": "a", "follow_up_actions": [1]}),
                "follow_up_actions[0]",
            ),
            (json!({"skill_name": "a", "completed": "yes"}), "completed"),
            (json!({"skill_name": "a", "id": "nope"}), "id"),
            (json!({"skill_name": "a", "skil": 1}), "skil"),
            (json!([1]), "line"),
        ];
        for (value, field) in cases {
            let err = Invocation::from_json(&value, now()).unwrap_err();
            assert_eq!(err.field, field, "{value}");
        }
    }

    #[test]
    fn an_oversized_context_is_refused() {
        let big = json!({"skill_name": "a", "user_context": {"k": "x".repeat(70_000)}});
        assert_eq!(
            Invocation::from_json(&big, now()).unwrap_err().field,
            "user_context"
        );
    }

    #[test]
    fn json_round_trips() {
        let line = json!({"skill_name": "a.b c", "invoked_at": "2025-02-10T12:00:00.123456+01:00",
            "completed": true, "duration_seconds": 1.5, "follow_up_actions": ["git commit"],
            "user_context": {"k": "v"}, "session_id": "s1", "workflow_path": "ci/deploy"});
        let inv = Invocation::from_json(&line, now()).unwrap();
        let again = Invocation::from_json(&inv.to_json(), now()).unwrap();
        assert_eq!(inv, again);
        assert_eq!(
            inv.invoked_at.to_rfc3339(),
            "2025-02-10T11:00:00.123456+00:00"
        );
    }
}

/// The JSON schema of an invocation as it is serialised ([`Invocation::to_json`]).
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::{RefOr, schema::Schema};

    /// The shape `to_json` writes; only its schema is used.
    #[allow(dead_code)]
    #[derive(utoipa::ToSchema)]
    #[schema(as = Invocation)]
    struct Shape {
        /// Its id (a UUID).
        #[schema(format = "uuid")]
        id: String,
        /// The skill (or tool) invoked.
        skill_name: String,
        /// When, in UTC with microseconds.
        #[schema(format = DateTime)]
        invoked_at: String,
        /// The workflow path taken.
        workflow_path: Option<String>,
        /// `false` is abandoned.
        completed: bool,
        /// How long it ran, in seconds.
        duration_seconds: Option<f64>,
        /// The error's class, when it failed.
        error_type: Option<String>,
        /// The session it ran in.
        session_id: Option<String>,
        /// What followed it.
        follow_up_actions: Vec<String>,
        /// Always 1.
        schema_version: i32,
        /// The project it ran in.
        project_path: Option<String>,
        /// Anything else the source knew, as a JSON object.
        #[schema(value_type = Option<Object>)]
        user_context: Option<serde_json::Map<String, serde_json::Value>>,
    }

    impl utoipa::PartialSchema for super::Invocation {
        fn schema() -> RefOr<Schema> {
            <Shape as utoipa::PartialSchema>::schema()
        }
    }

    impl utoipa::ToSchema for super::Invocation {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Invocation")
        }
    }
}
