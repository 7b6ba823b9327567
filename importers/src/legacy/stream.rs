//! Streams the legacy file: each listed invocation is handed on as it is
//! read, so a large file imports in bounded memory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::{CountingReader, Progress, ReadError};

/// Called with each listed invocation's index and value; an error stops the
/// read and is reported as the file's.
pub(crate) type OnInvocation<'a> = &'a mut dyn FnMut(u64, Value) -> Result<(), String>;

/// Streams the top-level object: each element of `invocations` goes to
/// `on_invocation` as it is read; `skills` is kept (it is small).
struct FileSeed<'a, 'b> {
    on_invocation: OnInvocation<'b>,
    skills: &'a mut BTreeMap<String, Value>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a legacy skill metrics object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "invocations" => map.next_value_seed(ListSeed(&mut *self.on_invocation))?,
                "skills" => {
                    *self.skills = map
                        .next_value::<Option<BTreeMap<String, Value>>>()?
                        .unwrap_or_default()
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ListSeed<'a>(OnInvocation<'a>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of invocations")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            (self.0)(index, value).map_err(A::Error::custom)?;
            index += 1;
        }
        Ok(())
    }
}

/// Reads `path` whole, as one pass labelled `label`; returns its `skills`
/// section.
pub(crate) fn stream_file(
    path: &Path,
    label: &'static str,
    progress: &mut dyn FnMut(Progress),
    on_invocation: OnInvocation<'_>,
) -> Result<BTreeMap<String, Value>, ReadError> {
    let opening = || format!("opening {}", path.display());
    let file = File::open(path).map_err(|e| ReadError::io(opening(), e))?;
    let len = file
        .metadata()
        .map_err(|e| ReadError::io(opening(), e))?
        .len();
    if len == 0 {
        return Err(ReadError::Input(format!(
            "{} is empty (not even `{{}}`)",
            path.display()
        )));
    }
    progress(Progress::Start { label, total: len });
    let reader = BufReader::with_capacity(1 << 20, CountingReader::new(file, progress));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut skills = BTreeMap::new();
    FileSeed {
        on_invocation,
        skills: &mut skills,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| ReadError::Input(format!("{} is corrupt or truncated: {e}", path.display())))?;
    drop(de);
    progress(Progress::Done);
    Ok(skills)
}
