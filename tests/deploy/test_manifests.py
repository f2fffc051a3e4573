"""Compose and Kubernetes files are checked here (no Docker engine on these machines)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
APP_SERVICES = ("migrate", "fastapi", "django", "gateway")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return data


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
    assert services["fastapi"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["gateway"]["depends_on"]["fastapi"]["condition"] == "service_healthy"


def _k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((COMPOSE / "k8s").glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


@pytest.mark.parametrize("component", ["fastapi", "django", "gateway"])
def test_k8s_deployment_and_service_agree(component: str) -> None:
    docs = _k8s_documents()
    deployment = next(
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"mlapi-{component}"
    )
    service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == f"mlapi-{component}"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = container["ports"][0]["containerPort"]
    assert service["spec"]["ports"][0]["targetPort"] == port
    assert container["readinessProbe"]["httpGet"]["port"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert importlib.util.find_spec(_module_of(container["command"])) is not None
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
