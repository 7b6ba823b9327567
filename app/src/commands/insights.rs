//! `skill-metrics insights`: what changed in a window against its baseline
//! (decision D95), from the rollups.

use std::process::ExitCode;

use domain::{FindingKind, InsightSettings, parse_length, parse_timestamp};
use infrastructure::{Baseline, Insights, SkillMetricsStore};

use crate::output::{print_json, rfc3339};

/// What changed, what regressed, what to retire.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The window: the last 90m, 24h, 7d, 2w ... before --until.
    #[arg(long, default_value = "7d")]
    window: String,
    /// The baseline: `previous` (the window's length just before it) or
    /// FROM..TO (two RFC 3339 times).
    #[arg(long, default_value = "previous", value_name = "previous|RANGE")]
    against: String,
    /// The window's end (RFC 3339); now when absent.
    #[arg(long)]
    until: Option<String>,
    /// Only this project's invocations ("" for those with none); retire
    /// candidates are still judged over every project.
    #[arg(long, value_name = "PATH")]
    project: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    thresholds: Thresholds,
}

/// Every threshold, each defaulting to `InsightSettings::default()`.
#[derive(clap::Args)]
#[allow(clippy::struct_field_names)]
struct Thresholds {
    /// False-discovery rate over all the tests run.
    #[arg(long, default_value_t = InsightSettings::default().alpha)]
    alpha: f64,
    /// Least relative move of a p50 or p95 reported (0.25: 25 %).
    #[arg(long, default_value_t = InsightSettings::default().latency_change)]
    latency_change: f64,
    /// Completed durations needed on each side to test a p50.
    #[arg(long, default_value_t = InsightSettings::default().min_p50_samples)]
    min_p50_samples: i64,
    /// Completed durations needed on each side to test a p95.
    #[arg(long, default_value_t = InsightSettings::default().min_p95_samples)]
    min_p95_samples: i64,
    /// Invocations needed on each side to test completion or error rates.
    #[arg(long, default_value_t = InsightSettings::default().min_invocations)]
    min_invocations: i64,
    /// Least drop of the completion rate reported, in percentage points.
    #[arg(long, default_value_t = InsightSettings::default().completion_drop_points)]
    completion_drop_points: f64,
    /// Invocations with an error type needed in the window and baseline together to test its rate.
    #[arg(long, default_value_t = InsightSettings::default().min_errors)]
    min_errors: i64,
    /// Least factor by which an error type's rate must rise.
    #[arg(long, default_value_t = InsightSettings::default().error_rise)]
    error_rise: f64,
    /// Least factor by which a rate of use must rise or fall.
    #[arg(long, default_value_t = InsightSettings::default().usage_factor)]
    usage_factor: f64,
    /// Invocations needed on both sides together to test a change of use.
    #[arg(long, default_value_t = InsightSettings::default().min_usage)]
    min_usage: i64,
    /// Days without use that make a skill a retire candidate.
    #[arg(long, default_value_t = InsightSettings::default().retire_after_days)]
    retire_after_days: i64,
    /// Fewer uses than this in the window make an old skill a retire candidate.
    #[arg(long, default_value_t = InsightSettings::default().retire_floor)]
    retire_floor: i64,
    /// Hot spots listed of each kind.
    #[arg(long, default_value_t = InsightSettings::default().hot_spots)]
    hot_spots: usize,
}

impl From<Thresholds> for InsightSettings {
    fn from(t: Thresholds) -> Self {
        Self {
            alpha: t.alpha,
            latency_change: t.latency_change,
            min_p50_samples: t.min_p50_samples,
            min_p95_samples: t.min_p95_samples,
            min_invocations: t.min_invocations,
            completion_drop_points: t.completion_drop_points,
            min_errors: t.min_errors,
            error_rise: t.error_rise,
            usage_factor: t.usage_factor,
            min_usage: t.min_usage,
            retire_after_days: t.retire_after_days,
            retire_floor: t.retire_floor,
            hot_spots: t.hot_spots,
        }
    }
}

fn heading(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::LatencyRegression => "Latency regressions",
        FindingKind::CompletionDrop => "Completion drops",
        FindingKind::ErrorRise => "Rising errors",
        FindingKind::UsageRise => "Use rose",
        FindingKind::UsageFall => "Use fell",
        FindingKind::LatencyImprovement => "Latency improvements",
        FindingKind::NewSkill => "New skills",
        FindingKind::RetireCandidate => "Retire candidates",
        FindingKind::SlowHotSpot => "Hot spots: time spent",
        FindingKind::FailingHotSpot => "Hot spots: time lost to failures",
    }
}

fn print_text(r: &Insights) {
    println!(
        "window   {} .. {}  ({} invocations)",
        rfc3339(r.window_since),
        rfc3339(r.window_until),
        r.window_invocations
    );
    println!(
        "baseline {} .. {}  ({} invocations)",
        rfc3339(r.baseline_since),
        rfc3339(r.baseline_until),
        r.baseline_invocations
    );
    if let Some(p) = &r.project {
        println!("project  {p:?} (retire candidates: every project)");
    }
    println!(
        "{} tests, findings held to a false-discovery rate of {} %",
        r.tests_run,
        r.settings.alpha * 100.0
    );
    let mut last = None;
    for f in &r.findings {
        if last != Some(f.kind) {
            println!("\n{}", heading(f.kind));
            last = Some(f.kind);
        }
        let evidence = match (f.p_value, f.q_value) {
            (Some(p), Some(q)) => format!(
                "  [n {} / {}, p {p:.2e}, q {q:.2e}]",
                f.baseline_count, f.window_count
            ),
            _ => String::new(),
        };
        println!("  {}{evidence}", f.summary);
    }
    if r.findings.is_empty() {
        println!("\nno findings: nothing in the window differs from the baseline beyond noise");
    }
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let window = parse_length("--window", &args.window)?;
    let against = Baseline::parse("--against", &args.against)?;
    let until = args
        .until
        .map(|t| parse_timestamp("--until", &t))
        .transpose()?;
    let settings = InsightSettings::from(args.thresholds);
    let report = store
        .insights(window, until, against, args.project.as_deref(), &settings)
        .await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}
