"""The contract holds through the gateway, for each backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.conftest import GatewayStarter


@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_contract_passes_through_the_gateway(
    backend: str, start_gateway: GatewayStarter, tmp_path: Path
) -> None:
    with start_gateway(backend) as gateway:
        done = subprocess.run(
            [sys.executable, "-m", "contract", "check", "--base-url", gateway.base_url,
             "--max-examples", "3", "--report", str(tmp_path)],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:]
    assert json.loads((tmp_path / "contract-report.json").read_text())["passed"] is True
