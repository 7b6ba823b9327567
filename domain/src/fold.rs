//! Folding a stream of invocations into the aggregates the store keeps: one
//! per skill and one per (session, skill). The write path folds a batch
//! before merging it into the stored rows; `rebuild` and `verify` fold the
//! whole log. Both use this type, so they cannot disagree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{Invocation, RollupAggregate, SessionSkillAggregate, SkillAggregate, hour_of};

/// The aggregates of the invocations added so far.
///
/// `K` is the key type: `&str` borrowed from the invocations when they
/// outlive the fold (a batch being written, no copy per event), `String`
/// when they do not (pages of the log read one after another).
#[derive(Debug, Clone)]
pub struct Aggregates<K> {
    /// Per skill name.
    pub skills: BTreeMap<K, SkillAggregate>,
    /// Per (session id, skill name), for invocations in a session.
    pub session_skills: BTreeMap<(K, K), SessionSkillAggregate>,
    /// Per (skill name, UTC hour, project path; `""` for none).
    pub rollups: BTreeMap<(K, DateTime<Utc>, K), RollupAggregate>,
}

impl<K> Default for Aggregates<K> {
    fn default() -> Self {
        Self {
            skills: BTreeMap::new(),
            session_skills: BTreeMap::new(),
            rollups: BTreeMap::new(),
        }
    }
}

impl<'a, K: Ord + From<&'a str>> Aggregates<K> {
    /// The aggregates of `invocations`, in any order.
    pub fn of(invocations: impl IntoIterator<Item = &'a Invocation>) -> Self {
        let mut all = Self::default();
        for inv in invocations {
            all.add(inv);
        }
        all
    }

    /// Counts one more invocation: into its skill's aggregate, its hour's
    /// rollup and, when it belongs to a session, into that session's row
    /// for the skill.
    pub fn add(&mut self, inv: &'a Invocation) {
        self.add_to_skill(inv);
        self.add_to_session(inv);
    }

    /// Counts one more invocation into its skill's aggregate and its hour's
    /// rollup only (`verify` and `rebuild` read the log by skill for these).
    pub fn add_to_skill(&mut self, inv: &'a Invocation) {
        let skill = inv.skill_name.as_str();
        self.skills.entry(K::from(skill)).or_default().fold(inv);
        let project = inv.project_path.as_deref().unwrap_or("");
        self.rollups
            .entry((K::from(skill), hour_of(inv.invoked_at), K::from(project)))
            .or_default()
            .fold(inv);
    }

    /// Counts one more invocation into its session's row for its skill
    /// only, when it belongs to a session (read by session for these).
    pub fn add_to_session(&mut self, inv: &'a Invocation) {
        if let Some(session) = &inv.session_id {
            let row = SessionSkillAggregate::of(inv);
            self.session_skills
                .entry((K::from(session.as_str()), K::from(inv.skill_name.as_str())))
                .and_modify(|r| r.merge(&row))
                .or_insert(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{SessionId, SkillName};

    fn inv(skill: &str, session: Option<&str>, secs: i64, duration: f64) -> Invocation {
        let at = Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap();
        let mut i = Invocation::new(SkillName::parse(skill).unwrap(), at, true);
        i.duration_seconds = Some(duration);
        i.session_id = session.map(|s| SessionId::parse(s.to_owned()).unwrap());
        i
    }

    #[test]
    fn each_skill_and_each_session_skill_gets_one_aggregate() {
        let log = [
            inv("a", Some("s1"), 3, 1.0),
            inv("a", Some("s1"), 1, 2.5),
            inv("a", Some("s2"), 2, 4.0),
            inv("b", None, 5, 8.0),
        ];
        let folded: Aggregates<&str> = Aggregates::of(&log);
        assert_eq!(folded.skills.len(), 2);
        assert_eq!(folded.skills["a"].total, 3);
        assert_eq!(folded.skills["a"].total_duration_micros, 7_500_000);
        assert_eq!(folded.skills["b"].total, 1);
        assert_eq!(folded.session_skills.len(), 2, "b has no session");
        let s1 = folded.session_skills[&("s1", "a")];
        assert_eq!(s1.invocation_count, 2);
        assert_eq!(s1.total_duration_micros, 3_500_000);
        assert_eq!(s1.first_invoked_at, log[1].invoked_at);
        assert_eq!(s1.last_invoked_at, log[0].invoked_at);
    }

    #[test]
    fn owned_and_borrowed_keys_fold_alike() {
        let log = [inv("a", Some("s1"), 3, 1.0), inv("b", Some("s1"), 1, 2.5)];
        let borrowed: Aggregates<&str> = Aggregates::of(&log);
        let mut owned: Aggregates<String> = Aggregates::default();
        for i in &log {
            owned.add(i);
        }
        assert_eq!(
            borrowed.skills.keys().collect::<Vec<_>>(),
            owned.skills.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            borrowed.session_skills.values().collect::<Vec<_>>(),
            owned.session_skills.values().collect::<Vec<_>>()
        );
    }
}
