//! What the dashboard needs of the store besides its reads (decision D93):
//! one-time login codes, the browser sessions they open, and the addresses
//! of running servers. Secrets are 256 random bits, shown once and stored
//! as SHA-256 hashes, as API tokens are.

use chrono::{DateTime, Duration, Utc};
use entity::serve_addresses;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Value};
use sha2::{Digest, Sha256};

use crate::sql::{stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// How long a login code works, unused.
pub const LOGIN_CODE_LIFETIME: Duration = Duration::minutes(5);
/// How long a browser session lasts.
pub const DASHBOARD_SESSION_LIFETIME: Duration = Duration::hours(12);

/// What login codes start with.
const CODE_PREFIX: &str = "sml_";

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn now() -> DateTime<Utc> {
    domain::truncate_to_micros(Utc::now())
}

/// Stores the hash of `secret` as a `kind` row living `lifetime`, after
/// deleting the rows that have expired.
async fn insert_login(
    conn: &impl ConnectionTrait,
    kind: &str,
    secret: &str,
    lifetime: Duration,
) -> Result<(), sea_orm::DbErr> {
    let backend = conn.get_database_backend();
    let at = now();
    conn.execute_raw(stmt(
        backend,
        "DELETE FROM dashboard_logins WHERE expires_at <= $1",
        vec![ts(backend, at)],
    ))
    .await?;
    conn.execute_raw(stmt(
        backend,
        "INSERT INTO dashboard_logins (secret_hash, kind, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
        vec![
            Value::from(hash(secret)),
            Value::from(kind),
            ts(backend, at),
            ts(backend, at + lifetime),
        ],
    ))
    .await?;
    Ok(())
}

impl SkillMetricsStore {
    /// Makes a login code that opens one dashboard session, once, within
    /// [`LOGIN_CODE_LIFETIME`]; returns it (only its hash is kept). Codes
    /// and sessions that have expired are deleted on the way.
    ///
    /// # Errors
    /// A database failure.
    pub async fn create_login_code(&self) -> Result<String, StoreError> {
        let code = format!("{CODE_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        insert_login(&self.db, "code", &code, LOGIN_CODE_LIFETIME)
            .await
            .map_err(|e| self.err(e))?;
        Ok(code)
    }

    /// Uses `code`: when it is a live, unused login code, marks it used and
    /// returns the secret of a new browser session; otherwise `None` (a
    /// code works once, even when two requests race).
    ///
    /// # Errors
    /// A database failure.
    pub async fn redeem_login_code(&self, code: &str) -> Result<Option<String>, StoreError> {
        let code_hash = hash(code);
        // One transaction: a code is never spent without its session.
        self.write(move |txn| {
            let code_hash = code_hash.clone();
            Box::pin(async move {
                let backend = txn.get_database_backend();
                let at = now();
                let used = txn
                    .execute_raw(stmt(
                        backend,
                        "UPDATE dashboard_logins SET used_at = $1 WHERE secret_hash = $2 \
                         AND kind = 'code' AND used_at IS NULL AND expires_at > $3",
                        vec![ts(backend, at), Value::from(code_hash), ts(backend, at)],
                    ))
                    .await?;
                if used.rows_affected() != 1 {
                    return Ok(None);
                }
                let session = hex::encode(rand::random::<[u8; 32]>());
                insert_login(txn, "session", &session, DASHBOARD_SESSION_LIFETIME).await?;
                Ok(Some(session))
            })
        })
        .await
    }

    /// Whether `secret` is a live browser session.
    ///
    /// # Errors
    /// A database failure.
    pub async fn dashboard_session_is_live(&self, secret: &str) -> Result<bool, StoreError> {
        let backend = self.backend();
        let row = self
            .db
            .query_one_raw(stmt(
                backend,
                "SELECT COUNT(*) AS n FROM dashboard_logins WHERE secret_hash = $1 \
                 AND kind = 'session' AND expires_at > $2",
                vec![Value::from(hash(secret)), ts(backend, now())],
            ))
            .await
            .map_err(|e| self.err(e))?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n").map_err(|e| self.err(e))?,
            None => 0,
        };
        Ok(n > 0)
    }

    /// A name for this store that a server of it can show and a client can
    /// compare (not a secret): derived from when its schema was first
    /// made, so two stores, even of one kind on one machine, differ.
    /// `None` before any migration.
    ///
    /// # Errors
    /// A database failure.
    pub async fn store_id(&self) -> Result<Option<String>, StoreError> {
        use sea_orm::{ColumnTrait, QueryFilter};
        let first = entity::schema_migrations::Entity::find()
            .filter(entity::schema_migrations::Column::Version.eq(1))
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(first.map(|m| {
            let made = m
                .applied_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            hex::encode(&Sha256::digest(format!("skill-metrics store {made}").as_bytes())[..12])
        }))
    }

    /// Records that a server of this store listens on `address`.
    ///
    /// # Errors
    /// A database failure.
    pub async fn note_serve_address(&self, address: &str) -> Result<(), StoreError> {
        let backend = self.backend();
        self.db
            .execute_raw(stmt(
                backend,
                "INSERT INTO serve_addresses (address, started_at) VALUES ($1, $2) \
                 ON CONFLICT (address) DO UPDATE SET started_at = excluded.started_at",
                vec![Value::from(address), ts(backend, now())],
            ))
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets `address` (its server stopped).
    ///
    /// # Errors
    /// A database failure.
    pub async fn forget_serve_address(&self, address: &str) -> Result<(), StoreError> {
        self.db
            .execute_raw(stmt(
                self.backend(),
                "DELETE FROM serve_addresses WHERE address = $1",
                vec![Value::from(address)],
            ))
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The addresses servers of this store said they listen on, the most
    /// recently started first. A server that was killed leaves its address
    /// behind: check that one answers before using it.
    ///
    /// # Errors
    /// A database failure.
    pub async fn serve_addresses(&self) -> Result<Vec<String>, StoreError> {
        Ok(serve_addresses::Entity::find()
            .order_by_desc(serve_addresses::Column::StartedAt)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|m| m.address)
            .collect())
    }
}
