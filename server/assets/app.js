// The skill-metrics dashboard: reads this server's /api/v1 routes with the
// session cookie, keeps its filters in the URL, and refreshes the view in
// place every few seconds. Charts are uPlot's; times show in the browser's
// time zone.
"use strict";

(function () {
  const POLL_MS = 3000;
  // A request not answered in this long is given up (and the next poll
  // asks again), so that one stalled answer cannot hold the page.
  const ANSWER_MS = 15000;
  const COLORS = { blue: "#0072b2", orange: "#e69f00", green: "#009e73", red: "#d55e00", pink: "#cc79a7" };
  const main = document.getElementById("main");
  const status = document.getElementById("status");
  // The charts on the page, by name: the browser tests read their data.
  window.__charts = {};
  window.__renders = 0;
  // What the Content-Security-Policy refused on this page (none, or a bug).
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
  });

  // ---- the URL is the state ------------------------------------------------
  function state() {
    const p = new URLSearchParams(location.search);
    return {
      view: p.get("view") || "overview",
      range: p.get("range") || "7d",
      from: p.get("from") || "",
      to: p.get("to") || "",
      project: p.get("project"),
      kind: p.get("kind") || "all",
      skill: p.get("skill") || "",
      session: p.get("session") || "",
      q: p.get("q") || "",
    };
  }

  function href(changes) {
    const s = Object.assign(state(), changes);
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(s)) {
      if (v === null || v === undefined || v === "") continue;
      if (k === "project" && v === "__all__") continue;
      p.set(k, v);
    }
    if (s.project === "") p.set("project", "");
    return "?" + p.toString();
  }

  function go(changes) {
    history.pushState(null, "", href(changes));
    render(true);
  }

  // [since, until) of the chosen range, as RFC 3339; until is open for the
  // ranges that end now, so that new events show up.
  function span(s) {
    const now = Date.now();
    const hours = { "24h": 24, "7d": 24 * 7, "30d": 24 * 30 }[s.range];
    if (hours) return { since: new Date(now - hours * 3600e3).toISOString(), until: null, seconds: hours * 3600 };
    const from = s.from ? new Date(s.from) : new Date(now - 7 * 86400e3);
    const to = s.to ? new Date(s.to) : new Date(now);
    return { since: from.toISOString(), until: to.toISOString(), seconds: Math.max(1, (to - from) / 1000) };
  }

  function bucketFor(seconds) {
    if (seconds <= 2 * 86400) return "hour";
    if (seconds <= 92 * 86400) return "day";
    return "week";
  }

  // ---- formatting: every number with its unit --------------------------------
  const int = new Intl.NumberFormat();
  function count(n, unit) { return int.format(n) + (unit ? " " + unit : ""); }
  function pct(x) { return x === null || x === undefined ? "–" : x.toFixed(1) + " %"; }
  function secs(x) {
    if (x === null || x === undefined) return "–";
    if (x < 1) return (x * 1000).toFixed(0) + " ms";
    if (x < 60) return x.toFixed(2) + " s";
    if (x < 3600) return (x / 60).toFixed(1) + " min";
    return (x / 3600).toFixed(1) + " h";
  }
  function when(t) { return t ? new Date(t).toLocaleString() : "–"; }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function link(text, changes, attrs) {
    return el("a", Object.assign({ href: href(changes), onclick: (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      go(changes);
    } }, attrs || {}), text);
  }

  // ---- the API -------------------------------------------------------------
  class Refused extends Error {}

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined) url.searchParams.set(k, v);
    }
    // The limit covers the whole answer, its body included.
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), ANSWER_MS);
    try {
      const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal: stop.signal });
      if (r.status === 401) throw new Refused("Your session has expired or was never opened: run `skill-metrics dashboard` again.");
      if (!r.ok) {
        let message = r.status + " " + r.statusText;
        try { message = (await r.json()).error || message; } catch (_) { /* not JSON */ }
        throw new Error(message);
      }
      return await r.json();
    } catch (e) {
      if (stop.signal.aborted && !(e instanceof Refused)) throw new Error("no answer within " + ANSWER_MS / 1000 + " s");
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  function filters(s) {
    const sp = span(s);
    return { since: sp.since, until: sp.until, project: s.project === null ? null : s.project };
  }

  // ---- charts ----------------------------------------------------------------
  function chart(name, target, opts, data) {
    if (window.__charts[name]) window.__charts[name].destroy();
    // Without the chart library (its file did not load) the figures stay.
    if (typeof uPlot === "undefined") {
      target.replaceChildren(el("span", { class: "muted", text: "(no chart: reload the page)" }));
      return null;
    }
    const width = Math.max(240, target.clientWidth || main.clientWidth - 48);
    const u = new uPlot(Object.assign({ width, height: opts.height || 240 }, opts), data, target);
    window.__charts[name] = u;
    return u;
  }

  function sparkline(name, target, xs, ys) {
    return chart(name, target, {
      width: 140, height: 32, cursor: { show: false }, legend: { show: false },
      axes: [{ show: false }, { show: false }], scales: { x: { time: true } },
      series: [{}, { stroke: COLORS.blue, width: 1.5, points: { show: false } }],
    }, [xs, ys]);
  }

  function t(s) { return Date.parse(s) / 1000; }

  // ---- views -----------------------------------------------------------------
  function empty(message) {
    const here = location.host;
    return el("div", { class: "empty", "data-testid": "empty" },
      el("p", { text: message }),
      el("p", { text: "No data yet: point Claude Code here. Make an ingest token with `skill-metrics token create NAME --scope ingest`, then run Claude Code with:" }),
      el("pre", {}, [
        "export CLAUDE_CODE_ENABLE_TELEMETRY=1",
        "export OTEL_LOGS_EXPORTER=otlp",
        "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        "export OTEL_EXPORTER_OTLP_ENDPOINT=http://" + here,
        'export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer TOKEN"',
        "export OTEL_LOG_TOOL_DETAILS=1",
      ].join("\n")),
      el("p", { class: "muted", text: "Or import what your assistants already wrote: `skill-metrics import claude-code`." }));
  }

  function card(label, value, testid) {
    return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", "data-testid": testid, text: value }));
  }

  // ---- insights ----------------------------------------------------------------
  const KINDS = {
    latency_regression: "Latency regressions", completion_drop: "Completion drops", error_rise: "Rising errors",
    usage_rise: "Use rose", usage_fall: "Use fell", latency_improvement: "Latency improvements",
    new_skill: "New skills", retire_candidate: "Retire candidates",
    slow_hot_spot: "Hot spots: time spent", failing_hot_spot: "Hot spots: time lost to failures",
  };
  const CHANGES = ["latency_regression", "completion_drop", "error_rise", "usage_rise", "usage_fall", "latency_improvement", "new_skill", "retire_candidate"];

  // The insights' window is the chosen range (ending now, or at its end;
  // its last 366 days, the longest window compared), against as long a
  // stretch just before it.
  function insightsQuery(s) {
    const sp = span(s);
    const minutes = Math.min(366 * 1440, Math.max(1, Math.round(sp.seconds / 60)));
    return { window: minutes + "m", until: sp.until, project: s.project === null ? null : s.project };
  }

  function evidence(f) {
    if (f.p_value === null || f.p_value === undefined) {
      if (f.kind === "retire_candidate") return "last used " + when(f.last_invoked) + ", " + count(f.lifetime_invocations, "invocations") + " in all";
      return "";
    }
    return "n " + count(f.baseline_count) + " → " + count(f.window_count) + " · p " + f.p_value.toExponential(1) + " · q " + f.q_value.toExponential(1) + " · " + f.test;
  }

  function findingItem(f) {
    return el("li", { "data-testid": "finding", "data-kind": f.kind, "data-skill": f.skill_name },
      link(f.skill_name, { view: "skill", skill: f.skill_name }), f.is_tool ? el("span", { class: "muted", text: " (tool)" }) : null,
      // The sentence names the skill; after the link, the rest of it.
      el("span", { text: f.summary.startsWith(f.skill_name + " ") ? f.summary.slice(f.skill_name.length) : ": " + f.summary }),
      evidence(f) ? el("div", { class: "muted evidence", text: evidence(f) }) : null);
  }

  async function insightsPage(s) {
    const r = await api("/api/v1/insights", insightsQuery(s));
    const out = [el("h1", { text: "Insights" }),
      el("p", { class: "muted", "data-testid": "insights-scope" }, count(r.window_invocations, "invocations") + " in the window against " +
        count(r.baseline_invocations, "invocations") + " in the stretch before it; " + count(r.tests_run, "tests") +
        ", findings held to a false-discovery rate of " + (r.settings.alpha * 100) + " %. Retire candidates: not used for " +
        r.settings.retire_after_days + " days, or fewer than " + r.settings.retire_floor + " times in the window.")];
    if (!r.findings.length) {
      out.push(el("p", { "data-testid": "no-findings", text: "No findings: nothing in the window differs from the stretch before it beyond noise." }));
      return out;
    }
    for (const kind of Object.keys(KINDS)) {
      const of = r.findings.filter((f) => f.kind === kind);
      if (!of.length) continue;
      out.push(el("section", { "aria-label": KINDS[kind] }, el("h2", { text: KINDS[kind] }),
        el("ul", { class: "findings", "data-testid": "findings-" + kind }, of.map(findingItem))));
    }
    return out;
  }

  // The overview's panel: the findings of change, the first few.
  async function insightsPanel(s) {
    let r;
    try {
      r = await api("/api/v1/insights", insightsQuery(s));
    } catch (e) {
      if (e instanceof Refused) throw e;
      return el("section", { "aria-label": "Insights", "data-testid": "insights-panel" }, el("h2", { text: "Insights" }),
        el("p", { class: "muted", text: "No insights for this range: " + e.message }));
    }
    // The overview's skills/tools choice applies to its panel too.
    const shown = (f) => (s.kind === "skills" ? !f.is_tool : s.kind === "tools" ? f.is_tool : true);
    const changes = r.findings.filter((f) => CHANGES.includes(f.kind) && shown(f));
    return el("section", { "aria-label": "Insights", "data-testid": "insights-panel" },
      el("h2", {}, "Insights ", link("(all)", { view: "insights" })),
      changes.length ? el("ul", { class: "findings" }, changes.slice(0, 6).map(findingItem))
        : el("p", { class: "muted", text: "No changes beyond noise against the stretch before this range." }));
  }

  let sortKey = "invocations";
  let sortDesc = true;

  async function overview(s) {
    const f = filters(s);
    const [o, panel] = await Promise.all([api("/api/v1/overview", Object.assign({ kind: s.kind }, f)), insightsPanel(s)]);
    fillProjects(o.projects || []);
    const out = [el("h1", { text: "Overview" })];
    out.push(el("div", { class: "cards" },
      card("Invocations", count(o.total_invocations, "invocations"), "total"),
      card("Completion rate", pct(o.total_invocations ? o.completion_rate : null), "completion"),
      card("Skills invoked", count(o.skill_count, o.skill_count === 1 ? "skill" : "skills"), "skills"),
      card("Busiest skill", o.busiest_skill || "–", "busiest")));
    if (o.total_invocations === 0) {
      out.push(empty("Nothing was invoked in this range" + (s.project !== null ? " and project" : "") + "."));
      return out;
    }
    const plot = el("div", { class: "chart", "data-testid": "overview-chart", role: "img", "aria-label": "Invocations and p95 duration per " + o.bucket });
    out.push(el("h2", { text: "Invocations and p95 per " + o.bucket }), plot);
    const xs = o.buckets.map((b) => t(b.bucket_start));
    after(() => chart("overview", plot, {
      scales: { x: { time: true }, n: {}, s: {} },
      axes: [{}, { scale: "n", label: "invocations" }, { scale: "s", side: 1, label: "p95 (s)", grid: { show: false } }],
      series: [{}, { label: "invocations", scale: "n", stroke: COLORS.blue, fill: "rgba(0,114,178,0.15)", width: 2 },
        { label: "p95 (s)", scale: "s", stroke: COLORS.orange, width: 2, dash: [6, 4] }],
    }, [xs, o.buckets.map((b) => b.invocations), o.buckets.map((b) => b.p95_duration_seconds)]));
    out.push(panel);
    out.push(el("h2", { text: "Skills" }), skillsTable(o, xs));
    return out;
  }

  function skillsTable(o, xs) {
    const cols = [
      ["skill_name", "Skill", false], ["invocations", "Invocations", true], ["completion_rate", "Completion", true],
      ["p50_duration_seconds", "p50", true], ["p95_duration_seconds", "p95", true], ["p99_duration_seconds", "p99", true],
      ["top_error", "Top error (all time)", false],
    ];
    const rows = o.skills.slice().sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1;
      return sortDesc ? -c : c;
    });
    const head = el("tr", {}, cols.map(([key, label, num]) => el("th", {
      class: num ? "num" : null, scope: "col",
      "aria-sort": key === sortKey ? (sortDesc ? "descending" : "ascending") : "none",
    }, el("button", { type: "button", onclick: () => {
      if (sortKey === key) sortDesc = !sortDesc; else { sortKey = key; sortDesc = num; }
      render(false);
    } }, label))), el("th", { scope: "col", text: "Trend" }));
    const body = rows.map((r, i) => {
      const spark = el("div", { "data-testid": "spark" });
      if (i < 50) after(() => sparkline("spark:" + r.skill_name, spark, xs, r.series));
      return el("tr", { "data-skill": r.skill_name },
        el("td", {}, link(r.skill_name, { view: "skill", skill: r.skill_name }), r.is_tool ? el("span", { class: "muted", text: " (tool)" }) : null),
        el("td", { class: "num", "data-testid": "row-invocations", text: count(r.invocations) }),
        el("td", { class: "num", text: pct(r.completion_rate) }),
        el("td", { class: "num", text: secs(r.p50_duration_seconds) }),
        el("td", { class: "num", text: secs(r.p95_duration_seconds) }),
        el("td", { class: "num", text: secs(r.p99_duration_seconds) }),
        el("td", { text: r.top_error || "–" }),
        el("td", {}, spark));
    });
    return el("table", { "data-testid": "skills" }, el("thead", {}, head), el("tbody", {}, body));
  }

  // A bar `percent` wide. Its width is set through the CSSOM: the page's
  // Content-Security-Policy refuses style attributes.
  function bar(percent) {
    const b = el("span", { class: "bar", "data-percent": percent.toFixed(1) });
    b.style.width = Math.max(1, percent) + "%";
    return b;
  }

  function bars(title, map, testid) {
    const items = Object.entries(map || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 15);
    const max = items.length ? items[0][1] : 1;
    return el("section", { "aria-label": title },
      el("h2", { text: title }),
      items.length ? el("ul", { class: "bars", "data-testid": testid }, items.map(([name, n]) =>
        el("li", {}, el("span", { class: "name", text: name }),
          bar((100 * n) / max),
          el("span", { class: "num", text: count(n) })))) : el("p", { class: "muted", text: "None recorded." }));
  }

  function invocationsTable(list, showSkill) {
    return el("table", { "data-testid": "invocations" },
      el("thead", {}, el("tr", {}, el("th", { text: "When" }), showSkill ? el("th", { text: "Skill" }) : null,
        el("th", { text: "Outcome" }), el("th", { class: "num", text: "Duration" }), el("th", { text: "Workflow path" }),
        el("th", { text: "Error" }), el("th", { text: "Session" }))),
      el("tbody", {}, list.map((i) => el("tr", {},
        el("td", { text: when(i.invoked_at) }),
        showSkill ? el("td", {}, link(i.skill_name, { view: "skill", skill: i.skill_name })) : null,
        el("td", { class: i.completed ? null : "failed", text: i.completed ? "completed" : "abandoned" }),
        el("td", { class: "num", text: secs(i.duration_seconds) }),
        el("td", { text: i.workflow_path || "–" }),
        el("td", { text: i.error_type || "–" }),
        el("td", {}, i.session_id ? link(i.session_id, { view: "session", session: i.session_id }) : "–")))));
  }

  async function skillPage(s) {
    const f = filters(s);
    const bucket = bucketFor(span(s).seconds);
    const [timeline, metrics, recent] = await Promise.all([
      api("/api/v1/timeline/" + encodeURIComponent(s.skill), Object.assign({ bucket }, f)),
      api("/api/v1/metrics/" + encodeURIComponent(s.skill)).catch(() => null),
      api("/api/v1/recent", { skill: s.skill, limit: 20 }),
    ]);
    const m = Array.isArray(metrics) ? metrics[0] : metrics;
    const out = [el("h1", {}, link("Overview", { view: "overview", skill: "" }), " / ", s.skill)];
    const n = timeline.reduce((a, b) => a + b.invocations, 0);
    out.push(el("div", { class: "cards" },
      card("Invocations in range", count(n, "invocations"), "skill-total"),
      card("All time", m ? count(m.total_invocations, "invocations") : "–", "skill-all-time"),
      card("p95, all time", m ? secs(m.p95_duration_seconds) : "–", "skill-p95")));
    if (!timeline.length) {
      out.push(empty("This skill was not invoked in this range."));
    } else {
      const plot = el("div", { class: "chart", "data-testid": "skill-chart", role: "img", "aria-label": "Invocations, completion and duration per " + bucket });
      out.push(el("h2", { text: "Per " + bucket }), plot);
      after(() => chart("skill", plot, {
        scales: { x: { time: true }, n: {}, s: {}, p: { range: [0, 100] } },
        axes: [{}, { scale: "n", label: "invocations" }, { scale: "s", side: 1, label: "seconds", grid: { show: false } }],
        series: [{}, { label: "invocations", scale: "n", stroke: COLORS.blue, width: 2 },
          { label: "completion %", scale: "p", stroke: COLORS.green, width: 1.5 },
          { label: "p50 (s)", scale: "s", stroke: COLORS.pink, width: 1.5 },
          { label: "p95 (s)", scale: "s", stroke: COLORS.orange, width: 2, dash: [6, 4] }],
      }, [timeline.map((b) => t(b.bucket_start)), timeline.map((b) => b.invocations), timeline.map((b) => b.completion_rate),
        timeline.map((b) => b.p50_duration_seconds), timeline.map((b) => b.p95_duration_seconds)]));
    }
    if (m) {
      out.push(el("div", { class: "grid2" },
        bars("Error types", m.common_errors, "errors"), bars("Workflow paths", m.workflow_paths, "paths"),
        bars("Follow-up actions", m.follow_up_actions, "follow-ups")));
    }
    out.push(el("h2", { text: "Recent invocations" }), invocationsTable(recent, false));
    return out;
  }

  // Whether a time and project fall within the page's filters.
  function within(s, at, projectPath) {
    const f = filters(s);
    const t = Date.parse(at);
    if (f.since && t < Date.parse(f.since)) return false;
    if (f.until && t >= Date.parse(f.until)) return false;
    return f.project === null || (projectPath || "") === f.project;
  }

  async function sessionsPage(s) {
    const all = await api("/api/v1/sessions", { limit: 200 });
    const list = all.filter((x) => within(s, x.started_at, x.project_path)).slice(0, 100);
    const out = [el("h1", { text: "Sessions" }),
      el("p", { class: "muted", text: "The sessions started in the range (of the newest 200), newest first." })];
    if (!list.length) { out.push(empty("No session started in this range" + (s.project !== null ? " and project" : "") + ".")); return out; }
    out.push(el("table", { "data-testid": "sessions" },
      el("thead", {}, el("tr", {}, el("th", { text: "Session" }), el("th", { text: "Started" }), el("th", { text: "Ended" }), el("th", { text: "Project" }))),
      el("tbody", {}, list.map((x) => el("tr", {},
        el("td", {}, link(x.id, { view: "session", session: x.id })),
        el("td", { text: when(x.started_at) }), el("td", { text: when(x.ended_at) }), el("td", { text: x.project_path || "–" }))))));
    return out;
  }

  async function sessionPage(s) {
    const v = await api("/api/v1/sessions/" + encodeURIComponent(s.session));
    const list = v.invocations || [];
    const out = [el("h1", {}, link("Sessions", { view: "sessions", session: "" }), " / ", s.session)];
    out.push(el("p", { class: "muted", text: "Started " + when(v.started_at) + (v.project_path ? " in " + v.project_path : "") + ", " + count(list.length, list.length === 1 ? "invocation" : "invocations") }));
    if (list.length) {
      const plot = el("div", { class: "chart", "data-testid": "session-chart", role: "img", "aria-label": "The session's invocations on a time axis" });
      out.push(el("h2", { text: "Invocations in time order" }), plot);
      after(() => chart("session", plot, {
        height: 200, scales: { x: { time: true } }, axes: [{}, { label: "duration (s)" }],
        series: [{}, { label: "duration (s)", stroke: COLORS.blue, width: 0, points: { show: true, size: 8, fill: COLORS.blue } }],
      }, [list.map((i) => t(i.invoked_at)), list.map((i) => i.duration_seconds === null ? 0 : i.duration_seconds)]));
    }
    out.push(invocationsTable(list, true));
    return out;
  }

  async function searchPage(s) {
    const all = await api("/api/v1/search", { q: s.q, limit: 1000 });
    const found = all.filter((i) => within(s, i.invoked_at, i.project_path)).slice(0, 100);
    const out = [el("h1", { text: "Search: " + s.q }),
      el("p", { class: "muted", text: "Matches in the range (of the newest 1,000), newest first." })];
    out.push(found.length ? invocationsTable(found, true) : el("p", { class: "muted", "data-testid": "no-results", text: "Nothing matches. Search words of skill names and workflow paths; end a word with * for a prefix." }));
    return out;
  }

  // ---- the filters -----------------------------------------------------------
  const range = document.getElementById("range");
  const from = document.getElementById("from");
  const to = document.getElementById("to");
  const project = document.getElementById("project");
  const kind = document.getElementById("kind");
  const custom = document.getElementById("custom");

  // The projects the overview last named (the select keeps them on every page).
  let knownProjects = [];

  function fillProjects(list) {
    const s = state();
    knownProjects = list;
    if (s.project && !list.includes(s.project)) list = list.concat([s.project]);
    const want = ["__all__", ""].concat(list.filter((p) => p !== ""));
    const have = Array.from(project.options).map((o) => o.value);
    if (want.join("\n") !== have.join("\n")) {
      project.replaceChildren(el("option", { value: "__all__", text: "all projects" }), el("option", { value: "", text: "no project" }),
        list.filter((p) => p !== "").map((p) => el("option", { value: p, text: p })));
    }
    project.value = s.project === null ? "__all__" : s.project;
  }

  function syncFilters(s) {
    fillProjects(knownProjects);
    range.value = s.range;
    custom.hidden = s.range !== "custom";
    from.value = s.from;
    to.value = s.to;
    kind.value = s.kind;
    kind.parentElement.hidden = s.view !== "overview";
    document.getElementById("q").value = s.q;
    for (const a of document.querySelectorAll("nav a")) {
      const here = a.dataset.view === s.view || (a.dataset.view === "sessions" && s.view === "session");
      if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
  }

  range.addEventListener("change", () => go({ range: range.value }));
  from.addEventListener("change", () => go({ from: from.value }));
  to.addEventListener("change", () => go({ to: to.value }));
  kind.addEventListener("change", () => go({ kind: kind.value }));
  project.addEventListener("change", () => go({ project: project.value === "__all__" ? null : project.value }));
  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = document.getElementById("q").value.trim();
    if (q) go({ view: "search", q });
  });
  window.addEventListener("popstate", () => render(true));

  // ---- rendering -------------------------------------------------------------
  let pending = [];
  function after(f) { pending.push(f); }
  let lastJson = "";
  let rendering = false;
  // A render asked for while one runs: done when it ends ("fresh" wins).
  let queued = null;

  async function render(fresh) {
    if (rendering) {
      queued = fresh || queued === "fresh" ? "fresh" : "poll";
      return;
    }
    rendering = true;
    const asked = location.search;
    let s;
    try {
      s = state();
      syncFilters(s);
      pending = [];
      const view = { overview, insights: insightsPage, skill: skillPage, sessions: sessionsPage, session: sessionPage, search: searchPage }[s.view] || overview;
      const content = await view(s);
      // The URL changed meanwhile: the queued render draws the new one.
      if (location.search !== asked) return;
      // A refresh that changes nothing leaves the page (and its focus) alone.
      const json = content.map((n) => n.outerHTML).join("");
      if (fresh || json !== lastJson) {
        for (const name of Object.keys(window.__charts)) { window.__charts[name].destroy(); delete window.__charts[name]; }
        main.replaceChildren(...content);
        // A chart that fails leaves the rest of the page drawn.
        pending.forEach((f) => {
          try { f(); } catch (e) { console.error("a chart failed", e); }
        });
        lastJson = json;
        window.__renders += 1;
      }
      pending = [];
      status.textContent = "Updated " + new Date().toLocaleTimeString();
      document.title = "skill-metrics: " + (s.view === "skill" ? s.skill : s.view);
    } catch (e) {
      main.replaceChildren(el("div", { class: "empty error", role: "alert", "data-testid": "error" },
        el("p", { text: e instanceof Refused ? e.message : "The server did not answer as expected: " + e.message }),
        e instanceof Refused ? null : el("p", { text: "Is `skill-metrics serve` still running? The page tries again every few seconds." })));
      lastJson = "";
      status.textContent = "Not updated";
    } finally {
      rendering = false;
      if (queued) {
        const again = queued === "fresh";
        queued = null;
        render(again);
      }
    }
  }

  render(true);
  setInterval(() => { if (!document.hidden) render(false); }, POLL_MS);
})();
