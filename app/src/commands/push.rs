//! `skill-metrics push --to URL`: send this store's log to a server, from
//! where the last push to that server stopped (decision D77).
//!
//! Batches go to the server's `POST /api/v1/invocations` in the order they
//! were written. The cursor moves only after the server has answered 200,
//! so an interrupted push resumes with the batch that was not acknowledged;
//! if the server had committed it after all, it counts those ids once.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use infrastructure::{Logged, SkillMetricsStore, redact_url};
use reqwest::StatusCode;

/// The largest body a request carries (the server takes up to 20 MiB): a
/// batch of large invocations is cut short there and the rest goes next.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Attempts per batch when the server cannot be reached or is overloaded.
const ATTEMPTS: u32 = 5;

/// The environment variable the token is read from unless `--token-env`
/// names another.
pub(crate) const TOKEN_ENV: &str = "SKILL_METRICS_TOKEN";

/// Send the log to a server, from where the last push there stopped.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The server's base URL, e.g. http://metrics.example:4318
    #[arg(long, value_name = "URL")]
    to: String,
    /// The environment variable holding an ingest token of that server.
    #[arg(long, value_name = "NAME", default_value = TOKEN_ENV)]
    token_env: String,
    /// Invocations per request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch_size: u64,
    /// Forget this server's cursor and send everything again (the server
    /// counts what it already has once).
    #[arg(long)]
    from_start: bool,
}

/// What the server answers to a batch.
#[derive(serde::Deserialize)]
struct Accepted {
    inserted: u64,
    duplicates: u64,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let (server, endpoint) = endpoint(&args.to)?;
    let token = std::env::var(&args.token_env).map_err(|_| {
        anyhow::anyhow!(
            "set {} to an ingest token of {server} (on the server: skill-metrics token create NAME --scope ingest)",
            args.token_env
        )
    })?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!(
            "{} is empty: it must hold an ingest token of {server}",
            args.token_env
        );
    }
    // One process-wide TLS provider; a second install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("skill-metrics/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("making the HTTP client")?;

    if args.from_start && store.reset_push_cursor(&server).await? {
        eprintln!("forgot the cursor for {server}: sending everything again");
    }
    let mut cursor = store.push_cursor(&server).await?.last_seq;
    let (mut sent, mut inserted, mut duplicates) = (0u64, 0u64, 0u64);
    loop {
        let batch = store.written_after(cursor, args.batch_size).await?;
        if batch.is_empty() {
            break;
        }
        let (body, sent_here, last) = body_of(&batch, MAX_BODY_BYTES)?;
        let accepted = send(&client, &endpoint, &server, &token, body).await.with_context(|| {
            format!(
                "pushing to {server} stopped after {sent} invocations; run the same command again to resume"
            )
        })?;
        store.advance_push_cursor(&server, last, sent_here).await?;
        cursor = last;
        sent += sent_here;
        inserted += accepted.inserted;
        duplicates += accepted.duplicates;
    }
    if sent == 0 {
        println!("{server} has everything: nothing to push");
    } else {
        println!(
            "pushed {sent} invocations to {server}: {inserted} new there, {duplicates} it already had"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The server's name for the cursor (its URL without credentials, query
/// or trailing slash) and the endpoint batches go to.
fn endpoint(to: &str) -> anyhow::Result<(String, reqwest::Url)> {
    let mut url = url::Url::parse(to)
        .map_err(|e| anyhow::anyhow!("--to {}: not a URL ({e})", redact_url(to)))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        bail!("--to {}: give an http:// or https:// URL", redact_url(to));
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!(
            "--to {}: put no credentials in the URL; the token comes from the environment",
            redact_url(to)
        );
    }
    url.set_query(None);
    url.set_fragment(None);
    let base = url.as_str().trim_end_matches('/').to_owned();
    let endpoint = reqwest::Url::parse(&format!("{base}/api/v1/invocations"))
        .with_context(|| format!("--to {base}"))?;
    Ok((base, endpoint))
}

/// The batch as JSON Lines, as far as `max_bytes` allows (at least one
/// invocation): the body, how many it holds, and the last one's `seq`.
fn body_of(batch: &[Logged], max_bytes: usize) -> anyhow::Result<(Vec<u8>, u64, i64)> {
    let mut body = Vec::with_capacity(batch.len() * 400);
    let mut last = 0;
    let mut count = 0;
    for logged in batch {
        let mut line = serde_json::to_vec(&logged.invocation)?;
        line.push(b'\n');
        if count > 0 && body.len() + line.len() > max_bytes {
            break;
        }
        body.extend_from_slice(&line);
        last = logged.seq;
        count += 1;
    }
    Ok((body, count, last))
}

/// Sends one body of JSON Lines, retrying what may pass on a second try
/// (no connection, a timeout, 429, 502, 503, 504) with growing pauses.
async fn send(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    server: &str,
    token: &str,
    body: Vec<u8>,
) -> anyhow::Result<Accepted> {
    let mut pause = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        let outcome = client
            .post(endpoint.clone())
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body.clone())
            .send()
            .await;
        let retry = match outcome {
            Ok(response) if response.status() == StatusCode::OK => {
                let text = response
                    .text()
                    .await
                    .context("reading the server's answer")?;
                return serde_json::from_str(&text).with_context(|| {
                    format!("{server} answered 200 with something that is not a skill-metrics server's answer")
                });
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| text.chars().take(300).collect());
                let what = format!("{server} answered {status}: {message}");
                match status {
                    StatusCode::UNAUTHORIZED => {
                        bail!("{what} (is the token right, and not revoked?)")
                    }
                    StatusCode::FORBIDDEN => {
                        bail!("{what} (the token needs the ingest or admin scope)")
                    }
                    StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT => what,
                    _ => bail!(what),
                }
            }
            // reqwest's errors name the URL, which holds no credentials here.
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                format!("cannot reach {server}: {}", error_chain(&e))
            }
            Err(e) => bail!("sending to {server}: {}", error_chain(&e)),
        };
        if attempt == ATTEMPTS {
            bail!("{retry} (gave up after {ATTEMPTS} attempts)");
        }
        tracing::warn!("{retry}; trying again in {pause:?}");
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    unreachable!("the last attempt returns")
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{body_of, endpoint};
    use infrastructure::Logged;

    #[test]
    fn a_body_stops_before_the_size_cap_but_holds_one_invocation_at_least() {
        let batch: Vec<Logged> = (1..=3)
            .map(|seq| Logged {
                seq: seq * 10,
                invocation: domain::Invocation::new(
                    domain::SkillName::parse("s").unwrap(),
                    chrono::Utc::now(),
                    true,
                ),
            })
            .collect();
        let line = serde_json::to_vec(&batch[0].invocation).unwrap().len() + 1;
        let (body, n, last) = body_of(&batch, 2 * line + 1).unwrap();
        assert_eq!((n, last, body.len()), (2, 20, 2 * line));
        let (_, n, last) = body_of(&batch, 1).unwrap();
        assert_eq!((n, last), (1, 10), "one at least, however large");
        let (_, n, last) = body_of(&batch, usize::MAX).unwrap();
        assert_eq!((n, last), (3, 30));
    }

    #[test]
    fn the_cursor_is_kept_by_the_url_without_query_or_trailing_slash() {
        let (server, url) = endpoint("http://h:4318/?x=1").unwrap();
        assert_eq!(server, "http://h:4318");
        assert_eq!(url.as_str(), "http://h:4318/api/v1/invocations");
        let (server, url) = endpoint("https://h/metrics/").unwrap();
        assert_eq!(server, "https://h/metrics");
        assert_eq!(url.as_str(), "https://h/metrics/api/v1/invocations");
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_not_echoed() {
        let e = endpoint("http://u:secret@h:4318").unwrap_err().to_string();
        assert!(e.contains("no credentials"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        assert!(endpoint("ftp://h").is_err());
        assert!(endpoint("not a url").is_err());
    }
}
