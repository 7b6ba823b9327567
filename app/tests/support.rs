//! What the test modules share: running the binary as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use domain::Scope;
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

/// A server over a test's store on a loopback socket, with a token.
pub(crate) struct Running {
    /// `http://127.0.0.1:PORT`
    pub(crate) url: String,
    /// A token of the scope asked for.
    pub(crate) token: String,
    /// Send to stop serving (in-flight requests are finished first).
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    /// The server; it ends after `stop`.
    pub(crate) serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serves `store` with the default limits, and makes a `scope` token.
    pub(crate) async fn start(store: &TestStore, scope: Scope) -> Self {
        Self::start_with(store, scope, server::Limits::default()).await
    }

    /// Serves `store` with `limits`, and makes a `scope` token.
    pub(crate) async fn start_with(
        store: &TestStore,
        scope: Scope,
        limits: server::Limits,
    ) -> Self {
        let token = store
            .create_token(&format!("test-{scope}"), scope)
            .await
            .unwrap()
            .token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server::serve((**store).clone(), listener, limits, async {
            stopped.await.ok();
        }));
        Self {
            url,
            token,
            stop,
            serving,
        }
    }

    /// Stops serving and waits until the server has ended.
    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        self.serving.await.unwrap().unwrap();
    }
}
