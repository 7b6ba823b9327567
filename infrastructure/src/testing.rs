//! Test support for embedders: a fresh, migrated store per test.
//!
//! Add `infrastructure = { ..., features = ["test-support"] }` to your
//! dev-dependencies. SQLite needs nothing; PostgreSQL needs a server URL in
//! `SKILL_METRICS_TEST_POSTGRES_URL` whose user may create databases (the
//! project's `scripts/with-postgres.sh` starts a throwaway one). Each test
//! gets its own database, dropped afterwards unless `SKILL_METRICS_KEEP_TEST_DB=1`.

use std::ops::Deref;

use sea_orm::{ConnectionTrait, Database};

use crate::{ConnectOptions, DatabaseUrl, MigrationMode, SkillMetricsStore, redact_url};

/// Environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "SKILL_METRICS_TEST_POSTGRES_URL";
/// When set to 1, a missing PostgreSQL fails the test instead of skipping it.
pub const REQUIRE_POSTGRES_VAR: &str = "SKILL_METRICS_REQUIRE_POSTGRES";
/// When set to 1, test databases are kept for inspection.
pub const KEEP_VAR: &str = "SKILL_METRICS_KEEP_TEST_DB";

/// A store that lives as long as one test. Derefs to [`SkillMetricsStore`].
pub struct TestStore {
    store: SkillMetricsStore,
    url: String,
    dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

fn keep() -> bool {
    std::env::var(KEEP_VAR).is_ok_and(|v| v == "1")
}

impl TestStore {
    /// A migrated store in a new SQLite file in a temporary folder.
    pub async fn sqlite() -> Self {
        Self::sqlite_with(MigrationMode::Apply).await
    }

    /// A SQLite store with the given schema handling (`Skip` for an empty database).
    pub async fn sqlite_with(mode: MigrationMode) -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary folder");
        let path = dir.path().join("store.db");
        let url = format!("sqlite://{}", path.display());
        let store = open(&url, mode).await;
        Self {
            store,
            url,
            dir: Some(dir),
            postgres: None,
        }
    }

    /// A migrated store in a new PostgreSQL database, or `None` when no
    /// server is configured (a failure instead when
    /// `SKILL_METRICS_REQUIRE_POSTGRES=1`).
    pub async fn postgres() -> Option<Self> {
        Self::postgres_with(MigrationMode::Apply).await
    }

    /// A PostgreSQL store with the given schema handling.
    pub async fn postgres_with(mode: MigrationMode) -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: run the tests through scripts/test-all.sh"
            );
            eprintln!("skipping the PostgreSQL variant: {POSTGRES_URL_VAR} is not set");
            return None;
        };
        let name = format!("skill_metrics_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", redact_url(&admin_url)));
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let store = open(&url, mode).await;
        Some(Self {
            store,
            url,
            dir: None,
            postgres: Some((admin_url, name)),
        })
    }

    /// The full URL (password included: pass it to child processes, never print it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The folder holding a SQLite store's file.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Opens another store on the same database (another pool, as another
    /// process would).
    pub async fn reopen(
        &self,
        mode: MigrationMode,
    ) -> Result<SkillMetricsStore, crate::StoreError> {
        let mut options = ConnectOptions::new(DatabaseUrl::parse(&self.url)?);
        options.migrations = mode;
        SkillMetricsStore::connect_with(options).await
    }
}

fn with_database(url: &str, name: &str) -> String {
    let mut parsed = ::url::Url::parse(url).expect("the PostgreSQL test URL is a URL");
    parsed.set_path(name);
    parsed.to_string()
}

async fn open(url: &str, mode: MigrationMode) -> SkillMetricsStore {
    let mut options = ConnectOptions::new(DatabaseUrl::parse(url).expect("a valid test URL"));
    options.migrations = mode;
    SkillMetricsStore::connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("opening the test store {}: {e}", redact_url(url)))
}

impl Deref for TestStore {
    type Target = SkillMetricsStore;
    fn deref(&self) -> &SkillMetricsStore {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if keep() {
            if let Some(dir) = self.dir.take() {
                eprintln!("keeping test store {}", dir.keep().display());
            }
            if let Some((_, name)) = &self.postgres {
                eprintln!("keeping test database {name}");
            }
            return;
        }
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop cannot await, and may run inside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                Some(())
            })
        })
        .join();
    }
}
