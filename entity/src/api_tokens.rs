//! `api_tokens`: bearer tokens for the server, kept as hashes.

use sea_orm::entity::prelude::*;

/// One token: its name, what it may do, and the hash it is checked by.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    /// Row id (a UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The name given at creation; one live token per name.
    pub name: String,
    /// `ingest`, `read` or `admin`.
    pub scope: String,
    /// SHA-256 of the token, lowercase hex; the token itself is never stored.
    pub token_hash: String,
    /// When it was made.
    pub created_at: DateTimeUtc,
    /// When it last authenticated a request.
    pub last_used_at: Option<DateTimeUtc>,
    /// When it was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
