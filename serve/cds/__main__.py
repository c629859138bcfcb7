"""``python -m serve.cds`` (``make cds``): serve the CDS Hooks service with uvicorn.

The model is loaded before the port opens, so a client that gets an answer from ``/ping`` gets
triage answers too. With no trusted issuer configured the service is open to loopback callers
only, says so on start, and refuses to listen on any other address.
"""

from __future__ import annotations

import argparse
import sys
from ipaddress import ip_address
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serve.cds",
        description="CDS Hooks 2.0 service for sciatica-triage (research software, not a "
        "medical device).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=5002, help="port (5002)")
    parser.add_argument("--model", default=None, help="model URI (the registered champion)")
    parser.add_argument(
        "--feedback-db",
        type=Path,
        default=None,
        help="feedback SQLite file (SCIATICA_CDS_FEEDBACK_DB; data/cds-feedback.sqlite3)",
    )
    parser.add_argument(
        "--issuers",
        default=None,
        help="trusted JWT issuers: a JSON file or JSON text (SCIATICA_CDS_ISSUERS)",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="the URL clients call, the base of a token's aud (SCIATICA_CDS_PUBLIC_URL)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def _loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the app (loading the model) and serve until stopped."""
    args = _parser().parse_args(argv)
    import uvicorn

    from serve.cds.app import CdsSettings, create_app
    from serve.cds.auth import ConfigError

    settings = CdsSettings.from_env(
        host=args.host,
        port=args.port,
        model_uri=args.model,
        feedback_db=args.feedback_db,
        issuers=args.issuers,
        public_url=args.public_url,
    )
    try:
        app = create_app(settings)
    except (ConfigError, LookupError) as error:
        print(f"python -m serve.cds: {error}", file=sys.stderr)
        return 2
    url = f"http://{settings.host}:{settings.port}"
    if app.state.auth.open:
        if not _loopback(settings.host):
            print(
                "python -m serve.cds: no trusted issuer is configured (SCIATICA_CDS_ISSUERS): "
                "an open service listens on loopback only",
                file=sys.stderr,
            )
            return 2
        print(
            "CDS Hooks service OPEN: no trusted issuer configured (SCIATICA_CDS_ISSUERS), so "
            "calls from this machine (loopback) need no JWT.",
            flush=True,
        )
    else:
        issuers = ", ".join(sorted(app.state.auth.issuers))
        print(f"CDS Hooks service: signed JWTs required from {issuers}", flush=True)
    print(f"discovery at {url}/cds-services (research software, not a medical device)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=args.access_log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
