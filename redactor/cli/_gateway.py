"""``redactor gateway``: the standalone OTLP redaction gateway (OTLP/HTTP + OTLP/gRPC in,
redacted OTLP out to a downstream, or OTLP/JSON lines to a file)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from redactor.cli._common import add_engine_options, engine_from_args

_MIB = 1024 * 1024


def _address(value: str) -> str | None:
    return None if value.lower() in ("", "off", "none") else value


def register(sub: Any) -> None:
    """Add ``gateway`` to the ``redactor`` command (a stub saying what to install when the
    gateway's own dependencies, opentelemetry-proto / protobuf / grpcio, are missing)."""
    try:
        from redactor.gateway.interface import (
            DEFAULT_GRPC_ADDRESS,
            DEFAULT_HTTP_ADDRESS,
            DEFAULT_MAX_BODY_BYTES,
        )
    except ModuleNotFoundError as exc:
        missing = exc.name or "a dependency"
        stub = sub.add_parser("gateway", help="run the OTLP gateway (needs redactor[gateway])")
        stub.set_defaults(func=lambda args: _missing(missing))
        return

    env = os.environ.get
    parser = sub.add_parser(
        "gateway",
        help="run the OTLP gateway: redact OTLP/HTTP and OTLP/gRPC and forward downstream",
        description=(
            "Receive OTLP logs, traces and metrics over HTTP and gRPC, redact them with the "
            "engine (originals go to the vault), and forward them to a downstream OTLP endpoint."
        ),
    )
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        type=_address,
        default=_address(env("REDACTOR_GATEWAY_HTTP", DEFAULT_HTTP_ADDRESS)),
        help=f"OTLP/HTTP listen address, or 'off' (default {DEFAULT_HTTP_ADDRESS}; "
        "$REDACTOR_GATEWAY_HTTP)",
    )
    parser.add_argument(
        "--grpc",
        metavar="HOST:PORT",
        type=_address,
        default=_address(env("REDACTOR_GATEWAY_GRPC", DEFAULT_GRPC_ADDRESS)),
        help=f"OTLP/gRPC listen address, or 'off' (default {DEFAULT_GRPC_ADDRESS}; "
        "$REDACTOR_GATEWAY_GRPC)",
    )
    parser.add_argument(
        "--upstream-http",
        metavar="URL",
        default=env("REDACTOR_GATEWAY_UPSTREAM_HTTP") or None,
        help="downstream OTLP/HTTP base URL; /v1/<signal> is appended "
        "($REDACTOR_GATEWAY_UPSTREAM_HTTP)",
    )
    parser.add_argument(
        "--upstream-grpc",
        metavar="HOST:PORT",
        default=env("REDACTOR_GATEWAY_UPSTREAM_GRPC") or None,
        help="downstream OTLP/gRPC endpoint, plaintext ($REDACTOR_GATEWAY_UPSTREAM_GRPC). "
        "With both upstreams, each request goes out over the protocol it came in on",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="no upstream: append each redacted request as a line of OTLP/JSON ('-': stdout)",
    )
    parser.add_argument(
        "--max-body-mib",
        type=float,
        default=float(env("REDACTOR_GATEWAY_MAX_BODY_MIB") or DEFAULT_MAX_BODY_BYTES / _MIB),
        metavar="MIB",
        help="refuse requests larger than this, compressed or decompressed (default 8)",
    )
    parser.add_argument(
        "--upstream-timeout-s",
        type=float,
        default=10.0,
        metavar="S",
        help="downstream call timeout in seconds (default 10)",
    )
    add_engine_options(parser)
    parser.add_argument(
        "--vault", metavar="URL", help="store sealed originals here (default: as for scrub)"
    )
    parser.add_argument(
        "--no-vault", action="store_true", help="do not store originals even if a vault exists"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the gateway's own log level (its logs never contain payload values)",
    )
    parser.set_defaults(func=run)


def _missing(module: str) -> int:
    print(
        f"redactor gateway: {module} is not installed; install the gateway extra "
        "(pip install 'redactor[gateway]': opentelemetry-proto, protobuf, grpcio)",
        file=sys.stderr,
    )
    return 2


def run(args: argparse.Namespace) -> int:
    from redactor.gateway import Gateway, GatewayConfig

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s redactor-gateway %(levelname)s %(message)s")
    )
    log = logging.getLogger("redactor.gateway")
    log.addHandler(handler)
    log.setLevel(args.log_level)
    log.propagate = False

    config = GatewayConfig(
        http_address=args.http,
        grpc_address=args.grpc,
        upstream_http=args.upstream_http,
        upstream_grpc=args.upstream_grpc,
        output=args.output,
        max_body_bytes=int(args.max_body_mib * _MIB),
        upstream_timeout_s=args.upstream_timeout_s,
    )
    config.validate()  # before loading rules and opening the vault
    settings, engine = engine_from_args(args, vault_url=args.vault)
    writer = None
    if not args.no_vault:
        from redactor.vault import open_writer

        writer = open_writer(settings, args.vault)
    gateway = Gateway(config, engine, writer)

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        gateway.start()
        where = ", ".join(
            f"{name} on {addr}"
            for name, addr in (("OTLP/HTTP", args.http), ("OTLP/gRPC", args.grpc))
            if addr
        )
        target = args.upstream_http or args.upstream_grpc or f"output {args.output}"
        if args.upstream_http and args.upstream_grpc:
            target = f"{args.upstream_http} and {args.upstream_grpc}"
        vault_note = "vault on" if writer is not None else "no vault"
        log.info("listening: %s; forwarding to %s; %s", where, target, vault_note)
        while not stop.wait(0.5):
            pass
        log.info("shutting down: finishing requests in flight, flushing the vault")
    finally:
        drained = gateway.shutdown()
        for sig, old in previous.items():
            signal.signal(sig, old)
    counts = gateway.counts
    log.info(
        "stopped: %d requests, %d redacted, %d forwarded, %d refused%s",
        counts["requests"],
        counts["redacted"],
        counts["forwarded"],
        counts["refused"],
        "" if drained else " (shutdown did not drain in time)",
    )
    return 0 if drained else 1
