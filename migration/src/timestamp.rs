//! The one timestamp codec of the store. PostgreSQL has a timestamp type;
//! SQLite does not, so there every instant is stored as text in one form,
//! written by [`sqlite_timestamp`] and read by [`parse_sqlite_timestamp`].
//! The Sea-ORM write path, the store's own SQLite connections and the
//! migration ledger all bind through [`timestamp_value`]; rows read through
//! Sea-ORM are decoded by sqlx, which accepts the same text.

use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm_migration::sea_orm::{DbBackend, Value};

/// How a UTC timestamp is bound on `backend`. SQLite has no timestamp type:
/// every value is written as RFC 3339 text with exactly six fractional digits
/// and `+00:00`, so that text order is time order and `=` is exact.
pub fn timestamp_value(backend: DbBackend, at: DateTime<Utc>) -> Value {
    match backend {
        DbBackend::Sqlite => Value::from(sqlite_timestamp(at)),
        _ => Value::from(at),
    }
}

/// The SQLite text form of a timestamp (see [`timestamp_value`]).
pub fn sqlite_timestamp(at: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Signed or five-digit years and leap seconds: chrono's own rules.
        return at.format(SQLITE_TIMESTAMP).to_string();
    }
    // The common case without parsing a format string per value (it showed
    // in the ingest profile).
    let mut out = String::with_capacity(32);
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        nanos / 1_000
    );
    out
}

const SQLITE_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.6f+00:00";

/// A timestamp or NULL, bound as the column's type on `backend`.
pub fn optional_timestamp_value(backend: DbBackend, at: Option<DateTime<Utc>>) -> Value {
    match (at, backend) {
        (Some(at), _) => timestamp_value(backend, at),
        (None, DbBackend::Sqlite) => Value::from(Option::<String>::None),
        (None, _) => Value::from(Option::<DateTime<Utc>>::None),
    }
}

/// A SQLite timestamp read back as written by [`sqlite_timestamp`] (any
/// RFC 3339 text), or in SQLite's own `YYYY-MM-DD HH:MM:SS[.f]` (UTC), as
/// `datetime()` or a hand edit might leave it. `None` when it is neither.
pub fn parse_sqlite_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sqlite_timestamps_match_the_documented_format() {
        let mut cases: Vec<DateTime<Utc>> = vec![
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(12, 3, 4, 5, 6, 7).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            "2026-11-29T05:13:21.999999999Z".parse().unwrap(),
            "2016-12-31T23:59:60.5Z".parse().unwrap(),
        ];
        let mut t = Utc.with_ymd_and_hms(2000, 2, 29, 1, 2, 3).unwrap();
        for _ in 0..1_000 {
            t += chrono::Duration::nanoseconds(987_654_321_123);
            cases.push(t);
        }
        for at in cases {
            assert_eq!(
                sqlite_timestamp(at),
                at.format(SQLITE_TIMESTAMP).to_string(),
                "{at:?}"
            );
        }
        let text = sqlite_timestamp("2026-01-02T03:04:05.25Z".parse().unwrap());
        assert_eq!(text, "2026-01-02T03:04:05.250000+00:00");
    }

    #[test]
    fn what_is_written_reads_back_as_the_same_instant() {
        let mut t = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 58).unwrap();
        for _ in 0..1_000 {
            t += chrono::Duration::microseconds(987_654_321_123);
            assert_eq!(parse_sqlite_timestamp(&sqlite_timestamp(t)), Some(t));
        }
    }

    #[test]
    fn reads_both_timestamp_forms() {
        let want = "2026-01-02T03:04:05.250Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            parse_sqlite_timestamp("2026-01-02T03:04:05.250000+00:00"),
            Some(want)
        );
        assert_eq!(parse_sqlite_timestamp("2026-01-02 03:04:05.25"), Some(want));
        assert_eq!(parse_sqlite_timestamp("2026-01-02T03:04:05.25"), Some(want));
        assert_eq!(parse_sqlite_timestamp("yesterday"), None);
    }
}
