//! What the test modules share: running the binary as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use infrastructure::testing::TestStore;

/// Runs `skill-metrics ARGS` on `url` (through the environment, as a user
/// keeping a password off the command line would), feeding `stdin`.
pub(crate) fn run_on(url: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
    command.env("SKILL_METRICS_DATABASE_URL", url);
    run(command, args, stdin)
}

/// Runs `skill-metrics ARGS` as `command` is set up, feeding `stdin`.
pub(crate) fn run(mut command: Command, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().expect("a piped stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("the binary reads its input");
    }
    drop(input);
    child.wait_with_output().expect("the binary ends")
}

/// `skill-metrics ARGS` on the test's store.
pub(crate) fn cli(store: &TestStore, args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_on(store.url(), args, stdin)
}

/// Its standard output, after checking that it succeeded.
pub(crate) fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Bytes from the binary as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
