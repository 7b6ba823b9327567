//! OpenAI Codex CLI sessions (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`):
//! `function_call` / `function_call_output` pairs (and the `custom_tool_call`
//! pair), and explicit `<skill><name>…</name></skill>` uses as skills.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Call, Mode, Parser, classify_error, ts};

pub(crate) struct Codex {
    mode: Mode,
    session: Option<String>,
    cwd: Option<String>,
    calls: Vec<Call>,
    by_id: HashMap<String, usize>,
    open_skill: Option<usize>,
    last: Option<DateTime<Utc>>,
    /// Calls before this index were followed by a later turn: one still
    /// without an output will not get it.
    settled: usize,
}

impl Codex {
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            session: None,
            cwd: None,
            calls: Vec::new(),
            by_id: HashMap::new(),
            open_skill: None,
            last: None,
            settled: 0,
        }
    }

    fn call(&self, key: String, tool: &str, at: DateTime<Utc>) -> Call {
        Call {
            key,
            tool: tool.to_owned(),
            skill: None,
            at,
            session: self.session.clone(),
            project: self.cwd.clone(),
            context: Map::new(),
            result: None,
            follow_ups: Vec::new(),
            span_end: None,
            in_flight: false,
        }
    }

    fn close_skill(&mut self) {
        if let Some(i) = self.open_skill.take() {
            self.calls[i].span_end = self.last.or(Some(self.calls[i].at));
        }
    }

    /// The turn ended: the open skill closes and every call so far is final.
    fn end_turn(&mut self) {
        self.close_skill();
        self.settled = self.calls.len();
    }
}

fn skill_names(text: &str) -> Vec<String> {
    text.split("<skill>")
        .skip(1)
        .filter_map(|block| {
            block
                .split("<name>")
                .nth(1)?
                .split("</name>")
                .next()
                .map(|n| n.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .collect()
}

fn output_error(output: &Value) -> Option<String> {
    let text = match output {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let exit = parsed
        .as_ref()
        .and_then(|v| v.pointer("/metadata/exit_code"))
        .and_then(Value::as_i64);
    match exit {
        Some(0) => None,
        Some(_) => Some("NonZeroExit".to_owned()),
        None if text.starts_with("Error") || text.contains("\"success\":false") => {
            Some(classify_error(&text))
        }
        None => None,
    }
}

impl Parser for Codex {
    fn line(&mut self, value: &Value) {
        let Some(at) = value.get("timestamp").and_then(Value::as_str).and_then(ts) else {
            return;
        };
        let Some(payload) = value.get("payload") else {
            return;
        };
        let kind = payload
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if value.get("type").and_then(Value::as_str) == Some("session_meta") {
            self.session = payload.get("id").and_then(Value::as_str).map(str::to_owned);
            self.cwd = payload
                .get("cwd")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return;
        }
        match kind {
            "function_call" | "custom_tool_call" => {
                let (Some(id), Some(name)) = (
                    payload.get("call_id").and_then(Value::as_str),
                    payload.get("name").and_then(Value::as_str),
                ) else {
                    return;
                };
                if self.by_id.contains_key(id) {
                    return;
                }
                if let Some(i) = self.open_skill {
                    self.calls[i].follow_ups.push(name.to_owned());
                }
                let mut call = self.call(format!("codex:{id}"), name, at);
                if let Some(args) = payload.get("arguments").or_else(|| payload.get("input")) {
                    let text = args
                        .as_str()
                        .map_or_else(|| args.to_string(), str::to_owned);
                    call.context.insert(
                        "arguments".into(),
                        json!(text.chars().take(2000).collect::<String>()),
                    );
                }
                self.by_id.insert(id.to_owned(), self.calls.len());
                self.calls.push(call);
            }
            "function_call_output" | "custom_tool_call_output" => {
                let Some(&i) = payload
                    .get("call_id")
                    .and_then(Value::as_str)
                    .and_then(|id| self.by_id.get(id))
                else {
                    return;
                };
                if self.calls[i].result.is_none() {
                    self.calls[i].result = Some((
                        at,
                        output_error(payload.get("output").unwrap_or(&Value::Null)),
                    ));
                }
            }
            "message" if payload.get("role").and_then(Value::as_str) == Some("user") => {
                let text = payload
                    .get("content")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                self.end_turn();
                for name in skill_names(&text) {
                    let key = format!(
                        "codex-skill:{}:{}:{name}",
                        self.session.clone().unwrap_or_default(),
                        at.timestamp_micros()
                    );
                    let mut call = self.call(key.clone(), "skill", at);
                    call.skill = Some(name);
                    call.result = Some((at, None));
                    call.context
                        .insert("trigger".into(), json!("<skill> in prompt"));
                    self.by_id.insert(key, self.calls.len());
                    self.calls.push(call);
                    self.open_skill = Some(self.calls.len() - 1);
                }
            }
            // The end of a task (newer versions), finished or interrupted.
            "task_complete" | "turn_aborted"
                if value.get("type").and_then(Value::as_str) == Some("event_msg") =>
            {
                self.end_turn();
            }
            _ => {}
        }
        if self.open_skill.is_some() {
            self.last = Some(at);
        }
    }

    fn finish(&mut self, idle: bool) -> Vec<Call> {
        if idle {
            self.close_skill();
        }
        let (open, settled) = (self.open_skill, self.settled);
        std::mem::take(&mut self.calls)
            .into_iter()
            .enumerate()
            .filter(|(_, c)| self.mode == Mode::All || c.skill.is_some())
            .map(|(i, mut c)| {
                c.in_flight = !idle && (open == Some(i) || (c.result.is_none() && i >= settled));
                c
            })
            .collect()
    }
}
