//! Every integration test of the `skill-metrics` binary and library, in one
//! test binary (it links once). Each module is one concern; the scenarios
//! run on SQLite and PostgreSQL.

mod bench;
mod cli;
mod concurrency;
mod connections;
mod contract;
mod dashboard;
mod data;
mod defaults;
mod exact;
mod in_flight;
mod in_flight_more;
mod insights;
mod moving;
mod openapi;
mod otlp;
mod otlp_client;
mod otlp_refusals;
mod prometheus;
mod prune;
mod push;
mod serve;
mod serve_kill;
mod support;
mod tokens;
mod transcripts;

/// A test file that no `mod` line names would silently never run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = include_str!("main.rs");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "main" {
            assert!(
                this.contains(&format!("mod {stem};")),
                "{} is not declared in app/tests/main.rs",
                path.display()
            );
        }
    }
}
