//! `skill-metrics import-legacy PATH`: the old tracker's JSON file.
//!
//! The library plans every file found (reading each whole; any unreadable
//! file or invocation stops everything before a single write), the report
//! is printed, then the library writes the invocations and balances.

use std::path::PathBuf;
use std::process::ExitCode;

use importers::legacy::{FilePlan, find_files, plan_file};
use infrastructure::SkillMetricsStore;
use infrastructure::import::{DEFAULT_BATCH_SIZE, LocalZone};

use crate::output::Table;
use crate::progress::Bars;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A legacy skill_metrics.json, or a folder to search for them.
    path: PathBuf,
    /// Print the full report and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Zone of the file's naive timestamps (IANA name, e.g. Europe/Berlin); default: this machine's.
    #[arg(long)]
    timezone: Option<String>,
    /// Invocations per transaction.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    batch_size: usize,
}

fn print_report(p: &FilePlan) {
    println!(
        "{}: {} invocations ({} pending)",
        p.path.display(),
        p.invocations,
        p.pending.values().sum::<i64>()
    );
    let mut names: Vec<&String> = p
        .explained
        .keys()
        .chain(p.pending.keys())
        .chain(p.legacy.keys())
        .collect();
    names.sort();
    names.dedup();
    let mut t = Table::new([
        "skill",
        "from invocations",
        "pending→abandoned",
        "from balance",
        "ours total",
        "legacy total",
        "ours completed",
        "legacy completed",
        "ours duration s",
        "legacy duration s",
    ]);
    for name in names {
        let e = p.explained.get(name).cloned().unwrap_or_default();
        let b = p.balances.get(name).cloned().unwrap_or_default();
        let pending = p.pending.get(name).copied().unwrap_or(0);
        let legacy = p.legacy.get(name);
        t.row([
            name.clone(),
            e.total.to_string(),
            pending.to_string(),
            b.total.to_string(),
            (e.total + pending + b.total).to_string(),
            legacy.map_or("-".into(), |l| l.total.to_string()),
            (e.completed + b.completed).to_string(),
            legacy.map_or("-".into(), |l| l.completed.to_string()),
            format!(
                "{:.2}",
                domain::seconds(e.total_duration_micros + b.total_duration_micros)
            ),
            legacy.map_or("-".into(), |l| format!("{:.2}", l.total_duration_seconds)),
        ]);
    }
    t.print();
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let zone = LocalZone::parse(args.timezone.as_deref())?;
    let mut bars = Bars::new(true);
    let mut plans = Vec::new();
    for f in find_files(&args.path)? {
        plans.push(plan_file(&f, zone, &mut |p| bars.update(p))?);
    }
    for p in &plans {
        print_report(p);
    }
    println!(
        "pending invocations (never reported complete) are imported as abandoned, marked legacy_pending in user_context"
    );
    if args.dry_run {
        println!("dry run: nothing was written");
        return Ok(ExitCode::SUCCESS);
    }
    let done = store
        .import_legacy(plans, args.batch_size, &mut |p| bars.update(p))
        .await?;
    println!(
        "inserted {}, already present {}, opening balances written for {} file(s)",
        done.inserted, done.already_present, done.balances_written
    );
    if !done.path_keyed_left.is_empty() {
        eprintln!(
            "note: opening balances that an older version keyed by file path remain for: {}; \
             if one of these files now lies elsewhere and was imported from there, its balance counts twice \
             until it is imported once from the path named",
            done.path_keyed_left.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
