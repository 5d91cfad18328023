"""Runs every rule's inline examples: the check behind ``redactor rules test`` and the test suite.

Messages name the rule and the example's index, never the example's secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from redactor.engine.core import Redactor
from redactor.engine.masks import PLACEHOLDER_RE
from redactor.engine.rules import Rule


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    rule_id: str
    kind: str  # "must_match" | "must_not_match"
    index: int
    reason: str

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.kind}[{self.index}]: {self.reason}"


def check_rule(redactor: Redactor, rule: Rule) -> list[ExampleFailure]:
    """Failures of ``rule``'s examples, checked against the rule alone and the whole engine."""
    failures: list[ExampleFailure] = []
    for i, example in enumerate(rule.must_match):
        spans = redactor.rule_spans(rule, example.text)
        if not spans:
            failures.append(ExampleFailure(rule.id, "must_match", i, "pattern found nothing"))
            continue
        if example.secret is not None and not any(
            example.text[s:e] == example.secret for s, e in spans
        ):
            failures.append(
                ExampleFailure(rule.id, "must_match", i, "found a different span than 'secret'")
            )
            continue
        if not redactor.trigger_fires(rule, example.text):
            failures.append(
                ExampleFailure(
                    rule.id, "must_match", i, "trigger does not fire (stage 1 would skip the rule)"
                )
            )
            continue
        secret = (
            example.secret
            if example.secret is not None
            else example.text[spans[0][0] : spans[0][1]]
        )
        # Looked for outside our placeholders: a short secret (a CVV's 776) may be spelled by
        # a ref (#k776…), whose key is the run's own.
        if secret in PLACEHOLDER_RE.sub("", redactor.redact(example.text)):
            failures.append(
                ExampleFailure(rule.id, "must_match", i, "the engine left the secret in its output")
            )
    for i, example in enumerate(rule.must_not_match):
        if redactor.rule_spans(rule, example.text):
            failures.append(ExampleFailure(rule.id, "must_not_match", i, "pattern matched"))
    return failures


def check_all(redactor: Redactor) -> tuple[int, list[ExampleFailure]]:
    """(number of examples checked, failures) over every rule in force."""
    checked = 0
    failures: list[ExampleFailure] = []
    for rule in redactor.rules:
        checked += len(rule.must_match) + len(rule.must_not_match)
        failures.extend(check_rule(redactor, rule))
    return checked, failures
