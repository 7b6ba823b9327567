//! The `realistic` scenario (issue 18): a store of N events shaped like real
//! use, written through `ingest` one tenth at a time (the write rate per
//! decile shows whether writes stay flat), then every read, export, verify,
//! rebuild and a prune of the oldest tenth, timed, and the bytes per event.
//!
//! The events are those of `scripts/realistic-jsonl.py` in shape (not in
//! draws): 20 skills with long and Unicode names drawn Pareto-skewed, 10
//! workflow paths, 15 % failed with one of 5 errors, 0–2 follow-up actions,
//! log-normal durations, a `user_context` object, 25 events per session
//! (40,000 sessions per million) in one of 5 projects, one every 9 s.

use std::io::Cursor;
use std::time::Instant;

use chrono::{DateTime, Duration as Span, Utc};
use infrastructure::import::IngestOptions;
use infrastructure::{Bucket, ExportCursor, ExportFilter, SkillMetricsStore};
use serde_json::{Value, json};

use super::mix::mix64;

const SKILLS: [&str; 20] = [
    "crackerjack-run",
    "session-checkpoint",
    "deploy-production-with-canary-and-rollback",
    "review-pull-request",
    "Überprüfung-der-Änderungen",
    "テスト実行",
    "write-release-notes",
    "triage-incoming-issues",
    "refactor-module-boundaries",
    "database-migration-planner",
    "security-audit-dependencies",
    "performance-profiler",
    "docs-site-builder",
    "k8s-manifest-linter",
    "terraform-plan-reviewer",
    "flaky-test-hunter",
    "changelog-curator",
    "api-contract-checker",
    "résumé-des-journaux",
    "incident-postmortem",
];
const PATHS: [&str; 10] = [
    "ci/deploy-prod.v2",
    "quick",
    "full",
    "ci/deploy-staging",
    "review/deep",
    "review/quick",
    "fix/lint",
    "fix/types",
    "docs/api",
    "release/minor",
];
const ERRORS: [&str; 5] = [
    "TimeoutError",
    "PermissionDenied",
    "ToolFailure",
    "UserRejected",
    "NetworkError",
];
const ACTIONS: [&str; 5] = [
    "git commit",
    "git push",
    "open PR",
    "rerun tests",
    "update changelog",
];
const MODELS: [&str; 3] = ["claude-opus-4", "claude-sonnet-4", "gpt-5-codex"];
const PROJECTS: [&str; 5] = ["api", "web", "infra", "mobile", "data-pipeline"];
/// Events per session.
const PER_SESSION: u64 = 25;
/// Calls timed per read (the median is reported); 5 beyond 2M events,
/// where the reads that grow with the history take seconds.
fn read_calls(n: u64) -> usize {
    if n > 2_000_000 { 5 } else { 21 }
}

/// Draws of event `i`: independent uniforms in [0, 1) and raw words.
struct Draws {
    seed: u64,
    i: u64,
}

impl Draws {
    fn word(&self, k: u64) -> u64 {
        mix64(self.seed ^ mix64(self.i.wrapping_mul(64).wrapping_add(k)))
    }
    fn unit(&self, k: u64) -> f64 {
        (self.word(k) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&self, k: u64, from: &[&'a str]) -> &'a str {
        from[(self.word(k) % from.len() as u64) as usize]
    }
}

/// Event `i` as one JSON line in the ingest format.
pub(crate) fn line(seed: u64, i: u64) -> String {
    let d = Draws { seed, i };
    let session = Draws {
        seed,
        i: u64::MAX - i / PER_SESSION,
    };
    let start = DateTime::<Utc>::from_timestamp(1_735_689_600, 0).expect("valid");
    let at = start + Span::milliseconds((i * 9_000) as i64 + (d.unit(0) * 1000.0) as i64);
    // Pareto (α = 1.2): the first skills are used most, the last rarely.
    let pareto = (1.0 - d.unit(1)).powf(-1.0 / 1.2);
    let skill = SKILLS[(pareto as usize).saturating_sub(1).min(19)];
    // Log-normal (μ = 1.5, σ = 1): median 4.5 s, a long tail.
    let z = (-2.0 * (1.0 - d.unit(2)).ln()).sqrt() * (std::f64::consts::TAU * d.unit(3)).cos();
    let duration = ((1.5 + z).exp() * 1000.0).round() / 1000.0;
    let failed = d.unit(4) < 0.15;
    let mut actions: Vec<&str> = Vec::new();
    for k in 0..(d.word(5) % 3) {
        let a = d.pick(6 + k, &ACTIONS);
        if !actions.contains(&a) {
            actions.push(a);
        }
    }
    let mut event = json!({
        "id": uuid::Builder::from_random_bytes(
            (u128::from(d.word(10)) << 64 | u128::from(d.word(11))).to_be_bytes()
        ).into_uuid().to_string(),
        "skill_name": skill,
        "invoked_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "workflow_path": d.pick(12, &PATHS),
        "completed": !failed,
        "duration_seconds": duration,
        "session_id": format!("session-{}", uuid::Builder::from_random_bytes(
            (u128::from(session.word(0)) << 64 | u128::from(session.word(1))).to_be_bytes()
        ).into_uuid()),
        "project_path": format!("/home/dev/projects/{}", session.pick(2, &PROJECTS)),
        "follow_up_actions": actions,
        "user_context": {
            "model": d.pick(13, &MODELS),
            "prompt_id": format!("prompt-{}", i / 4),
            "tokens": 200 + d.word(14) % 39_800,
            "tool_input_size_bytes": 10 + d.word(15) % 4_990,
        },
    });
    if failed {
        event["error_type"] = json!(d.pick(16, &ERRORS));
    }
    event.to_string()
}

fn lines(seed: u64, from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(((to - from) * 480) as usize);
    for i in from..to {
        out.extend_from_slice(line(seed, i).as_bytes());
        out.push(b'\n');
    }
    out
}

/// What each dashboard page asks of the store (D93), ranges ending at the
/// newest event: the overview of 24 h (in hours), 7 and 30 days (in days:
/// the buckets the page would choose; the range and bucket are named here
/// because the bench's events end before or after the wall clock, which an
/// open range and `bucket_for` measure from); a skill's page (its 30 days' timeline, stored metrics and recent
/// invocations); the newest 200 sessions and one session; and the
/// insights of the last 7 and 30 days against the days before (all
/// projects and one).
async fn dashboard_reads(
    store: &SkillMetricsStore,
    end: DateTime<Utc>,
    calls: usize,
) -> anyhow::Result<serde_json::Value> {
    use infrastructure::Kind;
    let ago = |days: i64| Some(end - Span::days(days));
    // Just past the newest event: the page's "until now", on the bench's
    // clock rather than the wall's.
    let to = Some(end + Span::seconds(1));
    let skill = SKILLS[0];
    let of_skill = infrastructure::RecentFilter {
        skill: Some(skill.to_owned()),
        session: None,
    };
    let session = store
        .recent_sessions(1)
        .await?
        .first()
        .map(|s| s.id.clone())
        .unwrap_or_default();
    Ok(json!({
        "overview_24h_ms": median_ms(calls, || store.overview(Some(end - Span::hours(24)), to, None, Kind::All, Some(Bucket::Hour))).await?,
        "overview_7d_ms": median_ms(calls, || store.overview(ago(7), to, None, Kind::All, Some(Bucket::Day))).await?,
        "overview_30d_ms": median_ms(calls, || store.overview(ago(30), to, None, Kind::All, Some(Bucket::Day))).await?,
        "skill_page_30d_ms": median_ms(calls, || async {
            store.timeline(skill, ago(30), None, Bucket::Day).await?;
            store.metrics(&[skill]).await?;
            store.recent(&of_skill, 20).await
        }).await?,
        "sessions_page_ms": median_ms(calls, || store.recent_sessions(200)).await?,
        "session_page_ms": median_ms(calls, || store.session(&session)).await?,
        "insights_7d_ms": median_ms(calls, || insights(store, end, 7, None)).await?,
        "insights_30d_ms": median_ms(calls, || insights(store, end, 30, None)).await?,
        "insights_7d_project_ms": median_ms(calls, || insights(store, end, 7, Some("/home/dev/projects/api"))).await?,
    }))
}

/// `insights --window {days}d --until END [--project P]` (D95).
async fn insights(
    store: &SkillMetricsStore,
    end: DateTime<Utc>,
    days: i64,
    project: Option<&str>,
) -> Result<infrastructure::Insights, infrastructure::StoreError> {
    store
        .insights(
            Span::days(days),
            Some(end),
            infrastructure::Baseline::Previous,
            project,
            &domain::InsightSettings::default(),
        )
        .await
}

async fn median_ms<F, Fut, T>(calls: usize, mut call: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, infrastructure::StoreError>>,
{
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        call().await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// A memory figure of this process's `/proc/self/status` (`field`, in kB
/// there), in MB; 0 where there is none (not Linux).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of this process so far, in MB.
fn peak_rss_mb() -> f64 {
    status_mb("VmHWM")
}

/// This process's anonymous resident memory now (its heap: not the pages of
/// the store's file it has mapped or cached), in MB.
fn anon_rss_mb() -> f64 {
    status_mb("RssAnon")
}

/// The largest [`anon_rss_mb`] while `work` runs, sampled every 10 ms on a
/// thread of its own, with what `work` returned.
async fn peak_anon_during<T>(work: impl std::future::Future<Output = T>) -> (T, f64) {
    /// Stops the sampler however `work` ends.
    struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Stop(std::sync::Arc::clone(&done));
    let sampler = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = anon_rss_mb();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(10));
                peak = peak.max(anon_rss_mb());
            }
            peak
        })
    };
    let out = work.await;
    drop(stop);
    let peak = sampler.join().unwrap_or(0.0);
    (out, peak)
}

/// Builds the store and measures it; one JSON object.
pub(crate) async fn run(
    store: &SkillMetricsStore,
    n: u64,
    seed: u64,
    backend: &str,
) -> anyhow::Result<Value> {
    let mut deciles = Vec::with_capacity(10);
    let started = Instant::now();
    for d in 0..10 {
        let (from, to) = (n * d / 10, n * (d + 1) / 10);
        if from == to {
            continue;
        }
        // Made before the clock starts: the store is timed, not the generator.
        let input = Cursor::new(lines(seed, from, to));
        let t = Instant::now();
        let report = store
            .ingest_jsonl(input, &IngestOptions::default(), &mut |_| {})
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            report.rejected == 0 && report.written.inserted as u64 == to - from,
            "the realistic mix was not written whole: {} inserted, {} rejected",
            report.written.inserted,
            report.rejected
        );
        deciles.push(((to - from) as f64 / t.elapsed().as_secs_f64()).round());
        eprintln!(
            "bench realistic: {to} of {n} written ({:.0} events/s)",
            deciles[deciles.len() - 1]
        );
    }
    let load_seconds = started.elapsed().as_secs_f64();
    store.checkpoint().await?;
    let peak_after_load = peak_rss_mb();

    let end = DateTime::<Utc>::from_timestamp(1_735_689_600, 0).expect("valid")
        + Span::seconds((n * 9) as i64);
    let week = Some(end - Span::days(7));
    let skill = SKILLS[0];
    let project = "/home/dev/projects/api";
    let tz = infrastructure::chrono_tz::Tz::UTC;
    let calls = read_calls(n);
    eprintln!("bench realistic: timing the reads ({calls} calls each)");
    let everything = infrastructure::RecentFilter::default();
    let reads = json!({
        "timeline_day_all_history_ms": median_ms(calls, || store.timeline(skill, None, None, Bucket::Day)).await?,
        "timeline_hour_last_week_ms": median_ms(calls, || store.timeline(skill, week, None, Bucket::Hour)).await?,
        "timeline_project_day_ms": median_ms(calls, || store.timeline_of_project(skill, Some(project), None, None, Bucket::Day, tz)).await?,
        "summary_range_last_week_ms": median_ms(calls, || store.summary_between(week, None, None)).await?,
        "summary_range_all_history_ms": median_ms(calls, || store.summary_between(None, None, None)).await?,
        "search_common_word_limit_20_ms": median_ms(calls, || store.search("quick", 20)).await?,
        "metrics_all_ms": median_ms(calls, || store.metrics(&[])).await?,
        "recent_20_ms": median_ms(calls, || store.recent(&everything, 20)).await?,
        "metrics_exact_all_ms": median_ms(3, || store.exact_percentiles(&[])).await?,
    });
    let dashboard = dashboard_reads(store, end, calls).await?;

    let t = Instant::now();
    let mut cursor: ExportCursor = None;
    let mut exported = 0u64;
    loop {
        let (page, next) = store
            .export_page(&ExportFilter::default(), &cursor, 5000)
            .await?;
        exported += page.len() as u64;
        cursor = next;
        if page.len() < 5000 {
            break;
        }
    }
    let export_rate = exported as f64 / t.elapsed().as_secs_f64();
    eprintln!("bench realistic: export {export_rate:.0} events/s; verify, rebuild and prune next");

    let anon_before_verify = anon_rss_mb();
    let t = Instant::now();
    let (report, anon_in_verify) = peak_anon_during(store.verify()).await;
    let report = report?;
    let verify_rate = report.invocations_read as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.is_clean(),
        "verify found differences: {:?}",
        report.differences.first()
    );
    let peak_after_verify = peak_rss_mb();
    let anon_before_rebuild = anon_rss_mb();
    let t = Instant::now();
    let (rebuilt, anon_in_rebuild) = peak_anon_during(store.rebuild()).await;
    let rebuilt = rebuilt?;
    let rebuild_rate = rebuilt.invocations_read as f64 / t.elapsed().as_secs_f64();

    let storage = store.storage().await?;
    let total: u64 = storage.iter().map(|s| s.bytes).sum();
    let mut per_table: std::collections::BTreeMap<String, u64> = Default::default();
    for s in &storage {
        *per_table.entry(s.name.clone()).or_default() += s.bytes;
    }
    let bytes_per_event: serde_json::Map<String, Value> = per_table
        .into_iter()
        .filter(|(_, b)| *b * 100 >= total) // 1 % or more
        .map(|(name, b)| (name, json!((b as f64 / n as f64).round())))
        .collect();

    // The oldest tenth goes: its rate, and the store stays right.
    let t = Instant::now();
    let cut = DateTime::<Utc>::from_timestamp(1_735_689_600, 0).expect("valid")
        + Span::seconds((n / 10 * 9) as i64);
    let pruned = store.prune(cut, None).await?;
    let prune_rate = pruned.removed as f64 / t.elapsed().as_secs_f64();

    Ok(json!({
        "scenario": "realistic", "backend": backend, "events": n,
        "ingest_events_per_sec": (n as f64 / load_seconds).round(),
        "ingest_events_per_sec_by_decile": deciles,
        "ingest_last_over_first_decile_cost": (deciles[0] / deciles[deciles.len() - 1] * 100.0).round() / 100.0,
        "reads": reads,
        "dashboard": dashboard,
        "export_events_per_sec": export_rate.round(),
        "verify_events_per_sec": verify_rate.round(),
        "rebuild_events_per_sec": rebuild_rate.round(),
        "prune_oldest_tenth_events_per_sec": prune_rate.round(),
        "pruned": pruned.removed,
        "bytes_per_event": (total as f64 / n as f64).round(),
        "bytes_per_event_by_object": bytes_per_event,
        "peak_rss_mb_after_load": peak_after_load.round(),
        "peak_rss_mb_after_verify": peak_after_verify.round(),
        "anon_mb_before_verify": anon_before_verify.round(),
        "peak_anon_mb_in_verify": anon_in_verify.round(),
        "anon_mb_before_rebuild": anon_before_rebuild.round(),
        "peak_anon_mb_in_rebuild": anon_in_rebuild.round(),
    }))
}
