#!/usr/bin/env bash
# Regenerate the dashboard screenshots of the README (docs/dashboard-*.png):
# a store of a week of made-up use ending now, served by `skill-metrics
# dashboard`, photographed by Debian's headless Chromium. Needs chromium and
# a built binary (BIN, default target/release/skill-metrics).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-target/release/skill-metrics}
work=$(mktemp -d)
trap 'kill "${serving:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
export SKILL_METRICS_DATABASE_URL="sqlite://$work/store.db"

# Two weeks of use: eight skills and three tools, busier by day, a few
# failures; in the last week test-runner got slower, pdf-report went unused
# and deploy-staging began failing with a new error (for the insights).
python3 - "$work/week.jsonl" <<'PY'
import datetime, json, math, random, sys
random.seed(7)
now = datetime.datetime.now(datetime.timezone.utc)
skills = {"code-review": 14, "deploy-staging": 6, "docs-writer": 9, "test-runner": 18,
          "refactor-helper": 5, "pdf-report": 3, "session-checkpoint": 11, "db-migrate": 2,
          "Bash": 30, "Read": 40, "Edit": 22}
errors = ["Timeout", "NonZeroExit", "NotFound", "UserRejected"]
paths = ["quick", "full", "ci", "interactive"]
with open(sys.argv[1], "w") as out:
    for hour in range(14 * 24):
        at = now - datetime.timedelta(hours=hour)
        busy = 0.2 + (0.8 if 8 <= at.hour <= 18 else 0.0)
        session = f"week-{hour // 3}"
        for skill, rate in skills.items():
            if skill == "pdf-report" and hour < 7 * 24:
                continue
            for _ in range(int(random.random() * rate * busy / 3 + random.random())):
                ok = random.random() > (0.25 if skill == "deploy-staging" and hour < 48 else 0.07)
                slower = 2.2 if skill == "test-runner" and hour < 7 * 24 else 1.0
                when = at - datetime.timedelta(seconds=random.randrange(3600))
                event = {"skill_name": skill, "invoked_at": when.isoformat(), "completed": ok,
                         "duration_seconds": round(slower * random.lognormvariate(math.log(3 if skill[0].isupper() else 20), 0.7), 3),
                         "workflow_path": random.choice(paths), "session_id": session,
                         "project_path": random.choice(["/home/dev/api", "/home/dev/web"])}
                if not ok:
                    new = skill == "deploy-staging" and hour < 48
                    event["error_type"] = "QuotaExceeded" if new else random.choice(errors)
                out.write(json.dumps(event) + "\n")
PY
"$BIN" ingest "$work/week.jsonl" >/dev/null
"$BIN" dashboard --no-open >"$work/link" 2>"$work/log" &
serving=$!
for _ in $(seq 50); do [[ -s $work/link ]] && break; sleep 0.2; done
link=$(cat "$work/link")
base=${link%%/login*}
profile="$work/profile"
shoot() { # URL FILE
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$profile" --window-size=1280,1000 --virtual-time-budget=6000 \
        --screenshot="$2" "$1" >/dev/null 2>&1
}
shoot "$link" "$work/login.png"   # logs the profile in (the link works once)
shoot "$base/?view=overview&range=7d" docs/dashboard-overview.png
shoot "$base/?view=skill&skill=deploy-staging&range=7d" docs/dashboard-skill.png
shoot "$base/?view=insights&range=7d" docs/dashboard-insights.png
echo "wrote docs/dashboard-overview.png, docs/dashboard-skill.png and docs/dashboard-insights.png"
