//! The time-zone policy for naive timestamps (decisions D21, D51).

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};

/// How far back a gap's start is looked for: longer than any clock change
/// on record (Samoa skipped a whole day in 2011).
const LONGEST_GAP_MINUTES: i64 = 48 * 60;

/// The zone naive times are read in: an IANA zone, or this machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalZone {
    /// An IANA zone, e.g. `Europe/Berlin`.
    Named(chrono_tz::Tz),
    /// This machine's zone.
    System,
}

/// A zone name that is not in the IANA database.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown time zone {0:?} (use an IANA name such as Europe/Berlin)")]
pub struct UnknownZone(pub String);

impl LocalZone {
    /// The zone named `name`, or this machine's when `None`.
    ///
    /// # Errors
    /// When `name` is not an IANA zone name.
    pub fn parse(name: Option<&str>) -> Result<Self, UnknownZone> {
        match name {
            Some(n) => n
                .parse()
                .map(Self::Named)
                .map_err(|_| UnknownZone(n.to_owned())),
            None => Ok(Self::System),
        }
    }

    /// `naive` read in this zone, as UTC. Ambiguous (clocks going back): the
    /// earlier instant. In a gap (clocks going forward): read with the
    /// offset of the last valid local time before it, whatever the gap's
    /// length. `None` only for a time beyond chrono's range.
    pub fn resolve(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Self::Named(tz) => resolve(tz, naive),
            Self::System => resolve(&chrono::Local, naive),
        }
    }
}

fn resolve<Z: TimeZone>(z: &Z, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = z.from_local_datetime(&naive).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    (1..=LONGEST_GAP_MINUTES).find_map(|m| {
        let before = z
            .from_local_datetime(&(naive - chrono::Duration::minutes(m)))
            .latest()?;
        let offset = chrono::Duration::seconds(before.offset().fix().local_minus_utc().into());
        Some(Utc.from_utc_datetime(&(naive - offset)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone_name: &str, naive: &str) -> String {
        let zone = LocalZone::parse(Some(zone_name)).unwrap();
        let naive = NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S").unwrap();
        zone.resolve(naive)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    #[test]
    fn a_time_in_a_gap_takes_the_offset_from_before_the_gap() {
        // Berlin skips 02:00–03:00 on 2025-03-30; before it: +01:00.
        assert_eq!(
            at("Europe/Berlin", "2025-03-30T02:30:00"),
            "2025-03-30T01:30:00Z"
        );
        // Lord Howe Island skips half an hour: 02:00–02:30 at +10:30.
        assert_eq!(
            at("Australia/Lord_Howe", "2025-10-05T02:15:00"),
            "2025-10-04T15:45:00Z"
        );
        // Samoa skipped 2011-12-30 entirely; before it: -10:00.
        assert_eq!(
            at("Pacific/Apia", "2011-12-30T12:00:00"),
            "2011-12-30T22:00:00Z"
        );
    }

    #[test]
    fn an_ambiguous_time_takes_the_earlier_instant() {
        // Berlin repeats 02:00–03:00 on 2025-10-26: first at +02:00.
        assert_eq!(
            at("Europe/Berlin", "2025-10-26T02:30:00"),
            "2025-10-26T00:30:00Z"
        );
        assert_eq!(
            at("Europe/Berlin", "2025-10-26T03:30:00"),
            "2025-10-26T02:30:00Z"
        );
        assert_eq!(
            at("Europe/Berlin", "2025-02-10T12:00:00"),
            "2025-02-10T11:00:00Z"
        );
    }

    #[test]
    fn an_unknown_zone_is_named() {
        let e = LocalZone::parse(Some("Mars/Olympus")).unwrap_err();
        assert!(e.to_string().contains("\"Mars/Olympus\""), "{e}");
    }
}
