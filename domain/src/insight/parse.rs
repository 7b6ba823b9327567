//! The insights' inputs as people write them: a window's length and a
//! baseline's range.

use chrono::{DateTime, Duration, Utc};

use crate::{ValidationError, parse_timestamp};

/// Parses a length of time such as `90m`, `24h`, `7d` or `2w` (a whole
/// number and its unit: minutes, hours, days or weeks).
///
/// # Errors
/// Anything else, naming `field`.
pub fn parse_length(field: &str, text: &str) -> Result<Duration, ValidationError> {
    let t = text.trim();
    let bad = || {
        ValidationError::new(
            field,
            format!("{text:?} is not a length such as 90m, 24h, 7d or 2w"),
        )
    };
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    if n <= 0 || n > 1_000_000 {
        return Err(bad());
    }
    match unit {
        'm' => Ok(Duration::minutes(n)),
        'h' => Ok(Duration::hours(n)),
        'd' => Ok(Duration::days(n)),
        'w' => Ok(Duration::weeks(n)),
        _ => Err(bad()),
    }
}

/// Parses a range `FROM..TO` of two RFC 3339 times: [FROM, TO).
///
/// # Errors
/// Not two times joined by `..`, or FROM not before TO, naming `field`.
pub fn parse_range(
    field: &str,
    text: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ValidationError> {
    let (from, to) = text.split_once("..").ok_or_else(|| {
        ValidationError::new(
            field,
            format!("{text:?} is not `previous` or a range FROM..TO of two RFC 3339 times"),
        )
    })?;
    let (from, to) = (parse_timestamp(field, from)?, parse_timestamp(field, to)?);
    if from >= to {
        return Err(ValidationError::new(
            field,
            format!("{text:?} ends before it starts"),
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_ranges_parse_or_name_the_field() {
        assert_eq!(parse_length("--window", "7d").unwrap(), Duration::days(7));
        assert_eq!(
            parse_length("--window", " 90m").unwrap(),
            Duration::minutes(90)
        );
        assert_eq!(parse_length("--window", "2w").unwrap(), Duration::weeks(2));
        for bad in ["", "d", "7", "-1d", "0h", "7y", "1.5d", "7дн"] {
            let e = parse_length("--window", bad).unwrap_err();
            assert!(e.to_string().contains("--window"), "{bad}: {e}");
        }
        let (a, b) =
            parse_range("--against", "2026-01-01T00:00:00Z..2026-01-08T00:00:00Z").unwrap();
        assert_eq!(b - a, Duration::days(7));
        for bad in [
            "2026-01-01T00:00:00Z",
            "2026-01-08T00:00:00Z..2026-01-01T00:00:00Z",
            "a..b",
        ] {
            assert!(
                parse_range("--against", bad)
                    .unwrap_err()
                    .to_string()
                    .contains("--against"),
                "{bad}"
            );
        }
    }
}
