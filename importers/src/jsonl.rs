//! JSON Lines in the ingest format: one invocation object per line.
//!
//! A line without an `id` gets one derived from its line number and
//! content, so a re-run (after a crash, or on a file that grew) adds only
//! what is missing.

use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, Utc};
use domain::{Invocation, InvocationId, ValidationError};

use crate::Progress;

/// Longest line accepted; a valid invocation is far smaller.
pub const MAX_LINE_BYTES: usize = 2 * 1024 * 1024;
/// Namespace of ids derived for lines that carry none.
const LINE_NAMESPACE: uuid::Uuid = uuid::uuid!("5b0c3c1e-8a37-4d57-9a43-0f0e7c6bd1a1");

/// Reads `input` to its end and calls `each` with every non-blank line's
/// number (from 1) and its invocation, or why it is invalid; bytes read are
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
    mut each: impl FnMut(u64, Result<Invocation, ValidationError>) -> Result<(), E>,
) -> Result<(), E> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
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
        each(number, parse_line(number, text, now))?;
    }
    Ok(())
}

fn parse_line(number: u64, text: &str, now: DateTime<Utc>) -> Result<Invocation, ValidationError> {
    let value = serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| ValidationError::new("line", format!("is not valid JSON: {e}")))?;
    let derive_id = value.get("id").is_none_or(serde_json::Value::is_null);
    let mut inv = Invocation::from_json(&value, now)?;
    if derive_id {
        let key = format!("{number}\n{text}");
        inv.id = InvocationId::derived(&LINE_NAMESPACE, key.as_bytes());
    }
    Ok(inv)
}
