//! `skill-metrics import-legacy PATH`: the old tracker's JSON file, streamed.
//!
//! Pass one reads every file found and builds the full report; any unreadable
//! file or invocation stops everything before a single write. Pass two writes
//! the invocations in batches (ids derived from their position, so re-running
//! adds only what is new), then the per-skill opening balances.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use domain::{InvocationId, LEGACY_NAMESPACE, LegacySkill, SkillAggregate, legacy_invocation};
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::SkillMetricsStore;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::batches::write_streamed;
use crate::table::Table;

/// Where the old trackers kept the file, relative to a working directory.
const KNOWN_PLACES: &[&str] = &[
    ".session-buddy/skill_metrics.json",
    ".crackerjack/skill_metrics.json",
    "metrics/skill_metrics.json",
];

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A legacy skill_metrics.json, or a folder to search for them.
    path: PathBuf,
    /// Print the full report and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Zone of the file's naive timestamps (IANA name, e.g. Europe/Berlin); default: this machine's.
    #[arg(long)]
    timezone: Option<String>,
    /// Invocations per transaction.
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
}

type Local = Box<dyn Fn(NaiveDateTime) -> Option<DateTime<Utc>> + Send + Sync>;

/// How far back a gap's start is looked for: longer than any clock change
/// on record (Samoa skipped a whole day in 2011).
const LONGEST_GAP_MINUTES: i64 = 48 * 60;

/// `naive` in `z` (decision D21). Ambiguous (clocks going back): the earlier
/// instant. In a gap (clocks going forward): read with the offset of the last
/// valid local time before it, whatever the gap's length.
fn resolve<Z: TimeZone>(z: &Z, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = z.from_local_datetime(&naive).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    (1..=LONGEST_GAP_MINUTES).find_map(|m| {
        let before = z
            .from_local_datetime(&(naive - chrono::Duration::minutes(m)))
            .latest()?;
        let offset = chrono::Duration::seconds(before.offset().fix().local_minus_utc().into());
        Some(Utc.from_utc_datetime(&(naive - offset)))
    })
}

fn zone(name: Option<&str>) -> anyhow::Result<Local> {
    Ok(match name {
        Some(n) => {
            let tz: chrono_tz::Tz = n.parse().map_err(|_| {
                anyhow::anyhow!("unknown time zone {n:?} (use an IANA name such as Europe/Berlin)")
            })?;
            Box::new(move |naive| resolve(&tz, naive))
        }
        None => Box::new(|naive| resolve(&chrono::Local, naive)),
    })
}

fn find_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        anyhow::bail!("{} does not exist", path.display());
    }
    let mut found: Vec<PathBuf> = KNOWN_PLACES
        .iter()
        .map(|p| path.join(p))
        .filter(|p| p.is_file())
        .collect();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type()?;
            let p = entry.path();
            if kind.is_dir()
                && !matches!(
                    entry.file_name().to_str(),
                    Some(".git" | "target" | "node_modules")
                )
            {
                stack.push(p);
            } else if kind.is_file()
                && entry.file_name() == "skill_metrics.json"
                && !found.contains(&p)
            {
                found.push(p);
            }
        }
    }
    if found.is_empty() {
        anyhow::bail!("no skill_metrics.json under {}", path.display());
    }
    Ok(found)
}

/// Streams the top-level object: each element of `invocations` goes to
/// `on_invocation` as it is read; `skills` is kept (it is small).
struct FileSeed<'a> {
    on_invocation: &'a mut dyn FnMut(u64, Value) -> Result<(), String>,
    skills: &'a mut BTreeMap<String, Value>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
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

struct ListSeed<'a>(&'a mut dyn FnMut(u64, Value) -> Result<(), String>);

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

fn stream_file(
    path: &Path,
    label: &str,
    on_invocation: &mut dyn FnMut(u64, Value) -> Result<(), String>,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    if len == 0 {
        anyhow::bail!("{} is empty (not even `{{}}`)", path.display());
    }
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_owned());
    let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(file));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut skills = BTreeMap::new();
    FileSeed {
        on_invocation,
        skills: &mut skills,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| anyhow::anyhow!("{} is corrupt or truncated: {e}", path.display()))?;
    bar.finish_and_clear();
    Ok(skills)
}

/// Pass one's findings for one file.
#[derive(Default)]
struct FilePlan {
    /// The key its opening balance is stored under (see [`balance_source`]).
    source: String,
    invocations: u64,
    pending: BTreeMap<String, i64>,
    explained: BTreeMap<String, SkillAggregate>,
    legacy: BTreeMap<String, LegacySkill>,
    balances: BTreeMap<String, SkillAggregate>,
}

/// Prefix of every balance source written by this version; older versions
/// used the file's path.
const SOURCE_PREFIX: &str = "legacy:";

/// What identifies a file's content, for its opening balance (decision D50):
/// the id of its first listed invocation, which every copy of the file and
/// every later, longer version of it share (the list only grows at the end,
/// D19); with an empty list, a digest of the `skills` section.
fn balance_source(first: Option<InvocationId>, skills: &BTreeMap<String, Value>) -> String {
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
fn path_source(file: &Path) -> String {
    std::fs::canonicalize(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn plan(path: &Path, local: &Local) -> anyhow::Result<FilePlan> {
    let mut p = FilePlan::default();
    let mut first = None;
    let mut on = |index: u64, value: Value| -> Result<(), String> {
        let item = legacy_invocation(index, &value, local)
            .map_err(|e| format!("invocation #{index}: {e}"))?;
        if index == 0 {
            first = Some(item.invocation.id);
        }
        p.invocations += 1;
        let name = item.invocation.skill_name.as_str().to_owned();
        if item.pending {
            *p.pending.entry(name).or_insert(0) += 1;
        } else {
            p.explained.entry(name).or_default().fold(&item.invocation);
        }
        Ok(())
    };
    let skills = stream_file(path, "checking", &mut on)?;
    p.source = balance_source(first, &skills);
    for (name, value) in skills {
        let legacy = LegacySkill::from_json(&value, local)
            .with_context(|| format!("{}: skills[{name:?}]", path.display()))?;
        let explained = p.explained.get(&name).cloned().unwrap_or_default();
        p.balances
            .insert(name.clone(), legacy.balance_beyond(&explained));
        p.legacy.insert(name, legacy);
    }
    Ok(p)
}

fn print_report(path: &Path, p: &FilePlan) {
    println!(
        "{}: {} invocations ({} pending)",
        path.display(),
        p.invocations,
        p.pending.values().sum::<i64>()
    );
    let mut names: Vec<&String> = p
        .explained
        .keys()
        .chain(p.pending.keys())
        .chain(p.legacy.keys())
        .collect();
    names.sort();
    names.dedup();
    let mut t = Table::new([
        "skill",
        "from invocations",
        "pending→abandoned",
        "from balance",
        "ours total",
        "legacy total",
        "ours completed",
        "legacy completed",
        "ours duration s",
        "legacy duration s",
    ]);
    for name in names {
        let e = p.explained.get(name).cloned().unwrap_or_default();
        let b = p.balances.get(name).cloned().unwrap_or_default();
        let pending = p.pending.get(name).copied().unwrap_or(0);
        let legacy = p.legacy.get(name);
        t.row([
            name.clone(),
            e.total.to_string(),
            pending.to_string(),
            b.total.to_string(),
            (e.total + pending + b.total).to_string(),
            legacy.map_or("-".into(), |l| l.total.to_string()),
            (e.completed + b.completed).to_string(),
            legacy.map_or("-".into(), |l| l.completed.to_string()),
            format!(
                "{:.2}",
                domain::seconds(e.total_duration_micros + b.total_duration_micros)
            ),
            legacy.map_or("-".into(), |l| format!("{:.2}", l.total_duration_seconds)),
        ]);
    }
    t.print();
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let local = zone(args.timezone.as_deref())?;
    let files = find_files(&args.path)?;
    let mut plans = Vec::new();
    for f in &files {
        plans.push(plan(f, &local)?);
    }
    for (f, p) in files.iter().zip(&plans) {
        print_report(f, p);
    }
    println!(
        "pending invocations (never reported complete) are imported as abandoned, marked legacy_pending in user_context"
    );
    if args.dry_run {
        println!("dry run: nothing was written");
        return Ok(ExitCode::SUCCESS);
    }
    // Balances an older version keyed by path (D50): each file's own is
    // moved to its content key below; the rest are named at the end.
    let mut by_path: BTreeSet<String> = store
        .balances()
        .await?
        .into_iter()
        .map(|(_, source, _)| source)
        .filter(|s| !s.starts_with(SOURCE_PREFIX))
        .collect();
    let (mut inserted, mut duplicates) = (0usize, 0usize);
    for (f, p) in files.iter().zip(plans) {
        let path = f.clone();
        let local_zone = zone(args.timezone.as_deref())?;
        let (written, result) = write_streamed(store, args.batch_size, move |sink| {
            let mut on = |index: u64, value: Value| -> Result<(), String> {
                let item = legacy_invocation(index, &value, &local_zone)
                    .map_err(|e| format!("invocation #{index}: {e}"))?;
                sink.push(item.invocation)
            };
            stream_file(&path, "importing", &mut on)?;
            Ok(())
        })
        .await;
        inserted += written.inserted;
        duplicates += written.duplicates;
        result.with_context(|| format!("importing {} (re-run to finish)", f.display()))?;
        // Two transactions: a failure between them leaves this file's
        // balance out (never doubled) until the import is re-run.
        let old = path_source(f);
        if by_path.remove(&old) {
            store
                .put_balances(&old, BTreeMap::new())
                .await
                .with_context(|| format!("re-keying the balance of {old} (re-run to finish)"))?;
        }
        store
            .put_balances(&p.source, p.balances)
            .await
            .with_context(|| {
                format!(
                    "writing the opening balance of {} (re-run to finish)",
                    f.display()
                )
            })?;
    }
    println!(
        "inserted {inserted}, already present {duplicates}, opening balances written for {} file(s)",
        files.len()
    );
    if !by_path.is_empty() {
        eprintln!(
            "note: opening balances that an older version keyed by file path remain for: {}; \
             if one of these files now lies elsewhere and was imported from there, its balance counts twice \
             until it is imported once from the path named",
            by_path.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(zone_name: &str, naive: &str) -> String {
        let local = zone(Some(zone_name)).unwrap();
        let naive = NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S").unwrap();
        local(naive)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    #[test]
    fn a_time_in_a_gap_takes_the_offset_from_before_the_gap() {
        // Berlin skips 02:00–03:00 on 2025-03-30; before it: +01:00.
        assert_eq!(
            at("Europe/Berlin", "2025-03-30T02:30:00"),
            "2025-03-30T01:30:00Z"
        );
        // Lord Howe Island skips half an hour: 02:00–02:30 at +10:30.
        assert_eq!(
            at("Australia/Lord_Howe", "2025-10-05T02:15:00"),
            "2025-10-04T15:45:00Z"
        );
        // Samoa skipped 2011-12-30 entirely; before it: -10:00.
        assert_eq!(
            at("Pacific/Apia", "2011-12-30T12:00:00"),
            "2011-12-30T22:00:00Z"
        );
    }

    #[test]
    fn an_ambiguous_time_takes_the_earlier_instant() {
        // Berlin repeats 02:00–03:00 on 2025-10-26: first at +02:00.
        assert_eq!(
            at("Europe/Berlin", "2025-10-26T02:30:00"),
            "2025-10-26T00:30:00Z"
        );
        assert_eq!(
            at("Europe/Berlin", "2025-10-26T03:30:00"),
            "2025-10-26T02:30:00Z"
        );
        assert_eq!(
            at("Europe/Berlin", "2025-02-10T12:00:00"),
            "2025-02-10T11:00:00Z"
        );
    }

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
