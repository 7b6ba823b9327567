//! The OTLP receiver with a real OpenTelemetry client: the
//! `opentelemetry-otlp` log exporter, in http/protobuf and http/json, over
//! a real socket, sending Claude-Code-shaped events. The resulting metrics
//! are checked exactly, on both backends.

use std::collections::HashMap;

use domain::Scope;
use infrastructure::testing::TestStore;
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use tests::on_both_backends;

use crate::support::Running;

/// A tool call as Claude Code reports it.
struct Call {
    tool: &'static str,
    id: String,
    success: bool,
    ms: u32,
    skill: Option<&'static str>,
}

/// Sends `calls` as `tool_result` events through the exporter, to `url`,
/// then shuts the provider down (which flushes).
fn send(url: String, token: String, protocol: Protocol, gzip: bool, calls: Vec<Call>) {
    let mut headers = HashMap::new();
    headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
    let mut exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(url)
        .with_headers(headers);
    if gzip {
        exporter = exporter.with_compression(Compression::Gzip);
    }
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(exporter.build().expect("an exporter"))
        .build();
    let logger = provider.logger("com.anthropic.claude_code.events");
    for call in calls {
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from("claude_code.tool_result"));
        record.add_attribute("event.name", "tool_result");
        record.add_attribute("session.id", "otel-s1");
        record.add_attribute("tool_name", call.tool);
        record.add_attribute("tool_use_id", call.id);
        record.add_attribute("success", if call.success { "true" } else { "false" });
        record.add_attribute("duration_ms", call.ms.to_string());
        if let Some(skill) = call.skill {
            record.add_attribute("tool_parameters", format!(r#"{{"skill_name":"{skill}"}}"#));
        }
        if !call.success {
            record.add_attribute("error", "Error: command timed out");
        }
        logger.emit(record);
    }
    provider.shutdown().expect("every record was exported");
}

/// A server over the test's store, and the URL of its OTLP logs endpoint.
async fn start(store: &TestStore) -> Running {
    let mut running = Running::start(store, Scope::Ingest).await;
    running.url.push_str("/v1/logs");
    running
}

async fn a_real_exporter_records_exact_metrics(store: &TestStore) {
    let Running {
        url,
        token,
        stop,
        serving,
    } = start(store).await;
    let runs = [
        (Protocol::HttpBinary, false, "bin"),
        (Protocol::HttpJson, false, "json"),
        (Protocol::HttpBinary, true, "gz"),
    ];
    for (protocol, gzip, tag) in runs {
        let calls = (0..40)
            .map(|i| Call {
                tool: if i % 4 == 0 { "Skill" } else { "Bash" },
                id: format!("toolu_{tag}_{i}"),
                success: i % 5 != 0,
                ms: 100 * (i + 1),
                skill: (i % 4 == 0).then_some("plugin:review"),
            })
            .collect();
        let (url, token) = (url.clone(), token.clone());
        tokio::task::spawn_blocking(move || send(url, token, protocol, gzip, calls))
            .await
            .unwrap();
    }
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    // Per run: 10 Skill calls (i = 0, 4, …, 36), of which i = 0, 20 failed;
    // 30 Bash calls, of which i = 5, 10, 15, 25, 30, 35 failed.
    let metrics = store.metrics(&[]).await.unwrap();
    let by = |name: &str| metrics.iter().find(|m| m.skill_name == name).unwrap();
    let review = by("plugin:review");
    assert_eq!(
        (review.total_invocations, review.completed_invocations),
        (30, 24)
    );
    assert_eq!(review.common_errors.get("Timeout"), Some(&6));
    let bash = by("Bash");
    assert_eq!(
        (bash.total_invocations, bash.completed_invocations),
        (90, 72)
    );
    // Completed Skill durations per run: (i + 1) × 0.1 s for i = 4, 8, 12,
    // 16, 24, 28, 32, 36: 16.8 s, three runs.
    assert!(
        (review.total_duration_seconds - 50.4).abs() < 1e-9,
        "{}",
        review.total_duration_seconds
    );
    assert!(store.verify().await.unwrap().is_clean());
}

async fn eight_clients_at_once_lose_nothing(store: &TestStore) {
    let Running {
        url,
        token,
        stop,
        serving,
    } = start(store).await;
    const CLIENTS: usize = 8;
    const EACH: u32 = 250;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let calls = (0..EACH)
                .map(|i| Call {
                    tool: ["Bash", "Read", "Edit", "Grep"][(i % 4) as usize],
                    id: format!("toolu_c{c}_{i}"),
                    success: i % 10 != 0,
                    ms: i + 1,
                    skill: None,
                })
                .collect();
            let protocol = if c % 2 == 0 {
                Protocol::HttpBinary
            } else {
                Protocol::HttpJson
            };
            let (url, token) = (url.clone(), token.clone());
            tokio::task::spawn_blocking(move || send(url, token, protocol, c % 3 == 0, calls))
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    let metrics = store.metrics(&[]).await.unwrap();
    let total: i64 = metrics.iter().map(|m| m.total_invocations).sum();
    assert_eq!(
        total,
        (CLIENTS as i64) * i64::from(EACH),
        "none lost, none twice"
    );
    let completed: i64 = metrics.iter().map(|m| m.completed_invocations).sum();
    assert_eq!(completed, (CLIENTS as i64) * i64::from(EACH) * 9 / 10);
    assert!(store.verify().await.unwrap().is_clean());
}

on_both_backends!(
    shared: a_real_exporter_records_exact_metrics,
    eight_clients_at_once_lose_nothing,
);
