//! Connection URLs: which backend, and how to print one without its password.

use std::fmt;

use crate::StoreError;

/// A parsed connection URL. Its `Display` and `Debug` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (created when missing).
    SqliteFile(String),
    /// A private in-memory SQLite database.
    SqliteMemory,
    /// A PostgreSQL URL, kept whole for the driver.
    Postgres(String),
}

impl DatabaseUrl {
    /// Reads `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:`,
    /// `postgres://...` or `postgresql://...`.
    ///
    /// # Errors
    /// Any other scheme, or none: a typo must not silently create a file.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Self::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if !path.is_empty() {
                return Ok(Self::SqliteFile(path.to_owned()));
            }
        }
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }

    /// `true` for either SQLite form.
    pub fn is_sqlite(&self) -> bool {
        !matches!(self, Self::Postgres(_))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SqliteFile(path) => write!(f, "sqlite://{path}"),
            Self::SqliteMemory => f.write_str("sqlite::memory:"),
            Self::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `url` with any password replaced by `***`. Text that is not a URL is
/// returned with everything between `://` and `@` hidden, to be safe.
pub fn redact_url(url: &str) -> String {
    match ::url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &url[..start + 3], &url[at..])
            }
            _ => url.to_owned(),
        },
    }
}

/// Replaces every occurrence of `url`'s password in `text`.
pub(crate) fn scrub(text: &str, url: &DatabaseUrl) -> String {
    if let DatabaseUrl::Postgres(raw) = url
        && let Ok(parsed) = ::url::Url::parse(raw)
        && let Some(pw) = parsed.password().filter(|p| !p.is_empty())
    {
        return text.replace(pw, "***");
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let u = DatabaseUrl::parse("postgres://me:s3cret@db:5432/x").unwrap();
        assert_eq!(u.to_string(), "postgres://me:***@db:5432/x");
        assert!(!format!("{u:?}").contains("s3cret"));
        let err = DatabaseUrl::parse("mysql://me:s3cret@db/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn schemes() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:a.db").unwrap(),
            DatabaseUrl::SqliteFile("a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/a.db?mode=rwc").unwrap(),
            DatabaseUrl::SqliteFile("/tmp/a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap(),
            DatabaseUrl::SqliteMemory
        );
        assert!(DatabaseUrl::parse("a.db").is_err());
        assert!(DatabaseUrl::parse("sqlite:").is_err());
    }
}
