#!/usr/bin/env python3
"""Writes N invocations as JSON Lines in the ingest format, shaped like real
use (issue 18's measurements): 20 skills with long and Unicode names,
user_context objects, about 40,000 sessions per million events, 15 % with an
error, follow-up actions, projects. Deterministic for a given seed.

Usage: scripts/realistic-jsonl.py N [SEED] > events.jsonl
"""
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone

SKILLS = [
    "crackerjack-run", "session-checkpoint", "deploy-production-with-canary-and-rollback",
    "review-pull-request", "Überprüfung-der-Änderungen", "テスト実行", "write-release-notes",
    "triage-incoming-issues", "refactor-module-boundaries", "database-migration-planner",
    "security-audit-dependencies", "performance-profiler", "docs-site-builder",
    "k8s-manifest-linter", "terraform-plan-reviewer", "flaky-test-hunter",
    "changelog-curator", "api-contract-checker", "résumé-des-journaux", "incident-postmortem",
]
PATHS = ["ci/deploy-prod.v2", "quick", "full", "ci/deploy-staging", "review/deep",
         "review/quick", "fix/lint", "fix/types", "docs/api", "release/minor"]
ERRORS = ["TimeoutError", "PermissionDenied", "ToolFailure", "UserRejected", "NetworkError"]
ACTIONS = ["git commit", "git push", "open PR", "rerun tests", "update changelog"]
MODELS = ["claude-opus-4", "claude-sonnet-4", "gpt-5-codex"]


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 20250210)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    out = sys.stdout
    session = None
    left = 0
    for i in range(n):
        if left == 0:
            session = f"session-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            project = f"/home/dev/projects/{rng.choice(['api', 'web', 'infra', 'mobile', 'data-pipeline'])}"
            left = rng.randint(5, 45)  # 25 on average: 40,000 sessions per million
        left -= 1
        at = start + timedelta(seconds=i * 9 + rng.random())
        failed = rng.random() < 0.15
        event = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "skill_name": SKILLS[min(int(rng.paretovariate(1.2)) - 1, 19)],
            "invoked_at": at.isoformat().replace("+00:00", "Z"),
            "workflow_path": rng.choice(PATHS),
            "completed": not failed,
            "duration_seconds": round(rng.lognormvariate(1.5, 1.0), 3),
            "session_id": session,
            "project_path": project,
            "follow_up_actions": rng.sample(ACTIONS, rng.randint(0, 2)),
            "user_context": {
                "model": rng.choice(MODELS),
                "prompt_id": f"prompt-{i // 4}",
                "tokens": rng.randint(200, 40000),
                "tool_input_size_bytes": rng.randint(10, 5000),
            },
        }
        if failed:
            event["error_type"] = rng.choice(ERRORS)
        out.write(json.dumps(event, ensure_ascii=False))
        out.write("\n")


if __name__ == "__main__":
    main()
