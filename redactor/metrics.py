"""Counters for redactions, redaction failures and vault trouble, reported through OpenTelemetry.

The hot path only ever touches plain Python integers: a clean record counts nothing, a dirty
record adds to a per-rule integer under a lock it already pays far more than for. The counters
reach OpenTelemetry as *observable* counters on ``get_meter("redactor")`` whose callbacks read
those integers at collection time, so an application without a metrics SDK pays nothing per
record (the API's proxy meter upgrades the instruments if an SDK is configured later).

Instruments (all monotonic, cumulative since process start, reset in a forked child):

``redactor.redactions``         values masked, attributes ``rule_id``, ``category``
``redactor.redaction_failures`` fields replaced by ``[redaction-failed]``, attribute ``integration``
``redactor.vault.enqueued``     originals accepted by vault writers
``redactor.vault.written``      ... stored in the vault backend
``redactor.vault.dropped``      ... lost (queue full, retries exhausted, after shutdown)
``redactor.vault.errors``       failed vault write attempts and unsealable records
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation

    from redactor.engine.interface import Finding

__all__ = ["Metrics", "METRICS", "VaultStatsSource"]

_VAULT_STATS = ("enqueued", "written", "dropped", "errors")


class VaultStatsSource(Protocol):
    """Anything with the vault writer's ``stats()`` method."""

    def stats(self) -> dict[str, int]: ...


class Metrics:
    """Process-wide counters, cheap to bump, observed lazily by OpenTelemetry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._redactions: dict[tuple[str, str], int] = {}
        self._failures: dict[str, int] = {}
        # Vault writers are owned elsewhere; hold them weakly so a discarded writer is not
        # kept alive by its metrics.
        self._vaults: weakref.WeakSet[Any] = weakref.WeakSet()
        self._registered = False

    # -- hot-path side -----------------------------------------------------------------------

    def count_findings(self, findings: Sequence[Finding]) -> None:
        """Add one redaction per finding, keyed by rule id and category."""
        with self._lock:
            counts = self._redactions
            for finding in findings:
                key = (finding.rule_id, finding.category)
                counts[key] = counts.get(key, 0) + 1

    def count_failure(self, integration: str, n: int = 1) -> None:
        """Count fields replaced by the failure placeholder in ``integration``."""
        with self._lock:
            self._failures[integration] = self._failures.get(integration, 0) + n

    def watch_vault(self, writer: VaultStatsSource) -> None:
        """Report ``writer.stats()`` through the vault instruments while the writer lives."""
        with self._lock:
            self._vaults.add(writer)

    # -- reading side ------------------------------------------------------------------------

    def redactions(self) -> dict[tuple[str, str], int]:
        """A snapshot of ``{(rule_id, category): count}``."""
        with self._lock:
            return dict(self._redactions)

    def failures(self) -> dict[str, int]:
        """A snapshot of ``{integration: count}`` of failed redactions."""
        with self._lock:
            return dict(self._failures)

    def vault_stats(self) -> dict[str, int]:
        """Vault writer stats summed over every watched writer."""
        with self._lock:
            writers = list(self._vaults)
        totals = dict.fromkeys(_VAULT_STATS, 0)
        for writer in writers:
            try:
                stats = writer.stats()
            except Exception:  # a broken writer must not break metric collection
                continue
            for name in _VAULT_STATS:
                totals[name] += int(stats.get(name, 0))
        return totals

    def reset(self) -> None:
        """Forget every count (used in a forked child and by tests)."""
        with self._lock:
            self._redactions.clear()
            self._failures.clear()

    def _after_fork_in_child(self) -> None:
        # The parent may have held the lock while forking; a fresh lock is the only safe one.
        self._lock = threading.Lock()
        self.reset()

    # -- OpenTelemetry -----------------------------------------------------------------------

    def register(self, meter_provider: Any = None) -> None:
        """Create the observable counters on ``get_meter("redactor")`` (once per process).

        With no ``meter_provider`` the global one is used; if none is configured yet, the API's
        proxy meter upgrades the instruments when an SDK provider is set later.
        """
        with self._lock:
            if self._registered and meter_provider is None:
                return
            self._registered = True
        try:
            from opentelemetry import metrics as otel_metrics
        except ImportError:  # metrics are optional; counting still works
            return
        meter = (
            meter_provider.get_meter("redactor")
            if meter_provider is not None
            else otel_metrics.get_meter("redactor")
        )
        meter.create_observable_counter(
            "redactor.redactions",
            callbacks=[self._observe_redactions],
            unit="{value}",
            description="Values masked, by rule",
        )
        meter.create_observable_counter(
            "redactor.redaction_failures",
            callbacks=[self._observe_failures],
            unit="{field}",
            description="Fields replaced by the failure placeholder",
        )
        for name in _VAULT_STATS:
            meter.create_observable_counter(
                f"redactor.vault.{name}",
                callbacks=[self._vault_callback(name)],
                unit="{original}" if name != "errors" else "{error}",
                description=f"Vault writer originals {name}"
                if name != "errors"
                else "Vault writer errors",
            )

    def _observe_redactions(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [
            Observation(count, {"rule_id": rule_id, "category": category})
            for (rule_id, category), count in self.redactions().items()
        ]

    def _observe_failures(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [
            Observation(count, {"integration": integration})
            for integration, count in self.failures().items()
        ]

    def _vault_callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            from opentelemetry.metrics import Observation

            return [Observation(self.vault_stats()[name])]

        return observe

    def snapshot(self) -> Mapping[str, Any]:
        """Everything at once, for ``redactor`` diagnostics and tests."""
        return {
            "redactions": self.redactions(),
            "failures": self.failures(),
            "vault": self.vault_stats(),
        }


#: The process-wide counters every integration reports into.
METRICS = Metrics()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=METRICS._after_fork_in_child)
