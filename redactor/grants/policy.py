"""The grant policy: who may ask for which category, who approves, for how long, and when.

Loaded from TOML and validated completely at load time; every error names the file and the
field. A malformed policy is an error, never a silent fall-back to :func:`default_policy`.

Example::

    pending_ttl = "4h"            # how long a request waits for approval
    admin_groups = ["security"]   # may revoke any grant

    [groups]                      # members by user name; [] = members come from token claims
    oncall = ["alice", "bob"]
    security = ["carol", "dave"]
    payments = []

    [break_glass]
    groups = ["oncall"]
    max_duration = "15m"

    [category.card]
    requesters = ["oncall"]       # group names, "user:NAME", or "*" for anyone authenticated
    approvers = ["security"]
    approvals_required = 2
    max_duration = "1h"
    reason_pattern = '^[A-Z]+-[0-9]+'   # e.g. a ticket id
    reveal = "last4"              # full | last4

    [category.card.conditions]
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    hours = ["08:00-20:00"]
    timezone = "Europe/Berlin"
    networks = ["10.0.0.0/8", "127.0.0.0/8"]   # broker mode; embedded callers count as 127.0.0.1

    [[notify.webhook]]
    url = "https://hooks.example.com/redactor"
    format = "slack"              # json | slack
    events = ["request", "decision", "revoke", "break_glass"]
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redactor.grants.interface import CATEGORIES, Identity, PolicyError

ANYONE = "*"
REVEAL_LEVELS = frozenset({"full", "last4"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NOTIFY_EVENTS = frozenset(
    {"request", "decision", "revoke", "break_glass", "expire", "reveal_refused"}
)
DEFAULT_MAX_DURATION_S = 3600
DEFAULT_PENDING_TTL_S = 24 * 3600
DEFAULT_BREAK_GLASS_MAX_S = 15 * 60
MAX_GRANT_DURATION_S = 7 * 24 * 3600  # a policy may not hand out more than a week

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration_s(value: object, where: str = "duration") -> int:
    """Seconds from ``"90s"``, ``"30m"``, ``"1h30m"``, ``"2d"`` or a plain integer."""
    if isinstance(value, bool):
        raise PolicyError(f"{where}: expected a duration like '30m', got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            seconds = int(text)
        else:
            m = _DURATION_RE.match(text)
            if not text or not m or not any(m.groups()):
                raise PolicyError(f"{where}: expected a duration like '30m' or '1h', got {value!r}")
            d, h, mi, s = (int(g) if g else 0 for g in m.groups())
            seconds = ((d * 24 + h) * 60 + mi) * 60 + s
    else:
        raise PolicyError(f"{where}: expected a duration like '30m', got {type(value).__name__}")
    if seconds <= 0:
        raise PolicyError(f"{where}: duration must be positive")
    return seconds


@dataclass(frozen=True, slots=True)
class Conditions:
    """When and from where a grant for a category may be used."""

    weekdays: frozenset[int] = frozenset(range(7))  # 0 = Monday
    hours: tuple[tuple[int, int], ...] = ()  # minute-of-day windows [start, end); empty = all day
    timezone: str = "UTC"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def check(self, now: float, address: str | None) -> str | None:
        """``None`` if usable now from ``address``, else why not (safe to show the caller)."""
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        if local.weekday() not in self.weekdays:
            return f"not usable on {WEEKDAYS[local.weekday()]} ({self.timezone})"
        if self.hours:
            minute = local.hour * 60 + local.minute
            if not any(_in_window(minute, start, end) for start, end in self.hours):
                return f"not usable at {local:%H:%M} ({self.timezone})"
        if self.networks:
            # Embedded mode has no network caller: the local user counts as loopback.
            try:
                ip = ipaddress.ip_address(address or "127.0.0.1")
            except ValueError:
                return "caller address unknown"
            if not any(ip in net for net in self.networks):
                return f"not usable from {ip}"
        return None


def _in_window(minute: int, start: int, end: int) -> bool:
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # window across midnight, e.g. 22:00-06:00


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    """The rules for one category."""

    requesters: tuple[str, ...] = (ANYONE,)
    approvers: tuple[str, ...] = (ANYONE,)
    approvals_required: int = 1
    max_duration_s: int = DEFAULT_MAX_DURATION_S
    reason_pattern: re.Pattern[str] | None = None
    reveal: str = "full"
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(frozen=True, slots=True)
class BreakGlass:
    """Who may open a grant without approval, for how long, for which categories."""

    groups: tuple[str, ...] = ()
    max_duration_s: int = DEFAULT_BREAK_GLASS_MAX_S
    categories: tuple[str, ...] = CATEGORIES
    reason_pattern: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook to notify; ``format`` is ``json`` or ``slack``."""

    url: str
    format: str = "json"
    events: frozenset[str] = NOTIFY_EVENTS


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole policy, resolved. :func:`default_policy` is what applies without a file."""

    categories: Mapping[str, CategoryPolicy]
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    admin_groups: tuple[str, ...] = ()
    break_glass: BreakGlass = field(default_factory=BreakGlass)
    pending_ttl_s: int = DEFAULT_PENDING_TTL_S
    webhooks: tuple[WebhookTarget, ...] = ()
    source: str = "<default>"

    def groups_of(self, identity: Identity) -> frozenset[str]:
        """Groups from the policy's member lists plus those the identity's token carries."""
        named = {g for g, members in self.groups.items() if identity.name in members}
        return frozenset(named) | identity.groups

    def matches(self, identity: Identity, principals: tuple[str, ...]) -> bool:
        """Whether ``identity`` is one of ``principals`` (``*``, ``user:NAME`` or a group)."""
        groups = self.groups_of(identity)
        return any(p == ANYONE or p == f"user:{identity.name}" or p in groups for p in principals)

    def is_admin(self, identity: Identity) -> bool:
        return bool(self.admin_groups) and self.matches(identity, self.admin_groups)

    def category(self, name: str) -> CategoryPolicy:
        return self.categories[name]


def default_policy() -> Policy:
    """No policy file: anyone may request anything.

    Any *other* user approves; one approval; ≤ 1 h.
    """
    return Policy(categories={c: CategoryPolicy() for c in CATEGORIES})


# --------------------------------------------------------------------------- loading


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; :class:`PolicyError` names the field on any problem."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{p}: invalid TOML: {exc}") from None
    return parse_policy(data, source=str(p))


def parse_policy(data: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """Validate an already-parsed policy document."""
    v = _Validator(source)
    v.keys(
        data,
        "",
        {"version", "pending_ttl", "admin_groups", "groups", "break_glass", "category", "notify"},
    )
    version = data.get("version", 1)
    if version != 1:
        v.fail("version", f"unsupported policy version {version!r} (expected 1)")

    groups: dict[str, frozenset[str]] = {}
    for name, members in v.table(data, "groups").items():
        groups[name] = frozenset(v.str_list(members, f"groups.{name}"))

    admin_groups = tuple(v.str_list(data.get("admin_groups", []), "admin_groups"))
    for g in admin_groups:
        v.group_ref(g, groups, "admin_groups")

    pending_ttl_s = (
        v.duration(data["pending_ttl"], "pending_ttl")
        if "pending_ttl" in data
        else DEFAULT_PENDING_TTL_S
    )

    categories: dict[str, CategoryPolicy] = {}
    cat_table = v.table(data, "category")
    for name in cat_table:
        if name not in CATEGORIES:
            v.fail(
                f"category.{name}", f"unknown category (expected one of {', '.join(CATEGORIES)})"
            )
    for name in CATEGORIES:
        categories[name] = v.category(cat_table.get(name, {}), f"category.{name}", groups)

    bg_data = v.table(data, "break_glass")
    v.keys(bg_data, "break_glass", {"groups", "max_duration", "categories", "reason_pattern"})
    bg_groups = tuple(v.str_list(bg_data.get("groups", []), "break_glass.groups"))
    for g in bg_groups:
        v.group_ref(g, groups, "break_glass.groups")
    bg_cats = tuple(
        v.str_list(bg_data.get("categories", list(CATEGORIES)), "break_glass.categories")
    )
    for c in bg_cats:
        if c not in CATEGORIES:
            v.fail("break_glass.categories", f"unknown category {c!r}")
    break_glass = BreakGlass(
        groups=bg_groups,
        max_duration_s=v.duration(
            bg_data.get("max_duration", DEFAULT_BREAK_GLASS_MAX_S), "break_glass.max_duration"
        ),
        categories=bg_cats,
        reason_pattern=v.pattern(bg_data.get("reason_pattern"), "break_glass.reason_pattern"),
    )

    webhooks: list[WebhookTarget] = []
    notify = v.table(data, "notify")
    v.keys(notify, "notify", {"webhook"})
    hooks = notify.get("webhook", [])
    if not isinstance(hooks, list):
        v.fail("notify.webhook", "expected an array of tables ([[notify.webhook]])")
    for i, hook in enumerate(hooks):
        where = f"notify.webhook[{i}]"
        if not isinstance(hook, dict):
            v.fail(where, "expected a table")
        v.keys(hook, where, {"url", "format", "events"})
        url = hook.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
            v.fail(f"{where}.url", "expected an http(s) URL")
        fmt = hook.get("format", "json")
        if fmt not in ("json", "slack"):
            v.fail(f"{where}.format", f"expected 'json' or 'slack', got {fmt!r}")
        events = frozenset(v.str_list(hook.get("events", sorted(NOTIFY_EVENTS)), f"{where}.events"))
        if bad := events - NOTIFY_EVENTS:
            v.fail(
                f"{where}.events",
                f"unknown event(s) {sorted(bad)} (expected {sorted(NOTIFY_EVENTS)})",
            )
        webhooks.append(WebhookTarget(url=url, format=fmt, events=events))

    return Policy(
        categories=categories,
        groups=groups,
        admin_groups=admin_groups,
        break_glass=break_glass,
        pending_ttl_s=pending_ttl_s,
        webhooks=tuple(webhooks),
        source=source,
    )


class _Validator:
    """Small helpers that raise :class:`PolicyError` with ``<file>: <field>: <problem>``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> NoReturn:
        raise PolicyError(f"{self.source}: {where}: {problem}")

    def keys(self, data: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                field_name = f"{where}.{key}" if where else key
                self.fail(
                    field_name, f"unknown field (expected one of {', '.join(sorted(allowed))})"
                )

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {type(value).__name__}")
        return value

    def str_list(self, value: object, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
            self.fail(where, "expected a list of non-empty strings")
        return list(value)

    def duration(self, value: object, where: str) -> int:
        try:
            seconds = parse_duration_s(value, where)
        except PolicyError as exc:
            raise PolicyError(f"{self.source}: {exc}") from None
        if seconds > MAX_GRANT_DURATION_S:
            self.fail(where, f"at most {MAX_GRANT_DURATION_S // 86400} days")
        return seconds

    def pattern(self, value: object, where: str) -> re.Pattern[str] | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.fail(where, "expected a regular expression string")
        try:
            return re.compile(value)
        except re.error as exc:
            self.fail(where, f"invalid regular expression: {exc}")
        raise AssertionError("unreachable")

    def group_ref(self, principal: str, groups: Mapping[str, frozenset[str]], where: str) -> None:
        # A typo in a group name would otherwise silently lock everyone out (or nobody in).
        if principal == ANYONE or principal.startswith("user:"):
            if principal.startswith("user:") and len(principal) == 5:
                self.fail(where, "'user:' needs a name")
            return
        if principal not in groups:
            self.fail(where, f"group {principal!r} is not defined in [groups]")

    def category(
        self, data: object, where: str, groups: Mapping[str, frozenset[str]]
    ) -> CategoryPolicy:
        if not isinstance(data, dict):
            self.fail(where, "expected a table")
        assert isinstance(data, dict)
        self.keys(
            data,
            where,
            {
                "requesters",
                "approvers",
                "approvals_required",
                "max_duration",
                "reason_pattern",
                "reveal",
                "conditions",
            },
        )
        requesters = tuple(self.str_list(data.get("requesters", [ANYONE]), f"{where}.requesters"))
        approvers = tuple(self.str_list(data.get("approvers", [ANYONE]), f"{where}.approvers"))
        for p in requesters:
            self.group_ref(p, groups, f"{where}.requesters")
        for p in approvers:
            self.group_ref(p, groups, f"{where}.approvers")
        required = data.get("approvals_required", 1)
        if not isinstance(required, int) or isinstance(required, bool) or not 1 <= required <= 10:
            self.fail(
                f"{where}.approvals_required", f"expected an integer from 1 to 10, got {required!r}"
            )
        # If every approver is enumerated (no '*', no claim-only group) there must be enough of
        # them.
        if ANYONE not in approvers and all(
            p.startswith("user:") or groups.get(p) for p in approvers
        ):
            people = {p[5:] for p in approvers if p.startswith("user:")}
            for p in approvers:
                people |= set(groups.get(p, ()))
            if len(people) < required:
                self.fail(
                    f"{where}.approvals_required",
                    f"needs {required} distinct approvers "
                    f"but approvers list only {len(people)} people",
                )
        reveal = data.get("reveal", "full")
        if reveal not in REVEAL_LEVELS:
            self.fail(f"{where}.reveal", f"expected one of {sorted(REVEAL_LEVELS)}, got {reveal!r}")
        return CategoryPolicy(
            requesters=requesters,
            approvers=approvers,
            approvals_required=required,
            max_duration_s=self.duration(
                data.get("max_duration", DEFAULT_MAX_DURATION_S), f"{where}.max_duration"
            ),
            reason_pattern=self.pattern(data.get("reason_pattern"), f"{where}.reason_pattern"),
            reveal=reveal,
            conditions=self.conditions(data.get("conditions", {}), f"{where}.conditions"),
        )

    def conditions(self, data: object, where: str) -> Conditions:
        if not isinstance(data, dict):
            self.fail(where, "expected a table")
        assert isinstance(data, dict)
        self.keys(data, where, {"weekdays", "hours", "timezone", "networks"})
        days = self.str_list(data.get("weekdays", list(WEEKDAYS)), f"{where}.weekdays")
        weekdays: set[int] = set()
        for d in days:
            if d.lower()[:3] not in WEEKDAYS:
                self.fail(f"{where}.weekdays", f"unknown weekday {d!r} (use mon..sun)")
            weekdays.add(WEEKDAYS.index(d.lower()[:3]))
        hours: list[tuple[int, int]] = []
        for w in self.str_list(data.get("hours", []), f"{where}.hours"):
            m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", w.strip())
            if not m:
                self.fail(f"{where}.hours", f"expected 'HH:MM-HH:MM', got {w!r}")
            assert m is not None
            h1, m1, h2, m2 = (int(x) for x in m.groups())
            if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
                self.fail(f"{where}.hours", f"invalid time in {w!r}")
            hours.append((h1 * 60 + m1, h2 * 60 + m2))
        tz = data.get("timezone", "UTC")
        if not isinstance(tz, str):
            self.fail(f"{where}.timezone", "expected an IANA zone name like 'Europe/Berlin'")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"{where}.timezone", f"unknown time zone {tz!r}")
        networks = []
        for n in self.str_list(data.get("networks", []), f"{where}.networks"):
            try:
                networks.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                self.fail(f"{where}.networks", f"invalid CIDR {n!r}")
        return Conditions(frozenset(weekdays), tuple(hours), tz, tuple(networks))
