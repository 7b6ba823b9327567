//! Validated newtypes: an invalid value cannot be constructed, so it cannot
//! reach the database.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ValidationError;

/// Longest skill name accepted, in characters.
pub const MAX_SKILL_NAME_CHARS: usize = 200;
/// Largest `user_context` accepted, in bytes of compact JSON.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
const MAX_SESSION_ID_CHARS: usize = 200;

fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(
            field,
            format!("is {chars} characters long; at most {max_chars} are allowed"),
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

/// A skill's name: non-empty, at most 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SkillName(String);

impl SkillName {
    /// Validates `value` as a skill name.
    ///
    /// # Errors
    /// When it is empty, longer than [`MAX_SKILL_NAME_CHARS`] or holds a control character.
    pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        check_text("skill_name", &value, MAX_SKILL_NAME_CHARS)?;
        Ok(Self(value))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SkillName {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<SkillName> for String {
    fn from(value: SkillName) -> Self {
        value.0
    }
}

impl fmt::Display for SkillName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session's identifier: free text chosen by the caller (assistants use
/// UUIDs, people use anything), non-empty, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Validates `value` as a session id.
    ///
    /// # Errors
    /// When it is empty, longer than 200 characters or holds a control character.
    pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        check_text("session_id", &value, MAX_SESSION_ID_CHARS)?;
        Ok(Self(value))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<SessionId> for String {
    fn from(value: SessionId) -> Self {
        value.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An invocation's identifier, always a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InvocationId(Uuid);

impl InvocationId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// A fresh time-ordered id (a UUID v7: its first 48 bits are the time
    /// of its making, in milliseconds, the rest random), the default for new
    /// invocations: ids made in order of time land at the end of the log's id
    /// index instead of anywhere in it (decision D97).
    pub fn new_ordered() -> Self {
        Self(Uuid::now_v7())
    }

    /// A deterministic id derived from `key` within `namespace`; importers use
    /// it so that the same source record always maps to the same invocation.
    pub fn derived(namespace: &Uuid, key: &[u8]) -> Self {
        Self(Uuid::new_v5(namespace, key))
    }

    /// Parses the text form of a UUID.
    ///
    /// # Errors
    /// When `value` is not a UUID.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|e| ValidationError::new("id", format!("{value:?} is not a UUID ({e})")))
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl From<Uuid> for InvocationId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Drops anything finer than a microsecond: both backends store microseconds,
/// so values are truncated before they are folded or compared.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// Serialises a time as the JSON contract writes every time:
/// `2025-02-10T09:15:00.123456Z` (always six digits), for `serialize_with`.
///
/// # Errors
/// The serialiser's.
pub fn serialize_micros<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// [`serialize_micros`] for an optional time (`null` when absent).
///
/// # Errors
/// The serialiser's.
#[allow(clippy::ref_option)] // the signature serde's `serialize_with` calls
pub fn serialize_opt_micros<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize_micros(at, s),
        None => s.serialize_none(),
    }
}

/// Parses a timestamp that carries an offset (`2025-02-10T12:34:56+01:00`) or
/// is explicitly UTC (`...Z`), and returns it in UTC truncated to microseconds.
///
/// # Errors
/// When the text is not RFC 3339, or has no offset: a naive time is ambiguous,
/// and guessing its zone is how the legacy file went wrong.
pub fn parse_timestamp(field: &str, text: &str) -> Result<DateTime<Utc>, ValidationError> {
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(at) => Ok(truncate_to_micros(at.with_timezone(&Utc))),
        Err(_) => {
            let hint =
                if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
                    "has no UTC offset; add one, e.g. `Z` or `+02:00`"
                } else {
                    "is not an RFC 3339 timestamp such as 2025-02-10T12:34:56.120Z"
                };
            Err(ValidationError::new(field, format!("{text:?} {hint}")))
        }
    }
}
