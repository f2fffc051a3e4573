"""Rendering and validating the deployment files: kustomize via kubectl, the Kubernetes schemas.

kubectl is the only tool not installed by `uv sync`: `make setup` installs it when missing
(compose/install-kubectl.sh); without it the Kubernetes tests skip and say so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
K8S_DIR = COMPOSE_DIR / "k8s"
OVERLAYS = ("fastapi", "django")
# The oldest and the newest Kubernetes minor the manifests are checked against (the schemas
# ship in kubernetes-validate); autoscaling/v2 and policy/v1 are GA in both.
KUBERNETES_VERSIONS = ("1.30", "1.37")
# kustomize appends a content hash to generated ConfigMap/Secret names (and references).
_HASH_SUFFIX = re.compile(r"^(mlapi-(?:config|secrets))-[a-z0-9]{10}$")

Document = dict[str, Any]


def kubectl() -> str:
    """Path of kubectl, or skip the calling test saying how to get it."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl not found: `make setup` installs it (compose/install-kubectl.sh)")
    return path


def render(directory: Path) -> list[Document]:
    """`kubectl kustomize <directory>` as a list of documents; fails with kustomize's message."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def rendered_overlay(overlay: str) -> tuple[Document, ...]:
    """The rendered overlay, once per test session (read-only: tests must not mutate it)."""
    return tuple(render(K8S_DIR / "overlays" / overlay))


def schema_errors(document: Document, version: str) -> list[str]:
    """Why the document is not valid for that Kubernetes version (strict: no unknown fields)."""
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        return [f"{kind_name(document)} {where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{kind_name(document)}: {error.message}"]
    return []


def kind_name(document: Document) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def unhashed(name: str) -> str:
    """mlapi-config-7ff76m8c8m -> mlapi-config (other names unchanged)."""
    match = _HASH_SUFFIX.match(name)
    return match.group(1) if match else name


def without_hashes(value: Any) -> Any:
    """A deep copy with generated-name hashes stripped, so two renders compare by content."""
    if isinstance(value, dict):
        return {key: without_hashes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_hashes(item) for item in value]
    if isinstance(value, str):
        return unhashed(value)
    return value


def one(documents: tuple[Document, ...] | list[Document], kind: str, name: str) -> Document:
    found = [d for d in documents if d["kind"] == kind and unhashed(d["metadata"]["name"]) == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads(documents: tuple[Document, ...]) -> list[Document]:
    """Deployments and Jobs: everything that runs a pod."""
    return [d for d in documents if d["kind"] in {"Deployment", "Job"}]


def pod_spec(workload: Document) -> Document:
    spec: Document = workload["spec"]["template"]["spec"]
    return spec
