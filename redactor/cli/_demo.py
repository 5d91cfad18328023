"""``redactor demo`` — the whole story, one command, no server: mask, grant, approve, reveal, audit.

Uses a fresh temporary state directory (or ``--home DIR``): generates vault keys, logs a small
shop's records (cards, SSNs, API keys) inside OpenTelemetry spans through stdlib logging with
:class:`redactor.integrations.logging.RedactingFilter`, shows the masked output, then runs the
grant workflow with the real CLI commands: alice requests, bob approves, alice reveals the
trace, mallory is refused, and the audit chain is verified. Output is plain text (no colour).
All values are well-known test data.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

DEMO_POLICY = """\
# The demo's policy: on-call engineers ask, security approves; SSNs reveal their last 4 only.
pending_ttl = "1h"

[groups]
oncall = ["alice"]
security = ["bob", "carol"]

[category.card]
requesters = ["oncall"]
approvers = ["security"]
approvals_required = 1
max_duration = "30m"
reason_pattern = '^INC-[0-9]+'

[category.ssn]
approvers = ["security"]
reveal = "last4"

[category.secret]
approvers = ["security"]
"""

# Test data only: a Visa test number, an SSN in a valid range, made-up credentials.
_ORDERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "checkout",
        "charging card 4111 1111 1111 1111 for order 1001 (customer ssn 536-22-1234)",
        {"api_key": "Zx81kQ0pL2mN4bV6cX8z"},
    ),
    ("refund", "refund to card 5500 0000 0000 0004 for order 1002", {}),
    (
        "webhook",
        "calling partner with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXJ0bmVyIn0.c2lnbmF0dXJl",  # noqa: E501
        {},
    ),
)


@contextlib.contextmanager
def _environment(home: Path) -> Iterator[None]:
    """Point every redactor component at the demo home for the duration, then restore."""
    names = (
        "REDACTOR_HOME",
        "REDACTOR_SERVER",
        "REDACTOR_TOKEN",
        "REDACTOR_POLICY",
        "REDACTOR_USER",
        "REDACTOR_CONFIG",
        "REDACTOR_VAULT",
        "REDACTOR_REF_KEY",
        "REDACTOR_REF_KEY_FILE",
    )
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.pop(n, None)
    os.environ["REDACTOR_HOME"] = str(home)
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


class _Show:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = 0

    def title(self, text: str) -> None:
        self.step += 1
        print(f"\n== {self.step}. {text}", file=self.out)

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def run(self, *argv: str) -> tuple[int, str]:
        """Run a real ``redactor`` command in-process and show it like a terminal would."""
        from redactor.cli import main

        self.say("$ redactor " + " ".join(a if " " not in a else repr(a) for a in argv))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(argv))
        text = out.getvalue() + err.getvalue()
        for line in text.rstrip("\n").splitlines():
            self.say("  " + line)
        if rc:
            self.say(f"  (exit status {rc})")
        return rc, out.getvalue()


def _log_the_shop(home: Path, show: _Show) -> list[str]:
    """Log the shop's records through the redacting filter; returns the trace ids used."""
    from opentelemetry.sdk.trace import TracerProvider

    from redactor import create_redactor
    from redactor.integrations.logging import RedactingFilter
    from redactor.settings import resolve_settings
    from redactor.vault import open_writer

    settings = resolve_settings(home=str(home))
    writer = open_writer(settings)
    if writer is None:
        raise RuntimeError("demo: vault keys were not generated")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s trace=%(trace)s %(message)s"))
    handler.addFilter(
        RedactingFilter(redactor=create_redactor(settings), vault=writer, settings=settings)
    )
    logger = logging.getLogger("demo.shop")
    logger.handlers[:] = [handler]
    logger.propagate = False  # the demo's records go to the demo's stream only
    logger.setLevel(logging.INFO)

    # A local provider: spans give real OTel trace ids without touching global tracing setup.
    tracer = TracerProvider().get_tracer("redactor.demo")
    traces = []
    try:
        for name, message, extra in _ORDERS:
            with tracer.start_as_current_span(name) as span:
                trace_id = format(span.get_span_context().trace_id, "032x")
                traces.append(trace_id)
                logger.info(message, extra={"trace": trace_id, **extra})
        writer.flush(5.0)
    finally:
        writer.shutdown(5.0)
        logger.handlers[:] = []
    for line in stream.getvalue().splitlines():
        show.say("  " + line)
    return traces


def cmd_demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    show = _Show(out)
    temp = args.home is None
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="redactor-demo-"))
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        with _environment(home):
            show.say(
                f"redactor demo — state in {home}"
                + (" (temporary)" if temp and not args.keep else "")
            )

            show.title("Generate the vault key pair (the app gets the public half only)")
            from redactor.vault import generate_keys, has_public_key

            keys_dir = home / "keys"
            if has_public_key(keys_dir):
                show.say(f"  keys already present in {keys_dir}")
            else:
                kid = generate_keys(keys_dir)
                show.say(f"  generated key {kid} in {keys_dir}")
            (home / "policy.toml").write_text(DEMO_POLICY)
            show.say(f"  wrote a policy to {home / 'policy.toml'}: oncall asks, security approves")

            show.title("The shop logs three requests; this is what reaches the log backend")
            traces = _log_the_shop(home, show)
            trace = traces[0]
            show.say(f"\n  originals are sealed in the vault under their trace ids, e.g. {trace}")

            show.title("alice (on call) asks to see the first trace's originals")
            rc, text = show.run(
                "grant",
                "request",
                "--as",
                "alice",
                "--trace",
                trace,
                "--category",
                "card,ssn,secret",
                "--reason",
                "INC-4711 double charge",
                "--duration",
                "15m",
            )
            found = re.search(r"\bg-[a-z2-7]{8}\b", text)
            if rc != 0 or found is None:
                return 1
            gid = found.group(0)

            show.title("She cannot approve her own request; bob from security can")
            show.run("grant", "approve", gid, "--as", "alice")
            if show.run("grant", "approve", gid, "--as", "bob")[0] != 0:
                return 1
            show.run("grant", "list", "--as", "bob")

            show.title(
                "alice reveals the trace: card and API key in full, SSN last 4 only (policy)"
            )
            if show.run("reveal", trace, "--as", "alice")[0] != 0:
                return 1

            show.title("Another trace is not covered; mallory holds no grant at all")
            show.run("reveal", traces[1], "--as", "alice")
            show.run("reveal", trace, "--as", "mallory")

            show.title("Every step is in the hash-chained audit log (no revealed values in it)")
            show.run("audit", "tail", "-n", "12")
            rc, _ = show.run("audit", "verify")
            show.say(
                "\nDone. Next: `redactor serve` runs the same workflow as a broker "
                "with real authentication."
            )
            if not temp or args.keep:
                show.say(
                    f"State kept in {home}; try: REDACTOR_HOME={home} redactor grant list --as bob"
                )
            return rc
    finally:
        if temp and not args.keep:
            shutil.rmtree(home, ignore_errors=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    p = subparsers.add_parser(
        "demo",
        help="mask, grant, approve, reveal and audit, end to end (no server)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--home", metavar="DIR", help="state directory to use (default: a new temporary one)"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    p.set_defaults(func=cmd_demo)
