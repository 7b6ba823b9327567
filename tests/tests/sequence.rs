//! The log in the order of writing (`seq`), which `push` follows: a reader
//! that continues from the last `seq` it saw never misses a row and never
//! sees one twice, while writers keep writing. (On PostgreSQL, without the
//! lock `written_after` takes, this failed in one run of five.)

use std::collections::BTreeSet;

use infrastructure::testing::TestStore;
use tests::{invocation, on_both_backends};

async fn a_reader_following_seq_misses_nothing_while_writers_write(store: &TestStore) {
    const WRITERS: i64 = 4;
    const BATCHES: i64 = 40;
    const EACH: i64 = 5;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = (**store).clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for b in 0..BATCHES {
                    let batch: Vec<_> = (0..EACH)
                        .map(|i| invocation(&format!("w{w}"), b * EACH + i, true, Some(1.0)))
                        .collect();
                    ids.extend(batch.iter().map(|inv| inv.id));
                    store.record_batch(batch).await.unwrap();
                }
                ids
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut last_pass = false;
    loop {
        let page = store.written_after(cursor, 7).await.unwrap();
        for logged in &page {
            assert!(logged.seq > cursor, "seq goes backwards");
            cursor = logged.seq;
            seen.push(logged.invocation.id);
        }
        if page.is_empty() {
            if last_pass {
                break;
            }
            last_pass = writers.iter().all(|w| w.is_finished());
        }
    }
    let mut written = BTreeSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a row was read twice");
    let missed = written.difference(&unique).count();
    assert_eq!(missed, 0, "the reader missed {missed} rows");
    assert_eq!(unique, written, "the reader saw exactly what was written");
    assert_eq!(written.len() as i64, WRITERS * BATCHES * EACH);
}

on_both_backends!(a_reader_following_seq_misses_nothing_while_writers_write);
