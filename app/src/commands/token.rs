//! `skill-metrics token create | list | revoke`: the server's bearer tokens.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use domain::Scope;
use infrastructure::SkillMetricsStore;

use crate::output::{Table, print_json, rfc3339};

/// What a token may do.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ScopeArg {
    /// Send invocations; read nothing.
    Ingest,
    /// Read; write nothing.
    Read,
    /// Both.
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(arg: ScopeArg) -> Self {
        match arg {
            ScopeArg::Ingest => Scope::Ingest,
            ScopeArg::Read => Scope::Read,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Action {
    /// Make a token and print it once (on stdout alone; only its hash is kept).
    Create {
        /// Its name, e.g. the machine or the service that will use it.
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        scope: ScopeArg,
    },
    /// Every token: name, scope, created, last used, revoked. Never the token.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a live token; it authenticates nothing from the next request on.
    Revoke {
        /// Its name.
        name: String,
    },
}

pub(crate) async fn run(store: &SkillMetricsStore, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Create { name, scope } => {
            let made = store.create_token(&name, scope.into()).await?;
            eprintln!(
                "token {:?} ({}) created; it is shown this once, so keep it now:",
                made.name, made.scope
            );
            println!("{}", made.token);
        }
        Action::List { json } => {
            let tokens = store.list_tokens().await?;
            if json {
                print_json(&tokens)?;
            } else {
                let when =
                    |at: Option<chrono::DateTime<chrono::Utc>>| at.map_or("-".to_owned(), rfc3339);
                let mut t = Table::new(["name", "scope", "created", "last used", "revoked"]);
                for k in &tokens {
                    t.row([
                        k.name.clone(),
                        k.scope.to_string(),
                        rfc3339(k.created_at),
                        when(k.last_used_at),
                        when(k.revoked_at),
                    ]);
                }
                t.print();
            }
        }
        Action::Revoke { name } => {
            store.revoke_token(&name).await?;
            println!("token {name:?} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
