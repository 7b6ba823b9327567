//! OTLP log exports from Claude Code: decoding a request (protobuf or the
//! OTLP JSON mapping), turning its `tool_result` and rejected
//! `tool_decision` events into invocations, and encoding the answer.
//!
//! A call's id derives from its `tool_use_id` exactly as the transcript
//! importer derives it ([`crate::transcripts::call_id`]), so a call received
//! live and imported later from its transcript counts once. Every attribute
//! is optional; numbers may come as strings, booleans as `"true"`.

use chrono::{DateTime, TimeZone, Utc};
use domain::{Invocation, InvocationId, SessionId, SkillName, truncate_to_micros};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::transcripts::{Mode, call_id, classify_error, tool_use_key};

/// How a request's body is encoded (its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`: the OTLP JSON mapping.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names, parameters ignored; `None` for
    /// any other type.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Decodes an `ExportLogsServiceRequest`.
///
/// # Errors
/// Why the body is not one (the receiver answers 400).
pub fn decode_logs(body: &[u8], encoding: Encoding) -> Result<ExportLogsServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => {
            ExportLogsServiceRequest::decode(body).map_err(|e| format!("not OTLP protobuf: {e}"))
        }
        Encoding::Json => serde_json::from_slice(body).map_err(|e| format!("not OTLP JSON: {e}")),
    }
}

/// The answer to an export: empty when everything was taken, else a
/// partial success counting the records refused and why.
pub fn encode_logs_response(rejected: u64, message: &str, encoding: Encoding) -> Vec<u8> {
    let response = ExportLogsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: message.to_owned(),
        }),
    };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// What a request's records became.
#[derive(Debug, Default)]
pub struct Events {
    /// The invocations, in the request's order.
    pub invocations: Vec<Invocation>,
    /// Records that should have been invocations but could not be (no tool
    /// name, an invalid value); other events are not counted here.
    pub rejected: u64,
    /// Why the first of those was refused.
    pub first_error: Option<String>,
}

/// Reads every log record of `request`: `tool_result` events, and
/// `tool_decision` rejections (which have no result), become invocations;
/// other events are ignored. A record that cannot become one is counted in
/// [`Events::rejected`] and never keeps the others out.
pub fn invocations(request: &ExportLogsServiceRequest) -> Events {
    let mut out = Events::default();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs
            .resource
            .as_ref()
            .map_or(&[][..], |r| &r.attributes[..]);
        for scope_logs in &resource_logs.scope_logs {
            for record in &scope_logs.log_records {
                let attrs = Attributes {
                    record: &record.attributes,
                    resource,
                };
                match invocation(record, &attrs) {
                    Ok(Some(inv)) => out.invocations.push(inv),
                    Ok(None) => {}
                    Err(e) => {
                        out.rejected += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    out
}

/// A record's attributes, then its resource's.
struct Attributes<'a> {
    record: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl Attributes<'_> {
    fn value(&self, key: &str) -> Option<&any_value::Value> {
        self.record
            .iter()
            .chain(self.resource)
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    /// Text, from a string or a number or a boolean.
    fn text(&self, key: &str) -> Option<String> {
        match self.value(key)? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(n) => Some(n.to_string()),
            any_value::Value::DoubleValue(d) => Some(d.to_string()),
            any_value::Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }

    /// A number, from a number or its text.
    fn number(&self, key: &str) -> Option<f64> {
        match self.value(key)? {
            any_value::Value::IntValue(n) => Some(*n as f64),
            any_value::Value::DoubleValue(d) => Some(*d),
            any_value::Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|n: &f64| n.is_finite())
    }

    /// A boolean, from a boolean or `"true"`/`"false"`.
    fn flag(&self, key: &str) -> Option<bool> {
        match self.value(key)? {
            any_value::Value::BoolValue(b) => Some(*b),
            any_value::Value::StringValue(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The event's bare name: `event.name`, else the record's event name or
/// body, without Claude Code's `claude_code.` prefix.
fn event_name(record: &LogRecord, attrs: &Attributes<'_>) -> Option<String> {
    let body = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let name = attrs
        .text("event.name")
        .or_else(|| Some(record.event_name.clone()).filter(|n| !n.is_empty()))
        .or(body)?;
    Some(
        name.strip_prefix("claude_code.")
            .unwrap_or(&name)
            .to_owned(),
    )
}

/// When it happened: `event.timestamp`, else the record's time, else when
/// it was observed, else now.
fn when(record: &LogRecord, attrs: &Attributes<'_>) -> DateTime<Utc> {
    let from_nanos =
        |n: u64| (n > 0).then(|| Utc.timestamp_nanos(i64::try_from(n).unwrap_or(i64::MAX)));
    attrs
        .text("event.timestamp")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| from_nanos(record.time_unix_nano))
        .or_else(|| from_nanos(record.observed_time_unix_nano))
        .map_or_else(|| truncate_to_micros(Utc::now()), truncate_to_micros)
}

/// The skill a `Skill` call ran, from `tool_parameters` (a JSON string).
fn skill_of(attrs: &Attributes<'_>) -> Option<String> {
    let params: Value = serde_json::from_str(&attrs.text("tool_parameters")?).ok()?;
    ["skill_name", "skill", "command"]
        .iter()
        .find_map(|k| params.get(*k)?.as_str().map(str::to_owned))
        .filter(|s| !s.trim().is_empty())
}

/// Attributes kept in `user_context`; personal data (`user.email`,
/// `user.id`, account ids) is not among them.
const CONTEXT_KEYS: &[&str] = &[
    "prompt.id",
    "decision_type",
    "decision_source",
    "decision",
    "source",
    "tool_input_size_bytes",
    "tool_result_size_bytes",
    "mcp_server_scope",
    "app.version",
    "terminal.type",
    "event.sequence",
];

/// The most attributes a record may carry (Claude Code sends about
/// twenty); past it the record is refused, not searched key by key.
pub const MAX_ATTRIBUTES: usize = 1_000;

fn invocation(record: &LogRecord, attrs: &Attributes<'_>) -> Result<Option<Invocation>, String> {
    if record.attributes.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "a record with {} attributes; at most {MAX_ATTRIBUTES} are read",
            record.attributes.len()
        ));
    }
    let rejected_call = match event_name(record, attrs).as_deref() {
        Some("tool_result") => false,
        Some("tool_decision") => {
            let decision = attrs
                .text("decision")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if decision != "reject" && decision != "rejected" {
                return Ok(None);
            }
            true
        }
        _ => return Ok(None),
    };
    let tool = attrs
        .text("tool_name")
        .ok_or_else(|| "a tool event without tool_name".to_owned())?;
    let (name, mode) = match (tool.as_str(), skill_of(attrs)) {
        ("Skill", Some(skill)) => (skill, Mode::Skills),
        _ => (tool.clone(), Mode::All),
    };
    let at = when(record, attrs);
    let invalid = |e: domain::ValidationError| format!("{e} ({tool} call)");
    let name = SkillName::parse(name.chars().take(200).collect::<String>()).map_err(invalid)?;
    let mut inv = Invocation::new(name, at, false);
    inv.id = match attrs.text("tool_use_id") {
        Some(id) => call_id(mode, &tool_use_key(&id)),
        // Older versions: still the same id whenever the same record is
        // sent again (an exporter's retry).
        None => InvocationId::derived(
            &OTLP_NAMESPACE,
            format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{tool}",
                attrs.text("session.id").unwrap_or_default(),
                attrs.text("event.sequence").unwrap_or_default(),
                at.timestamp_micros()
            )
            .as_bytes(),
        ),
    };
    if rejected_call {
        inv.error_type = Some("UserRejected".to_owned());
    } else if attrs.flag("success").unwrap_or(false) {
        inv.completed = true;
    } else {
        inv.error_type = Some(match (attrs.text("error_type"), attrs.text("error")) {
            (Some(class), _) => class.chars().take(100).collect(),
            (None, Some(text)) => classify_error(&text),
            (None, None) => "ToolError".to_owned(),
        });
    }
    inv.duration_seconds = attrs
        .number("duration_ms")
        .filter(|ms| *ms >= 0.0)
        .map(|ms| ms / 1000.0);
    inv.session_id = attrs
        .text("session.id")
        .and_then(|s| SessionId::parse(s).ok());
    let mut ctx = Map::new();
    ctx.insert("tool".into(), json!(tool));
    ctx.insert("source".into(), json!("otlp"));
    for key in CONTEXT_KEYS {
        if let Some(v) = attrs.text(key) {
            // Claude Code's own `source` must not hide ours; and a NUL,
            // which no store can keep in JSON, is dropped, not the call.
            let name = if *key == "source" {
                "event_source"
            } else {
                key
            };
            ctx.insert(
                name.to_owned(),
                json!(
                    v.chars()
                        .filter(|c| *c != '\0')
                        .take(200)
                        .collect::<String>()
                ),
            );
        }
    }
    inv.user_context = Some(ctx);
    inv.validate().map_err(invalid)?;
    Ok(Some(inv))
}

/// Namespace of ids for events that carry no `tool_use_id`.
const OTLP_NAMESPACE: uuid::Uuid = uuid::uuid!("3d1f0c6a-6b1e-4f0e-9d55-0c2b8f7e4a19");

/// A string attribute, for building requests (tests, tools).
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}
