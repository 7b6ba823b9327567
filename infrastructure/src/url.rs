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
            // Checked here, so that the driver never echoes a URL it cannot
            // read (with its password) in an error of its own.
            return match ::url::Url::parse(url) {
                Ok(parsed) if parsed.has_host() => Ok(Self::Postgres(url.to_owned())),
                Ok(_) => Err(StoreError::InvalidUrl {
                    url: redact_url(url),
                    reason: "no host".into(),
                }),
                Err(e) => Err(StoreError::InvalidUrl {
                    url: redact_url(url),
                    reason: e.to_string(),
                }),
            };
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            return Self::parse_sqlite_file(url, rest);
        }
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }

    /// A SQLite file at `path`, exactly as given (no decoding).
    pub fn sqlite_file(path: impl AsRef<std::path::Path>) -> Self {
        Self::SqliteFile(path.as_ref().to_string_lossy().into_owned())
    }

    /// `sqlite:PATH[?mode=rwc]`: the path is percent-decoded here, once, and
    /// every connection (sqlx's and the store's own) opens the decoded path,
    /// so `%20` is a space and `%25` a percent sign for all of them; a `%`
    /// not followed by two hex digits stays as it is. Query parameters are
    /// refused by name, except `mode=rwc`, which is what the store does
    /// anyway (decision D33).
    fn parse_sqlite_file(url: &str, rest: &str) -> Result<Self, StoreError> {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (raw_path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        for (key, value) in query
            .map(|q| ::url::form_urlencoded::parse(q.as_bytes()).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            match (key.as_ref(), value.as_ref()) {
                ("mode", "rwc") => {}
                ("mode", other) => {
                    return Err(invalid(format!(
                        "mode={other} is not supported: the store creates the file when missing and \
                         migrates and writes it on open (only mode=rwc is accepted); to read a copy, \
                         take a `skill-metrics backup` and open that"
                    )));
                }
                (other, _) => {
                    return Err(invalid(format!(
                        "the query parameter {other:?} is not supported for SQLite files \
                         (percent-encode a '?' that belongs to the file name as %3F)"
                    )));
                }
            }
        }
        let path = percent_encoding::percent_decode_str(raw_path)
            .decode_utf8()
            .map_err(|_| invalid("the decoded path is not UTF-8".into()))?;
        if path.is_empty() {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        }
        Ok(Self::SqliteFile(path.into_owned()))
    }

    /// `true` for either SQLite form.
    pub fn is_sqlite(&self) -> bool {
        !matches!(self, Self::Postgres(_))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Encoded so that the text parses back to the same path.
            Self::SqliteFile(path) => {
                const SPECIAL: &percent_encoding::AsciiSet =
                    &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
                write!(
                    f,
                    "sqlite://{}",
                    percent_encoding::utf8_percent_encode(path, SPECIAL)
                )
            }
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

/// `url` with any password replaced by `***`: the one after the user name
/// and a `password=` query parameter (both of which the PostgreSQL driver
/// reads). Text that does not parse as a URL with a host, but has an `@`
/// after its scheme, keeps only the scheme and what follows the last `@`:
/// a mistyped URL may still hold a password.
pub fn redact_url(url: &str) -> String {
    match ::url::Url::parse(url) {
        Ok(mut parsed) if parsed.has_host() => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(k, _)| is_password_key(&k)) {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if is_password_key(&k) {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        _ => match (url.find(':'), url.rfind('@')) {
            (Some(colon), Some(at)) if at > colon => {
                let scheme_end = if url[colon..].starts_with("://") {
                    colon + 3
                } else {
                    colon + 1
                };
                format!("{}***{}", &url[..scheme_end], &url[at..])
            }
            _ => url.to_owned(),
        },
    }
}

fn is_password_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("password")
}

/// `text` with `url`'s passwords, and the URL itself, hidden.
pub(crate) fn scrub(text: &str, url: &DatabaseUrl) -> String {
    let DatabaseUrl::Postgres(raw) = url else {
        return text.to_owned();
    };
    let mut out = text.replace(raw.as_str(), &redact_url(raw));
    if let Ok(parsed) = ::url::Url::parse(raw) {
        let mut secrets: Vec<String> = parsed
            .query_pairs()
            .filter(|(k, _)| is_password_key(k))
            .map(|(_, v)| v.into_owned())
            .collect();
        if let Some(pw) = parsed.password() {
            secrets.push(pw.to_owned());
            // The driver may show it decoded, too.
            secrets.push(
                percent_encoding::percent_decode_str(pw)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        }
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
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
    fn mistyped_and_unusual_urls_hide_their_passwords() {
        for bad in [
            "postgres://u:s3cret@h:99999/db",
            "postgres://u:s3cret@h:abc/db",
            "postgres://u:s3cret@[::1/db",
            "postgresql://u:s3cret@/db",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid database URL"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        for typo in [
            "postgres:/u:s3cret@h/db",
            "postgresql:u:s3cret@h/db",
            "pg:u:s3cret@h",
        ] {
            let err = DatabaseUrl::parse(typo).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("@h"), "{err}");
        }
        let q = DatabaseUrl::parse("postgres://u@h/db?sslmode=disable&password=s3cret").unwrap();
        assert_eq!(
            q.to_string(),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
        // Without a password nothing is hidden.
        let plain = DatabaseUrl::parse("postgres://u@h:5432/db").unwrap();
        assert_eq!(plain.to_string(), "postgres://u@h:5432/db");
    }

    #[test]
    fn driver_errors_lose_every_form_of_the_password() {
        let url = DatabaseUrl::parse("postgres://u:p%40ss@h/db?password=other").unwrap();
        let text = "error connecting to postgres://u:p%40ss@h/db?password=other \
                    (password p@ss, p%40ss or other rejected)";
        let clean = scrub(text, &url);
        for secret in ["p@ss", "p%40ss", "other"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(clean.contains("postgres://u:***@h/db"), "{clean}");
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
            DatabaseUrl::parse("sqlite:///tmp/a%20b%25c.db").unwrap(),
            DatabaseUrl::SqliteFile("/tmp/a b%c.db".into())
        );
        // A percent sign that starts no escape is kept.
        assert_eq!(
            DatabaseUrl::parse("sqlite:100%.db").unwrap(),
            DatabaseUrl::SqliteFile("100%.db".into())
        );
        for odd in ["/tmp/a b%c.db", "/tmp/x?y#z.db", "/tmp/100%.db", "plain.db"] {
            let url = DatabaseUrl::sqlite_file(odd);
            assert_eq!(DatabaseUrl::parse(&url.to_string()).unwrap(), url, "{url}");
        }
        for (refused, named) in [
            ("sqlite:/tmp/a.db?mode=ro", "mode=ro"),
            ("sqlite:/tmp/a.db?mode=memory", "mode=memory"),
            ("sqlite:/tmp/a.db?cache=shared", "\"cache\""),
            ("sqlite:/tmp/a.db?immutable=1", "\"immutable\""),
        ] {
            let err = DatabaseUrl::parse(refused).unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap(),
            DatabaseUrl::SqliteMemory
        );
        assert!(DatabaseUrl::parse("a.db").is_err());
        assert!(DatabaseUrl::parse("sqlite:").is_err());
    }
}
