//! Embedding skill-metrics in a plain tokio program.
//!
//! `cargo run -p skill-metrics --example embed [URL]` (default: in memory).

use std::time::Duration;

use skill_metrics::{DEFAULT_REFRESH_INTERVAL, SkillMetricsStore, StoreError};

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite::memory:".to_owned());
    // Opening applies pending migrations; a tampered schema is refused.
    let store = SkillMetricsStore::connect(&url).await?;
    // Keep the dashboard summary fresh in the background.
    let refresher = store.start_summary_refresher(DEFAULT_REFRESH_INTERVAL);

    store
        .start_session("example-session", chrono::Utc::now(), Some("/tmp/example"))
        .await?;
    for round in 0..3 {
        let handle = store
            .track("example-skill")
            .workflow("daily")
            .session("example-session")
            .start()?;
        tokio::time::sleep(Duration::from_millis(5)).await; // the skill's work
        if round == 1 {
            handle.fail("TimeoutError").await?;
        } else {
            handle.complete_with(["git commit"]).await?;
        }
    }
    store
        .end_session("example-session", chrono::Utc::now())
        .await?;

    // Errors are typed: match on what went wrong.
    match store.track("").start() {
        Err(StoreError::Invalid(e)) => println!("refused as expected: {e}"),
        other => println!("unexpected: {:?}", other.map(|_| ())),
    }

    for m in store.metrics(&[]).await? {
        println!(
            "{}: {} invocations, {:.0}% completed, p50 {:?} s",
            m.skill_name, m.total_invocations, m.completion_rate, m.p50_duration_seconds
        );
    }
    refresher.stop().await;
    Ok(())
}
