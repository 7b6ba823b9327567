//! `skill-metrics dashboard`: a one-time login link to the dashboard of a
//! server of this store (D93), opened in the browser or printed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use infrastructure::SkillMetricsStore;

/// Open the dashboard: make a one-time login link (5 minutes) and open it.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The server's base URL (it must serve this store). By default a
    /// running `serve` of this store (its `/healthz` names the store), or
    /// one started here on loopback.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Print the link only; do not start a browser.
    #[arg(long)]
    no_open: bool,
}

/// Whether `base` is a server of the store named `id`: its `/healthz`
/// says so. An address a dead server left behind may now be anything's.
async fn serves(client: &reqwest::Client, base: &str, id: &str) -> bool {
    match client.get(format!("{base}/healthz")).send().await {
        Ok(r) => {
            r.status().is_success()
                && r.headers()
                    .get(server::STORE_ID_HEADER)
                    .is_some_and(|v| v.as_bytes() == id.as_bytes())
        }
        Err(_) => false,
    }
}

/// Tries the platform's opener on `url`; false when there is none.
fn open_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return false;
        }
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// Gives the user the link: opened, or printed when no browser opens.
fn hand_over(base: &str, code: &str, no_open: bool) {
    let link = format!("{base}/login?code={code}");
    if !no_open && open_browser(&link) {
        eprintln!("opened the dashboard at {base} in your browser (the link works once)");
    } else {
        println!("{link}");
        eprintln!("open that link within 5 minutes: it logs one browser in, once");
    }
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .context("making the HTTP client")?;
    let base = match args.server {
        Some(url) => Some(url.trim_end_matches('/').to_owned()),
        None => {
            let id = store.store_id().await?.unwrap_or_default();
            let mut found = None;
            for address in store.serve_addresses().await? {
                let base = format!("http://{address}");
                if serves(&client, &base, &id).await {
                    found = Some(base);
                    break;
                }
            }
            found
        }
    };
    if let Some(base) = base {
        let code = store.create_login_code().await?;
        hand_over(&base, &code, args.no_open);
        return Ok(ExitCode::SUCCESS);
    }
    // No server of this store runs: serve it here, on loopback, until stopped.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on loopback")?;
    let address = listener.local_addr()?.to_string();
    store.note_serve_address(&address).await?;
    let code = store.create_login_code().await?;
    eprintln!("no server of this store is running: serving it on http://{address} (Ctrl-C stops)");
    hand_over(&format!("http://{address}"), &code, args.no_open);
    super::serve::serve_recorded(store, listener, &address).await?;
    Ok(ExitCode::SUCCESS)
}
