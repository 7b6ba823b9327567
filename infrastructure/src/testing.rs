//! Test support for embedders: a fresh, migrated store per test.
//!
//! Add `infrastructure = { ..., features = ["test-support"] }` to your
//! dev-dependencies. SQLite needs nothing. PostgreSQL uses the server in
//! `SKILL_METRICS_TEST_POSTGRES_URL` (its user must be able to create
//! databases) or, when that is unset and the PostgreSQL server binaries are
//! installed (`PG_BIN`, default `/usr/lib/postgresql/15/bin`), a throwaway
//! server started once per test process in a temporary folder and stopped when
//! the process ends. Each test gets its own database, dropped afterwards unless
//! `SKILL_METRICS_KEEP_TEST_DB=1`.
//!
//! ```no_run
//! use infrastructure::testing::TestStore;
//!
//! #[tokio::test]
//! async fn counts_one_invocation() {
//!     let store = TestStore::sqlite().await; // or: let Some(store) = TestStore::postgres().await else { return };
//!     store.track("my-skill").start().unwrap().complete().await.unwrap();
//!     assert_eq!(store.metrics(&["my-skill"]).await.unwrap()[0].total_invocations, 1);
//! }
//! ```

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
    ///
    /// The process-wide settings of [`crate::tune_sqlite`] are not
    /// installed here: tests run on parallel threads, some opening SQLite by
    /// themselves, so the harness cannot keep its contract (decision D66).
    /// The CLI's tests run the binary, which installs them.
    pub async fn sqlite_with(mode: MigrationMode) -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary folder");
        let path = dir.path().join("store.db");
        let url = DatabaseUrl::sqlite_file(&path).to_string();
        let store = open(&url, mode).await;
        Self {
            store,
            url,
            dir: Some(dir),
            postgres: None,
        }
    }

    /// A migrated private in-memory SQLite store. It runs the general
    /// (sqlx) write and read paths, where a SQLite file runs the store's own
    /// connections; scenarios run on both, so neither path goes untested.
    pub async fn sqlite_in_memory() -> Self {
        let url = "sqlite::memory:".to_owned();
        let store = open(&url, MigrationMode::Apply).await;
        Self {
            store,
            url,
            dir: None,
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
        let Some(admin_url) = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .or_else(|| throwaway_server().clone())
        else {
            let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: run the tests through scripts/test-all.sh"
            );
            eprintln!(
                "skipping the PostgreSQL variant: {POSTGRES_URL_VAR} is not set and no PostgreSQL binaries were found"
            );
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

/// The admin URL of a PostgreSQL server started for this process, if the
/// binaries are installed; started on first use.
fn throwaway_server() -> &'static Option<String> {
    static SERVER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| match start_server() {
        Ok(url) => Some(url),
        Err(e) => {
            eprintln!("could not start a throwaway PostgreSQL: {e}");
            None
        }
    })
}

fn start_server() -> Result<String, String> {
    use std::process::{Command, Stdio};
    let bin = std::path::PathBuf::from(
        std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
    );
    if !bin.join("initdb").exists() {
        return Err(format!("no initdb in {}", bin.display()));
    }
    // The server refuses to run as root: run it as `postgres` then.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    let dir = tempfile::Builder::new()
        .prefix("skill-metrics-pg-")
        .tempdir_in("/tmp")
        .map_err(|e| e.to_string())?
        .keep();
    let as_user = |program: &std::path::Path| {
        let mut c = if root {
            Command::new("runuser")
        } else {
            Command::new(program)
        };
        if root {
            c.args(["-u", "postgres", "--"]).arg(program);
        }
        c
    };
    if root {
        let status = Command::new("chown")
            .arg("postgres")
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot hand the temporary folder to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let init = as_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "skill_metrics",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    if !init.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // A watcher stops the server and removes the folder once this process is
    // gone, however it ends (a static is never dropped).
    let script = r#"
        "$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$2/log" 2>&1 &
        pid=$!
        while [ -d "/proc/$4" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
        kill -INT "$pid" 2>/dev/null; wait "$pid"; rm -rf "$2"
    "#;
    as_user(std::path::Path::new("/bin/sh"))
        .args(["-c", script, "sh"])
        .arg(&bin)
        .arg(&dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    for _ in 0..300 {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(format!(
                "postgres://skill_metrics@127.0.0.1:{port}/postgres"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!(
        "the server did not start; see {}/log",
        dir.display()
    ))
}
