//! `skill-metrics info`

use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

use crate::output::{Table, bytes, print_json, rfc3339};
use crate::store::StoreArg;

/// Which store is in use: where, how big, what it holds.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also the bytes each table and index takes, and per invocation
    /// (reads every page on SQLite: slow on a large store).
    #[arg(long)]
    storage: bool,
}

pub(crate) async fn run(
    arg: &StoreArg,
    store: &SkillMetricsStore,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let info = store.info().await?;
    let storage = if args.storage {
        Some(store.storage().await?)
    } else {
        None
    };
    if args.json {
        match storage {
            Some(storage) => print_json(&serde_json::json!({ "info": info, "storage": storage }))?,
            None => print_json(&info)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let when = |at: Option<chrono::DateTime<chrono::Utc>>| at.map_or("-".to_owned(), rfc3339);
    println!("store           {}", arg.describe());
    if let Some(path) = &info.path {
        println!("file            {path}");
    }
    println!(
        "size            {}",
        info.size_bytes.map_or("-".to_owned(), bytes)
    );
    println!(
        "schema version  {}",
        info.schema_version
            .map_or("none applied".to_owned(), |v| v.to_string())
    );
    println!(
        "invocations     {}{}",
        info.invocations,
        if info.balance_invocations > 0 {
            format!(
                " ({} from legacy opening balances)",
                info.balance_invocations
            )
        } else {
            String::new()
        }
    );
    println!("skills          {}", info.skills);
    println!("sessions        {}", info.sessions);
    println!("first invoked   {}", when(info.first_invoked));
    println!("last invoked    {}", when(info.last_invoked));
    if let Some(storage) = storage {
        print_storage(&storage, info.invocations);
    }
    Ok(ExitCode::SUCCESS)
}

/// The storage table: each table and index, its bytes, and its bytes per
/// invocation of the log.
fn print_storage(storage: &[infrastructure::StorageUse], invocations: i64) {
    let total: u64 = storage.iter().map(|s| s.bytes).sum();
    let per = |b: u64| {
        if invocations > 0 {
            format!("{:.1}", b as f64 / invocations as f64)
        } else {
            "-".to_owned()
        }
    };
    let mut table = Table::new(["name", "kind", "table", "bytes", "per invocation"]);
    for s in storage {
        table.row([
            s.name.clone(),
            s.kind.to_owned(),
            s.table.clone(),
            s.bytes.to_string(),
            per(s.bytes),
        ]);
    }
    table.row([
        "(all)".to_owned(),
        String::new(),
        String::new(),
        total.to_string(),
        per(total),
    ]);
    println!();
    table.print();
}
