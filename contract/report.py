"""Render a run: the console table, the JSON report and JUnit XML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from contract.compare import CompareOutcome
from contract.results import OperationResult, PromiseResult

# Characters XML 1.0 forbids; fuzzed payloads echoed in messages contain them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPORT_FORMAT_VERSION = 1
JSON_NAME = "contract-report.json"
JUNIT_NAME = "contract-junit.xml"


def print_table(results: Sequence[OperationResult], out: TextIO, *, width: int = 120) -> None:
    """Operation | cases | failures | first failure, one row per operation."""
    label_w = min(max((len(r.label) for r in results), default=9), 48)
    header = f"{'operation':<{label_w}}  {'cases':>5}  {'fails':>5}  first failure"
    print(header, file=out)
    print("-" * max(len(header), width), file=out)
    for result in results:
        failures = len(result.failures) + len(result.errors)
        first = result.first_failure() or "ok"
        room = max(width - label_w - 16, 20)
        first, label = _clip(first, room), _clip(result.label, label_w)
        print(f"{label:<{label_w}}  {result.cases:>5}  {failures:>5}  {first}", file=out)


def print_compare_table(outcome: CompareOutcome, out: TextIO, *, width: int = 120) -> None:
    results = outcome.operations
    label_w = min(max((len(r.label) for r in results), default=9), 48)
    print(f"\nA = {outcome.url_a}\nB = {outcome.url_b}", file=out)
    header = (
        f"{'operation':<{label_w}}  {'cases':>5}  {'status':>6}  {'schema':>6}  {'values':>6}  "
        "first difference"
    )
    print(header, file=out)
    print("-" * max(len(header), width), file=out)
    for result in results:
        first = "identical"
        if result.diffs:
            d = result.diffs[0]
            first = f"{d.request}: A {d.status_a}{'' if d.conforms_a else '!'} vs B {d.status_b}"
            first += "" if d.conforms_b else "!"
            if d.fields:
                f = d.fields[0]
                first = f"{d.request}: {f.path} {f.detail} (A {f.primary!r} vs B {f.candidate!r})"
        elif result.errors:
            first = f"error: {result.errors[0]}"
        room = max(width - label_w - 34, 20)
        first = _clip(first, room)
        print(
            f"{result.label[:label_w]:<{label_w}}  {result.cases:>5}  {result.status_diffs:>6}  "
            f"{result.conformance_diffs:>6}  {result.value_diffs:>6}  {first}",
            file=out,
        )
    print("(! = response does not conform to the spec)", file=out)


def _clip(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 3] + "..."


def totals(results: Sequence[OperationResult], errors: Sequence[str]) -> dict[str, int]:
    return {
        "operations": len(results),
        "operations_failed": sum(not r.passed for r in results),
        "cases": sum(r.cases for r in results),
        "failing_cases": sum(r.failing_cases for r in results),
        "failures": sum(len(r.failures) for r in results),
        "errors": sum(len(r.errors) for r in results) + len(errors),
    }


def build_json_report(
    *,
    meta: dict[str, Any],
    results: Sequence[OperationResult],
    errors: Sequence[str],
    compare: CompareOutcome | None,
    passed: bool,
) -> dict[str, Any]:
    """The machine-readable report: run facts, per-operation results, totals, verdict."""
    report: dict[str, Any] = {
        "report_format": REPORT_FORMAT_VERSION,
        **meta,
        "passed": passed,
        "totals": totals(results, errors),
        "operations": [r.as_dict() for r in results],
        "errors": list(errors),
    }
    if compare is not None:
        report["compare"] = {
            "url_a": compare.url_a,
            "url_b": compare.url_b,
            "identical": compare.identical,
            "duration_s": round(compare.duration_s, 3),
            "operations": [r.as_dict() for r in compare.operations],
        }
    return report


def build_junit(
    results: Sequence[OperationResult],
    errors: Sequence[str],
    compare: CompareOutcome | None,
    *,
    duration_s: float,
    promises: Sequence[PromiseResult] = (),
) -> ET.ElementTree:
    """JUnit XML: one testcase per operation/probe, per promise, and per compared operation."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name="contract", time=f"{duration_s:.3f}")
    failed = 0
    for result in results:
        case = ET.SubElement(suite, "testcase", classname="contract", name=result.label)
        case.set("cases", str(result.cases))
        if result.failures:
            failed += 1
            node = ET.SubElement(case, "failure", message=result.first_failure())
            node.text = _failure_text(result)
        elif result.errors:
            failed += 1
            node = ET.SubElement(case, "error", message=result.first_failure())
            node.text = "\n".join(result.errors)
    for message in errors:
        failed += 1
        case = ET.SubElement(suite, "testcase", classname="contract", name="run")
        ET.SubElement(case, "error", message=message.splitlines()[0] if message else "error")
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failed))
    if promises:
        _behaviour_suite(root, promises)
    if compare is not None:
        csuite = ET.SubElement(root, "testsuite", name="contract-compare")
        cfailed = 0
        for cres in compare.operations:
            case = ET.SubElement(csuite, "testcase", classname="contract.compare", name=cres.label)
            if not cres.identical:
                cfailed += 1
                lines = [
                    f"{d.request}: A {d.status_a} conforms={d.conforms_a} {d.problem_a} | "
                    f"B {d.status_b} conforms={d.conforms_b} {d.problem_b}"
                    + "".join(f" | {f.path}: {f.detail}" for f in d.fields)
                    for d in cres.diffs
                ]
                summary = (
                    f"{cres.status_diffs} status / {cres.conformance_diffs} schema / "
                    f"{cres.value_diffs} value diffs"
                )
                node = ET.SubElement(case, "failure", message=summary)
                node.text = "\n".join(lines + cres.errors)
        csuite.set("tests", str(len(csuite)))
        csuite.set("failures", str(cfailed))
    for element in root.iter():
        if element.text:
            element.text = _xml_safe(element.text)
        for key, value in element.attrib.items():
            element.set(key, _xml_safe(value))
    ET.indent(root)
    return ET.ElementTree(root)


def _behaviour_suite(root: ET.Element, promises: Sequence[PromiseResult]) -> None:
    """The behaviour profile: one testcase per promise, skipped ones with their reason."""
    suite = ET.SubElement(root, "testsuite", name="contract-behaviour")
    for result in promises:
        case = ET.SubElement(suite, "testcase", classname=result.operation, name=result.name)
        if result.status == "failed":
            node = ET.SubElement(case, "failure", message=result.failures[0].message)
            node.text = "\n\n".join(
                f"{result.statement}\n{f.message}\nReproduce:\n{f.reproduce}"
                for f in result.failures
            )
        elif result.status == "skipped":
            ET.SubElement(case, "skipped", message=result.skip_reason)
    suite.set("tests", str(len(promises)))
    suite.set("failures", str(sum(r.status == "failed" for r in promises)))
    suite.set("skipped", str(sum(r.status == "skipped" for r in promises)))


def _xml_safe(text: str) -> str:
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _failure_text(result: OperationResult) -> str:
    blocks = []
    for failure in result.failures:
        block = f"[{failure.check}] {failure.title}\n{failure.message}".rstrip()
        if failure.reproduce:
            block += f"\nReproduce: {failure.reproduce}"
        blocks.append(block)
    return "\n\n".join(blocks + result.errors)


def write_reports(directory: Path, report: dict[str, Any], junit: ET.ElementTree) -> list[Path]:
    """Write the JSON and JUnit files into `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    junit_path = directory / JUNIT_NAME
    junit.write(junit_path, encoding="utf-8", xml_declaration=True)
    return [json_path, junit_path]
