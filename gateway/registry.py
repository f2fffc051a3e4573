"""Backend registry: names -> base URLs, the selected backend and the optional fallback."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway.settings import DEFAULT_BACKENDS, GatewayConfigError, GatewaySettings


@dataclass(frozen=True)
class Backend:
    """One upstream: its name and base URL (no trailing slash; a path prefix is kept)."""

    name: str
    base_url: str
    # Pre-encoded once: the X-ML-Backend response header value.
    header_value: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header_value", self.name.encode("latin-1"))


@dataclass(frozen=True)
class BackendRegistry:
    """Known backends, the selected one and the optional fallback."""

    backends: dict[str, Backend]
    selected: Backend
    fallback: Backend | None

    @property
    def names(self) -> list[str]:
        return sorted(self.backends)


def _checked_url(name: str, url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GatewayConfigError(
            f"backend {name!r} has an invalid URL {url!r}: expected http(s)://host[:port][/prefix]"
        )
    if parts.query or parts.fragment:
        raise GatewayConfigError(f"backend {name!r} URL {url!r} must not have a query or fragment")
    return url.strip().rstrip("/")


def _pick(known: dict[str, Backend], name: str, variable: str) -> Backend:
    try:
        return known[name]
    except KeyError:
        listed = ", ".join(sorted(known))
        raise GatewayConfigError(
            f"{variable}={name!r} is not a known backend; known backends: {listed}. "
            f'Add one with ML_BACKENDS=\'{{"{name}": "http://host:port"}}\' '
            f"or ML_BACKEND_{name.upper()}_URL=http://host:port"
        ) from None


def build_registry(settings: GatewaySettings) -> BackendRegistry:
    """Defaults, then ML_BACKEND_<NAME>_URL variables, then ML_BACKENDS JSON (last one wins)."""
    urls = {**DEFAULT_BACKENDS, **settings.env_backends, **settings.backends}
    known = {
        name.lower(): Backend(name.lower(), _checked_url(name, url)) for name, url in urls.items()
    }
    selected = _pick(known, settings.backend, "ML_SERVICE_BACKEND")
    fallback = None
    if settings.fallback:
        fallback = _pick(known, settings.fallback, "ML_SERVICE_FALLBACK")
        if fallback is selected:
            raise GatewayConfigError(
                f"ML_SERVICE_FALLBACK={settings.fallback!r} is the selected backend itself"
            )
    return BackendRegistry(known, selected, fallback)
