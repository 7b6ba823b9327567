//! The benchmark's deterministic event mix.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{Invocation, InvocationId, SessionId, SkillName};

/// The deterministic event mix: 50 skills, 20 workflow paths, 90 % completed,
/// durations uniform in 0–100 s, 10 % with one of 5 errors, a new session
/// every 100 events, 0–2 follow-up actions out of 5.
pub(crate) struct Mix {
    seed: u64,
    start: DateTime<Utc>,
    skills: Vec<SkillName>,
}

pub(crate) fn mix64(mut x: u64) -> u64 {
    // splitmix64: event i's randomness depends only on (seed, i).
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const PATHS: [&str; 20] = [
    "daily",
    "quick",
    "comprehensive",
    "ci/unit",
    "ci/integration",
    "ci/deploy-prod.v2",
    "pr/review",
    "pr/security",
    "docs/readme",
    "docs/api",
    "refactor/rename",
    "refactor/extract",
    "release/tag",
    "release/notes",
    "ops/backup",
    "ops/restore",
    "data/import",
    "data/export",
    "perf/profile",
    "perf/bench",
];
const ERRORS: [&str; 5] = [
    "TimeoutError",
    "lint.FormatError",
    "AssertionError",
    "IOError",
    "ContextTooLarge",
];
const ACTIONS: [&str; 5] = [
    "git commit",
    "git push",
    "open PR",
    "rerun tests",
    "update changelog",
];

impl Mix {
    pub(crate) fn new(seed: u64) -> Self {
        let skills = (0..50)
            .map(|i| SkillName::parse(format!("skill-{i:02}")).expect("valid"))
            .collect();
        Self {
            seed,
            start: DateTime::from_timestamp(1_735_689_600, 0).expect("valid"),
            skills,
        }
    }

    pub(crate) fn event(&self, i: u64) -> Invocation {
        // Draw k of event i; k < DRAWS, so no two events share a draw.
        const DRAWS: u64 = 16;
        let r = |k: u64| {
            debug_assert!(k < DRAWS);
            mix64(self.seed ^ mix64(i.wrapping_mul(DRAWS).wrapping_add(k)))
        };
        let at = self.start + Duration::from_millis(i * 250);
        let mut inv = Invocation::new(
            self.skills[(r(0) % 50) as usize].clone(),
            at,
            r(1) % 10 != 0,
        );
        let key = format!("{}:{i}", self.seed);
        inv.id = InvocationId::derived(&uuid::Uuid::NAMESPACE_OID, key.as_bytes());
        inv.workflow_path = Some(PATHS[(r(2) % 20) as usize].to_owned());
        inv.duration_seconds = Some((r(3) % 100_000_000) as f64 / 1_000_000.0);
        if r(4) % 10 == 0 {
            inv.error_type = Some(ERRORS[(r(5) % 5) as usize].to_owned());
        }
        inv.session_id =
            Some(SessionId::parse(format!("bench-{}-{}", self.seed, i / 100)).expect("valid"));
        // 0, 1 or 2 different actions out of the 5.
        let first = r(7) % 5;
        let second = (first + 1 + r(8) % 4) % 5;
        inv.follow_up_actions = [first, second][..(r(6) % 3) as usize]
            .iter()
            .map(|&a| ACTIONS[a as usize].to_owned())
            .collect();
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::DEFAULT_SEED;
    use std::collections::HashSet;

    #[test]
    fn the_mix_has_the_documented_proportions() {
        let mix = Mix::new(DEFAULT_SEED);
        let n = 20_000;
        let events: Vec<Invocation> = (0..n).map(|i| mix.event(i)).collect();
        let share = |f: &dyn Fn(&Invocation) -> bool| {
            events.iter().filter(|e| f(e)).count() as f64 / n as f64
        };
        let distinct =
            |f: &dyn Fn(&Invocation) -> String| events.iter().map(f).collect::<HashSet<_>>().len();
        assert_eq!(distinct(&|e| e.skill_name.to_string()), 50);
        assert_eq!(distinct(&|e| e.workflow_path.clone().unwrap()), 20);
        assert_eq!(distinct(&|e| e.error_type.clone().unwrap_or_default()), 6);
        assert_eq!(distinct(&|e| format!("{:?}", e.session_id)), 200);
        assert!((0.88..0.92).contains(&share(&|e| e.completed)));
        assert!((0.08..0.12).contains(&share(&|e| e.error_type.is_some())));
        for k in 0..=2 {
            let s = share(&|e| e.follow_up_actions.len() == k);
            assert!((0.30..0.37).contains(&s), "{k} actions: {s}");
        }
        for e in &events {
            let d = e.duration_seconds.unwrap();
            assert!((0.0..100.0).contains(&d));
            if let [a, b] = &e.follow_up_actions[..] {
                assert_ne!(a, b, "two different actions");
            }
            e.validate().unwrap();
        }
        // Same seed, same events; another seed, others.
        assert_eq!(
            mix.event(7).to_json(),
            Mix::new(DEFAULT_SEED).event(7).to_json()
        );
        assert_ne!(mix.event(7).to_json(), Mix::new(1).event(7).to_json());
    }

    #[test]
    fn no_draw_of_one_event_repeats_in_the_next() {
        // Each event's second action was once the next event's skill draw.
        let mix = Mix::new(DEFAULT_SEED);
        let (mut pairs, mut same) = (0, 0);
        for i in 0..20_000 {
            let (e, next) = (mix.event(i), mix.event(i + 1));
            if let [_, second] = &e.follow_up_actions[..] {
                pairs += 1;
                let action = ACTIONS.iter().position(|a| a == second).unwrap();
                let skill: usize = next.skill_name.as_str()[6..].parse().unwrap();
                same += usize::from(action == skill % 5);
            }
        }
        let share = same as f64 / pairs as f64;
        assert!(
            share < 0.3,
            "second action follows the next skill in {share}"
        );
    }
}
