"""`make test-deep`: the suite's generated phases (coverage and fuzzing, positive and
negative cases) at 200 examples per operation, through the gateway, on each backend.

The backends run the packaged local LLM (not the extractive stand-in), so generation and
RAG answers are fuzzed for real.

Passing means no case was answered with any 5xx at all (not even the contract's 502/503/504:
nothing here is down or overloaded, one request at a time) and no response broke its schema
(every check of the core profile). The report is written to DEEP_REPORT_DIR (default
.data/test-deep/<backend>/) and its totals and status codes are printed. DEEP_EXAMPLES
overrides the 200 examples per operation (a quicker run to try the set-up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from devinfra.processes import RunningService, running_service
from tests.conformance.test_backends_conform import BACKENDS

DEEP_NEGATIVE_EXAMPLES = os.environ.get("DEEP_EXAMPLES", "200")
PHASES = "coverage,fuzzing"  # the phases that generate negative cases
# A valid generation may ask for up to the context's ~2,000 tokens: 25-45 s here. The
# contract check's 30 s default cut two such answers short (generate, rag/query on
# Django); the gateway's own limit for the group (60 s) still turns a hang into a 504.
REQUEST_TIMEOUT_S = 90


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def gateway(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, RunningService]]:
    name: str = request.param
    env = {
        "DATABASE_URL": migrated_pg_url,
        "REDIS_URL": redis_url,
        "LLM_PROVIDER": "local",
        "EMBEDDING_PROVIDER": "local",
        "VECTOR_STORE": "pgvector",
        "OPENAI_API_KEY": "",
    }
    logs = tmp_path_factory.mktemp(f"{name}-deep-logs")
    with ExitStack() as stack:
        backend = stack.enter_context(running_service(BACKENDS[name], env, logs))
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": name,
            f"ML_BACKEND_{name.upper()}_URL": backend.base_url,
        }
        yield name, stack.enter_context(running_service("gateway", gateway_env, logs))


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_negative_cases_through_the_gateway(gateway: tuple[str, RunningService]) -> None:
    name, service = gateway
    report_dir = Path(os.environ.get("DEEP_REPORT_DIR", ".data/test-deep")) / name
    report_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "contract", "check", "--base-url", service.base_url,
         "--max-examples", DEEP_NEGATIVE_EXAMPLES, "--phases", PHASES, "--profile", "core",
         "--report", str(report_dir), "--request-timeout", str(REQUEST_TIMEOUT_S)],
        capture_output=True, text=True, timeout=7200, check=False,
    )  # fmt: skip
    report = json.loads((report_dir / "contract-report.json").read_text())
    statuses: dict[str, int] = {}
    server_errors: dict[str, dict[str, int]] = {}
    for operation in report["operations"]:
        for status, count in operation["status_codes"].items():
            statuses[status] = statuses.get(status, 0) + count
            if status.startswith("5"):
                server_errors.setdefault(operation["operation"], {})[status] = count
    print(
        f"{name} through the gateway: {json.dumps(report['totals'])},"
        f" statuses {json.dumps(dict(sorted(statuses.items())))}, report in {report_dir}"
    )
    assert done.returncode == 0, f"{name} failed the contract:\n{done.stdout[-6000:]}"
    assert report["passed"] is True
    assert report["totals"]["failures"] == 0
    assert server_errors == {}
