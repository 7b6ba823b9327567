//! `skill-metrics timeline SKILL`

use std::process::ExitCode;

use clap::ValueEnum;
use domain::parse_timestamp;
use infrastructure::chrono_tz::Tz;
use infrastructure::{Bucket, SkillMetricsStore};

use crate::output::{Table, num, print_json, rfc3339};

#[derive(Clone, Copy, ValueEnum)]
enum BucketArg {
    Hour,
    Day,
    Week,
}

/// A skill's invocations per hour, day or week.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The skill.
    skill: String,
    /// From this time (inclusive, RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Until this time (exclusive, RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Bucket width.
    #[arg(long, value_enum, default_value = "day")]
    bucket: BucketArg,
    /// Hours, days and weeks as the clock in this IANA time zone shows them
    /// (e.g. Europe/Berlin); the table shows local starts, JSON the UTC instant.
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = parse_zone)]
    tz: Tz,
    /// Only this project's invocations ("" for those with none).
    #[arg(long, value_name = "PATH")]
    project: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_zone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>()
        .map_err(|_| format!("{text:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"))
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .map(|t| parse_timestamp("--since", &t))
        .transpose()?;
    let until = args
        .until
        .map(|t| parse_timestamp("--until", &t))
        .transpose()?;
    let bucket = match args.bucket {
        BucketArg::Hour => Bucket::Hour,
        BucketArg::Day => Bucket::Day,
        BucketArg::Week => Bucket::Week,
    };
    let rows = store
        .timeline_of_project(
            &args.skill,
            args.project.as_deref(),
            since,
            until,
            bucket,
            args.tz,
        )
        .await?;
    if args.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let local = args.tz != Tz::UTC;
    let mut t = Table::new([
        if local {
            "bucket start (local)"
        } else {
            "bucket start"
        },
        "invocations",
        "completed",
        "rate %",
        "p50 s",
        "p95 s",
    ]);
    for b in &rows {
        t.row([
            if local {
                b.bucket_start
                    .with_timezone(&args.tz)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string()
            } else {
                rfc3339(b.bucket_start)
            },
            b.invocations.to_string(),
            b.completed.to_string(),
            format!("{:.1}", b.completion_rate),
            num(b.p50_duration_seconds, 2),
            num(b.p95_duration_seconds, 2),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}
