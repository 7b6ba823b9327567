//! `dashboard_logins`: one-time login codes and the browser sessions they
//! open, kept as hashes.

use sea_orm::entity::prelude::*;

/// A login code or a session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dashboard_logins")]
pub struct Model {
    /// SHA-256 of the secret, lowercase hex; the secret is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub secret_hash: String,
    /// `code` (opens one session, once) or `session` (a browser's cookie).
    pub kind: String,
    /// When it was made.
    pub created_at: DateTimeUtc,
    /// When it stops working.
    pub expires_at: DateTimeUtc,
    /// When a code was used; a used code opens nothing.
    pub used_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
