//! Pure rules of skill-metrics: validated values, folding invocations into
//! aggregates, percentiles, summaries and search-text normalisation.
//!
//! Nothing here knows about a database or an async runtime; the
//! `infrastructure` crate maps these types to rows.

mod aggregate;
mod bounded;
mod error;
mod fold;
mod insight;
mod invocation;
mod legacy;
mod percentile;
mod rollup;
mod scope;
mod search;
mod summary;
mod tools;
mod values;

pub use aggregate::{CountMap, SessionSkillAggregate, SkillAggregate, micros, seconds};
pub use bounded::{MAP_LIMIT, MapKind, apply_exact, is_bounded_form_of, stays_inline, top};
pub use error::ValidationError;
pub use fold::Aggregates;
pub use insight::{
    Finding, FindingKind, Findings, InsightSettings, Side, SkillHistory, find as find_insights,
    parse_length, parse_range,
};
pub use invocation::{Invocation, MAX_DURATION_SECONDS};
pub use legacy::{
    LEGACY_NAMESPACE, LegacyInvocation, LegacySkill, legacy_invocation, legacy_timestamp,
};
pub use percentile::{
    DIGEST_BOUND, DigestError, DurationDigest, Percentiles, exact_percentile, exact_percentiles,
};
pub use rollup::{ROLLUP_ERROR_TYPES, RollupAggregate, Rollups, day_of, days_of, hour_of};
pub use scope::{MAX_TOKEN_NAME_CHARS, Scope, check_token_name};
pub use search::{SearchTerm, parse_search_query, search_text};
pub use summary::{Summary, SummaryInput, rank};
pub use tools::is_tool;
pub use values::{
    InvocationId, MAX_CONTEXT_BYTES, MAX_SKILL_NAME_CHARS, SessionId, SkillName, parse_timestamp,
    serialize_micros, serialize_opt_micros, truncate_to_micros,
};
