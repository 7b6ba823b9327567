//! Generated stores for the insights' tests: two weeks of six skills, the
//! second week (the window) with or without injected changes.

use chrono::{DateTime, Duration, Utc};
use domain::{Invocation, SkillName};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The end of the generated fortnight: the window is the week before it.
pub fn insight_end() -> DateTime<Utc> {
    crate::at(14 * 86_400)
}

/// Six skills, 300 invocations of each per week, completing 95 % of the
/// time; failures carry `timeout` or `denied`. With `inject`, in the second
/// week: `render`'s durations double (so its p50 and p95 do), `lint`
/// completes 80 %, `stale` is no longer used, `upload` fails 8 % of the
/// time more, with a new error `quota`, and `fresh` appears (40
/// invocations).
pub fn insight_events(seed: u64, inject: bool) -> Vec<Invocation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = crate::at(0);
    let mut out = Vec::new();
    let skills = ["render", "lint", "stale", "upload", "search", "format"];
    for (i, name) in skills.iter().enumerate() {
        let median = 0.4 + 3.0 * i as f64;
        for week in 0..2 {
            let after = inject && week == 1;
            let n = if after && *name == "stale" { 0 } else { 300 };
            for _ in 0..n {
                let at =
                    start + Duration::seconds(week * 7 * 86_400 + rng.random_range(0..7 * 86_400));
                let completion = if after && *name == "lint" { 0.80 } else { 0.95 };
                let quota = after && *name == "upload" && rng.random::<f64>() < 0.08;
                let completed = !quota && rng.random::<f64>() < completion;
                let normal = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt()
                    * (std::f64::consts::TAU * rng.random::<f64>()).cos();
                let scale = if after && *name == "render" { 2.0 } else { 1.0 };
                let mut inv =
                    Invocation::new(SkillName::parse(*name).expect("a name"), at, completed);
                inv.duration_seconds =
                    Some((median * scale * (0.7 * normal).exp() * 1e3).round() / 1e3);
                inv.project_path = Some(format!("/work/p{}", rng.random_range(0..2)));
                if quota {
                    inv.error_type = Some("quota".into());
                } else if !completed {
                    inv.error_type = Some(
                        if rng.random::<f64>() < 0.6 {
                            "timeout"
                        } else {
                            "denied"
                        }
                        .into(),
                    );
                }
                out.push(inv);
            }
        }
    }
    if inject {
        for k in 0..40 {
            let mut inv = Invocation::new(
                SkillName::parse("fresh").expect("a name"),
                start + Duration::seconds(7 * 86_400 + k * 15_000),
                true,
            );
            inv.duration_seconds = Some(1.5);
            out.push(inv);
        }
    }
    out
}
