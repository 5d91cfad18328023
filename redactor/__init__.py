"""redactor: mask secrets in logs and telemetry.

Keeps sealed originals and reveals them under audited grants.
"""

from __future__ import annotations

from redactor.engine import (
    FAILED_PLACEHOLDER,
    ConfigError,
    Finding,
    Redactor,
    RedactorError,
    RuleError,
    load_ruleset,
)
from redactor.engine.compiled import PatternCache
from redactor.engine.scanner import DatabaseCache
from redactor.engine.sealed import SealedFiles
from redactor.settings import Settings, resolve_settings

__version__ = "0.1.0"

__all__ = [
    "FAILED_PLACEHOLDER",
    "ConfigError",
    "Finding",
    "Redactor",
    "RedactorError",
    "RuleError",
    "Settings",
    "create_redactor",
    "load_ruleset",
    "resolve_settings",
]


def create_redactor(settings: Settings | None = None, *, scanner: str = "auto") -> Redactor:
    """A :class:`Redactor` for ``settings`` (resolved from the environment when omitted)."""
    if settings is None:
        settings = resolve_settings()
    cache_dir = settings.home / "cache"
    sealed = SealedFiles(cache_dir, settings.ref_key)
    ruleset = load_ruleset(
        (settings.rules_dir, *settings.extra_rules_dirs),
        enabled=settings.enabled_packs,
        disabled=settings.disabled_packs,
        cache=sealed,
    )
    return Redactor(
        ruleset,
        ref_key=settings.ref_key,
        max_value_bytes=settings.max_value_bytes,
        scanner=scanner,
        scanner_cache=DatabaseCache(cache_dir, settings.ref_key),
        pattern_cache=PatternCache(sealed),
    )
