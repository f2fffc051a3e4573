"""The Kubernetes overlays render with kustomize and every document passes the schemas."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import (
    K8S_DIR,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    Document,
    kind_name,
    one,
    pod_spec,
    render,
    rendered_overlay,
    schema_errors,
    unhashed,
    without_hashes,
    workloads,
)

BACKEND_KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_documents_pass_the_kubernetes_schemas(overlay: str, version: str) -> None:
    documents = rendered_overlay(overlay)
    assert documents, "the overlay rendered nothing"
    errors = [error for doc in documents for error in schema_errors(doc, version)]
    assert errors == []


@pytest.mark.parametrize(
    ("original", "broken", "reason"),
    [
        ("readinessProbe:", "readinesProbe:", "'readinesProbe' was unexpected"),
        ("minReplicas: 2", "minReplicas: two", "'two' is not of type 'integer'"),
    ],
    ids=["unknown-field", "wrong-type"],
)
def test_schema_check_rejects_a_broken_manifest(
    tmp_path: Path, original: str, broken: str, reason: str
) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, tree)
    manifest = tree / "backends" / "fastapi" / "fastapi.yaml"
    text = manifest.read_text()
    assert original in text
    manifest.write_text(text.replace(original, broken, 1))

    documents = render(tree / "overlays" / "fastapi")
    errors = [error for doc in documents for error in schema_errors(doc, KUBERNETES_VERSIONS[-1])]

    assert any(reason in error for error in errors), errors


def _by_id(overlay: str) -> dict[tuple[str, str], Any]:
    return {
        (doc["kind"], unhashed(doc["metadata"]["name"])): without_hashes(doc)
        for doc in rendered_overlay(overlay)
    }


def test_overlays_differ_only_in_the_backend() -> None:
    fastapi, django = _by_id("fastapi"), _by_id("django")

    assert set(fastapi) - set(django) == {(kind, "mlapi-fastapi") for kind in BACKEND_KINDS}
    assert set(django) - set(fastapi) == {(kind, "mlapi-django") for kind in BACKEND_KINDS}
    shared = set(fastapi) & set(django)
    config = ("ConfigMap", "mlapi-config")
    assert fastapi[config]["data"].pop("ML_SERVICE_BACKEND") == "fastapi"
    assert django[config]["data"].pop("ML_SERVICE_BACKEND") == "django"
    different = sorted(key for key in shared if fastapi[key] != django[key])
    assert different == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_routes_to_the_backend_the_overlay_deploys(overlay: str) -> None:
    documents = rendered_overlay(overlay)
    settings = one(documents, "ConfigMap", "mlapi-config")["data"]
    assert settings["ML_SERVICE_BACKEND"] == overlay

    url = settings[f"ML_BACKEND_{overlay.upper()}_URL"]
    host, port = url.removeprefix("http://").split(":")
    service = one(documents, "Service", host)
    deployment = one(documents, "Deployment", f"mlapi-{overlay}")
    template = deployment["spec"]["template"]
    assert [p["port"] for p in service["spec"]["ports"]] == [int(port)]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    named_ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= named_ports
    assert settings[f"{overlay.upper()}_PORT"] == port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_locked_down_with_the_settings(overlay: str) -> None:
    for workload in workloads(rendered_overlay(overlay)):
        spec = pod_spec(workload)
        name = kind_name(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
            assert "emptyDir" in mounts["/tmp"], name
            assert all("emptyDir" in volume for volume in mounts.values()), name
            refs = [next(iter(ref.values()))["name"] for ref in container["envFrom"]]
            assert sorted(map(unhashed, refs)) == ["mlapi-config", "mlapi-secrets"], name
            module = container["command"][2]
            assert container["command"][:2] == ["python", "-m"], name
            assert importlib.util.find_spec(module) is not None, f"{name}: {module} not found"


def _probe_path(container: Document, probe: str) -> str:
    path: str = container[probe]["httpGet"]["path"]
    return path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_the_writable_model_cache(overlay: str) -> None:
    documents = rendered_overlay(overlay)
    model_cache = Path(one(documents, "ConfigMap", "mlapi-config")["data"]["MODEL_CACHE_DIR"])

    backend = pod_spec(one(documents, "Deployment", f"mlapi-{overlay}"))
    container = backend["containers"][0]
    assert _probe_path(container, "readinessProbe") == "/ready"
    assert _probe_path(container, "livenessProbe") == "/live"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "model loading time"
    volumes = {v["name"]: v for v in backend["volumes"]}
    cache_mounts = [
        m for m in container["volumeMounts"] if model_cache.is_relative_to(m["mountPath"])
    ]
    assert [("emptyDir" in volumes[m["name"]]) for m in cache_mounts] == [True]

    # The gateway's own /health is its liveness: its /live would be the backend's answer.
    gateway = pod_spec(one(documents, "Deployment", "mlapi-gateway"))["containers"][0]
    assert _probe_path(gateway, "readinessProbe") == "/ready"
    assert _probe_path(gateway, "livenessProbe") == "/health"
    assert _probe_path(gateway, "startupProbe") == "/health"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_autoscales_spreads_and_has_a_disruption_budget(overlay: str) -> None:
    documents = rendered_overlay(overlay)
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"mlapi-gateway", f"mlapi-{overlay}"}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns the replica count"
        hpa = one(documents, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert hpa["spec"]["minReplicas"] >= 2, name
        pdb = one(documents, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], f"{name}: drainable"
        [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["labelSelector"]["matchLabels"].items() <= labels.items(), name


def _selects(selector: Document, labels: dict[str, str]) -> bool:
    return bool(selector["matchLabels"].items() <= labels.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backends_accept_traffic_only_from_the_gateway(overlay: str) -> None:
    documents = rendered_overlay(overlay)
    policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
    assert len(policies) == 1
    policy = policies[0]["spec"]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in documents
        if d["kind"] == "Deployment"
    }
    selected = {name for name, labels in pods.items() if _selects(policy["podSelector"], labels)}
    assert selected == {f"mlapi-{overlay}"}
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    [source] = rule["from"]
    allowed = {name for name, labels in pods.items() if _selects(source["podSelector"], labels)}
    assert allowed == {"mlapi-gateway"}
    assert set(source) == {"podSelector"}, "no namespace or IP block may widen it"
    backend = pod_spec(one(documents, "Deployment", f"mlapi-{overlay}"))["containers"][0]
    assert [p["port"] for p in rule["ports"]] == [p["name"] for p in backend["ports"]]
