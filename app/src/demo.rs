//! `skill-metrics demo`: a realistic day recorded through the tracking
//! handle, then the summary and the top skills.

use std::process::ExitCode;

use chrono::{Duration, Utc};
use infrastructure::SkillMetricsStore;

use crate::table::Table;

/// A small deterministic generator, so every demo day looks alike.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// (skill, workflows, typical seconds, failure rate in %, errors)
const SKILLS: &[(&str, &[&str], f64, u64, &[&str])] = &[
    (
        "crackerjack-run",
        &["daily", "comprehensive", "quick"],
        160.0,
        12,
        &["TimeoutError", "lint.FormatError"],
    ),
    ("session-checkpoint", &["quick"], 4.0, 3, &["IOError"]),
    (
        "code-review",
        &["pr/review", "pr/security"],
        95.0,
        8,
        &["ContextTooLarge"],
    ),
    (
        "test-runner",
        &["ci/unit", "ci/integration"],
        60.0,
        20,
        &["AssertionError", "TimeoutError"],
    ),
    (
        "refactor-assistant",
        &["rename", "extract-fn"],
        40.0,
        10,
        &["ConflictError"],
    ),
    (
        "docs-writer",
        &["readme", "api-docs"],
        30.0,
        5,
        &["TimeoutError"],
    ),
];

const FOLLOW_UPS: &[&str] = &[
    "git commit",
    "git push",
    "open PR",
    "rerun tests",
    "update changelog",
];

pub(crate) async fn run(store: &SkillMetricsStore) -> anyhow::Result<ExitCode> {
    let mut dice = Dice(0x5eed_cafe_f00d);
    let day = Utc::now()
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .expect("08:00 exists")
        .and_utc();
    let sessions = [
        ("morning", 0),
        ("midday", 4),
        ("afternoon", 6),
        ("evening", 10),
    ];
    let (mut recorded, mut failed, mut dropped) = (0, 0, 0);
    for (name, start_hour) in sessions {
        let session = format!("demo-{}-{name}", day.format("%Y%m%d"));
        let mut at = day + Duration::hours(start_hour);
        store
            .start_session(&session, at, Some("/home/dev/projects/webshop"))
            .await?;
        for _ in 0..(12 + dice.below(10)) {
            let (skill, workflows, typical, fail_pct, errors) =
                SKILLS[dice.below(SKILLS.len() as u64) as usize];
            let seconds = typical * (0.4 + dice.below(1200) as f64 / 1000.0);
            let handle = store
                .track(skill)
                .workflow(dice.pick(workflows))
                .session(&session)
                .project("/home/dev/projects/webshop")
                .at(at)
                .start()?
                .with_duration(seconds);
            let roll = dice.below(100);
            if roll < fail_pct {
                handle.fail(dice.pick(errors)).await?;
                failed += 1;
            } else if roll < fail_pct + 2 {
                drop(handle); // interrupted: recorded as abandoned in the background
                dropped += 1;
            } else {
                let n = dice.below(3) as usize;
                let actions: Vec<&str> = (0..n).map(|_| dice.pick(FOLLOW_UPS)).collect();
                handle.complete_with(actions).await?;
            }
            recorded += 1;
            at += Duration::seconds(seconds as i64 + 60 + dice.below(900) as i64);
        }
        store.end_session(&session, at).await?;
    }
    store.flush().await;
    println!(
        "recorded a demo day: {recorded} invocations in {} sessions ({failed} failed, {dropped} interrupted)\n",
        sessions.len()
    );
    let summary = store.refresh_summary().await?;
    crate::read::print_summary(&summary);
    let mut metrics = store.metrics(&[]).await?;
    metrics.sort_by(|a, b| {
        b.total_invocations
            .cmp(&a.total_invocations)
            .then_with(|| a.skill_name.cmp(&b.skill_name))
    });
    println!("\ntop skills");
    let mut t = Table::new([
        "skill",
        "invocations",
        "completion %",
        "p50 s",
        "p95 s",
        "top error",
    ]);
    for m in metrics.iter().take(5) {
        let top_error = m.top_error().unwrap_or("-").to_owned();
        t.row([
            m.skill_name.clone(),
            m.total_invocations.to_string(),
            format!("{:.1}", m.completion_rate),
            m.p50_duration_seconds
                .map_or("-".into(), |v| format!("{v:.1}")),
            m.p95_duration_seconds
                .map_or("-".into(), |v| format!("{v:.1}")),
            top_error,
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}
