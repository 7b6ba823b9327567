//! `skill-metrics demo`: a realistic day recorded through the tracking
//! handle, then the summary and the top skills.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{Duration, Utc};
use infrastructure::{DatabaseUrl, MigrationMode, SkillMetricsStore};

use crate::commands::summary::print_summary;
use crate::output::Table;
use crate::store::{StoreArg, data_folder, open_url};

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

/// A demo skill: (name, workflows, typical seconds, failure rate in %, errors).
type DemoSkill = (
    &'static str,
    &'static [&'static str],
    f64,
    u64,
    &'static [&'static str],
);

const SKILLS: &[DemoSkill] = &[
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

/// The demo's store: the URL given with `--database-url`, else a file of
/// its own beside the default store, made anew on each run, so a demo never
/// mixes invented days into real figures (decision D56). The environment's
/// URL names the user's real store, so the demo does not follow it.
async fn demo_store(arg: &StoreArg) -> anyhow::Result<SkillMetricsStore> {
    if arg.given.is_some() && arg.on_command_line {
        let store = arg.open(MigrationMode::Apply).await?;
        println!("demo store: {} (as given)", store.url());
        return Ok(store);
    }
    let path = data_folder()?.join("demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing the previous demo store {file}"));
            }
            _ => {}
        }
    }
    let store = open_url(DatabaseUrl::sqlite_file(&path), true, MigrationMode::Apply).await?;
    println!(
        "demo store: {} (the demo's own file, made anew each run; your store is untouched)",
        path.display()
    );
    Ok(store)
}

/// Record a realistic demo day through the tracking handle, then show the
/// summary. Uses a store of its own unless --database-url names one
/// (SKILL_METRICS_DATABASE_URL is not followed: it names your real store).
pub(crate) async fn run(arg: &StoreArg) -> anyhow::Result<ExitCode> {
    let store = &demo_store(arg).await?;
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
    print_summary(&summary, "refreshed now");
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
