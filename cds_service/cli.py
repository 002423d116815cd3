"""The `cytokine-cds` command line.

Exit codes: 0 success, 2 bad input or configuration (with a message on stderr naming it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from cds_service.jsontext import NotJson, parse_json
from cds_service.settings import Settings
from cds_service.validation import error_path
from cds_service.yamlfile import ConfigFileError


class UsageError(Exception):
    """Bad input named for the user; main() prints it and exits with 2."""


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's options over them; an error
    names the option when it came from one (--port), else the variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_setting_name(error_path(e['loc'], '_'), given)}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise UsageError(f"invalid configuration: {problems}") from None
    except SettingsError as exc:  # a value that should be JSON and is not
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"CYTOKINE_CDS_{field.group(1).upper()}" if field else "a setting"
        raise UsageError(f"invalid configuration: {name}: not valid JSON") from None


def _setting_name(field: str, given: dict[str, Any]) -> str:
    if field in given:
        return f"--{field.replace('_', '-')}"
    return f"CYTOKINE_CDS_{field.upper()}"


def _read_json(path: str) -> Any:
    try:
        return parse_json(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None
    except NotJson as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None


def _time(text: str | None) -> datetime | None:
    if text is None or text == "now":
        return None if text is None else datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO 8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        # A date alone takes no zone ("2026-11-20Z" reads as local): show a full time with one.
        example = moment.isoformat() + "Z"
        raise UsageError(f"the time needs a zone, e.g. {example}: {text!r}")
    from cds_service.evidence.times import evaluation_time_problem

    problem = evaluation_time_problem(moment)
    if problem is not None:
        raise UsageError(f"the time cannot be used: {problem}: {text!r}")
    return moment


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _serve(args: argparse.Namespace) -> int:
    from cds_service.app import create_app
    from cds_service.auth import AuthConfigError
    from cds_service.composition import check_bind
    from cds_service.serving import serve, serving_process
    from cds_service.store import StoreError

    settings = _settings(host=args.host, port=args.port)
    # Logging and the metrics folder are set up before the app is built.
    with serving_process(settings) as prepared:
        try:
            check_bind(settings, settings.host)
            app = create_app(settings)
        except (AuthConfigError, StoreError) as exc:
            raise UsageError(f"invalid configuration: {exc}") from None
        serve(app, settings, prepared)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.composition import knowledge
    from cds_service.decision import decide, decision_report
    from cds_service.gathering import BundleError, evaluation_context, record_from_bundle

    bundle = _read_json(args.bundle)
    as_of = _time(args.at) or datetime.now(UTC)
    loaded = knowledge(_settings())
    try:
        record, patient_id = record_from_bundle(bundle)
    except BundleError as exc:
        raise UsageError(f"{args.bundle}: {exc}") from None
    decision = decide(loaded, record, evaluation_context(patient_id), as_of)
    _print(decision_report(decision))
    return 0


def _demo_request(args: argparse.Namespace) -> int:
    from cds_service.composition import build_runtime
    from cds_service.demo import hook_request

    runtime = build_runtime(_settings())
    service = next((s for s in runtime.services.values() if s.hook == args.hook), None)
    if service is None:
        raise UsageError(f"unknown hook {args.hook!r}")
    orders = _read_json(args.orders) if args.orders else None
    try:
        request = hook_request(
            service,
            _read_json(args.bundle),
            draft_orders=orders,
            now=_time(args.as_of),
            prefetch=not args.no_prefetch,
            fhir_server=args.fhir_server,
        )
    except ValueError as exc:
        raise UsageError(f"{args.bundle}: {exc}") from None
    _print(request)
    return 0


def _load_fixtures(args: argparse.Namespace) -> int:
    from cds_service.demo import FIXTURE_TIME
    from cds_service.fhir.fixture_upload import FixtureError, UploadFailed, upload

    shift = datetime.now(UTC) - FIXTURE_TIME if args.dates_to_now else None
    paths = args.paths or [Path("fixtures/patients")]
    try:
        for uploaded in upload(args.fhir_server, paths, shift=shift):
            print(f"loaded {uploaded.describe()}")
    except UploadFailed as exc:  # the server: operational
        print(f"cytokine-cds load-fixtures: {exc}", file=sys.stderr)
        return 1
    except FixtureError as exc:  # the files or the URL given: bad input
        print(f"cytokine-cds load-fixtures: {exc}", file=sys.stderr)
        return 2
    return 0


def _ehr_setup(args: argparse.Namespace) -> int:
    from cds_service.auth.trusted_clients import TrustedClientsError, load_trusted_clients
    from cds_service.composition import build_runtime
    from cds_service.ehr_setup import JwtExpectations, as_markdown, setup_sheet

    settings = _settings()
    if settings.trusted_clients is not None:  # the sheet lists them: a broken file is an error
        try:
            load_trusted_clients(settings.trusted_clients)
        except TrustedClientsError as exc:
            raise UsageError(str(exc)) from None
    jwt = JwtExpectations(
        tuple(settings.jwt_algorithms),
        settings.jwt_max_lifetime_seconds,
        settings.trusted_clients,
    )
    sheet = setup_sheet(build_runtime(settings), jwt, args.client)
    if args.format == "json":
        _print(sheet)
    else:
        sys.stdout.write(as_markdown(sheet))
    return 0


def _add_load_fixtures(commands: Any) -> None:
    load = commands.add_parser(
        "load-fixtures",
        help="upload the fixture patients (FHIR transaction Bundles) to a FHIR server",
    )
    load.add_argument(
        "--fhir-server", required=True, help="FHIR R4 base URL, e.g. http://127.0.0.1:8090/fhir"
    )
    load.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="Bundle files or folders of them (default: fixtures/patients)",
    )
    load.add_argument(
        "--dates-to-now",
        action="store_true",
        help="move every date so results are as recent now as at the fixtures' time "
        "(as demo-request does); without it, cytokine results are long past their window",
    )
    load.set_defaults(handler=_load_fixtures)


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

    evaluate = commands.add_parser(
        "evaluate", help="assess a patient Bundle and print the assessment and cards as JSON"
    )
    evaluate.add_argument("bundle", help="a FHIR Bundle (JSON file) of one patient's resources")
    evaluate.add_argument("--at", help="time of evaluation, ISO 8601 with zone (default: now)")
    evaluate.set_defaults(handler=_evaluate)

    demo = commands.add_parser(
        "demo-request", help="print a CDS Hooks request for a patient Bundle (demos, testing)"
    )
    demo.add_argument("bundle", help="a FHIR Bundle of one patient (e.g. fixtures/patients/...)")
    demo.add_argument(
        "--hook", default="patient-view", choices=["patient-view", "order-select", "order-sign"]
    )
    demo.add_argument("--orders", help="draft orders: a Bundle of MedicationRequests (JSON file)")
    demo.add_argument(
        "--as-of",
        default="now",
        help="move the fixture dates (taken on 2026-11-20 12:00 UTC) to this time; "
        "'now' (default) or ISO 8601",
    )
    demo.add_argument("--no-prefetch", action="store_true", help="leave prefetch out")
    demo.add_argument("--fhir-server", help="fhirServer to put in the request")
    demo.set_defaults(handler=_demo_request)

    _add_load_fixtures(commands)

    setup = commands.add_parser(
        "ehr-setup",
        help="print what an EHR's analysts configure: service URLs, prefetch queries with the "
        "hospital's codes, FHIR scopes, trigger criteria, override reasons, link hosts, JWT",
    )
    setup.add_argument("--client", required=True, choices=("epic", "oracle", "generic"))
    setup.add_argument("--format", choices=("markdown", "json"), default="markdown")
    setup.set_defaults(handler=_ehr_setup)

    from cds_service.composition import open_audit_store
    from cds_service.store.commands import add_commands

    add_commands(
        commands,
        lambda existing: open_audit_store(_settings(), patient_key=False, existing=existing),
    )

    from cds_service.screening.commands import add_commands as add_screening

    add_screening(commands, _settings, _time)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from cds_service.screening.commands import ScreenFailed, ScreenInputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (UsageError, ConfigFileError, ScreenInputError) as exc:
        print(f"cytokine-cds: {exc}", file=sys.stderr)
        return 2
    except ScreenFailed as exc:
        print(f"cytokine-cds: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


if __name__ == "__main__":
    sys.exit(main())
