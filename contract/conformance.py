"""Run schemathesis's engine in-process and fold its events into per-operation results."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contract import checks
from contract.behaviour import Exchange
from contract.promise_tally import PromiseTally, curl_command, parse_json
from contract.read_only import writes
from contract.results import FailureRecord, OperationResult
from contract.spec import SpecSource

PHASES = ("examples", "coverage", "fuzzing", "stateful")
# core: shapes, status codes, the error shape; behaviour: the spec's x-promises.
PROFILES = ("core", "behaviour")

# Built-in checks we switch off, and why (everything else schemathesis ships stays on):
# - max_response_time: latency is the benchmark's job, not the contract's.
DISABLED_BUILTIN_CHECKS = ("max_response_time",)

# Request bodies whose validity a JSON Schema cannot express (audio bytes, base64 audio):
# schema-valid random bytes are rightly rejected, so positive_data_acceptance would misfire.
OPAQUE_FORMATS = frozenset({"binary", "byte", "base64"})


@dataclass(slots=True)
class RunOptions:
    """What the `check` subcommand asks of the engine."""

    base_url: str
    max_examples: int = 10
    seed: int = 0
    phases: tuple[str, ...] = PHASES
    workers: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    request_timeout: float = 30.0
    stateful_max_steps: int = 12
    exclude_checks: tuple[str, ...] = ()
    profiles: tuple[str, ...] = PROFILES
    # Send nothing that writes (contract/read_only.py): for a server sharing others' data.
    read_only: bool = False


@dataclass(slots=True)
class RunOutcome:
    """Per-operation results plus run-wide facts."""

    operations: dict[str, OperationResult]
    errors: list[str]
    duration_s: float
    stop_reason: str

    def operation(self, label: str) -> OperationResult:
        if label not in self.operations:
            self.operations[label] = OperationResult(label=label)
        return self.operations[label]


def build_config(options: RunOptions, spec: SpecSource) -> Any:
    """A schemathesis config equivalent to a `schemathesis.toml` for this run."""
    from schemathesis.config import SchemathesisConfig

    check_settings: dict[str, Any] = {
        # The project allows exactly these 5xx (unreachable, not ready, timeout).
        "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502", "503", "504"]},
    }
    excluded = {*DISABLED_BUILTIN_CHECKS, *options.exclude_checks}
    if checks.BUILTIN_ACCEPTANCE_CHECK in excluded:
        excluded.add("accepted_or_declared_refusal")  # the same check, with refusals
    for name in sorted(excluded):
        if name != "max_response_time":
            check_settings[name] = {"enabled": False}
    opaque = opaque_body_operations(spec.raw)
    acceptance_off = {checks.BUILTIN_ACCEPTANCE_CHECK: {"enabled": False}}
    operations = [{"include-name": label, "checks": dict(acceptance_off)} for label in opaque]
    # Operations with declared refusals: accepted_or_declared_refusal judges them instead.
    operations += [
        {"include-name": label, "checks": dict(acceptance_off)}
        for label in refusing_operations(spec.raw)
        if label not in opaque
    ]
    data: dict[str, Any] = {
        "seed": options.seed,
        "base-url": options.base_url,
        "workers": options.workers,
        "request-timeout": options.request_timeout,
        "cache": {"enabled": False},
        "generation": {"max-examples": options.max_examples, "database": "none", "mode": "all"},
        "phases": {
            "examples": {"enabled": "examples" in options.phases},
            "coverage": {"enabled": "coverage" in options.phases},
            "fuzzing": {"enabled": "fuzzing" in options.phases},
            "stateful": {
                "enabled": "stateful" in options.phases,
                "max-steps": options.stateful_max_steps,
            },
        },
        "checks": check_settings,
        "operations": operations,
    }
    if options.headers:
        data["headers"] = dict(options.headers)
    return SchemathesisConfig.from_dict(data)


def known_checks() -> list[str]:
    """Every per-response check schemathesis knows, ours included."""
    from schemathesis.checks import CHECKS, load_all_checks

    checks.register()
    load_all_checks()
    return sorted(CHECKS.get_all_names())


def enabled_checks(options: RunOptions, spec: SpecSource) -> list[str]:
    """Names of the checks this run applies (before per-operation exceptions)."""
    config = build_config(options, spec).projects.get_default().checks
    return [name for name in known_checks() if config.get_by_name(name=name).enabled]


def refusing_operations(raw: dict[str, Any]) -> list[str]:
    """Labels ("POST /path") of operations declaring refusals of schema-valid requests."""
    return [
        f"{method.upper()} {path}"
        for path, item in (raw.get("paths") or {}).items()
        for method, operation in (item or {}).items()
        if isinstance(operation, dict) and operation.get(checks.REFUSALS_EXTENSION)
    ]


def opaque_body_operations(raw: dict[str, Any]) -> list[str]:
    """Labels ("POST /path") of operations whose request body holds binary or base64 data."""
    labels = []
    for path, item in (raw.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            body = operation.get("requestBody") or {}
            content = body.get("content") if isinstance(body, dict) else None
            if isinstance(content, dict) and _mentions_opaque(content, raw, depth=0):
                labels.append(f"{method.upper()} {path}")
    return labels


def _mentions_opaque(node: Any, raw: dict[str, Any], *, depth: int) -> bool:
    if depth > 20:
        return False
    if isinstance(node, dict):
        if node.get("format") in OPAQUE_FORMATS or "contentEncoding" in node:
            return True
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = raw
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            if _mentions_opaque(target, raw, depth=depth + 1):
                return True
        return any(
            _mentions_opaque(v, raw, depth=depth + 1) for k, v in node.items() if k != "$ref"
        )
    if isinstance(node, list):
        return any(_mentions_opaque(v, raw, depth=depth + 1) for v in node)
    return False


def load_schema(options: RunOptions, spec: SpecSource) -> Any:
    """The schemathesis schema object for `spec`, configured for `options`."""
    import schemathesis

    checks.register()
    schema = schemathesis.openapi.from_dict(spec.raw, config=build_config(options, spec))
    # read-only: every phase, the stateful one included, skips the operations that write
    return schema.exclude(_writes) if options.read_only else schema


def _writes(context: Any) -> bool:
    operation = context.operation
    return writes(operation.definition.raw.get("operationId"), str(operation.method))


def run_engine(
    options: RunOptions, spec: SpecSource, tally: PromiseTally | None = None
) -> RunOutcome:
    """Run every enabled phase and return what happened, operation by operation.

    With a `tally`, every response is also checked against its operation's promises.
    """
    from schemathesis.core.result import Ok
    from schemathesis.engine import events, from_schema

    schema = load_schema(options, spec)
    outcome = RunOutcome(operations={}, errors=[], duration_s=0.0, stop_reason="completed")
    for operation in schema.get_all_operations():
        if isinstance(operation, Ok):
            outcome.operation(operation.ok().label)
    started = time.monotonic()
    stream = from_schema(schema).execute()
    try:
        for event in stream:
            if isinstance(event, events.ScenarioFinished):
                _record_scenario(outcome, event, tally)
            elif isinstance(event, events.NonFatalError):
                message = f"{event.info.title}: {event.info.message}".strip()
                if event.related_to_operation:
                    outcome.operation(event.label).add_error(message)
                elif message not in outcome.errors:
                    outcome.errors.append(message)
            elif isinstance(event, events.FatalError):
                outcome.errors.append(f"fatal: {event.exception!r}")
            elif isinstance(event, events.EngineFinished):
                outcome.stop_reason = str(event.stop_reason)
                for failure in event.failures:
                    outcome.errors.append(f"{failure.title}: {failure.message}")
    finally:
        stream.stop()
    outcome.duration_s = time.monotonic() - started
    return outcome


def _record_scenario(outcome: RunOutcome, event: Any, tally: PromiseTally | None) -> None:
    recorder = event.recorder
    phase = str(event.phase.value) if hasattr(event.phase, "value") else str(event.phase)
    for case_id, node in recorder.cases.items():
        interaction = recorder.interactions.get(case_id)
        if interaction is None or interaction.response is None:
            continue
        result = outcome.operation(node.value.operation.label)
        result.cases += 1
        result.phases.add(phase)
        status = interaction.response.status_code
        result.status_codes[status] = result.status_codes.get(status, 0) + 1
        failed = list(_failures(recorder.checks.get(case_id, []), status))
        if failed:
            result.failing_cases += 1
        for record in failed:
            result.add_failure(record)
        if tally is not None:
            _observe(tally, node.value, interaction)


def _observe(tally: PromiseTally, case: Any, interaction: Any) -> None:
    """Hand one recorded request/response to the behaviour checks."""
    request, response = interaction.request, interaction.response
    if response.content_size > len(response.content or b""):
        return  # only part of the body was kept: nothing to judge
    op_id = str(case.operation.definition.raw.get("operationId") or case.operation.label)
    request_headers = {k: v[0] if isinstance(v, list) else v for k, v in request.headers.items()}
    response_headers = {k.lower(): v[0] for k, v in response.headers.items() if v}
    request_type = next((v for k, v in request_headers.items() if k.lower() == "content-type"), "")
    exchange = Exchange(
        operation_id=op_id,
        method=request.method,
        url=request.uri,
        status=response.status_code,
        request_headers=request_headers,
        response_headers=response_headers,
        request_body=parse_json(request.body, request_type),
        body=parse_json(response.content, response_headers.get("content-type", "")),
        raw_request_body=request.body,
        contract_version=tally.contract_version,
    )
    if request.body and exchange.request_body is None and "json" in request_type:
        return  # a body that is not JSON was sent on purpose: no promise covers it
    reproduce = curl_command(request.method, request.uri, request_headers, request.body)
    tally.observe(exchange, reproduce)


def _failures(nodes: Iterable[Any], status: int) -> Iterable[FailureRecord]:
    for check in nodes:
        info = check.failure_info
        if info is None:
            continue
        failure = info.failure
        yield FailureRecord(
            check=check.name,
            title=failure.title,
            message=failure.message,
            code=failure.code,
            status_code=status,
            reproduce=info.code_sample,
            severity=str(failure.severity.value),
        )
