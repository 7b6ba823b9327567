//! `skill-metrics serve` killed with SIGKILL while clients post: whatever
//! it answered 200 is in the store afterwards, and the store verifies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infrastructure::testing::TestStore;
use tests::on_both_backends;

use crate::support::{cli, ok};

/// POSTs `body` to `path` over a plain HTTP/1.1 connection and returns the
/// status code, or `None` when the server is gone.
fn post(address: &str, path: &str, token: &str, body: &str) -> Option<u16> {
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

async fn what_was_acknowledged_survives_a_kill(store: &TestStore) {
    let token = ok(&cli(
        store,
        &["token", "create", "load", "--scope", "ingest"],
        None,
    ));
    let token = token.trim().to_owned();
    let mut server = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SKILL_METRICS_DATABASE_URL", store.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("serve says where it listens").unwrap();
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
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
    assert!(
        acknowledged.len() >= 500,
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
    assert!(reopened.verify().await.unwrap().is_clean());
}

on_both_backends!(shared: what_was_acknowledged_survives_a_kill);
