//! Integration tests: every scenario runs on SQLite and on PostgreSQL.

mod importing;
mod insights;
mod maps;
mod pieces;
mod prune;
mod reading;
mod recording;
mod rollups;
mod schema;
mod sequence;
mod tokens;
mod tracking;
mod trust;
