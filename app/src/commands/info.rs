//! `skill-metrics info`

use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

use crate::output::{bytes, print_json, rfc3339};
use crate::store::StoreArg;

/// Which store is in use: where, how big, what it holds.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(
    arg: &StoreArg,
    store: &SkillMetricsStore,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let info = store.info().await?;
    if args.json {
        print_json(&info)?;
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
    Ok(ExitCode::SUCCESS)
}
