"""The `cytokine-cds` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from cds_service.settings import Settings


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"CYTOKINE_CDS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise SystemExit(f"cytokine-cds: invalid configuration: {problems}") from None


def _serve(args: argparse.Namespace) -> int:
    from cds_service.app import create_app
    from cds_service.serving import serve
    from cds_service.store import StoreError

    settings = _settings(host=args.host, port=args.port)
    try:
        app = create_app(settings)
    except StoreError as exc:
        raise SystemExit(f"cytokine-cds: {exc}") from None
    serve(app, settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cytokine-cds",
        description="Cytokine storm CDS Hooks service. Every setting is also read from "
        "CYTOKINE_CDS_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the CDS Hooks API under gunicorn")
    serve.add_argument("--host", help="bind address (CYTOKINE_CDS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="bind port (CYTOKINE_CDS_PORT, default 8080)")
    serve.set_defaults(handler=_serve)

    # --- audit trail and feedback (issue 5): `db upgrade|current|purge`, `report` --------------
    from cds_service.store.commands import add_commands

    add_commands(commands, _settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
