"""``redactor serve`` — run the reveal broker: grants, approvals, reveal and audit over HTTP.

The broker is the only process that opens the vault's private key. Callers authenticate with
bearer tokens (``--token-file``, hashed; add one with ``--issue-token USER``) and/or OIDC JWTs
(``--oidc-issuer``, ``--oidc-audience``, ``--jwks FILE|URL``). It listens on 127.0.0.1 unless
told otherwise; put TLS in front of it (a reverse proxy) before listening anywhere else.
Point the CLI at it with ``REDACTOR_SERVER=http://host:port`` and ``REDACTOR_TOKEN``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from redactor.engine.interface import ConfigError
from redactor.settings import default_home

DEFAULT_PORT = 8731


def cmd_serve(args: argparse.Namespace) -> int:
    from redactor.broker import (
        JWKS,
        BrokerApp,
        ChainAuthenticator,
        OIDCAuthenticator,
        RateLimiter,
        TokenAuthenticator,
        add_token,
        make_server,
    )
    from redactor.cli import _grant
    from redactor.grants import open_service

    home = default_home()
    token_file = args.token_file or os.environ.get("REDACTOR_TOKEN_FILE")
    if token_file is None and (home / "tokens.toml").exists():
        token_file = str(home / "tokens.toml")
    if args.issue_token:
        path = token_file or str(home / "tokens.toml")
        groups = [g.strip() for g in (args.groups or "").split(",") if g.strip()]
        token = add_token(path, args.issue_token, groups)
        print(
            f"token for {args.issue_token} (shown once; stored hashed in {path}):", file=sys.stderr
        )
        print(token)
        return 0

    tokens = TokenAuthenticator.from_file(token_file) if token_file else None
    oidc = None
    if args.oidc_issuer or args.oidc_audience or args.jwks:
        if not (args.oidc_issuer and args.oidc_audience and args.jwks):
            raise ConfigError("OIDC needs --oidc-issuer, --oidc-audience and --jwks together")
        oidc = OIDCAuthenticator(
            JWKS(args.jwks),
            issuer=args.oidc_issuer,
            audience=args.oidc_audience,
            user_claim=args.oidc_user_claim,
            groups_claim=args.oidc_groups_claim,
        )
    authenticator = ChainAuthenticator(tokens, oidc)

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    service = open_service(home, policy_file=args.policy)
    app = BrokerApp(
        service,
        authenticator,
        lambda: _grant.READER_FACTORY(),
        max_body_bytes=args.max_body_bytes,
        rate_limiter=RateLimiter(
            per_minute=args.reveal_rate, burst=max(1, min(10, int(args.reveal_rate)))
        ),
    )
    server = make_server(app, args.host, args.port)
    print(
        f"redactor broker listening on {server.url} (policy: {service.policy.source})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.store.close()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve``."""
    p = subparsers.add_parser(
        "serve",
        help="run the reveal broker (HTTP API; holds the vault private key)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 = any free)",
    )
    p.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default $REDACTOR_POLICY / $REDACTOR_HOME/policy.toml)",
    )
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="bearer tokens, hashed "
        "(default $REDACTOR_TOKEN_FILE, else $REDACTOR_HOME/tokens.toml)",
    )
    p.add_argument(
        "--issue-token",
        metavar="USER",
        help="add a token for USER to the token file, print it, exit",
    )
    p.add_argument(
        "--groups", help="with --issue-token: comma-separated groups carried by the token"
    )
    p.add_argument("--oidc-issuer", help="accepted JWT issuer (iss)")
    p.add_argument("--oidc-audience", help="required JWT audience (aud)")
    p.add_argument(
        "--jwks", metavar="FILE|URL", help="JSON Web Key Set to verify JWTs (RS256/ES256)"
    )
    p.add_argument(
        "--oidc-user-claim",
        default="preferred_username",
        help="claim naming the user (fallback: sub)",
    )
    p.add_argument("--oidc-groups-claim", default="groups", help="claim listing the user's groups")
    p.add_argument(
        "--max-body-bytes", type=int, default=1024 * 1024, help="request body cap (default 1 MiB)"
    )
    p.add_argument(
        "--reveal-rate",
        type=float,
        default=30.0,
        help="reveals per minute per identity (default 30)",
    )
    p.set_defaults(func=cmd_serve)
