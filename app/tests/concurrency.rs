//! Balance imports and rebuilds while other processes record skills they
//! name for the first time: nothing recorded may be folded out.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use infrastructure::domain::SkillAggregate;
use infrastructure::testing::TestStore;

const WRITERS: usize = 3;
const EVENTS: usize = 400;

fn skill(writer: usize, j: usize) -> String {
    format!("w{writer}-first-{j}")
}

async fn balances_and_rebuilds_never_erase_a_concurrent_record(store: &TestStore) {
    // Every writer skill also has an opening balance of one invocation, so
    // each balance import recomputes exactly the rows the writers create.
    let mut balances = BTreeMap::new();
    for w in 0..WRITERS {
        for j in 0..EVENTS {
            balances.insert(
                skill(w, j),
                SkillAggregate {
                    total: 1,
                    completed: 1,
                    duration_count: 1,
                    total_duration_micros: 2_000_000,
                    ..SkillAggregate::default()
                },
            );
        }
    }
    let mut children = Vec::new();
    for w in 0..WRITERS {
        let body: String = (0..EVENTS)
            .map(|j| {
                format!(
                    "{{\"skill_name\":\"{}\",\"invoked_at\":\"2025-03-01T10:{:02}:{:02}Z\",\"completed\":true,\"duration_seconds\":1.5}}\n",
                    skill(w, j),
                    j / 60,
                    j % 60
                )
            })
            .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
            // One event per transaction: as many first records as possible.
            .args(["ingest", "-", "--batch-size", "1"])
            .env("SKILL_METRICS_DATABASE_URL", store.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        children.push(child);
    }
    let mut rounds = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) || rounds < 4 {
        for _ in 0..3 {
            store
                .put_balances("legacy:concurrency-test", balances.clone())
                .await
                .unwrap();
        }
        store.rebuild().await.unwrap();
        rounds += 1;
        // Let the writers in: on SQLite back-to-back imports would hold the
        // one write lock for longer than a writer's busy timeout.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.invocations_read, (WRITERS * EVENTS) as u64);
    let metrics = store.metrics(&[]).await.unwrap();
    assert_eq!(metrics.len(), WRITERS * EVENTS);
    for m in &metrics {
        assert_eq!(
            (m.total_invocations, m.duration_count),
            (2, 2),
            "{}: the recorded event and the balance",
            m.skill_name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    balances_and_rebuilds_never_erase_a_concurrent_record(&TestStore::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(store) = TestStore::postgres().await {
        balances_and_rebuilds_never_erase_a_concurrent_record(&store).await;
    }
}
