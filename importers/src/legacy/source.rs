//! The key a file's opening balance is stored under (decision D50).

use std::collections::BTreeMap;
use std::path::Path;

use domain::{InvocationId, LEGACY_NAMESPACE};
use serde_json::Value;

/// Prefix of every balance source written by this version; older versions
/// used the file's path.
pub const SOURCE_PREFIX: &str = "legacy:";

/// What identifies a file's content, for its opening balance: the id of its
/// first listed invocation, which every copy of the file and every later,
/// longer version of it share (the list only grows at the end, D19); with an
/// empty list, a digest of the `skills` section.
pub fn balance_source(first: Option<InvocationId>, skills: &BTreeMap<String, Value>) -> String {
    match first {
        Some(id) => format!("{SOURCE_PREFIX}{id}"),
        None => {
            let mut bytes = Vec::new();
            for (name, value) in skills {
                write_canonical(&Value::String(name.clone()), &mut bytes);
                bytes.push(b':');
                write_canonical(value, &mut bytes);
                bytes.push(b',');
            }
            let digest = uuid::Uuid::new_v5(&LEGACY_NAMESPACE, &bytes);
            format!("{SOURCE_PREFIX}skills:{digest}")
        }
    }
}

/// JSON text with every object's keys sorted, so equal content gives equal
/// bytes however the file ordered it.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// The source an older version stored `file`'s balance under: its canonical
/// path (the path as given, had that failed).
pub fn path_source(file: &Path) -> String {
    std::fs::canonicalize(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_balance_source_is_the_content_not_the_path() {
        let id = InvocationId::parse("6f1c2f1e-3b7a-5c55-9a0e-1d2b3c4d5e6f").unwrap();
        let a: BTreeMap<String, Value> =
            serde_json::from_value(json!({"s": {"total_invocations": 3}})).unwrap();
        let b: BTreeMap<String, Value> =
            serde_json::from_value(json!({"s": {"total_invocations": 4}})).unwrap();
        assert_eq!(
            balance_source(Some(id), &a),
            format!("legacy:{id}"),
            "a listed file is keyed by its first invocation"
        );
        assert_eq!(balance_source(Some(id), &a), balance_source(Some(id), &b));
        assert!(balance_source(None, &a).starts_with("legacy:skills:"));
        assert_ne!(balance_source(None, &a), balance_source(None, &b));
        let one: BTreeMap<String, Value> =
            serde_json::from_str(r#"{"s": {"total_invocations": 3, "completed_invocations": 1}}"#)
                .unwrap();
        let other: BTreeMap<String, Value> =
            serde_json::from_str(r#"{"s": {"completed_invocations": 1, "total_invocations": 3}}"#)
                .unwrap();
        assert_eq!(
            balance_source(None, &one),
            balance_source(None, &other),
            "key order does not matter"
        );
    }
}
