//! What an API token may do, and the rules for naming one.

use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

/// A token's scope: `ingest` may write, `read` may read, `admin` may do both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send invocations (OTLP, the API, pushes); read nothing.
    Ingest,
    /// Read metrics, summaries, timelines, sessions; write nothing.
    Read,
    /// Both.
    Admin,
}

impl Scope {
    /// Its name as stored and typed: `ingest`, `read` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self == Self::Admin || self == needed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ingest" => Ok(Self::Ingest),
            "read" => Ok(Self::Read),
            "admin" => Ok(Self::Admin),
            other => Err(ValidationError::new(
                "scope",
                format!("{other:?} is not a scope: use ingest, read or admin"),
            )),
        }
    }
}

/// The longest token name accepted.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// Checks a token's name: 1 to 100 characters, none of them a control
/// character (names are printed in lists and logs).
///
/// # Errors
/// A [`ValidationError`] on field `name` saying which rule was broken.
pub fn check_token_name(name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::new("name", "must not be empty"));
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(ValidationError::new(
            "name",
            format!("is longer than {MAX_TOKEN_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "must not hold control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_may_do_everything_the_others_only_their_own() {
        use Scope::*;
        for (scope, needed, allowed) in [
            (Admin, Ingest, true),
            (Admin, Read, true),
            (Ingest, Ingest, true),
            (Ingest, Read, false),
            (Read, Read, true),
            (Read, Ingest, false),
            (Read, Admin, false),
            (Ingest, Admin, false),
        ] {
            assert_eq!(scope.allows(needed), allowed, "{scope} for {needed}");
        }
        assert_eq!("read".parse::<Scope>().unwrap(), Read);
        assert_eq!("write".parse::<Scope>().unwrap_err().field, "scope");
    }

    #[test]
    fn names_are_short_visible_text() {
        assert!(check_token_name("laptop").is_ok());
        assert!(check_token_name(" ").is_err());
        assert!(check_token_name("a\nb").is_err());
        assert!(check_token_name(&"x".repeat(101)).is_err());
    }
}
