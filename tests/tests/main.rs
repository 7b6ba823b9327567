//! Integration tests: every scenario runs on SQLite and on PostgreSQL.

mod recording;
mod schema;
