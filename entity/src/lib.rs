//! Sea-ORM entities, one per table of the schema built by the `migration`
//! crate. Entities are used to read; the schema itself is never synced from them.

pub mod api_tokens;
pub mod dashboard_logins;
pub mod log_prune_gate;
pub mod pruned_invocations;
pub mod push_cursors;
pub mod schema_migrations;
pub mod serve_addresses;
pub mod session_skill;
pub mod session_skill_numbered;
pub mod session_skill_pruned;
pub mod sessions;
pub mod skill_invocation;
pub mod skill_invocation_log;
pub mod skill_map_counts;
pub mod skill_metrics;
pub mod skill_metrics_balance;
pub mod skill_metrics_pruned;
pub mod skill_metrics_summary;
pub mod skill_rollups;
pub mod skill_rollups_daily;
pub mod skill_rollups_pruned;
pub mod skill_rollups_state;
