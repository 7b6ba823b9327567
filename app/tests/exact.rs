//! Sums that do not depend on order: the same events, ingested in any order
//! and any batch size, on SQLite or PostgreSQL, and after `rebuild`, give
//! byte-identical `metrics --json` and `summary --json` (apart from the time
//! they were computed).

use infrastructure::testing::TestStore;

use crate::support::{self, ok};
use serde_json::Value;

fn cli(store: &TestStore, args: &[&str], stdin: Option<&[u8]>) -> String {
    ok(&support::cli(store, args, stdin))
}

/// Events whose durations have many significant digits, so that a
/// floating-point sum would differ in its last digits between groupings.
fn events() -> Vec<String> {
    (0..4000u64)
        .map(|i| {
            let duration = (i.wrapping_mul(2_654_435_761) % 10_000_000) as f64 / 7_919.0 + 0.1;
            format!(
                "{{\"id\":\"{}\",\"skill_name\":\"{}\",\"invoked_at\":\"2025-02-{:02}T{:02}:{:02}:{:02}.{:06}Z\",\
                 \"completed\":{},\"duration_seconds\":{duration},\"session_id\":\"s-{}\",\
                 \"workflow_path\":\"path/{}\",\"error_type\":{}}}",
                uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 + u128::from(i)),
                ["alpha", "beta", "gamma", "delta"][(i % 4) as usize],
                1 + i % 28,
                i % 24,
                (i / 7) % 60,
                (i * 13) % 60,
                (i * 7_919) % 1_000_000,
                i % 9 != 0,
                i / 40,
                i % 5,
                if i % 9 == 0 { "\"Timeout\"" } else { "null" }
            )
        })
        .collect()
}

/// `metrics --json` and `summary --json` without the times they were computed.
fn figures(store: &TestStore) -> (String, String) {
    let strip = |text: &str, key: &str| -> String {
        let mut v: Value = serde_json::from_str(text).unwrap();
        match &mut v {
            Value::Array(rows) => rows.iter_mut().for_each(|r| {
                r.as_object_mut().unwrap().remove(key);
            }),
            Value::Object(o) => {
                o.remove(key);
            }
            _ => unreachable!("JSON output is an array or an object"),
        }
        serde_json::to_string_pretty(&v).unwrap()
    };
    let metrics = strip(
        &cli(store, &["metrics", "--json"], None),
        "last_aggregated_at",
    );
    let summary = strip(
        &cli(store, &["summary", "--refresh", "--json"], None),
        "refresh_time",
    );
    (metrics, summary)
}

/// The events in `order`, ingested `batch` at a time, into a fresh store.
async fn ingest(store: &TestStore, order: &[String], batch: usize) -> (String, String) {
    let body = order.join("\n") + "\n";
    cli(
        store,
        &["ingest", "-", "--batch-size", &batch.to_string()],
        Some(body.as_bytes()),
    );
    figures(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_order_batch_size_backend_or_rebuild_gives_identical_json() {
    let forward = events();
    let mut reverse = forward.clone();
    reverse.reverse();
    // A fixed interleaving: every 7th, then the rest, from the end.
    let mut shuffled: Vec<String> = forward.iter().step_by(7).cloned().collect();
    shuffled.extend(
        forward
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, _)| i % 7 != 0)
            .map(|(_, e)| e.clone()),
    );
    let runs: [(&[String], usize); 3] = [(&forward, 5000), (&reverse, 7), (&shuffled, 333)];

    let mut stores = vec![TestStore::sqlite().await];
    if let Some(pg) = TestStore::postgres().await {
        stores.push(pg);
    }
    let mut reference: Option<(String, String)> = None;
    for backend in &stores {
        for (i, (order, batch)) in runs.iter().enumerate() {
            let fresh;
            let store = if i == 0 {
                backend
            } else {
                fresh = match backend.backend() {
                    sea_orm::DbBackend::Postgres => TestStore::postgres().await.unwrap(),
                    _ => TestStore::sqlite().await,
                };
                &fresh
            };
            let got = ingest(store, order, *batch).await;
            let label = format!("{:?}, order {i}, batch {batch}", store.backend());
            match &reference {
                None => reference = Some(got),
                Some(want) => {
                    assert_eq!(got.0, want.0, "metrics --json differ: {label}");
                    assert_eq!(got.1, want.1, "summary --json differ: {label}");
                }
            }
        }
        // Recomputed from the log: the same figures again.
        cli(backend, &["rebuild"], None);
        let rebuilt = figures(backend);
        let want = reference.as_ref().unwrap();
        assert_eq!(
            &rebuilt.0,
            &want.0,
            "metrics after rebuild on {:?}",
            backend.backend()
        );
        assert_eq!(
            &rebuilt.1,
            &want.1,
            "summary after rebuild on {:?}",
            backend.backend()
        );
        // Exits non-zero (and fails `cli`) on any difference.
        cli(backend, &["verify"], None);
    }
}
