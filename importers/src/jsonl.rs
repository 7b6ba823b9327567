//! JSON Lines in the ingest format: one invocation object per line.
//!
//! A line without an `id` gets one derived from its content and its
//! occurrence (decision D72): the n-th identical line of the input gets
//! occurrence n. Ingesting the same input again, a longer copy of it, or one
//! whose head was cut (a rotated log) derives the same ids for the same
//! lines, while identical twins stay distinct.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, Utc};
use domain::{Invocation, InvocationId, ValidationError};

use crate::Progress;

/// Longest line accepted; a valid invocation is far smaller.
pub const MAX_LINE_BYTES: usize = 2 * 1024 * 1024;
/// Namespace of ids derived for lines that carry none.
const LINE_NAMESPACE: uuid::Uuid = uuid::uuid!("5b0c3c1e-8a37-4d57-9a43-0f0e7c6bd1a1");

/// How often each line's content has been seen so far. Keyed by 64 bits of
/// the content's SHA-1 (via UUID v5), so memory grows by ~16 bytes per
/// distinct line, not by the line.
#[derive(Default)]
struct Occurrences(HashMap<u64, u32>);

impl Occurrences {
    /// The id of this occurrence of `text`.
    fn id_for(&mut self, text: &str) -> InvocationId {
        let digest = uuid::Uuid::new_v5(&LINE_NAMESPACE, text.as_bytes());
        let n = self.0.entry(digest.as_u64_pair().0).or_insert(0);
        *n += 1;
        let key = format!("occurrence {n}\n{text}");
        InvocationId::derived(&LINE_NAMESPACE, key.as_bytes())
    }
}

/// A valid line.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its invocation; without an `id` in the line, the id is derived from
    /// the content and its occurrence.
    pub invocation: Invocation,
    /// For a line without an `id`: the id versions before D72 derived from
    /// its line number and content, by which a store that such a version
    /// wrote may already hold it.
    pub numbered_id: Option<InvocationId>,
}

/// Reads `input` to its end and calls `each` with every non-blank line's
/// number (from 1) and its content, or why it is invalid; bytes read are
/// reported to `progress` (as `Read`). `now` is the time of lines without
/// `invoked_at`.
///
/// # Errors
/// A read error of `input`, or the first error `each` returns (which stops
/// the read).
pub fn read_lines<R: Read, E: From<std::io::Error>>(
    input: R,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(Progress),
    mut each: impl FnMut(u64, Result<Line, ValidationError>) -> Result<(), E>,
) -> Result<(), E> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut occurrences = Occurrences::default();
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        number += 1;
        progress(Progress::Read(read as u64));
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            // Skip the rest of the oversized line without holding it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let n = (&mut reader).take(1 << 20).read_until(b'\n', &mut rest)?;
                progress(Progress::Read(n as u64));
                if n == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            let why = format!("is longer than {MAX_LINE_BYTES} bytes");
            each(number, Err(ValidationError::new("line", why)))?;
            continue;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                let why = format!("is not valid UTF-8 ({e})");
                each(number, Err(ValidationError::new("line", why)))?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        each(number, parse_line(number, text, now, &mut occurrences))?;
    }
    Ok(())
}

fn parse_line(
    number: u64,
    text: &str,
    now: DateTime<Utc>,
    occurrences: &mut Occurrences,
) -> Result<Line, ValidationError> {
    let value = serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| ValidationError::new("line", format!("is not valid JSON: {e}")))?;
    let derive_id = value.get("id").is_none_or(serde_json::Value::is_null);
    let mut invocation = Invocation::from_json(&value, now)?;
    let mut numbered_id = None;
    if derive_id {
        invocation.id = occurrences.id_for(text);
        let key = format!("{number}\n{text}");
        numbered_id = Some(InvocationId::derived(&LINE_NAMESPACE, key.as_bytes()));
    }
    Ok(Line {
        invocation,
        numbered_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(input: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        read_lines::<_, std::io::Error>(input.as_bytes(), Utc::now(), &mut |_| {}, |n, inv| {
            out.push((n, inv.unwrap().invocation.id.to_string()));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn ids_follow_content_and_occurrence_not_line_numbers() {
        let a = r#"{"skill_name":"a","invoked_at":"2025-02-10T12:00:00Z"}"#;
        let b = r#"{"skill_name":"b","invoked_at":"2025-02-10T12:00:00Z"}"#;
        let whole = ids(&format!("{a}\n{b}\n{a}\n\n{b}\n"));
        assert_eq!(whole.len(), 4);
        assert_ne!(whole[0].1, whole[2].1, "identical twins stay distinct");
        assert_eq!(whole[3].0, 5, "blank lines keep their numbers");
        // The head cut off: the lines left keep their ids.
        let cut = ids(&format!("{b}\n{a}\n{b}\n"));
        assert_eq!(cut[0].1, whole[1].1);
        // The `a` left is now the first: it takes the cut twin's id, which
        // is already stored, so neither is counted twice.
        assert_eq!(cut[1].1, whole[0].1);
        assert_eq!(cut[2].1, whole[3].1);
    }

    #[test]
    fn an_id_in_the_line_is_kept() {
        let line = r#"{"id":"6f1c2f1e-3b7a-5c55-9a0e-1d2b3c4d5e6f","skill_name":"a"}"#;
        assert_eq!(ids(line)[0].1, "6f1c2f1e-3b7a-5c55-9a0e-1d2b3c4d5e6f");
    }
}
