"""Text and metadata signals read by the estimator (pure functions, no scoring)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# The reference's keyword rules, matched the same way (lower-cased plain substrings of
# "title description") so that keyword-driven estimates stay comparable with it.
TRIVIAL_KEYWORDS = ("typo", "fix typo", "update readme", "bump version", "config")
SIMPLE_KEYWORDS = ("simple", "small", "minor", "quick")
COMPLEX_KEYWORDS = ("refactor", "migration", "integrate", "security", "performance")
EPIC_KEYWORDS = ("architecture", "overhaul", "platform", "major", "redesign")

ISSUE_TYPE_ADJUSTMENT: dict[str, float] = {
    "bug": -0.5,
    "documentation": -1.0,
    "feature": 0.5,
    "enhancement": 0.5,
    "refactor": 1.0,
}

# Technical areas: whole-word patterns over the text, plus path hints over related files.
_AREA_TEXT: dict[str, str] = {
    "database": r"databases?|db|sql|postgres(?:ql)?|mysql|sqlite|mongo(?:db)?|schemas?|"
    r"tables?|columns?|index(?:es)?|queries|query|orm",
    "api": r"apis?|endpoints?|rest|graphql|grpc|webhooks?|http|routes?",
    "ui": r"ui|ux|frontend|front-end|pages?|components?|css|buttons?|forms?|modals?|"
    r"screens?|layouts?|views?|dashboards?",
    "auth": r"auth|authentication|authori[sz]ation|login|logout|oauth|sso|jwt|"
    r"permissions?|roles?|passwords?|sessions?",
    "infra": r"deploy(?:ment|ments)?|docker|kubernetes|k8s|ci|pipelines?|terraform|"
    r"infrastructure|servers?|cloud|aws|gcp|azure|helm",
    "testing": r"tests?|e2e|unit tests?|test coverage|fixtures?",
    "caching": r"cache|caching|redis|memcached|cdn",
    "messaging": r"queues?|kafka|rabbitmq|workers?|background jobs?|cron|events?",
    "payments": r"payments?|billing|invoices?|stripe|checkout|subscriptions?",
    "data": r"etl|analytics|reports?|exports?|imports?|csv|ml|models?|embeddings?",
    "mobile": r"ios|android|mobile|react native|flutter",
    "notifications": r"emails?|notifications?|sms|push",
}
_AREA_PATTERNS = {
    area: re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")
    for area, pattern in _AREA_TEXT.items()
}
_AREA_PATHS: dict[str, re.Pattern[str]] = {
    "database": re.compile(r"(?:migrations?/|\.sql$|models?\.py$|schema)"),
    "api": re.compile(r"(?:api/|routes?|controllers?|views?\.py$|handlers?/)"),
    "ui": re.compile(r"\.(?:tsx|jsx|vue|svelte|css|scss|html)$|components?/"),
    "infra": re.compile(r"(?:dockerfile|\.ya?ml$|\.tf$|helm/|\.github/|deploy)"),
    "testing": re.compile(r"(?:tests?/|_test\.|\.test\.|\.spec\.|test_)"),
    "auth": re.compile(r"auth"),
}

LABEL_IMPACT: dict[str, float] = {
    "epic": 1.0,
    "breaking-change": 0.5,
    "breaking": 0.5,
    "security": 0.5,
    "migration": 0.5,
    "needs-design": 0.5,
    "rfc": 0.5,
    "spike": 0.5,
    "research": 0.5,
    "performance": 0.25,
    "good-first-issue": -0.5,
    "beginner": -0.5,
    "easy": -0.5,
    "trivial": -0.5,
    "low-hanging-fruit": -0.5,
    "quick-win": -0.25,
    "documentation": -0.25,
    "docs": -0.25,
    "typo": -0.25,
}

# Context phrases that make any change riskier in that project.
CONTEXT_RISKS = ("legacy", "monolith", "no tests", "untested", "compliance", "regulated")

_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+(\[[ xX]\]\s+)?\S")
_CHECKBOX = re.compile(r"^\s*(?:[-*+]\s+)?\[[ xX]\]\s+\S")
_CRITERIA_HEADING = re.compile(
    r"acceptance criteria|definition of done|success criteria|requirements\s*:", re.IGNORECASE
)
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+\S|[A-Za-z][^:\n]{0,60}:\s*$)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'_-]*")


@dataclass(frozen=True, slots=True)
class Structure:
    """List structure of a description: implementation steps and acceptance criteria."""

    steps: int
    criteria: int
    has_criteria_section: bool


def matched_keywords(text: str, keywords: Sequence[str]) -> list[str]:
    return [keyword for keyword in keywords if keyword in text]


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def structure_of(description: str) -> Structure:
    """Count list items, splitting those in an acceptance-criteria section from the rest."""
    steps = criteria = 0
    in_criteria = has_section = False
    for line in description.splitlines():
        if _CRITERIA_HEADING.search(line) and not _LIST_ITEM.match(line):
            in_criteria = has_section = True
            continue
        is_item = bool(_LIST_ITEM.match(line) or _CHECKBOX.match(line))
        if not is_item and _HEADING.match(line):
            in_criteria = False  # a new section ends the criteria list
            continue
        if not is_item:
            continue
        if in_criteria or _CHECKBOX.match(line):
            criteria += 1
        else:
            steps += 1
    return Structure(steps=steps, criteria=criteria, has_criteria_section=has_section)


def technical_areas(text: str, related_files: Sequence[str]) -> list[str]:
    """Distinct technical areas named in the text or implied by the related file paths."""
    found = {area for area, pattern in _AREA_PATTERNS.items() if pattern.search(text)}
    for path in related_files:
        lowered = path.lower()
        found.update(area for area, pattern in _AREA_PATHS.items() if pattern.search(lowered))
    return sorted(found)


def normalise_label(label: str) -> str:
    return re.sub(r"[\s_]+", "-", label.strip().lower())


def label_impacts(labels: Sequence[str]) -> dict[str, float]:
    """Recognised labels (normalised, de-duplicated) and their impact."""
    result: dict[str, float] = {}
    for label in labels:
        key = normalise_label(label)
        # "type: security" / "kind/breaking-change" style prefixes are common on GitHub
        key = re.split(r"[:/]", key)[-1].strip("-")
        if key in LABEL_IMPACT:
            result[key] = LABEL_IMPACT[key]
    return result


def context_risks(project_context: str | None) -> list[str]:
    if not project_context:
        return []
    lowered = project_context.lower()
    return [phrase for phrase in CONTEXT_RISKS if phrase in lowered]
