//! `/api/v1/…`: the reads, answering exactly the bytes the CLI's `--json`
//! prints for the same query, and `POST /api/v1/invocations`.

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::parse_timestamp;
use infrastructure::chrono_tz::Tz;
use infrastructure::{Bucket, RecentFilter, SkillMetricsStore, contract_json};
use serde::Deserialize;

use crate::error::ApiError;

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
pub(crate) async fn summary(State(store): State<SkillMetricsStore>) -> Result<Response, ApiError> {
    contract(&store.summary().await?)
}

/// The query of `GET /api/v1/timeline/{skill}`.
#[derive(Deserialize)]
pub(crate) struct TimelineQuery {
    since: Option<String>,
    until: Option<String>,
    bucket: Option<Bucket>,
    tz: Option<String>,
}

/// `GET /api/v1/timeline/{skill}?since=&until=&bucket=hour|day|week&tz=`.
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
        .timeline_in(
            &skill,
            time("since", q.since.as_deref())?,
            time("until", q.until.as_deref())?,
            q.bucket.unwrap_or(Bucket::Day),
            tz,
        )
        .await?;
    contract(&rows)
}

/// The query of `GET /api/v1/recent`.
#[derive(Deserialize)]
pub(crate) struct RecentQuery {
    limit: Option<u64>,
    skill: Option<String>,
    session: Option<String>,
}

/// The most a list asks for at once.
const MAX_LIMIT: u64 = 1000;

/// `GET /api/v1/recent?limit=&skill=&session=` (`recent --json`).
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
#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: String,
    limit: Option<u64>,
}

/// `GET /api/v1/search?q=&limit=` (`search Q --json`).
pub(crate) async fn search(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20).min(MAX_LIMIT);
    contract(&store.search(&q.q, limit).await?)
}

/// The query of `GET /api/v1/sessions`.
#[derive(Deserialize)]
pub(crate) struct SessionsQuery {
    limit: Option<u64>,
}

/// `GET /api/v1/sessions?limit=` (`session list --json`), newest first.
pub(crate) async fn sessions(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<SessionsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20).min(MAX_LIMIT);
    contract(&store.recent_sessions(limit).await?)
}

/// `GET /api/v1/sessions/{id}` (`session show ID --json`).
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
    Ok(axum::Json(serde_json::json!({
        "inserted": outcome.inserted,
        "duplicates": outcome.duplicates.len(),
    }))
    .into_response())
}
