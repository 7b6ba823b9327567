//! `skill-metrics bench`: measures the write and read paths on a fresh store
//! and prints exactly one JSON line on stdout (a short summary on stderr).

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;
use domain::Invocation;
use infrastructure::{ConnectOptions, DatabaseUrl, MigrationMode, SkillMetricsStore};
use serde_json::{Value, json};

use crate::store::StoreArg;

mod loader;
mod mix;
mod realistic;
mod serve;

use mix::Mix;

/// The event mix's default seed, fixed so that runs compare.
pub(crate) const DEFAULT_SEED: u64 = 20_250_210;
const BULK_BATCH: usize = 10_000;
const READ_CALLS: usize = 200;
const SCALE_RECORDS: usize = 2_000;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// N invocations, each recorded in its own transaction.
    Single,
    /// N invocations through the batch (ingest) path.
    Bulk,
    /// After loading N, the median of 200 calls of each read.
    Read,
    /// 2,000 single records at N/100 loaded and again at N loaded.
    Scale,
    /// K processes each recording N/K invocations into one store, then verify.
    Concurrent,
    /// `serve` on loopback, fed by K real OTLP exporters in batches of 512.
    Serve,
    /// Like `scale`, on one skill whose every event has a workflow path of
    /// its own: 2,000 single records at N/100 keys and again at N keys.
    Wide,
    /// N realistic events ingested a tenth at a time (the rate of each), then
    /// every read, export, verify, rebuild, a prune, and bytes per event.
    Realistic,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// How many invocations (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Writer processes for `concurrent`, OTLP clients for `serve` (1 to 256).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    writers: u64,
    /// Seed of the event mix.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

/// One worker of the `concurrent` scenario (spawned by `bench`, not for people).
#[derive(clap::Args)]
pub(crate) struct WorkerArgs {
    #[arg(long)]
    events: u64,
    #[arg(long)]
    offset: u64,
    #[arg(long)]
    seed: u64,
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

async fn load(store: &SkillMetricsStore, mix: &Mix, from: u64, to: u64) -> anyhow::Result<()> {
    let mut i = from;
    while i < to {
        let end = (i + BULK_BATCH as u64).min(to);
        store
            .record_batch((i..end).map(|k| mix.event(k)).collect())
            .await?;
        i = end;
    }
    Ok(())
}

async fn singles(
    store: &SkillMetricsStore,
    mix: &Mix,
    from: u64,
    to: u64,
) -> anyhow::Result<Duration> {
    let events: Vec<Invocation> = (from..to).map(|k| mix.event(k)).collect();
    let started = Instant::now();
    for e in events {
        store.record(e).await?;
    }
    Ok(started.elapsed())
}

async fn time_calls<F, Fut, T>(mut call: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, infrastructure::StoreError>>,
{
    let mut samples = Vec::with_capacity(READ_CALLS);
    for _ in 0..READ_CALLS {
        let t = Instant::now();
        call().await?;
        samples.push(t.elapsed());
    }
    Ok(median(samples))
}

pub(crate) async fn run(store_arg: &StoreArg, args: Args) -> anyhow::Result<ExitCode> {
    let url_arg = &store_arg.given;
    let tmp = tempfile::tempdir()?;
    let url = url_arg.clone().unwrap_or_else(|| {
        infrastructure::DatabaseUrl::sqlite_file(tmp.path().join("bench.db")).to_string()
    });
    let parsed = DatabaseUrl::parse(&url)?;
    if args.scenario == Scenario::Concurrent && parsed == DatabaseUrl::SqliteMemory {
        anyhow::bail!(
            "the concurrent scenario needs a store its writer processes can share \
             (a SQLite file or PostgreSQL), not sqlite::memory:"
        );
    }
    eprintln!(
        "bench: store {parsed}{}",
        if url_arg.is_none() {
            " (temporary, removed afterwards)"
        } else {
            ""
        }
    );
    let backend = if parsed.is_sqlite() {
        "sqlite"
    } else {
        "postgres"
    };
    // The hand-written loader's store goes beside a SQLite file store, on
    // the same disk.
    let loader_path = match &parsed {
        DatabaseUrl::SqliteFile(path) => {
            Some(std::path::PathBuf::from(format!("{path}.loader.db")))
        }
        _ => None,
    };
    let mut options = ConnectOptions::new(parsed);
    options.migrations = MigrationMode::Apply;
    let store = SkillMetricsStore::connect_with(options)
        .await
        .context("opening the bench store")?;
    if !store.recent(&Default::default(), 1).await?.is_empty() {
        anyhow::bail!("the store already holds invocations: bench needs a fresh one");
    }
    // Legacy opening balances are metrics without a log.
    if !store.metrics(&[]).await?.is_empty() {
        anyhow::bail!("the store already holds skill metrics: bench needs a fresh one");
    }
    let mix = Mix::new(args.seed);
    let n = args.events;
    let mut failure = None;
    let mut loaded = None;
    let line = match args.scenario {
        Scenario::Single | Scenario::Bulk => {
            let elapsed = if args.scenario == Scenario::Single {
                singles(&store, &mix, 0, n).await?
            } else {
                // Events are made before the clock starts: the store is timed, not the generator.
                let batches: Vec<Vec<Invocation>> = (0..n)
                    .step_by(BULK_BATCH)
                    .map(|from| {
                        (from..(from + BULK_BATCH as u64).min(n))
                            .map(|k| mix.event(k))
                            .collect()
                    })
                    .collect();
                // The hand-written loader's copy, made before the clock starts too.
                let yardstick = loader_path.map(|path| (path, batches.clone()));
                let started = Instant::now();
                for batch in batches {
                    store.record_batch(batch).await?;
                }
                let elapsed = started.elapsed();
                if let Some((path, batches)) = yardstick {
                    // Compared settled: each store's log copied into its
                    // file, which the loader does as it goes and the store's
                    // checkpoint thread after it (D30).
                    store.checkpoint().await?;
                    let settled = started.elapsed();
                    let loader = beside_the_loader(&path, batches).await;
                    for end in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{end}", path.display()));
                    }
                    loaded = Some((settled, loader?));
                }
                elapsed
            };
            let s = elapsed.as_secs_f64();
            let name = if args.scenario == Scenario::Single {
                "single"
            } else {
                "bulk"
            };
            let mut line = json!({"scenario": name, "backend": backend, "events": n, "seconds": s, "events_per_sec": n as f64 / s});
            if args.scenario == Scenario::Bulk {
                // Only beside a SQLite file: the loader is SQLite's.
                line["settled_events_per_sec"] =
                    json!(loaded.map(|(settled, _)| n as f64 / settled.as_secs_f64()));
                line["loader_events_per_sec"] =
                    json!(loaded.map(|(_, loader)| n as f64 / loader.as_secs_f64()));
                line["store_vs_loader"] = json!(
                    loaded.map(|(settled, loader)| loader.as_secs_f64() / settled.as_secs_f64())
                );
            }
            line
        }
        Scenario::Read => {
            load(&store, &mix, 0, n).await?;
            // Timed on a settled store: the load's log is in the database
            // file, not being copied there while the reads run (D30).
            store.checkpoint().await?;
            store.refresh_summary().await?;
            let one = ["skill-07"];
            json!({
                "scenario": "read", "backend": backend, "events": n,
                "one_skill_ms": time_calls(|| store.metrics(&one)).await?,
                "all_skills_ms": time_calls(|| store.metrics(&[])).await?,
                "summary_ms": time_calls(|| store.summary()).await?,
                "refresh_ms": time_calls(|| store.refresh_summary()).await?,
                "search_ms": time_calls(|| store.search("deploy prod", 20)).await?,
                "exact_ms": time_calls(|| store.exact_percentiles(&one)).await?,
            })
        }
        Scenario::Scale => {
            let small = (n / 100).max(1);
            // Both phases start on a settled store, so neither pays for
            // copying the load's log into the database file.
            load(&store, &mix, 0, small).await?;
            store.checkpoint().await?;
            let t_small = singles(&store, &mix, n, n + SCALE_RECORDS as u64).await?;
            load(&store, &mix, small, n).await?;
            store.checkpoint().await?;
            let t_large = singles(
                &store,
                &mix,
                n + SCALE_RECORDS as u64,
                n + 2 * SCALE_RECORDS as u64,
            )
            .await?;
            let (a, b) = (
                t_small.as_secs_f64() * 1000.0 / SCALE_RECORDS as f64,
                t_large.as_secs_f64() * 1000.0 / SCALE_RECORDS as f64,
            );
            json!({"scenario": "scale", "backend": backend, "events": n, "ms_per_record_small": a, "ms_per_record_large": b, "ratio": b / a})
        }
        Scenario::Realistic => realistic::run(&store, n, args.seed, backend).await?,
        Scenario::Wide => {
            let wide = |i: u64| {
                let mut inv = mix.event(i);
                inv.skill_name = domain::SkillName::parse("wide").expect("valid");
                inv.workflow_path = Some(format!("path/{i:09}"));
                inv
            };
            let small = (n / 100).max(1);
            let load = |from: u64, to: u64| {
                (from..to)
                    .step_by(BULK_BATCH)
                    .map(|a| {
                        (a..(a + BULK_BATCH as u64).min(to))
                            .map(wide)
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            };
            let timed = async |from: u64| -> anyhow::Result<f64> {
                let events: Vec<Invocation> =
                    (from..from + SCALE_RECORDS as u64).map(wide).collect();
                let t = Instant::now();
                for e in events {
                    store.record(e).await?;
                }
                Ok(t.elapsed().as_secs_f64() * 1000.0 / SCALE_RECORDS as f64)
            };
            for batch in load(0, small) {
                store.record_batch(batch).await?;
            }
            store.checkpoint().await?;
            let a = timed(n).await?;
            for batch in load(small, n) {
                store.record_batch(batch).await?;
            }
            store.checkpoint().await?;
            let b = timed(n + SCALE_RECORDS as u64).await?;
            json!({"scenario": "wide", "backend": backend, "events": n, "ms_per_record_small": a, "ms_per_record_large": b, "ratio": b / a})
        }
        Scenario::Serve => {
            let (line, failed) = serve::run(&store, &mix, n, args.writers, backend).await?;
            failure = failed;
            line
        }
        Scenario::Concurrent => {
            let k = args.writers;
            // Writer w records events [offset(w), offset(w + 1)): N/K each,
            // the first N mod K writers one more, so that all N are recorded.
            let offset = |w: u64| w * (n / k) + w.min(n % k);
            let exe = std::env::current_exe()?;
            let started = Instant::now();
            let mut children = Vec::new();
            for w in 0..k {
                let per = offset(w + 1) - offset(w);
                children.push(
                    // The URL goes by the environment, not the command line,
                    // where any user's process listing would show its password.
                    tokio::process::Command::new(&exe)
                        .env("SKILL_METRICS_DATABASE_URL", &url)
                        .args(["bench-worker", "--events", &per.to_string()])
                        .args([
                            "--offset",
                            &offset(w).to_string(),
                            "--seed",
                            &args.seed.to_string(),
                        ])
                        .stdout(Stdio::null())
                        .stderr(Stdio::inherit())
                        // On an early return the others are stopped too, not
                        // left writing into a store being removed.
                        .kill_on_drop(true)
                        .spawn()?,
                );
            }
            for mut c in children {
                let status = c.wait().await?;
                anyhow::ensure!(status.success(), "a writer process failed: {status}");
            }
            let s = started.elapsed().as_secs_f64();
            let report = store.verify().await?;
            let lost = n.saturating_sub(report.invocations_read);
            let line = json!({"scenario": "concurrent", "backend": backend, "events": n, "writers": k, "seconds": s,
                   "events_per_sec": n as f64 / s, "lost": lost});
            if lost > 0 || !report.differences.is_empty() {
                // The figure is printed below, and then the run fails.
                failure = Some(anyhow::anyhow!(
                    "verify after the run: {lost} of {n} events missing from the log, \
                     {} aggregate differences (first: {:?})",
                    report.differences.len(),
                    report.differences.first()
                ));
            }
            line
        }
    };
    eprintln!("{}", summary(&line));
    println!("{line}");
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Times the hand-written loader ([`loader`]) on `batches` in a second
/// fresh store at `path`, then verifies that store: its log and every
/// aggregate must agree, or the run fails.
async fn beside_the_loader(
    path: &std::path::Path,
    batches: Vec<Vec<Invocation>>,
) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        !path.exists(),
        "{} exists: the hand-written loader needs a fresh file there",
        path.display()
    );
    let path = path.to_owned();
    let url = DatabaseUrl::sqlite_file(&path);
    let mut options = ConnectOptions::new(url.clone());
    options.migrations = MigrationMode::Apply;
    // The schema, by the store's migrations; closed before the load.
    drop(SkillMetricsStore::connect_with(options).await?);
    let events: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let elapsed = tokio::task::spawn_blocking(move || loader::load(&path, &batches)).await??;
    let check = SkillMetricsStore::connect(&url.to_string()).await?;
    let report = check.verify().await?;
    anyhow::ensure!(
        report.invocations_read == events && report.differences.is_empty(),
        "the hand-written loader's store does not verify: {} of {events} events read, \
         {} differences (first: {:?})",
        report.invocations_read,
        report.differences.len(),
        report.differences.first()
    );
    Ok(elapsed)
}

fn summary(line: &Value) -> String {
    let obj = line.as_object().map(|o| {
        o.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "scenario" | "backend"))
            .map(|(k, v)| match v.as_f64() {
                Some(f) if v.is_f64() => format!("{k}={f:.4}"),
                _ => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    format!(
        "bench {} on {}: {}",
        line["scenario"].as_str().unwrap_or("?"),
        line["backend"].as_str().unwrap_or("?"),
        obj.unwrap_or_default()
    )
}

pub(crate) async fn worker(
    store: &SkillMetricsStore,
    args: WorkerArgs,
) -> anyhow::Result<ExitCode> {
    let mix = Mix::new(args.seed);
    singles(store, &mix, args.offset, args.offset + args.events).await?;
    Ok(ExitCode::SUCCESS)
}
