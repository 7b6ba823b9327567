//! `bench --scenario serve`: the server on a loopback socket, fed by the
//! real OpenTelemetry OTLP log exporter (http/protobuf) in batches of 512
//! Claude-Code-shaped `tool_result` events, from K clients at once.
//!
//! The records are made before the clock starts (through an SDK logger, as
//! an application makes them); what is timed is each export request, from
//! the client's first byte to the server's answer, and the whole run. The
//! exporter is driven directly with the SDK's `LogBatch`, so every request
//! carries exactly 512 records and its latency is measured alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::Scope;
use infrastructure::SkillMetricsStore;
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter, LogProcessor, SdkLogRecord, SdkLoggerProvider,
};
use serde_json::{Value, json};

use super::mix::Mix;

/// Records per export request.
pub(crate) const BATCH: usize = 512;

/// Keeps every record emitted, to be exported by the bench itself.
#[derive(Debug, Default)]
struct Collect(Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>);

impl LogProcessor for Collect {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if let Ok(mut all) = self.0.lock() {
            all.push((record.clone(), scope.clone()));
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

/// Event `i` of the mix as Claude Code reports a Skill tool call.
fn records(mix: &Mix, n: u64) -> Vec<(SdkLogRecord, InstrumentationScope)> {
    let kept = Arc::new(Mutex::new(Vec::with_capacity(
        usize::try_from(n).unwrap_or(0),
    )));
    let provider = SdkLoggerProvider::builder()
        .with_log_processor(Collect(Arc::clone(&kept)))
        .build();
    let logger = provider.logger("com.anthropic.claude_code.events");
    for i in 0..n {
        let event = mix.event(i);
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from("claude_code.tool_result"));
        record.add_attribute("event.name", "tool_result");
        record.add_attribute("event.timestamp", event.invoked_at.to_rfc3339());
        record.add_attribute(
            "session.id",
            event
                .session_id
                .as_ref()
                .map_or("s", |s| s.as_str())
                .to_owned(),
        );
        record.add_attribute("tool_name", "Skill");
        record.add_attribute(
            "tool_parameters",
            json!({ "skill_name": event.skill_name.as_str() }).to_string(),
        );
        record.add_attribute("tool_use_id", format!("toolu_bench_{i}"));
        record.add_attribute("success", if event.completed { "true" } else { "false" });
        record.add_attribute(
            "duration_ms",
            ((event.duration_seconds.unwrap_or(0.0) * 1000.0) as u64).to_string(),
        );
        record.add_attribute("prompt.id", format!("prompt-{}", i / 4));
        if !event.completed {
            record.add_attribute("error", "Error: command timed out after 120000ms");
        }
        logger.emit(record);
    }
    drop(provider);
    kept.lock()
        .map(|mut all| std::mem::take(&mut *all))
        .unwrap_or_default()
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1000.0
}

/// Runs the scenario on `store` (fresh) and returns the bench line, and a
/// failure when events were lost.
pub(crate) async fn run(
    store: &SkillMetricsStore,
    mix: &Mix,
    n: u64,
    clients: u64,
    backend: &str,
) -> anyhow::Result<(Value, Option<anyhow::Error>)> {
    let token = store.create_token("bench", Scope::Ingest).await?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}/v1/logs", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(
        store.clone(),
        listener,
        server::Limits::default(),
        async {
            stopped.await.ok();
        },
    ));

    let all = Arc::new(records(mix, n));
    let chunks: Vec<std::ops::Range<usize>> = (0..all.len())
        .step_by(BATCH)
        .map(|from| from..(from + BATCH).min(all.len()))
        .collect();
    let mut exporters = Vec::new();
    for _ in 0..clients {
        let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {token}"))]);
        exporters.push(
            opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint.clone())
                .with_headers(headers)
                .with_timeout(Duration::from_secs(60))
                .build()
                .context("making an OTLP exporter")?,
        );
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, exporter) in exporters.into_iter().enumerate() {
        let mine: Vec<_> = chunks
            .iter()
            .skip(c)
            .step_by(clients as usize)
            .cloned()
            .collect();
        let all = Arc::clone(&all);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            for range in mine {
                let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                    all[range].iter().map(|(r, s)| (r, s)).collect();
                let t = Instant::now();
                exporter
                    .export(LogBatch::new(&refs))
                    .await
                    .map_err(|e| anyhow::anyhow!("an export failed: {e}"))?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.send(()).ok();
    serving.await??;

    latencies.sort();
    let stored = u64::try_from(store.info().await?.invocations).unwrap_or(0);
    let lost = n.saturating_sub(stored);
    let line = json!({
        "scenario": "serve", "backend": backend, "events": n, "clients": clients,
        "batch": BATCH, "requests": latencies.len(), "seconds": seconds,
        "events_per_sec": n as f64 / seconds,
        "request_p50_ms": quantile(&latencies, 0.5),
        "request_p99_ms": quantile(&latencies, 0.99),
        "lost": lost,
    });
    let failure = (lost > 0 || stored != n)
        .then(|| anyhow::anyhow!("{lost} of {n} events are not in the store after the run"));
    Ok((line, failure))
}
