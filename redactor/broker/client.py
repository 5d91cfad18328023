"""The CLI's side of broker mode.

The same :class:`GrantClient` interface, over HTTP with a bearer token.
"""

from __future__ import annotations

import builtins
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

from redactor.broker.auth import AuthError
from redactor.engine.interface import ConfigError
from redactor.grants.client import GrantClient
from redactor.grants.interface import (
    Grant,
    GrantError,
    GrantNotFound,
    NotAllowed,
    RateLimited,
    RevealRefused,
    VerifyResult,
)
from redactor.grants.reveal import RevealResult
from redactor.grants.service import Conflict

MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class BrokerClient(GrantClient):
    """Talks to ``redactor serve`` at ``server`` (``http://host:port``)."""

    def __init__(self, server: str, token: str, *, timeout_s: float = 30.0) -> None:
        if not server.startswith(("http://", "https://")):
            raise ConfigError(f"REDACTOR_SERVER must be an http(s) URL, got {server!r}")
        self.server = server.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read(MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read(65536)).get("error", {})
                message, code = str(err.get("message", "")), str(err.get("code", ""))
            except (ValueError, AttributeError):
                message, code = "", ""
            message = message or f"broker answered HTTP {exc.code}"
            if exc.code == 401:
                raise AuthError(f"broker rejected the token: {message}") from None
            if exc.code == 403:
                raise (RevealRefused if code == "reveal_refused" else NotAllowed)(message) from None
            if exc.code == 404:
                raise GrantNotFound(message) from None
            if exc.code == 409:
                raise Conflict(message) from None
            if exc.code == 429:
                retry = float(exc.headers.get("Retry-After", "1") or 1)
                raise RateLimited(message, retry_after_s=retry) from None
            raise GrantError(message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise GrantError(
                f"cannot reach the broker at {self.server}: {type(exc).__name__}"
            ) from None

    def request(
        self,
        *,
        traces: Sequence[str],
        refs: Sequence[str],
        categories: Sequence[str],
        reason: str,
        duration_s: int | None,
        break_glass: bool,
    ) -> Grant:
        doc = self._call(
            "POST",
            "/v1/grants",
            {
                "traces": list(traces),
                "refs": list(refs),
                "categories": list(categories),
                "reason": reason,
                "duration_s": duration_s,
                "break_glass": break_glass,
            },
        )
        return Grant.from_json(doc["grant"])

    def _act(self, grant_id: str, action: str, reason: str) -> Grant:
        gid = urllib.parse.quote(grant_id, safe="")
        return Grant.from_json(
            self._call("POST", f"/v1/grants/{gid}/{action}", {"reason": reason})["grant"]
        )

    def approve(self, grant_id: str, reason: str = "") -> Grant:
        return self._act(grant_id, "approve", reason)

    def deny(self, grant_id: str, reason: str) -> Grant:
        return self._act(grant_id, "deny", reason)

    def revoke(self, grant_id: str, reason: str = "") -> Grant:
        return self._act(grant_id, "revoke", reason)

    def list(self, *, mine: bool = False, statuses: tuple[str, ...] | None = None) -> list[Grant]:
        q = {"mine": "1" if mine else "0"}
        if statuses:
            q["status"] = ",".join(statuses)
        doc = self._call("GET", "/v1/grants?" + urllib.parse.urlencode(q))
        return [Grant.from_json(g) for g in doc["grants"]]

    def show(self, grant_id: str) -> Grant:
        gid = urllib.parse.quote(grant_id, safe="")
        return Grant.from_json(self._call("GET", f"/v1/grants/{gid}")["grant"])

    def reveal(
        self,
        *,
        trace: str | None,
        ref: str | None,
        categories: Sequence[str] | None,
        lines: Iterable[str] | None,
    ) -> RevealResult:
        body: dict[str, Any] = {"trace": trace, "ref": ref}
        if categories:
            body["categories"] = list(categories)
        if lines is not None:
            body["lines"] = list(lines)
        return RevealResult.from_json(self._call("POST", "/v1/reveal", body))

    def audit_tail(self, n: int) -> builtins.list[dict[str, Any]]:
        return list(self._call("GET", f"/v1/audit?last={int(n)}")["entries"])

    def audit_verify(self) -> VerifyResult:
        d = self._call("GET", "/v1/audit/verify")
        return VerifyResult(
            bool(d["ok"]),
            int(d["entries"]),
            str(d["head"]),
            d.get("broken_seq"),
            str(d.get("problem", "")),
        )
