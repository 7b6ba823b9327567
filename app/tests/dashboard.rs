//! The dashboard in a real browser (D93): Debian's headless Chromium,
//! driven over WebDriver by chromedriver, against a server over a store
//! seeded with known events, on both backends. Screenshots of each page go
//! to `target/tmp/dashboard/`.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them). Where
//! they are missing the test says so and passes, unless
//! `SKILL_METRICS_REQUIRE_BROWSER=1` (set by `scripts/test-all.sh`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::Scope;
use fantoccini::{Client, ClientBuilder, Locator};
use infrastructure::testing::TestStore;
use serde_json::{Value, json};
use tests::on_both_backends;

use crate::support::Running;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser at a time: two Chromiums beside the rest of the suite on
/// two cores starve each other's pages past the waits below.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a page may take to become ready.
const PATIENCE: Duration = Duration::from_secs(45);

/// chromedriver and a browser session; both end on drop, and then the
/// next test's browser may start.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the browser through its driver (also when the test failed
        // midway: killing chromedriver alone would leave Chromium running),
        // then the driver.
        let client = self.client.clone();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
            });
        });
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Option<Browser> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("SKILL_METRICS_REQUIRE_BROWSER").is_none(),
            "SKILL_METRICS_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing: \
             install Debian's chromium and chromium-driver"
        );
        eprintln!("skipped: no {CHROMIUM} and {CHROMEDRIVER} (install chromium chromium-driver)");
        return None;
    }
    let turn = ONE_BROWSER.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1100", "--no-first-run", "--disable-background-networking",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let client = loop {
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        match builder.capabilities(caps.clone()).connect(&url).await {
            Ok(client) => break client,
            Err(e) if started.elapsed() < PATIENCE => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
        }
    };
    Some(Browser {
        client,
        driver,
        _profile: profile,
        _turn: turn,
    })
}

/// Opens `url` and waits until `ready` (as for [`wait_for`]) holds.
async fn visit(client: &Client, url: &str, what: &str, ready: &str) {
    client.goto(url).await.unwrap();
    wait_for(client, what, ready).await;
}

/// Runs `script` (a function body that returns) until it returns `true`.
async fn wait_for(client: &Client, what: &str, script: &str) {
    let started = Instant::now();
    loop {
        let got = client.execute(script, vec![]).await.unwrap();
        if got == Value::Bool(true) {
            return;
        }
        if started.elapsed() >= PATIENCE {
            // What the page shows instead, for the failure's message.
            let page = client
                .execute(
                    "return location.href + ' | status: ' + (document.getElementById('status') || {}).textContent \
                     + ' | renders: ' + window.__renders + ' | main: ' + (document.getElementById('main') || document.body).innerText;",
                    vec![],
                )
                .await
                .map_or_else(|e| format!("(unreadable: {e})"), |v| v.to_string());
            panic!(
                "{what}: still {got} after {} s; the page: {page}",
                PATIENCE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn shot(client: &Client, backend: &str, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{backend}-{name}.png")), png).unwrap();
}

/// The page's Content-Security-Policy refused nothing it tried (an inline
/// style, say, would draw every ranked bar at full width).
async fn no_violations(client: &Client) {
    let refused = client
        .execute("return window.__violations;", vec![])
        .await
        .unwrap();
    assert_eq!(refused, json!([]));
}

/// The digits of a shown number ("1,234 invocations" → 1234).
fn number(text: &str) -> i64 {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number in {text:?}"))
}

/// Known events: `deploy` 12 (3 failed) and `review` 5 in the last few
/// hours, `Bash` 3 (a tool), and `deploy` 4 more three days ago; two
/// sessions, two projects.
fn events() -> String {
    let now = Utc::now();
    let mut lines = Vec::new();
    let mut add =
        |skill: &str, minutes_ago: i64, ok: bool, secs: f64, session: &str, project: &str| {
            let at = now - chrono::Duration::minutes(minutes_ago);
            let mut v = json!({
                "skill_name": skill,
                "invoked_at": at.to_rfc3339(),
                "completed": ok,
                "duration_seconds": secs,
                "workflow_path": format!("ci/{skill}-prod"),
                "session_id": session,
                "project_path": project,
            });
            if !ok {
                v["error_type"] = json!("Timeout");
            }
            lines.push(v.to_string());
        };
    for i in 0..12 {
        add(
            "deploy",
            30 + i * 9,
            i % 4 != 3,
            1.0 + i as f64,
            "s-dash-1",
            "/work/a",
        );
    }
    for i in 0..5 {
        add(
            "review",
            40 + i * 11,
            true,
            0.5 + i as f64,
            "s-dash-2",
            "/work/b",
        );
    }
    for i in 0..3 {
        add("Bash", 50 + i, true, 0.2, "s-dash-2", "/work/b");
    }
    for i in 0..4 {
        add(
            "deploy",
            3 * 24 * 60 + i * 5,
            true,
            2.0,
            "s-dash-0",
            "/work/a",
        );
    }
    lines.join("\n") + "\n"
}

/// A plain HTTP client (reqwest is built with rustls and no default
/// provider: this process installs ring's).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(url: &str, token: &str) -> Value {
    http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|body| serde_json::from_str(&body).unwrap())
        .unwrap()
}

async fn the_dashboard_in_a_real_browser(store: &TestStore) {
    let Some(browser) = browser().await else {
        return;
    };
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let c = &browser.client;
    let server = Running::start(store, Scope::Admin).await;
    let base = server.url.clone();
    let http = http();
    let posted = http
        .post(format!("{base}/api/v1/invocations"))
        .bearer_auth(&server.token)
        .body(events())
        .send()
        .await
        .unwrap();
    assert!(
        posted.status().is_success(),
        "{}",
        posted.text().await.unwrap()
    );

    // Without the cookie: the page and the API refuse.
    c.goto(&base).await.unwrap();
    assert!(text_of(c, "main").await.contains("not logged in"));
    c.goto(&format!("{base}/api/v1/overview")).await.unwrap();
    assert!(text_of(c, "body").await.contains("Bearer"));
    let bare = http
        .get(format!("{base}/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), reqwest::StatusCode::UNAUTHORIZED);

    // The login link works once, and the code leaves the address bar.
    let code = store.create_login_code().await.unwrap();
    visit(
        c,
        &format!("{base}/login?code={code}"),
        "the page after the login",
        // The dashboard itself, not a refusal or an error page at `/`.
        "return location.pathname === '/' && location.search === '' && !!document.getElementById('status');",
    )
    .await;
    assert_eq!(c.current_url().await.unwrap().as_str(), format!("{base}/"));
    wait_for(
        c,
        "the overview",
        "return !!document.querySelector('[data-testid=total]');",
    )
    .await;
    let again = http
        .get(format!("{base}/login?code={code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(again.text().await.unwrap().contains("used already"));

    // Numbers: what the page shows is the API's JSON (the last 7 days).
    let since = (Utc::now() - chrono::Duration::days(7)).to_rfc3339();
    let api = |q: String| get_overview(&base, &server.token, q);
    let o = api(format!("since={}", enc(&since))).await;
    assert_eq!(o["total_invocations"], 24);
    // The buckets and every skill's series hold every invocation counted,
    // and end with the current day (the range ends now).
    let sum = |v: &Value| -> i64 {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .sum()
    };
    let buckets = o["buckets"].as_array().unwrap();
    let per_bucket: i64 = buckets
        .iter()
        .map(|b| b["invocations"].as_i64().unwrap())
        .sum();
    assert_eq!(per_bucket, 24);
    for skill in o["skills"].as_array().unwrap() {
        assert_eq!(
            sum(&skill["series"]),
            skill["invocations"].as_i64().unwrap()
        );
    }
    let today = Utc::now().format("%Y-%m-%dT00:00:00").to_string();
    let last = buckets.last().unwrap()["bucket_start"].as_str().unwrap();
    assert!(last.starts_with(&today), "{last} is not today");
    assert_eq!(number(&text_of(c, "[data-testid=total]").await), 24);
    assert_eq!(text_of(c, "[data-testid=busiest]").await, "deploy");
    for skill in o["skills"].as_array().unwrap() {
        let name = skill["skill_name"].as_str().unwrap();
        let shown = text_of(
            c,
            &format!("tr[data-skill='{name}'] [data-testid=row-invocations]"),
        )
        .await;
        assert_eq!(
            number(&shown),
            skill["invocations"].as_i64().unwrap(),
            "{name}"
        );
    }
    // Charts: one point per bucket, one sparkline per skill.
    let points = c
        .execute("return window.__charts.overview.data[0].length;", vec![])
        .await
        .unwrap();
    assert_eq!(points, json!(o["buckets"].as_array().unwrap().len()));
    let sparks = c
        .execute(
            "return Object.keys(window.__charts).filter(k => k.startsWith('spark:')).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(sparks, json!(3));
    shot(c, &backend, "overview").await;

    // Filters: the last 24 hours leave out the deploys of three days ago,
    // and the URL holds the choice.
    choose(c, "#range", "24h").await;
    wait_for(
        c,
        "the 24 h total",
        "const t = document.querySelector('[data-testid=total]'); return !!t && t.textContent.startsWith('20 ');",
    )
    .await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("range=24h")
    );
    choose(c, "#kind", "tools").await;
    wait_for(
        c,
        "tools only",
        "const t = document.querySelector('[data-testid=busiest]'); return !!t && t.textContent === 'Bash';",
    )
    .await;
    choose(c, "#kind", "all").await;
    wait_for(
        c,
        "all again",
        "const t = document.querySelector('[data-testid=total]'); return !!t && t.textContent.startsWith('20 ');",
    )
    .await;

    // Live: an event posted through the API shows up without a reload.
    c.execute("window.__marker = 'still here'; return true;", vec![])
        .await
        .unwrap();
    let one = json!({"skill_name": "deploy", "invoked_at": Utc::now().to_rfc3339(), "completed": true, "duration_seconds": 1.5});
    let posted = http
        .post(format!("{base}/api/v1/invocations"))
        .bearer_auth(&server.token)
        .body(one.to_string())
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success());
    wait_for(
        c,
        "the live update",
        "const t = document.querySelector('[data-testid=total]'); return !!t && t.textContent.startsWith('21 ');",
    )
    .await;
    assert_eq!(
        c.execute("return window.__marker;", vec![]).await.unwrap(),
        json!("still here")
    );

    // A skill's page: its chart has the timeline's points.
    c.find(Locator::Css("tr[data-skill='deploy'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "the skill page", "return !!window.__charts.skill;").await;
    let since = (Utc::now() - chrono::Duration::hours(24)).to_rfc3339();
    let timeline = get(
        &format!(
            "{base}/api/v1/timeline/deploy?bucket=hour&since={}",
            enc(&since)
        ),
        &server.token,
    )
    .await;
    let points = c
        .execute("return window.__charts.skill.data[0].length;", vec![])
        .await
        .unwrap();
    assert_eq!(points, json!(timeline.as_array().unwrap().len()));
    assert!(text_of(c, "[data-testid=errors]").await.contains("Timeout"));
    assert!(
        text_of(c, "[data-testid=paths]")
            .await
            .contains("ci/deploy-prod")
    );
    no_violations(c).await;
    shot(c, &backend, "skill").await;

    // A session's page: its invocations on a time axis.
    visit(
        c,
        &format!("{base}/?view=session&session=s-dash-2"),
        "the session page",
        "return !!window.__charts.session;",
    )
    .await;
    let points = c
        .execute("return window.__charts.session.data[0].length;", vec![])
        .await
        .unwrap();
    assert_eq!(points, json!(8));
    no_violations(c).await;
    shot(c, &backend, "session").await;
    visit(
        c,
        &format!("{base}/?view=sessions"),
        "the sessions",
        "return !!document.querySelector('[data-testid=sessions]');",
    )
    .await;
    assert!(
        text_of(c, "[data-testid=sessions]")
            .await
            .contains("s-dash-1")
    );
    shot(c, &backend, "sessions").await;

    // Search finds a known invocation.
    let q = c.find(Locator::Css("#q")).await.unwrap();
    q.send_keys("review").await.unwrap();
    c.find(Locator::Css("#search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        c,
        "the results",
        "return !!document.querySelector('[data-testid=invocations]');",
    )
    .await;
    assert!(
        text_of(c, "[data-testid=invocations]")
            .await
            .contains("ci/review-prod")
    );
    shot(c, &backend, "search").await;

    // Insights: the page lists the API's findings, each linked to its
    // skill's page; the overview's panel shows the changes among them.
    let found = get(&format!("{base}/api/v1/insights?window=7d"), &server.token).await;
    let want: Vec<(String, String)> = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["skill_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        want.contains(&("new_skill".to_owned(), "deploy".to_owned())),
        "{want:?}"
    );
    visit(
        c,
        &format!("{base}/?view=insights"),
        "the findings",
        "return document.querySelectorAll('[data-testid=finding]').length > 0;",
    )
    .await;
    let shown = c
        .execute(
            "return Array.from(document.querySelectorAll('[data-testid=finding]')).map(f => [f.dataset.kind, f.dataset.skill]);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!(want));
    shot(c, &backend, "insights").await;
    c.find(Locator::Css("[data-kind=new_skill][data-skill=deploy] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        c,
        "the skill page from a finding",
        "return !!window.__charts.skill;",
    )
    .await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("skill=deploy")
    );
    visit(
        c,
        &format!("{base}/?view=overview"),
        "the insights panel",
        "return !!document.querySelector('[data-testid=insights-panel] [data-testid=finding]');",
    )
    .await;
    assert!(
        text_of(c, "[data-testid=insights-panel]")
            .await
            .contains("review is new")
    );
    // The skills/tools choice narrows the panel too: no skill's finding
    // is left among the tools.
    choose(c, "#kind", "tools").await;
    wait_for(
        c,
        "the panel of tools",
        "const p = document.querySelector('[data-testid=insights-panel]'); \
         return !!p && !p.textContent.includes('review is new') && p.textContent.includes('Bash') && \
         Array.from(p.querySelectorAll('[data-testid=finding]')).every(f => f.textContent.includes('(tool)'));",
    )
    .await;
    choose(c, "#kind", "skills").await;
    wait_for(
        c,
        "the panel of skills",
        "const p = document.querySelector('[data-testid=insights-panel]'); \
         return !!p && p.textContent.includes('review is new') && !p.textContent.includes('(tool)');",
    )
    .await;

    no_violations(c).await;
    // Nothing was asked of another origin.
    let elsewhere = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(elsewhere, json!([]));

    server.stop().await;
}

on_both_backends!(the_dashboard_in_a_real_browser);

/// Picks `value` in the page's select `css`.
async fn choose(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

fn enc(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

async fn get_overview(base: &str, token: &str, query: String) -> Value {
    get(&format!("{base}/api/v1/overview?{query}"), token).await
}

/// `skill-metrics dashboard` finds the running server of its store (an
/// address left by a server that died, silent or now another store's
/// server, is skipped) and prints a link that
/// logs one browser in, once; the cookie reads and writes nothing.
async fn the_dashboard_command_links_to_the_running_server(store: &TestStore) {
    let server = Running::start(store, Scope::Read).await;
    let live = server.url.trim_start_matches("http://").to_owned();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    // A server of another store, at an address a dead server of this one
    // left behind: it answers, but is not this store's.
    let other_store = TestStore::sqlite().await;
    let other = Running::start(&other_store, Scope::Read).await;
    let squatter = other.url.trim_start_matches("http://").to_owned();
    store.note_serve_address(&live).await.unwrap();
    // Recorded after the live one, so tried first.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.note_serve_address(&dead).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.note_serve_address(&squatter).await.unwrap();
    // The command runs beside this test's server, which answers on this
    // thread: wait for it without blocking the thread.
    let url = store.url().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::run_on(&url, &["dashboard", "--no-open"], None)
    })
    .await
    .unwrap();
    let link = crate::support::ok(&out).trim().to_owned();
    assert!(
        link.starts_with(&format!("{}/login?code=sml_", server.url)),
        "{link}"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = http.get(&link).send().await.unwrap();
    assert_eq!(opened.status(), reqwest::StatusCode::OK);
    let set = opened.headers()["set-cookie"].to_str().unwrap().to_owned();
    // A cookie of this server's port, for 12 hours.
    let port = live.rsplit_once(':').unwrap().1;
    assert!(
        set.starts_with(&format!("skill_metrics_session_{port}=")),
        "{set}"
    );
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        opened
            .text()
            .await
            .unwrap()
            .contains("http-equiv=\"refresh\" content=\"0;url=/\"")
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{}/", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    assert!(page.text().await.unwrap().contains("/assets/app.js"));
    let read = http
        .get(format!("{}/api/v1/overview", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), reqwest::StatusCode::OK);
    let write = http
        .post(format!("{}/api/v1/invocations", server.url))
        .header("cookie", &cookie)
        .body(r#"{"skill_name":"x","invoked_at":"2025-01-01T00:00:00Z","completed":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), reqwest::StatusCode::FORBIDDEN);
    // A forged or stale cookie reads nothing.
    let forged = http
        .get(format!("{}/api/v1/overview", server.url))
        .header("cookie", format!("skill_metrics_session_{port}=0000"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::UNAUTHORIZED);
    // The link worked once.
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::UNAUTHORIZED);
    // A code past its five minutes opens nothing; a session past its
    // twelve hours reads nothing.
    use sea_orm::ConnectionTrait;
    let late = store.create_login_code().await.unwrap();
    let expire = |kind: &str| {
        format!("UPDATE dashboard_logins SET expires_at = created_at WHERE kind = '{kind}'")
    };
    store
        .connection()
        .execute_unprepared(&expire("code"))
        .await
        .unwrap();
    assert_eq!(store.redeem_login_code(&late).await.unwrap(), None);
    store
        .connection()
        .execute_unprepared(&expire("session"))
        .await
        .unwrap();
    let stale = http
        .get(format!("{}/api/v1/overview", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), reqwest::StatusCode::UNAUTHORIZED);
    server.stop().await;
    other.stop().await;
}

on_both_backends!(shared: the_dashboard_command_links_to_the_running_server);

/// With no server of its store running, `skill-metrics dashboard` serves
/// the store itself on a loopback port, records that address, and prints
/// a link to it that logs a browser in.
async fn the_dashboard_command_serves_the_store_when_nothing_does(store: &TestStore) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .env("SKILL_METRICS_DATABASE_URL", store.url())
        .args(["dashboard", "--no-open"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let link = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line.trim().to_owned()
    })
    .await
    .unwrap();
    let served = link.split("/login").next().unwrap().to_owned();
    assert!(served.starts_with("http://127.0.0.1:"), "{link}");
    let address = served.trim_start_matches("http://");
    assert_eq!(
        store.serve_addresses().await.unwrap(),
        vec![address.to_owned()]
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let opened = http.get(&link).send().await.unwrap();
    assert_eq!(opened.status(), reqwest::StatusCode::OK);
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{served}/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();
}

on_both_backends!(shared: the_dashboard_command_serves_the_store_when_nothing_does);
