"""Every setting the services read is in .env.example, compose and the Kubernetes config.

The settings are found by introspecting the pydantic-settings classes (their env names,
prefixes and aliases), so a new field fails this test until it is added in all three places,
and a name left behind after a field is removed fails it too.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from tests.deploy.manifests import COMPOSE_DIR, OVERLAYS, REPO, one, rendered_overlay

SETTINGS_MODULES = (
    "backends.core.settings",
    "backends.core.metering.prices",
    "backends.fastapi_service.settings",
    "backends.django_service.config.service_settings",
    "gateway.settings",
    "billing.settings",
)
# Filled by the gateway's own settings source from ML_BACKEND_<NAME>_URL variables.
NOT_AN_ENV_NAME = {("GatewaySettings", "env_backends")}
BACKEND_URL_NAME = re.compile(r"^ML_BACKEND_[A-Z0-9_]+_URL$")
# URLs that carry a password in production, so they live in the Secret.
CREDENTIAL_URLS = {"DATABASE_URL", "REDIS_URL"}


def _subclasses(cls: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> frozenset[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return frozenset(choice.upper() for choice in alias.choices if isinstance(choice, str))
    if isinstance(alias, str):
        return frozenset({alias.upper()})
    return frozenset({(str(cls.model_config.get("env_prefix", "")) + name).upper()})


def _is_secret(field: FieldInfo) -> bool:
    return SecretStr in getattr(field.annotation, "__args__", (field.annotation,)) or (
        field.repr is False
    )


@cache
def settings() -> dict[frozenset[str], bool]:
    """Each setting's accepted env names -> whether its value is a secret."""
    for module in SETTINGS_MODULES:
        importlib.import_module(module)
    found: dict[frozenset[str], bool] = {}
    for cls in _subclasses(BaseSettings):
        if not cls.__module__.startswith(("backends.", "gateway.", "billing.")):
            continue
        if cls.__subclasses__():  # a shared base (BackendServiceSettings): read via its subclasses
            continue
        for name, field in cls.model_fields.items():
            if (cls.__name__, name) in NOT_AN_ENV_NAME:
                continue
            names = _env_names(cls, name, field)
            found[names] = (
                found.get(names, False) or _is_secret(field) or bool(names & CREDENTIAL_URLS)
            )
    return found


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def _compose_env() -> dict[str, Any]:
    compose = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    env: dict[str, Any] = compose["x-env"]
    return env


def _kubernetes_env(overlay: str) -> dict[str, Any]:
    documents = rendered_overlay(overlay)
    config = one(documents, "ConfigMap", "mlapi-config")["data"]
    secret = one(documents, "Secret", "mlapi-secrets")["data"]
    assert not set(config) & set(secret), "a setting is in both the ConfigMap and the Secret"
    return {**config, **secret}


def _source(name: str) -> dict[str, Any]:
    if name == ".env.example":
        return _env_example()
    if name == "compose":
        return _compose_env()
    return _kubernetes_env(name.removeprefix("kubernetes-"))


SOURCES = [".env.example", "compose", *(f"kubernetes-{overlay}" for overlay in OVERLAYS)]


@pytest.mark.parametrize("source", SOURCES)
def test_every_setting_and_nothing_else(source: str) -> None:
    present = set(_source(source))
    missing = sorted(min(names) for names in settings() if not names & present)
    known = set().union(*settings())
    unknown = sorted(n for n in present - known if not BACKEND_URL_NAME.match(n))
    assert not missing, f"{source} lacks settings the services read: {missing}"
    assert not unknown, f"{source} has names no setting reads: {unknown}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_in_the_secret(overlay: str) -> None:
    secret = set(one(rendered_overlay(overlay), "Secret", "mlapi-secrets")["data"])
    secret_settings = [names for names, is_secret in settings().items() if is_secret]
    assert secret_settings, "no secret setting found: the introspection is broken"
    assert sorted(min(names) for names in secret_settings if not names & secret) == []


def test_the_introspection_sees_prefixes_and_aliases() -> None:
    names = set().union(*settings())
    # a prefixed field, an alias, both choices of an AliasChoices, a secret by type
    assert {"FASTAPI_DB_POOL_SIZE", "ML_SERVICE_BACKEND", "PORT", "GATEWAY_PORT"} <= names
    assert settings()[frozenset({"DJANGO_SECRET_KEY"})] is True
    assert settings()[frozenset({"DATABASE_URL"})] is True
    assert not any(BACKEND_URL_NAME.match(name) for name in names)


def test_compose_gives_every_app_service_the_settings() -> None:
    compose = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    for name in ("migrate", "fastapi", "django", "gateway"):
        assert compose["services"][name]["environment"] == compose["x-env"], name


def test_container_topology_settings_are_fixed_in_compose() -> None:
    # A developer's .env says 127.0.0.1 and .data/models: passed with --env-file, those must
    # not reach the containers, so compose does not interpolate them.
    env = _compose_env()
    for key in ("GATEWAY_HOST", "FASTAPI_HOST", "DJANGO_HOST"):
        assert env[key] == "0.0.0.0", key
    for key in ("GATEWAY_PORT", "FASTAPI_PORT", "DJANGO_PORT", "MODEL_CACHE_DIR"):
        assert "$" not in env[key], key
    assert Path(env["MODEL_CACHE_DIR"]).is_absolute()
