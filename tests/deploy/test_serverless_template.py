"""The SAM template passes cfn-lint (CloudFormation and SAM schemas, offline) and names the
real handler."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cfnlint.api import lint

from tests.deploy.manifests import COMPOSE_DIR, REPO

TEMPLATE = COMPOSE_DIR / "serverless" / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref/!Sub and friends as plain values (only the structure is inspected)."""


_CloudFormationLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@cache
def _function() -> dict[str, Any]:
    template = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)
    function: dict[str, Any] = template["Resources"]["MlApiFunction"]
    return function


def test_template_passes_cfn_lint() -> None:
    assert [str(match) for match in lint(TEMPLATE.read_text())] == []


def test_cfn_lint_rejects_a_broken_template() -> None:
    # Both breakages in one copy: one lint run (about 3 s of CPU each) instead of two.
    text = TEMPLATE.read_text()
    breakages = {"MemorySize: 3008": "MemorySize: lots", "Timeout: 60": "Timeot: 60"}
    for original, broken in breakages.items():
        assert original in text
        text = text.replace(original, broken, 1)
    found = sorted(match.rule.id for match in lint(text))
    assert found == ["E3002", "E3012"]  # an unknown property, a wrong type


def test_template_runs_the_real_handler_from_the_image() -> None:
    image = _function()["Properties"]["ImageConfig"]
    assert image["EntryPoint"] == ["python", "-m", "awslambdaric"]
    module_name, _, attribute = image["Command"][0].rpartition(".")
    assert callable(getattr(importlib.import_module(module_name), attribute))
    metadata = _function()["Metadata"]
    assert (TEMPLATE.parent / metadata["DockerContext"]).resolve() == REPO
    assert (REPO / metadata["Dockerfile"]).is_file()


def test_lambda_writes_only_under_tmp() -> None:
    variables = _function()["Properties"]["Environment"]["Variables"]
    for key in ("MODEL_CACHE_DIR", "XDG_CACHE_HOME"):
        assert Path(variables[key]).is_relative_to("/tmp"), key
