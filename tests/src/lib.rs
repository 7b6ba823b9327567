//! Shared helpers for the integration tests: one scenario, both backends.

mod insight;

pub use insight::{insight_end, insight_events};

/// Runs each named `async fn scenario(store: &TestStore)` as three tests,
/// in a module of the scenario's name: `sqlite` (a file: the store's own
/// SQLite connections), `sqlite_general` (in memory: the sqlx path) and
/// `postgres`. Scenarios that need a database another connection or
/// process can open, or a file, are listed after `shared:` and skip the
/// in-memory run.
#[macro_export]
macro_rules! on_both_backends {
    (@file_and_postgres $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sqlite() {
            let store = infrastructure::testing::TestStore::sqlite().await;
            super::$scenario(&store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres() {
            if let Some(store) = infrastructure::testing::TestStore::postgres().await {
                super::$scenario(&store).await;
            }
        }
    };
    (shared: $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            $crate::on_both_backends!(@file_and_postgres $scenario);
        }
    )*};
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            $crate::on_both_backends!(@file_and_postgres $scenario);

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_general() {
                let store = infrastructure::testing::TestStore::sqlite_in_memory().await;
                super::$scenario(&store).await;
            }
        }
    )*};
}

/// A fixed point in time plus `secs` seconds.
pub fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_739_190_896 + secs, 0).expect("a valid timestamp")
}

/// An invocation of `skill` at `at(secs)`.
pub fn invocation(
    skill: &str,
    secs: i64,
    completed: bool,
    duration: Option<f64>,
) -> domain::Invocation {
    let mut inv = domain::Invocation::new(
        domain::SkillName::parse(skill).expect("a valid name"),
        at(secs),
        completed,
    );
    inv.duration_seconds = duration;
    inv
}

/// A count map (`workflow_paths`, `common_errors`, `follow_up_actions`).
pub fn counts<const N: usize>(items: [(&str, i64); N]) -> domain::CountMap {
    items.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
}

/// Holds what a rebuild or prune holds, until the returned transaction
/// ends: SQLite's write lock, or the log's table lock on PostgreSQL.
pub async fn hold_the_store(
    store: &infrastructure::testing::TestStore,
) -> sea_orm::DatabaseTransaction {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let holder = store.connection().begin().await.expect("a transaction");
    let hold = match store.backend() {
        sea_orm::DbBackend::Postgres => {
            "LOCK TABLE skill_invocation_log IN SHARE ROW EXCLUSIVE MODE"
        }
        _ => "UPDATE skill_rollups_state SET filled = filled",
    };
    holder.execute_unprepared(hold).await.expect("the lock");
    holder
}

/// A second store on `store`'s database whose reading pool opens at most
/// one connection.
pub async fn one_connection_store(
    store: &infrastructure::testing::TestStore,
) -> infrastructure::SkillMetricsStore {
    let mut options = infrastructure::ConnectOptions::new(
        infrastructure::DatabaseUrl::parse(store.url()).expect("the test store's URL"),
    );
    options.max_connections = 1;
    infrastructure::SkillMetricsStore::connect_with(options)
        .await
        .expect("a second store")
}

/// A second store on `store`'s database whose writers wait at most
/// `millis` for a held store before giving up (D89).
pub async fn impatient_store(
    store: &infrastructure::testing::TestStore,
    millis: u64,
) -> infrastructure::SkillMetricsStore {
    let mut options = infrastructure::ConnectOptions::new(
        infrastructure::DatabaseUrl::parse(store.url()).expect("the test store's URL"),
    );
    options.busy_timeout = std::time::Duration::from_millis(millis);
    infrastructure::SkillMetricsStore::connect_with(options)
        .await
        .expect("a second store")
}
