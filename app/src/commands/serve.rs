//! `skill-metrics serve`

use std::process::ExitCode;

use anyhow::Context;
use domain::Scope;
use infrastructure::SkillMetricsStore;
use server::{DEFAULT_LISTEN, Limits};

/// Serve the store over HTTP: the API, authenticated by bearer tokens.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where to listen (loopback by default; OTLP/HTTP's port).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
}

/// The name of the token made on a first start.
const FIRST_TOKEN: &str = "first-ingest";

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?.to_string();
    let live = store
        .list_tokens()
        .await?
        .iter()
        .any(|t| t.revoked_at.is_none());
    if !live {
        let made = store.create_token(FIRST_TOKEN, Scope::Ingest).await?;
        eprintln!(
            "no tokens yet: made the ingest token {FIRST_TOKEN:?}, shown this once.\n\
             Point Claude Code at this server with:\n\n{}\n\
             Make a token to read with: skill-metrics token create NAME --scope read",
            server::claude_code_environment(&address, &made.token)
        );
    }
    eprintln!(
        "serving {} on http://{address} (Ctrl-C or SIGTERM stops)",
        store.url()
    );
    // Where `skill-metrics dashboard` finds this server: an address a
    // browser on this machine reaches.
    let reachable = address
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    store.note_serve_address(&reachable).await?;
    serve_recorded(store, listener, &reachable).await?;
    eprintln!("stopped: every request in flight was answered");
    Ok(ExitCode::SUCCESS)
}

/// Serves `store` on `listener` until Ctrl-C or SIGTERM, then forgets
/// `address` (which the caller recorded) in the store.
pub(crate) async fn serve_recorded(
    store: &SkillMetricsStore,
    listener: tokio::net::TcpListener,
    address: &str,
) -> anyhow::Result<()> {
    let served = server::serve(
        store.clone(),
        listener,
        Limits::default(),
        server::stop_signal(),
    )
    .await;
    if let Err(e) = store.forget_serve_address(address).await {
        tracing::warn!(error = %e, "the server's address stays recorded");
    }
    served.context("serving")
}
