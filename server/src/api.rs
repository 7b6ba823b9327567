//! `/api/v1/…`: the reads, answering exactly the bytes the CLI's `--json`
//! prints for the same query, and `POST /api/v1/invocations`.

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::{InsightSettings, parse_length, parse_timestamp};
use infrastructure::chrono_tz::Tz;
use infrastructure::{Bucket, RecentFilter, SkillMetricsStore, contract_json};
use serde::Deserialize;

use infrastructure::domain::Invocation;
use infrastructure::{
    Baseline, Insights, Kind, Overview, RangeSummary, Session, SessionView, SkillMetrics,
    SummaryView, TimelineBucket,
};
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::openapi::{Accepted, ErrorBody};

/// The JSON contract's bytes, with its content type.
fn contract(value: &impl serde::Serialize) -> Result<Response, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        contract_json(value)?,
    )
        .into_response())
}

fn time(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| parse_timestamp(field, t))
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// `GET /api/v1/metrics[?skill=A&skill=B…]`: every skill, or those named
/// (`metrics [A B …] --json`); 404 when skills are named and none is known.
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    tag = "read",
    params(("skill" = Option<Vec<String>>, Query, explode, description = "Only these skills (repeat the parameter); every skill when absent")),
    responses(
        (status = 200, description = "Per-skill metrics, by name: `metrics [SKILL…] --json`", body = Vec<SkillMetrics>),
        (status = 404, description = "Skills were named and none is known", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(
    State(store): State<SkillMetricsStore>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let names: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == "skill")
        .map(|(_, value)| value.into_owned())
        .collect();
    let named: Vec<&str> = names.iter().map(String::as_str).collect();
    let rows = store.metrics(&named).await?;
    if !named.is_empty() && rows.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown skills: {named:?}"),
        ));
    }
    contract(&rows)
}

/// `GET /api/v1/metrics/{skill}`: one skill (`metrics SKILL --json`), 404
/// when unknown.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/{skill}",
    tag = "read",
    params(("skill" = String, Path, description = "The skill's name")),
    responses(
        (status = 200, description = "The skill's metrics, as a one-element list: `metrics SKILL --json`", body = Vec<SkillMetrics>),
        (status = 404, description = "No such skill", body = ErrorBody),
    )
)]
pub(crate) async fn metrics_of(
    State(store): State<SkillMetricsStore>,
    Path(skill): Path<String>,
) -> Result<Response, ApiError> {
    let rows = store.metrics(&[skill.as_str()]).await?;
    if rows.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown skill: {skill:?}"),
        ));
    }
    contract(&rows)
}

/// `GET /api/v1/summary`: the stored summary (`summary --stored --json`).
#[utoipa::path(
    get,
    path = "/api/v1/summary",
    tag = "read",
    responses((status = 200, description = "The stored summary over all skills: `summary --stored --json`", body = SummaryView))
)]
pub(crate) async fn summary(State(store): State<SkillMetricsStore>) -> Result<Response, ApiError> {
    contract(&store.summary().await?)
}

/// The query of `GET /api/v1/summary/range`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeQuery {
    /// From this time (inclusive, RFC 3339 with an offset).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Until this time (exclusive, RFC 3339 with an offset).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only this project's invocations (empty: those with none).
    project: Option<String>,
}

/// `GET /api/v1/summary/range?since=&until=&project=`.
#[utoipa::path(
    get,
    path = "/api/v1/summary/range",
    tag = "read",
    params(RangeQuery),
    responses(
        (status = 200, description = "Every skill's invocations, completion and p50/p95/p99 in the range, busiest first, from the hourly rollups: `summary --since … --until … --json`", body = RangeSummary),
        (status = 400, description = "A time without an offset", body = ErrorBody),
    )
)]
pub(crate) async fn summary_range(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let summary = store
        .summary_between(
            time("since", q.since.as_deref())?,
            time("until", q.until.as_deref())?,
            q.project.as_deref(),
        )
        .await?;
    contract(&summary)
}

/// The query of `GET /api/v1/overview`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OverviewQuery {
    /// From this time (inclusive, RFC 3339 with an offset).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Until this time (exclusive, RFC 3339 with an offset).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only this project's invocations (empty: those with none).
    project: Option<String>,
    /// `all` (default), `skills` or `tools`.
    kind: Option<Kind>,
    /// UTC bucket width; by default hours up to two days, days up to 92, weeks beyond.
    bucket: Option<Bucket>,
}

/// `GET /api/v1/overview?since=&until=&project=&kind=&bucket=`: the
/// dashboard's overview of a range in one answer.
#[utoipa::path(
    get,
    path = "/api/v1/overview",
    tag = "read",
    params(OverviewQuery),
    responses(
        (status = 200, description = "Totals, every skill's figures and invocations per bucket, and all skills' invocations and p95 per bucket, from the daily and hourly rollups", body = Overview),
        (status = 400, description = "A time without an offset, or a range of more than 2,000 buckets", body = ErrorBody),
    )
)]
pub(crate) async fn overview(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, ApiError> {
    let overview = store
        .overview(
            time("since", q.since.as_deref())?,
            time("until", q.until.as_deref())?,
            q.project.as_deref(),
            q.kind.unwrap_or_default(),
            q.bucket,
        )
        .await?;
    contract(&overview)
}

/// The query of `GET /api/v1/insights`: `insights`' options, each
/// threshold defaulting as there.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InsightsQuery {
    /// The window's length before `until`: 90m, 24h, 7d (default), 2w ...
    window: Option<String>,
    /// `previous` (default) or FROM..TO (two RFC 3339 times).
    against: Option<String>,
    /// The window's end (RFC 3339 with an offset); now when absent.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only this project's invocations (empty: those with none).
    project: Option<String>,
    /// False-discovery rate over all the tests run (0.05).
    alpha: Option<f64>,
    /// Least relative move of a p50 or p95 reported (0.25).
    latency_change: Option<f64>,
    /// Completed durations needed on each side to test a p50 (20).
    min_p50_samples: Option<i64>,
    /// Completed durations needed on each side to test a p95 (100).
    min_p95_samples: Option<i64>,
    /// Invocations needed on each side to test completion or error rates (30).
    min_invocations: Option<i64>,
    /// Least drop of the completion rate reported, percentage points (5).
    completion_drop_points: Option<f64>,
    /// Invocations with an error type needed in the window and baseline together (5).
    min_errors: Option<i64>,
    /// Least factor by which an error type's rate must rise (2).
    error_rise: Option<f64>,
    /// Least factor by which a rate of use must rise or fall (2).
    usage_factor: Option<f64>,
    /// Invocations needed on both sides together to test use (20).
    min_usage: Option<i64>,
    /// Days without use that make a skill a retire candidate (30).
    retire_after_days: Option<i64>,
    /// Fewer uses in the window make an old skill a retire candidate (3).
    retire_floor: Option<i64>,
    /// Hot spots listed of each kind (5).
    hot_spots: Option<usize>,
}

impl InsightsQuery {
    fn settings(&self) -> InsightSettings {
        let d = InsightSettings::default();
        InsightSettings {
            alpha: self.alpha.unwrap_or(d.alpha),
            latency_change: self.latency_change.unwrap_or(d.latency_change),
            min_p50_samples: self.min_p50_samples.unwrap_or(d.min_p50_samples),
            min_p95_samples: self.min_p95_samples.unwrap_or(d.min_p95_samples),
            min_invocations: self.min_invocations.unwrap_or(d.min_invocations),
            completion_drop_points: self
                .completion_drop_points
                .unwrap_or(d.completion_drop_points),
            min_errors: self.min_errors.unwrap_or(d.min_errors),
            error_rise: self.error_rise.unwrap_or(d.error_rise),
            usage_factor: self.usage_factor.unwrap_or(d.usage_factor),
            min_usage: self.min_usage.unwrap_or(d.min_usage),
            retire_after_days: self.retire_after_days.unwrap_or(d.retire_after_days),
            retire_floor: self.retire_floor.unwrap_or(d.retire_floor),
            hot_spots: self.hot_spots.unwrap_or(d.hot_spots),
        }
    }
}

/// `GET /api/v1/insights?window=&against=&until=&project=&…`: what changed
/// in the window against its baseline (`insights --json`).
#[utoipa::path(
    get,
    path = "/api/v1/insights",
    tag = "read",
    params(InsightsQuery),
    responses(
        (status = 200, description = "The findings with their evidence, from the daily and hourly rollups: `insights --json`", body = Insights),
        (status = 400, description = "A window, baseline, time or threshold that cannot be used", body = ErrorBody),
    )
)]
pub(crate) async fn insights(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<InsightsQuery>,
) -> Result<Response, ApiError> {
    let bad = |e: domain::ValidationError| ApiError::new(StatusCode::BAD_REQUEST, e.to_string());
    let window = parse_length("window", q.window.as_deref().unwrap_or("7d")).map_err(bad)?;
    let against =
        Baseline::parse("against", q.against.as_deref().unwrap_or("previous")).map_err(bad)?;
    let report = store
        .insights(
            window,
            time("until", q.until.as_deref())?,
            against,
            q.project.as_deref(),
            &q.settings(),
        )
        .await?;
    contract(&report)
}

/// The query of `GET /api/v1/timeline/{skill}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TimelineQuery {
    /// From this time (inclusive, RFC 3339 with an offset).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Until this time (exclusive, RFC 3339 with an offset).
    #[param(format = DateTime)]
    until: Option<String>,
    /// The bucket width (default `day`).
    bucket: Option<Bucket>,
    /// An IANA time zone whose clock the buckets follow (default UTC).
    tz: Option<String>,
    /// Only this project's invocations (empty: those with none).
    project: Option<String>,
}

/// `GET /api/v1/timeline/{skill}?since=&until=&bucket=hour|day|week&tz=`.
#[utoipa::path(
    get,
    path = "/api/v1/timeline/{skill}",
    tag = "read",
    params(("skill" = String, Path, description = "The skill's name"), TimelineQuery),
    responses(
        (status = 200, description = "Invocations, completion and p50/p95 per bucket, oldest first: `timeline SKILL … --json`", body = Vec<TimelineBucket>),
        (status = 400, description = "A time without an offset, or an unknown time zone", body = ErrorBody),
    )
)]
pub(crate) async fn timeline(
    State(store): State<SkillMetricsStore>,
    Path(skill): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let tz = match q.tz.as_deref() {
        None => Tz::UTC,
        Some(name) => name.parse::<Tz>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("tz: {name:?} is not an IANA time zone name"),
            )
        })?,
    };
    let rows = store
        .timeline_of_project(
            &skill,
            q.project.as_deref(),
            time("since", q.since.as_deref())?,
            time("until", q.until.as_deref())?,
            q.bucket.unwrap_or(Bucket::Day),
            tz,
        )
        .await?;
    contract(&rows)
}

/// The query of `GET /api/v1/recent`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecentQuery {
    /// How many (default 20, at most 1,000).
    limit: Option<u64>,
    /// Only this skill.
    skill: Option<String>,
    /// Only this session.
    session: Option<String>,
}

/// The most a list asks for at once.
const MAX_LIMIT: u64 = 1000;

/// `GET /api/v1/recent?limit=&skill=&session=` (`recent --json`).
#[utoipa::path(
    get,
    path = "/api/v1/recent",
    tag = "read",
    params(RecentQuery),
    responses((status = 200, description = "The newest invocations first: `recent --json`", body = Vec<Invocation>))
)]
pub(crate) async fn recent(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<RecentQuery>,
) -> Result<Response, ApiError> {
    let filter = RecentFilter {
        skill: q.skill,
        session: q.session,
    };
    let limit = q.limit.unwrap_or(20).min(MAX_LIMIT);
    contract(&store.recent(&filter, limit).await?)
}

/// The query of `GET /api/v1/search`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// Words of skill names and workflow paths (all must match; `word*` for a prefix).
    q: String,
    /// How many (default 20, at most 1,000).
    limit: Option<u64>,
}

/// `GET /api/v1/search?q=&limit=` (`search Q --json`).
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "read",
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching invocations: `search Q --json`", body = Vec<Invocation>),
        (status = 400, description = "No query, or one that cannot be read", body = ErrorBody),
    )
)]
pub(crate) async fn search(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20).min(MAX_LIMIT);
    contract(&store.search(&q.q, limit).await?)
}

/// The query of `GET /api/v1/sessions`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SessionsQuery {
    /// How many (default 20, at most 1,000).
    limit: Option<u64>,
}

/// `GET /api/v1/sessions?limit=` (`session list --json`), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "read",
    params(SessionsQuery),
    responses((status = 200, description = "The sessions that started last, newest first: `session list --json`", body = Vec<Session>))
)]
pub(crate) async fn sessions(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<SessionsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20).min(MAX_LIMIT);
    contract(&store.recent_sessions(limit).await?)
}

/// `GET /api/v1/sessions/{id}` (`session show ID --json`).
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}",
    tag = "read",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session, its skills and its invocations in time order: `session show ID --json`", body = SessionView),
        (status = 404, description = "No such session", body = ErrorBody),
    )
)]
pub(crate) async fn session(
    State(store): State<SkillMetricsStore>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    contract(&store.session(&id).await?)
}

/// `POST /api/v1/invocations`: one JSON object, or JSON Lines, in the
/// `ingest` format. All or nothing: a bad line gets 422 naming its line and
/// field, and nothing is written; otherwise every line is recorded in one
/// transaction (ids repeated from earlier requests count once).
#[utoipa::path(
    post,
    path = "/api/v1/invocations",
    tag = "ingest",
    request_body(
        description = "One invocation as a JSON object, or JSON Lines of them, in the `ingest` format",
        content(
            (Invocation = "application/json"),
            (String = "application/x-ndjson"),
        )
    ),
    responses(
        (status = 200, description = "Every line was recorded in one transaction", body = Accepted),
        (status = 400, description = "The body cannot be read", body = ErrorBody),
        (status = 422, description = "A line is not a valid invocation (its number and field are named); nothing was written", body = ErrorBody),
        (status = 503, description = "The store stayed busy (a rebuild, prune or import holds it); nothing was written. `Retry-After` says when to try again", body = ErrorBody),
    )
)]
pub(crate) async fn post_invocations(
    State(store): State<SkillMetricsStore>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut lines = Vec::new();
    let mut first_error = None;
    importers::jsonl::read_lines(&body[..], Utc::now(), &mut |_| {}, |n, parsed| {
        match parsed {
            Ok(line) => lines.push(line.invocation),
            Err(e) if first_error.is_none() => first_error = Some(format!("line {n}: {e}")),
            Err(_) => {}
        }
        Ok::<(), std::io::Error>(())
    })
    .map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {e}"),
        )
    })?;
    if let Some(error) = first_error {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error));
    }
    if lines.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body holds no invocation",
        ));
    }
    let outcome = store.record_batch(lines).await?;
    Ok(axum::Json(Accepted {
        inserted: outcome.inserted as u64,
        duplicates: outcome.duplicates.len() as u64,
    })
    .into_response())
}
