//! Importing through the library: what an embedder calls, without the CLI.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use infrastructure::import::{IngestOptions, Mode, Progress, TranscriptOptions};
use infrastructure::testing::TestStore;
use tests::on_both_backends;

fn line(skill: &str, secs: u32) -> String {
    format!(
        "{{\"skill_name\":\"{skill}\",\"invoked_at\":\"2025-02-10T12:00:{secs:02}Z\",\"completed\":true}}\n"
    )
}

async fn ingest(store: &TestStore, text: &str) -> (usize, usize) {
    let report = store
        .ingest_jsonl(
            Cursor::new(text.as_bytes().to_vec()),
            &IngestOptions::default(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert!(!report.refused);
    (report.written.inserted, report.written.duplicates)
}

async fn a_file_cut_at_its_head_counts_nothing_twice(store: &TestStore) {
    let twin = line("twin", 0);
    let head: String = (0..10).map(|i| line("head", i)).collect();
    let whole = format!("{twin}{head}{twin}");
    assert_eq!(
        ingest(store, &whole).await,
        (12, 0),
        "identical twins both land"
    );
    // Rotated: the first five lines are gone (one twin among them), three
    // new lines were appended. The lines left keep their ids.
    let kept: String = whole.lines().skip(5).map(|l| format!("{l}\n")).collect();
    let tail: String = (20..23).map(|i| line("tail", i)).collect();
    assert_eq!(ingest(store, &format!("{kept}{tail}")).await, (3, 7));
    let twins = store.metrics(&["twin"]).await.unwrap();
    assert_eq!(twins[0].total_invocations, 2);
    assert!(store.verify().await.unwrap().is_clean());
}

async fn lines_an_older_version_ingested_keep_their_ids(store: &TestStore) {
    // An older version gave a line without `id` the id of its line number
    // and content; the store holds the second line under that id.
    let namespace = uuid::uuid!("5b0c3c1e-8a37-4d57-9a43-0f0e7c6bd1a1");
    let key = format!("2\n{}", line("old", 2).trim());
    let mut stored = tests::invocation("old", 0, true, None);
    stored.id = domain::InvocationId::derived(&namespace, key.as_bytes());
    store.record(stored).await.unwrap();
    let text = format!("{}{}", line("old", 1), line("old", 2));
    assert_eq!(ingest(store, &text).await, (1, 1));
    assert_eq!(ingest(store, &text).await, (0, 2));
    assert_eq!(
        store.metrics(&["old"]).await.unwrap()[0].total_invocations,
        2
    );
}

async fn strict_ingest_writes_nothing_and_names_the_lines(store: &TestStore) {
    let text = format!("{}not json\n{}", line("a", 1), line("", 2));
    let mut passes = Vec::new();
    let report = store
        .ingest_jsonl(
            Cursor::new(text.into_bytes()),
            &IngestOptions::default(),
            &mut |p| {
                if let Progress::Start { label, .. } = p {
                    passes.push(label);
                }
            },
        )
        .await
        .unwrap();
    assert!(report.refused);
    assert_eq!(passes, ["checking"]);
    assert_eq!(report.rejected, 2);
    let lines: Vec<u64> = report.rejections.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3]);
    assert_eq!(report.written.inserted, 0);
    assert!(store.metrics(&[]).await.unwrap().is_empty());
}

async fn transcripts_import_once_with_their_sessions(store: &TestStore) {
    let dirs = [PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/claude")];
    let options = TranscriptOptions {
        mode: Mode::All,
        idle_after: Duration::ZERO,
        ..Default::default()
    };
    let first = store
        .import_claude_code(&dirs, &options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((first.files, first.calls, first.imported), (4, 8, 8));
    let again = store
        .import_claude_code(&dirs, &options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((again.imported, again.present), (0, 8));
    assert!(!store.sessions().await.unwrap().is_empty());
    assert!(store.verify().await.unwrap().is_clean());
}

on_both_backends!(
    a_file_cut_at_its_head_counts_nothing_twice,
    lines_an_older_version_ingested_keep_their_ids,
    strict_ingest_writes_nothing_and_names_the_lines,
    transcripts_import_once_with_their_sessions,
);
