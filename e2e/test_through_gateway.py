"""The contract holds through the gateway, for each backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.conftest import GatewayStarter
from tests.conformance.test_backends_conform import assert_both_profiles_pass


def _check_through(
    start_gateway: GatewayStarter, backend: str, examples: str, report: Path
) -> None:
    with start_gateway(backend) as gateway:
        done = subprocess.run(
            [sys.executable, "-m", "contract", "check", "--base-url", gateway.base_url,
             "--max-examples", examples, "--report", str(report)],
            capture_output=True, text=True, timeout=7200, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:]
    assert json.loads((report / "contract-report.json").read_text())["passed"] is True
    # The gateway's own /health names the backend it forwards to.
    assert_both_profiles_pass(report, backend)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_contract_passes_through_the_gateway(
    backend: str, start_gateway: GatewayStarter, tmp_path: Path
) -> None:
    _check_through(start_gateway, backend, "3", tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_contract_passes_through_the_gateway_deeply(
    backend: str, start_gateway: GatewayStarter, tmp_path: Path
) -> None:
    _check_through(start_gateway, backend, "100", tmp_path)
