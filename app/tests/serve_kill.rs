//! `skill-metrics serve` killed with SIGKILL while clients post, both to
//! the API and to the OTLP receiver (whose requests share transactions,
//! D79): whatever it answered 200 is in the store afterwards, and the
//! store verifies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infrastructure::testing::TestStore;
use tests::on_both_backends;

use crate::support::{cli, ok};

/// POSTs `body` to `path` over a plain HTTP/1.1 connection and returns the
/// status code, or `None` when the server is gone.
pub(crate) fn post(address: &str, path: &str, token: &str, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// An OTLP/JSON logs request of `n` Claude Code tool results of the tool
/// `kill-otlp`, with tool_use_ids from `first` on.
pub(crate) fn otlp_body(first: u32, n: u32) -> String {
    let records: Vec<String> = (first..first + n)
        .map(|i| {
            let attr =
                |k: &str, v: &str| format!(r#"{{"key":"{k}","value":{{"stringValue":"{v}"}}}}"#);
            format!(
                r#"{{"timeUnixNano":"1739178000000000000","attributes":[{},{},{},{},{}]}}"#,
                attr("event.name", "tool_result"),
                attr("tool_name", "kill-otlp"),
                attr("tool_use_id", &format!("toolu_kill_{i}")),
                attr("success", "true"),
                attr("duration_ms", "5"),
            )
        })
        .collect();
    format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

async fn what_was_acknowledged_survives_a_kill(store: &TestStore) {
    let token = ok(&cli(
        store,
        &["token", "create", "load", "--scope", "ingest"],
        None,
    ));
    let token = token.trim().to_owned();
    let (mut server, _, address) = start_serve(store);
    // Posts batches until the server is gone; keeps the ids of every batch
    // answered 200.
    let poster = {
        let (address, token) = (address.clone(), token.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let started = Instant::now();
            for batch in 0..10_000u32 {
                if started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let ids: Vec<String> = (0..50)
                    .map(|i| format!("00000000-0000-4000-8000-{:012x}", batch * 50 + i))
                    .collect();
                let body: String = ids
                    .iter()
                    .map(|id| {
                        format!(
                            "{{\"id\":\"{id}\",\"skill_name\":\"load\",\"invoked_at\":\"2025-02-10T09:00:00Z\",\"completed\":true,\"duration_seconds\":1}}\n"
                        )
                    })
                    .collect();
                match post(&address, "/api/v1/invocations", &token, &body) {
                    Some(200) => acknowledged.extend(ids),
                    Some(_) => {}
                    None => break,
                }
            }
            acknowledged
        })
    };
    // And OTLP requests beside them, four posters at once so that their
    // requests are grouped into shared transactions.
    let otlp_posters: Vec<_> = (0..4u32)
        .map(|p| {
            let (address, token) = (address.clone(), token.clone());
            std::thread::spawn(move || {
                let mut acknowledged = 0u32;
                let started = Instant::now();
                for batch in 0..10_000u32 {
                    if started.elapsed() > Duration::from_secs(60) {
                        break;
                    }
                    let body = otlp_body((p * 10_000 + batch) * 20, 20);
                    match post(&address, "/v1/logs", &token, &body) {
                        Some(200) => acknowledged += 20,
                        Some(_) => {}
                        None => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Let some batches land, then kill it mid-stream.
    let waited = Instant::now();
    while store
        .metrics(&["load"])
        .await
        .unwrap()
        .first()
        .map_or(0, |m| m.total_invocations)
        < 500
        && waited.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let acknowledged = poster.join().unwrap();
    let otlp_acknowledged: u32 = otlp_posters.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(otlp_acknowledged > 0, "no OTLP request was answered");
    // The poster sends one batch at a time, so at most that one batch (50)
    // can be committed and killed before its answer reached the poster.
    assert!(
        acknowledged.len() + 50 >= 500,
        "{} acknowledged",
        acknowledged.len()
    );
    let reopened = store
        .reopen(infrastructure::MigrationMode::Apply)
        .await
        .unwrap();
    let recorded = reopened.metrics(&["load"]).await.unwrap()[0].total_invocations;
    assert!(
        recorded >= i64::try_from(acknowledged.len()).unwrap(),
        "{recorded} recorded, {} acknowledged",
        acknowledged.len()
    );
    let stored: std::collections::HashSet<String> = reopened
        .recent(
            &infrastructure::RecentFilter {
                skill: Some("load".into()),
                session: None,
            },
            1_000_000,
        )
        .await
        .unwrap()
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged but missing, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // Every OTLP event has an id of its own, so acknowledged ones are all
    // there when at least as many are recorded.
    let otlp_recorded = reopened
        .metrics(&["kill-otlp"])
        .await
        .unwrap()
        .first()
        .map_or(0, |m| m.total_invocations);
    assert!(
        otlp_recorded >= i64::from(otlp_acknowledged),
        "{otlp_recorded} OTLP events recorded, {otlp_acknowledged} acknowledged"
    );
    assert!(reopened.verify().await.unwrap().is_clean());
}

on_both_backends!(shared: what_was_acknowledged_survives_a_kill);

/// Starts `serve` on a loopback port of its own; returns the process, its
/// stderr lines so far (up to "serving …") and the address.
fn start_serve(store: &TestStore) -> (std::process::Child, Vec<String>, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SKILL_METRICS_DATABASE_URL", store.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = server.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let address = loop {
        let line = lines.next().expect("serve says where it listens").unwrap();
        seen.push(line.clone());
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // The rest of stderr is drained, so the server never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    (server, seen, address)
}

async fn a_first_start_makes_a_token_that_works_and_sigterm_stops_cleanly(store: &TestStore) {
    let (mut server, seen, address) = start_serve(store);
    let text = seen.join("\n");
    let header = seen
        .iter()
        .find(|l| l.starts_with("export OTEL_EXPORTER_OTLP_HEADERS="))
        .unwrap_or_else(|| panic!("no header line in\n{text}"));
    assert!(
        text.contains(&format!(
            "export OTEL_EXPORTER_OTLP_ENDPOINT=http://{address}"
        )),
        "{text}"
    );
    assert!(
        text.contains("export CLAUDE_CODE_ENABLE_TELEMETRY=1"),
        "{text}"
    );
    let token = header
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    assert!(token.starts_with("smk_"), "{header}");
    // The token printed is the one the store keeps (as a hash): it is let in.
    assert_eq!(
        post(&address, "/v1/logs", &token, &otlp_body(0, 3)),
        Some(200)
    );
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    let recorded = store.metrics(&["kill-otlp"]).await.unwrap()[0].total_invocations;
    assert_eq!(recorded, 3);
    // A second start finds a live token: no new one, no lines.
    let (mut again, seen, _) = start_serve(store);
    assert!(
        !seen.iter().any(|l| l.contains("OTEL_EXPORTER")),
        "{seen:?}"
    );
    again.kill().unwrap();
    again.wait().unwrap();
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
}

on_both_backends!(shared: a_first_start_makes_a_token_that_works_and_sigterm_stops_cleanly);
