//! The legacy JSON file: its invocation objects as [`Invocation`]s, and the
//! opening balance its `skills` section holds beyond what the list explains.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    CountMap, Invocation, InvocationId, SessionId, SkillAggregate, SkillName, ValidationError,
    truncate_to_micros,
};

/// Namespace of the ids derived for legacy invocations (the file has none).
pub const LEGACY_NAMESPACE: Uuid = uuid::uuid!("0f5d8f52-6c3e-4f0b-a4a1-6a51c1a0e2b7");

/// Keys of a legacy invocation object that map onto columns.
const COLUMN_KEYS: &[&str] = &[
    "skill_name",
    "invoked_at",
    "workflow_path",
    "completed",
    "duration_seconds",
    "follow_up_actions",
    "error_type",
    "session_id",
];
/// Keys of the session variant kept in `user_context`.
const CONTEXT_KEYS: &[&str] = &["user_query", "alternatives_considered", "selection_rank"];

/// A legacy timestamp: naive local time read in the caller's zone, or RFC 3339.
///
/// # Errors
/// When the text is neither.
pub fn legacy_timestamp(
    field: &str,
    text: &str,
    local: &dyn Fn(NaiveDateTime) -> Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, ValidationError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(truncate_to_micros(at.with_timezone(&Utc)));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| ValidationError::new(field, format!("{text:?} is not an ISO-8601 time")))?;
    local(naive).map(truncate_to_micros).ok_or_else(|| {
        ValidationError::new(
            field,
            format!("{text:?} does not exist in the chosen time zone"),
        )
    })
}

/// One legacy invocation object, converted. `pending` is `true` for an
/// invocation whose completion was never reported (`completed: false` and no
/// duration): the old tracker counted it nowhere. It becomes an abandoned
/// invocation marked `"legacy_pending": true` in `user_context`.
#[derive(Debug, Clone)]
pub struct LegacyInvocation {
    /// The invocation to record.
    pub invocation: Invocation,
    /// Never reported complete.
    pub pending: bool,
}

fn str_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ValidationError::new(key, "must be a string or null")),
    }
}

/// Converts the `index`-th element of the `invocations` list. Its id is
/// derived from the index, skill name and timestamp text: the same file, or a
/// later copy with more appended, gives the same ids, and identical twins at
/// different positions stay distinct.
///
/// # Errors
/// Names the field that cannot be read.
pub fn legacy_invocation(
    index: u64,
    value: &Value,
    local: &dyn Fn(NaiveDateTime) -> Option<DateTime<Utc>>,
) -> Result<LegacyInvocation, ValidationError> {
    let Value::Object(obj) = value else {
        return Err(ValidationError::new("invocation", "must be an object"));
    };
    let name = str_field(obj, "skill_name")?
        .ok_or_else(|| ValidationError::new("skill_name", "is required"))?;
    let at_text = str_field(obj, "invoked_at")?
        .ok_or_else(|| ValidationError::new("invoked_at", "is required"))?;
    let invoked_at = legacy_timestamp("invoked_at", at_text, local)?;
    let completed = match obj.get("completed") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ValidationError::new("completed", "must be true or false")),
    };
    let duration = match obj.get("duration_seconds") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => {
            return Err(ValidationError::new(
                "duration_seconds",
                "must be a number or null",
            ));
        }
    };
    let follow_up_actions = match obj.get("follow_up_actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ValidationError::new("follow_up_actions", "must hold strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ValidationError::new(
                "follow_up_actions",
                "must be an array",
            ));
        }
    };
    let pending = !completed && duration.is_none();
    let mut context = Map::new();
    for key in CONTEXT_KEYS {
        if let Some(v) = obj.get(*key) {
            context.insert((*key).to_owned(), v.clone());
        }
    }
    let extra: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !COLUMN_KEYS.contains(&k.as_str()) && !CONTEXT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !extra.is_empty() {
        context.insert("legacy_extra".to_owned(), Value::Object(extra));
    }
    if pending {
        context.insert("legacy_pending".to_owned(), Value::Bool(true));
    }
    let key = format!("{index}\u{1f}{name}\u{1f}{at_text}");
    let invocation = Invocation {
        id: InvocationId::derived(&LEGACY_NAMESPACE, key.as_bytes()),
        skill_name: SkillName::parse(name)?,
        invoked_at,
        workflow_path: str_field(obj, "workflow_path")?.map(str::to_owned),
        completed,
        duration_seconds: duration,
        error_type: str_field(obj, "error_type")?.map(str::to_owned),
        session_id: str_field(obj, "session_id")?
            .map(SessionId::parse)
            .transpose()?,
        follow_up_actions,
        project_path: None,
        user_context: (!context.is_empty()).then_some(context),
    };
    invocation.validate()?;
    Ok(LegacyInvocation {
        invocation,
        pending,
    })
}

/// A skill's figures as the `skills` section holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacySkill {
    /// `total_invocations`.
    pub total: i64,
    /// `completed_invocations`.
    pub completed: i64,
    /// `abandoned_invocations`.
    pub abandoned: i64,
    /// `total_duration_seconds`.
    pub total_duration_seconds: f64,
    /// `workflow_paths`.
    pub workflow_paths: CountMap,
    /// `common_errors`.
    pub common_errors: CountMap,
    /// `follow_up_actions`.
    pub follow_up_actions: CountMap,
    /// `first_invoked`.
    pub first_invoked: Option<DateTime<Utc>>,
    /// `last_invoked`.
    pub last_invoked: Option<DateTime<Utc>>,
}

fn counts(obj: &Map<String, Value>, key: &str) -> CountMap {
    match obj.get(key) {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
            .collect(),
        _ => CountMap::new(),
    }
}

impl LegacySkill {
    /// Reads a metrics object; missing numbers count as 0.
    ///
    /// # Errors
    /// A timestamp that cannot be read.
    pub fn from_json(
        value: &Value,
        local: &dyn Fn(NaiveDateTime) -> Option<DateTime<Utc>>,
    ) -> Result<Self, ValidationError> {
        let Value::Object(obj) = value else {
            return Err(ValidationError::new(
                "skills",
                "each entry must be an object",
            ));
        };
        let int = |k: &str| obj.get(k).and_then(Value::as_i64).unwrap_or(0);
        let time = |k: &str| -> Result<Option<DateTime<Utc>>, ValidationError> {
            match obj.get(k) {
                Some(Value::String(s)) => legacy_timestamp(k, s, local).map(Some),
                _ => Ok(None),
            }
        };
        Ok(Self {
            total: int("total_invocations"),
            completed: int("completed_invocations"),
            abandoned: int("abandoned_invocations"),
            total_duration_seconds: obj
                .get("total_duration_seconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            workflow_paths: counts(obj, "workflow_paths"),
            common_errors: counts(obj, "common_errors"),
            follow_up_actions: counts(obj, "follow_up_actions"),
            first_invoked: time("first_invoked")?,
            last_invoked: time("last_invoked")?,
        })
    }

    /// What this skill's legacy figures hold beyond `explained` (the
    /// aggregate of its listed, counted invocations); never negative.
    pub fn balance_beyond(&self, explained: &SkillAggregate) -> SkillAggregate {
        let rest = |a: i64, b: i64| (a - b).max(0);
        let rest_map = |legacy: &CountMap, ours: &CountMap| -> CountMap {
            legacy
                .iter()
                .filter_map(|(k, v)| {
                    let r = v - ours.get(k).copied().unwrap_or(0);
                    (r > 0).then(|| (k.clone(), r))
                })
                .collect()
        };
        let completed = rest(self.completed, explained.completed);
        SkillAggregate {
            total: rest(self.total, explained.total),
            completed,
            abandoned: rest(self.abandoned, explained.abandoned),
            total_duration_micros: (crate::micros(self.total_duration_seconds)
                - explained.total_duration_micros)
                .max(0),
            // The old average divides by completed: the balance's completed carry its durations.
            duration_count: completed,
            min_duration_seconds: None,
            max_duration_seconds: None,
            workflow_paths: rest_map(&self.workflow_paths, &explained.workflow_paths),
            common_errors: rest_map(&self.common_errors, &explained.common_errors),
            follow_up_actions: rest_map(&self.follow_up_actions, &explained.follow_up_actions),
            first_invoked: self
                .first_invoked
                .filter(|f| explained.first_invoked.is_none_or(|e| f < &e)),
            last_invoked: self
                .last_invoked
                .filter(|l| explained.last_invoked.is_none_or(|e| l > &e)),
            digest: Default::default(),
            others: [0; 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn utc(naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        Some(Utc.from_utc_datetime(&naive))
    }

    #[test]
    fn twins_get_distinct_stable_ids_and_pending_is_marked() {
        let v = json!({"skill_name": "s", "invoked_at": "2025-02-10T13:05:00", "completed": false,
                       "duration_seconds": null, "follow_up_actions": [], "user_query": "q", "odd": 1});
        let a = legacy_invocation(0, &v, &utc).unwrap();
        let b = legacy_invocation(1, &v, &utc).unwrap();
        assert_ne!(a.invocation.id, b.invocation.id);
        assert_eq!(
            a.invocation.id,
            legacy_invocation(0, &v, &utc).unwrap().invocation.id
        );
        assert!(a.pending);
        let ctx = a.invocation.user_context.unwrap();
        assert_eq!(ctx["user_query"], "q");
        assert_eq!(ctx["legacy_extra"]["odd"], 1);
        assert_eq!(ctx["legacy_pending"], true);
    }

    #[test]
    fn the_balance_is_what_the_list_does_not_explain() {
        let legacy = LegacySkill {
            total: 58,
            completed: 50,
            abandoned: 8,
            total_duration_seconds: 500.0,
            workflow_paths: [("daily".to_owned(), 40)].into(),
            ..Default::default()
        };
        let mut inv = Invocation::new(SkillName::parse("s").unwrap(), Utc::now(), true);
        inv.duration_seconds = Some(100.0);
        inv.workflow_path = Some("daily".into());
        let explained = SkillAggregate::from_invocations([&inv]);
        let b = legacy.balance_beyond(&explained);
        assert_eq!(
            (b.total, b.completed, b.abandoned, b.duration_count),
            (57, 49, 8, 49)
        );
        assert_eq!(b.total_duration_micros, 400_000_000);
        assert_eq!(b.workflow_paths["daily"], 39);
        let mut all = explained.clone();
        all.merge(&b).unwrap();
        assert_eq!((all.total, all.completed), (58, 50));
        assert_eq!(all.avg_duration_seconds(), Some(10.0), "the legacy average");
    }
}
