"""The behaviour profile's bookkeeping: which promises the spec declares, how each fared.

Every exchange the run makes (schemathesis's generated cases and the scenarios' own
requests) goes through `observe`, which applies the per-response checks; scenarios add
their relation verdicts with `record`. Nothing here knows the server: only the spec.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Mapping
from typing import Any

from contract import behaviour
from contract.results import PromiseResult

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Transport noise, left out of the curl (curl sets its own).
_NOISE_HEADERS = frozenset(
    {"user-agent", "accept", "accept-encoding", "connection", "content-length", "host"}
)


def curl_command(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
) -> str:
    """One shell-ready curl that sends the same request."""
    parts = ["curl", "-sS", "-i", "-X", method.upper(), shlex.quote(url)]
    for name, value in headers.items():
        if name.lower() not in _NOISE_HEADERS:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if body:
        if "json" in content_type or content_type.startswith("text/"):
            parts += ["--data-raw", shlex.quote(body.decode("utf-8", "replace"))]
        else:
            parts.append(f"--data-binary @body.bin  # {len(body)} bytes of {content_type}")
    return " ".join(parts)


def parse_json(content: bytes | None, content_type: str) -> Any:
    """The JSON document in a body, or None when it is not JSON."""
    if not content or "json" not in content_type:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


class PromiseTally:
    """Per-promise results for one run, fed from any thread."""

    def __init__(self, raw_spec: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self.contract_version = str((raw_spec.get("info") or {}).get("version", ""))
        self.results: dict[str, PromiseResult] = {}
        self.by_operation: dict[str, list[str]] = {}
        self.labels: dict[str, str] = {}
        self.statuses: dict[str, dict[int, int]] = {}
        for path, item in (raw_spec.get("paths") or {}).items():
            for method, operation in (item or {}).items():
                if method not in HTTP_METHODS or not isinstance(operation, dict):
                    continue
                op_id = str(operation.get("operationId") or f"{method.upper()} {path}")
                label = f"{method.upper()} {path}"
                self.labels[op_id] = label
                names = []
                for promise in operation.get("x-promises") or []:
                    name = f"{op_id}/{promise['id']}"
                    names.append(name)
                    self.results[name] = PromiseResult(
                        name=name,
                        operation=label,
                        kind=str(promise.get("kind", "")),
                        statement=str(promise.get("statement", "")),
                    )
                self.by_operation[op_id] = names

    def has(self, *names: str) -> bool:
        """Whether the spec declares every one of these promises."""
        return all(name in self.results for name in names)

    def observe(self, exchange: behaviour.Exchange, reproduce: str) -> None:
        """Apply the per-response checks of the exchange's operation."""
        names = self.by_operation.get(exchange.operation_id, [])
        verdicts = behaviour.evaluate(exchange, names)
        with self._lock:
            seen = self.statuses.setdefault(exchange.operation_id, {})
            seen[exchange.status] = seen.get(exchange.status, 0) + 1
            for name, problem in verdicts.items():
                self.results[name].record(problem, reproduce)

    def record(self, name: str, problem: str | None, reproduce: str) -> None:
        """A scenario's verdict on a promise (ignored when the spec does not declare it)."""
        with self._lock:
            if name in self.results:
                self.results[name].record(problem, reproduce)

    def finish(self, unchecked_reasons: Mapping[str, str]) -> list[PromiseResult]:
        """Results in spec order, with a reason on each promise nothing exercised."""
        from contract import scenarios

        relations = scenarios.covered_promises()
        for name, result in self.results.items():
            if result.checked:
                continue
            if name in unchecked_reasons:
                result.skip_reason = unchecked_reasons[name]
            elif not behaviour.known(name) and name not in relations:
                result.skip_reason = "this suite version has no check for it"
            else:
                op_id = name.split("/", 1)[0]
                seen = ", ".join(
                    f"{status} x{n}" for status, n in sorted(self.statuses.get(op_id, {}).items())
                )
                result.skip_reason = f"no answer exercised it (statuses seen: {seen or 'none'})"
        return list(self.results.values())
