"""The compose file passes the compose-spec schema and starts the services in order."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.manifests import COMPOSE_DIR

APP_SERVICES = ("migrate", "fastapi", "django", "gateway")


def _compose_schema() -> dict[str, Any]:
    # check-jsonschema vendors the compose-spec project's schema (compose-spec.json).
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def _schema_errors(compose: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose)
    ]


def _compose(path: Path = COMPOSE_DIR / "docker-compose.yml") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_compose_file_passes_the_compose_spec_schema() -> None:
    assert _schema_errors(_compose()) == []


@pytest.mark.parametrize(
    ("original", "broken", "reason"),
    [
        ('    restart: "no"', '    restart: "no"\n    restrat: always', "'restrat' was unexpected"),
        ("      retries: 20", "      retries: [20]", "is not of type"),
    ],
    ids=["unknown-key", "wrong-type"],
)
def test_compose_schema_check_rejects_a_broken_file(
    tmp_path: Path, original: str, broken: str, reason: str
) -> None:
    text = (COMPOSE_DIR / "docker-compose.yml").read_text()
    assert original in text
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(text.replace(original, broken, 1))
    errors = _schema_errors(_compose(copy))
    assert any(reason in error for error in errors), errors


def _module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], command
    return command[2]


def test_compose_services_run_modules_that_exist() -> None:
    services = _compose()["services"]
    for name in APP_SERVICES:
        module = _module_of(services[name]["command"])
        assert importlib.util.find_spec(module) is not None, f"{name}: {module} not found"


def test_compose_long_running_services_have_healthchecks_and_ordered_start() -> None:
    services = _compose()["services"]
    for name in ("postgres", "redis", "fastapi", "django", "gateway"):
        assert "healthcheck" in services[name], name
    for backend in ("fastapi", "django"):
        assert services[backend]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services["gateway"]["depends_on"][backend]["condition"] == "service_healthy"


def test_compose_healthchecks_probe_the_port_each_service_listens_on() -> None:
    compose = _compose()
    env = compose["x-env"]
    for name, path in (("fastapi", "/ready"), ("django", "/ready"), ("gateway", "/health")):
        probe = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert f"127.0.0.1:{env[f'{name.upper()}_PORT']}{path}" in probe, name
