//! Output for people and for programs: aligned tables, the JSON contract,
//! numbers with units.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::Invocation;

/// Columns left-aligned for text, right-aligned for numbers.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new<const N: usize>(header: [&str; N]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.to_vec());
    }

    pub(crate) fn print(&self) {
        if self.rows.is_empty() {
            println!("(none)");
            return;
        }
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.header[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let numeric: Vec<bool> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .all(|r| r[i] == "-" || r[i].parse::<f64>().is_ok())
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if numeric[i] {
                        format!("{c:>w$}", w = widths[i])
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect();
            println!("{}", parts.join("  ").trim_end());
        };
        line(&self.header);
        line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for r in &self.rows {
            line(r);
        }
    }
}

/// A time as RFC 3339 UTC with microseconds, as in every JSON output.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A number with `digits` decimals, or `-` when there is none.
pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

/// A size for people: `812 B`, `3.4 MB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints the JSON contract of a read: the value serialised with its keys
/// sorted, pretty-printed.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print!("{}", infrastructure::contract_json(value)?);
    Ok(())
}

pub(crate) fn invocations_table(items: &[Invocation]) {
    let mut t = Table::new([
        "invoked at",
        "skill",
        "status",
        "duration s",
        "workflow",
        "error",
        "session",
        "id",
    ]);
    for i in items {
        t.row([
            i.invoked_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            i.skill_name.to_string(),
            if i.completed {
                "completed"
            } else {
                "abandoned"
            }
            .to_owned(),
            num(i.duration_seconds, 2),
            i.workflow_path.clone().unwrap_or_else(|| "-".into()),
            i.error_type.clone().unwrap_or_else(|| "-".into()),
            i.session_id
                .as_ref()
                .map_or("-".into(), ToString::to_string),
            i.id.to_string(),
        ]);
    }
    t.print();
}

pub(crate) fn print_invocations(items: &[Invocation], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        print_json(&items)
    } else {
        invocations_table(items);
        Ok(())
    }
}
