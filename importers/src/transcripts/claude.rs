//! Claude Code transcripts (`<config>/projects/<project>/<session>.jsonl`,
//! subagents under `<session>/subagents/`): tool calls paired with their
//! results, skills with the span of work they drove.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Call, Mode, Parser, classify_error, ts};

/// What a skill's span needs while it is open.
struct Span {
    call: usize,
    name: String,
    short: String,
    end: DateTime<Utc>,
}

/// Streaming state for one file.
pub(crate) struct Claude {
    mode: Mode,
    calls: Vec<Call>,
    by_id: HashMap<String, usize>,
    open: Vec<Span>,
    /// Calls before this index were followed by a later turn: one still
    /// without a result will not get it (interrupted, abandoned).
    settled: usize,
}

impl Claude {
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            calls: Vec::new(),
            by_id: HashMap::new(),
            open: Vec::new(),
            settled: 0,
        }
    }

    fn context(line: &Map<String, Value>) -> Map<String, Value> {
        let mut ctx = Map::new();
        for (key, name) in [
            ("gitBranch", "git_branch"),
            ("version", "assistant_version"),
            ("agentId", "agent_id"),
        ] {
            if let Some(v) = line.get(key).filter(|v| !v.is_null()) {
                ctx.insert(name.to_owned(), v.clone());
            }
        }
        if line.get("isSidechain").and_then(Value::as_bool) == Some(true) {
            ctx.insert("sidechain".to_owned(), Value::Bool(true));
        }
        if let Some(model) = line.get("message").and_then(|m| m.get("model")) {
            ctx.insert("model".to_owned(), model.clone());
        }
        ctx
    }

    fn base(line: &Map<String, Value>, key: String, tool: &str, at: DateTime<Utc>) -> Call {
        Call {
            key,
            tool: tool.to_owned(),
            skill: None,
            at,
            session: line
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            project: line.get("cwd").and_then(Value::as_str).map(str::to_owned),
            context: Self::context(line),
            result: None,
            follow_ups: Vec::new(),
            span_end: None,
            in_flight: false,
        }
    }

    /// Work seen at `at` by tool `tool`: attributed to the open skill it
    /// names (newer versions), else to the innermost open skill.
    fn attribute(&mut self, line: &Map<String, Value>, tool: Option<&str>, at: DateTime<Utc>) {
        let named = line.get("attributionSkill").and_then(Value::as_str);
        let span = match named {
            Some(n) => self
                .open
                .iter_mut()
                .rev()
                .find(|s| s.name == n || s.short == n),
            None => self.open.last_mut(),
        };
        if let Some(span) = span {
            span.end = span.end.max(at);
            if let Some(tool) = tool {
                self.calls[span.call].follow_ups.push(tool.to_owned());
            }
        }
    }

    fn open_skill(&mut self, call: usize, name: &str, from: DateTime<Utc>) {
        let short = name.rsplit(':').next().unwrap_or(name).to_owned();
        self.open.push(Span {
            call,
            name: name.to_owned(),
            short,
            end: from,
        });
    }

    fn close_all(&mut self, at: Option<DateTime<Utc>>) {
        for span in self.open.drain(..) {
            let end = at.map_or(span.end, |t| t.max(span.end));
            self.calls[span.call].span_end = Some(end);
        }
    }

    /// The turn ended: every open span closes and every call so far is final.
    fn end_turn(&mut self, at: Option<DateTime<Utc>>) {
        self.close_all(at);
        self.settled = self.calls.len();
    }
}

fn slash_name(command: &str) -> Option<String> {
    let word = command
        .trim()
        .trim_start_matches('/')
        .split_whitespace()
        .next()?;
    (!word.is_empty()).then(|| word.to_owned())
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

impl Parser for Claude {
    fn line(&mut self, value: &Value) {
        let Some(line) = value.as_object() else {
            return;
        };
        let Some(at) = line.get("timestamp").and_then(Value::as_str).and_then(ts) else {
            return;
        };
        match line.get("type").and_then(Value::as_str) {
            Some("assistant") => {
                let Some(items) = value.pointer("/message/content").and_then(Value::as_array)
                else {
                    return;
                };
                for item in items {
                    if item.get("type").and_then(Value::as_str) != Some("tool_use") {
                        continue;
                    }
                    let (Some(id), Some(tool)) = (
                        item.get("id").and_then(Value::as_str),
                        item.get("name").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    if self.by_id.contains_key(id) {
                        continue;
                    }
                    self.attribute(line, Some(tool), at);
                    let mut call = Self::base(line, super::tool_use_key(id), tool, at);
                    let input = item.get("input").cloned().unwrap_or(Value::Null);
                    match tool {
                        "Skill" => {
                            call.skill = input
                                .get("skill")
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            if let Some(args) = input.get("args") {
                                call.context.insert("args".into(), args.clone());
                            }
                            call.context.insert("trigger".into(), json!("Skill tool"));
                        }
                        "SlashCommand" => {
                            let command = input
                                .get("command")
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            call.skill = slash_name(command);
                            call.context.insert("args".into(), json!(command));
                            call.context
                                .insert("trigger".into(), json!("SlashCommand tool"));
                        }
                        _ if self.mode == Mode::All => {
                            if let Some(d) = input
                                .get("description")
                                .or_else(|| input.get("subagent_type"))
                            {
                                call.context.insert("description".into(), d.clone());
                            }
                        }
                        _ => {}
                    }
                    self.by_id.insert(id.to_owned(), self.calls.len());
                    self.calls.push(call);
                }
            }
            Some("user") => {
                let content = value
                    .pointer("/message/content")
                    .cloned()
                    .unwrap_or(Value::Null);
                let mut had_result = false;
                if let Some(items) = content.as_array() {
                    for item in items
                        .iter()
                        .filter(|i| i.get("type").and_then(Value::as_str) == Some("tool_result"))
                    {
                        had_result = true;
                        let Some(&index) = item
                            .get("tool_use_id")
                            .and_then(Value::as_str)
                            .and_then(|id| self.by_id.get(id))
                        else {
                            continue;
                        };
                        if self.calls[index].result.is_some() {
                            continue;
                        }
                        let mut error = item.get("is_error").and_then(Value::as_bool) == Some(true);
                        let extra = line.get("toolUseResult");
                        if let Some(Value::String(s)) = extra {
                            error |= s.starts_with("Error");
                        }
                        if extra
                            .and_then(|e| e.get("success"))
                            .and_then(Value::as_bool)
                            == Some(false)
                        {
                            error = true;
                        }
                        let class = error.then(|| {
                            classify_error(&text_of(item.get("content").unwrap_or(&Value::Null)))
                        });
                        self.calls[index].result = Some((at, class));
                        self.attribute(line, None, at);
                        let call = &self.calls[index];
                        let loaded = call.result.as_ref().is_some_and(|r| r.1.is_none());
                        if let Some(name) = call.skill.clone().filter(|_| loaded) {
                            let load = (at - call.at).num_milliseconds().max(0) as f64 / 1000.0;
                            self.calls[index]
                                .context
                                .insert("load_seconds".into(), json!(load));
                            self.open_skill(index, &name, at);
                        }
                    }
                }
                let is_meta = line.get("isMeta").and_then(Value::as_bool) == Some(true);
                if !had_result && !is_meta {
                    let text = text_of(&content);
                    // A typed slash command starts a skill; any real prompt ends the turn.
                    self.end_turn(None);
                    if let Some(name) = text
                        .split("<command-name>")
                        .nth(1)
                        .and_then(|r| r.split("</command-name>").next())
                        .and_then(slash_name)
                    {
                        let key = format!(
                            "typed:{}",
                            line.get("uuid").and_then(Value::as_str).unwrap_or_default()
                        );
                        if !self.by_id.contains_key(&key) {
                            let mut call = Self::base(line, key.clone(), "SlashCommand", at);
                            call.skill = Some(name.clone());
                            call.context
                                .insert("trigger".into(), json!("typed command"));
                            call.result = Some((at, None));
                            self.by_id.insert(key, self.calls.len());
                            self.calls.push(call);
                            self.open_skill(self.calls.len() - 1, &name, at);
                        }
                    }
                }
            }
            Some("system")
                if line.get("subtype").and_then(Value::as_str) == Some("turn_duration") =>
            {
                self.end_turn(Some(at))
            }
            _ => {}
        }
    }

    fn finish(&mut self, idle: bool) -> Vec<Call> {
        if idle {
            self.close_all(None);
        }
        let open: Vec<usize> = self.open.iter().map(|s| s.call).collect();
        let settled = self.settled;
        let mode = self.mode;
        std::mem::take(&mut self.calls)
            .into_iter()
            .enumerate()
            .filter(|(_, c)| mode == Mode::All || c.skill.is_some())
            .map(|(i, mut call)| {
                // Still running: taken on a later pass, once the session moves on.
                call.in_flight =
                    !idle && (open.contains(&i) || (call.result.is_none() && i >= settled));
                call
            })
            .collect()
    }
}
