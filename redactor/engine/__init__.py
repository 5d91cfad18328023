"""The detection engine: rules in, redacted values and findings out. Pure: no I/O at match time."""

from __future__ import annotations

from redactor.engine.core import OVERSIZED_PLACEHOLDER, LazyTraceId, Redactor
from redactor.engine.interface import ConfigError, Finding, RedactorError, RuleError
from redactor.engine.masks import FAILED_PLACEHOLDER, PLACEHOLDER_RE
from redactor.engine.rules import KeyNameRule, Rule, RuleSet, load_ruleset

__all__ = [
    "ConfigError",
    "FAILED_PLACEHOLDER",
    "Finding",
    "KeyNameRule",
    "LazyTraceId",
    "OVERSIZED_PLACEHOLDER",
    "PLACEHOLDER_RE",
    "Redactor",
    "RedactorError",
    "Rule",
    "RuleError",
    "RuleSet",
    "load_ruleset",
]
