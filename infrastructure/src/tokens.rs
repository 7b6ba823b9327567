//! API tokens: made once and shown once, stored as SHA-256 hashes, each
//! with a scope; revoking one takes effect at the next request.

use chrono::{DateTime, Duration, Utc};
use domain::{Scope, ValidationError, check_token_name};
use entity::api_tokens;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::sql::{stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// What every token starts with, so that one pasted by mistake is
/// recognisable (and findable by secret scanners).
pub const TOKEN_PREFIX: &str = "smk_";

/// How stale a token's `last_used_at` may get before a request writes it:
/// one write a minute per token, not one per request.
const LAST_USED_RESOLUTION: Duration = Duration::minutes(1);

/// A token just made: the only time its secret is known. `Debug` hides it.
pub struct NewToken {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The bearer token itself. Show it once; it cannot be shown again.
    pub token: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("token", &"***")
            .finish()
    }
}

/// A token as listed: everything but its secret, which is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    fn from_row(m: api_tokens::Model) -> Result<Self, StoreError> {
        Ok(Self {
            scope: m.scope.parse()?,
            name: m.name,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        })
    }
}

/// The stored form of a token: SHA-256, lowercase hex. Tokens are 256
/// random bits, so a fast hash is enough: there is nothing to guess.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl SkillMetricsStore {
    /// Makes a token named `name` with `scope` and returns it: the only
    /// time its secret is seen. Only its hash is stored.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad name or when a live token already
    /// has this name (revoke it first); a database failure.
    pub async fn create_token(&self, name: &str, scope: Scope) -> Result<NewToken, StoreError> {
        check_token_name(name)?;
        let taken = api_tokens::Entity::find()
            .filter(api_tokens::Column::Name.eq(name))
            .filter(api_tokens::Column::RevokedAt.is_null())
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        let in_use = || {
            StoreError::Invalid(ValidationError::new(
                "name",
                format!("a live token is already named {name:?}: revoke it first"),
            ))
        };
        if taken.is_some() {
            return Err(in_use());
        }
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let backend = self.backend();
        let insert = stmt(
            backend,
            "INSERT INTO api_tokens (id, name, scope, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                Value::from(uuid::Uuid::new_v4().to_string()),
                Value::from(name),
                Value::from(scope.as_str()),
                Value::from(hash(&token)),
                ts(backend, domain::truncate_to_micros(Utc::now())),
            ],
        );
        match self.db.execute_raw(insert).await {
            Ok(_) => Ok(NewToken {
                name: name.to_owned(),
                scope,
                token,
            }),
            // Another process made one of this name since the check.
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                Err(in_use())
            }
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every token, live and revoked, oldest first, without secrets.
    ///
    /// # Errors
    /// A database failure, or a stored scope this version does not know.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        api_tokens::Entity::find()
            .order_by_asc(api_tokens::Column::CreatedAt)
            .order_by_asc(api_tokens::Column::Name)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(TokenInfo::from_row)
            .collect()
    }

    /// Revokes the live token named `name`: from now on it authenticates
    /// nothing. It stays listed, with the time it was revoked.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no live token has that name; a
    /// database failure.
    pub async fn revoke_token(&self, name: &str) -> Result<(), StoreError> {
        let backend = self.backend();
        let done = self
            .db
            .execute_raw(stmt(
                backend,
                "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                vec![
                    ts(backend, domain::truncate_to_micros(Utc::now())),
                    Value::from(name),
                ],
            ))
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("live token {name:?}"),
            });
        }
        Ok(())
    }

    /// The live token whose secret is `token`, if any, noting its use.
    /// A revoked or unknown token gives `None`.
    ///
    /// # Errors
    /// A database failure.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some(row) = api_tokens::Entity::find()
            .filter(api_tokens::Column::TokenHash.eq(hash(token)))
            .filter(api_tokens::Column::RevokedAt.is_null())
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let now = domain::truncate_to_micros(Utc::now());
        let stale = row
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_RESOLUTION);
        let id = row.id.clone();
        let mut info = TokenInfo::from_row(row)?;
        if stale {
            let backend = self.backend();
            // Best effort: a busy store must not turn a request it could
            // answer into an error for want of a note of when it came.
            let noted = self
                .db
                .execute_raw(stmt(
                    backend,
                    "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2",
                    vec![ts(backend, now), Value::from(id)],
                ))
                .await;
            match noted {
                Ok(_) => info.last_used_at = Some(now),
                Err(e) => tracing::debug!(error = %self.err(e), "last use of a token not noted"),
            }
        }
        Ok(Some(info))
    }
}
