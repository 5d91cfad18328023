"""redactor: mask secrets in logs and telemetry, keep sealed originals, reveal under audited grants."""

from __future__ import annotations

__version__ = "0.1.0"
