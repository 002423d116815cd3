"""The benchmark's yardstick: a minimal Flask app under the service's own gunicorn settings.

It does the least any CDS service must do: read and parse the JSON body (orjson, as the service
does) and answer with one fixed card; GET answers a fixed discovery document. `http_load.py`
runs it next to the service and prints each case's throughput as a ratio to it, so the numbers
say what our work costs on top of Flask + gunicorn on this machine.

    python bench/baseline_app.py --port 8099   # reads the same CYTOKINE_CDS_* settings as serve
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from flask import Flask, Response, request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.serving import GunicornServer, gunicorn_options  # noqa: E402
from cds_service.settings import Settings  # noqa: E402

CARD = {
    "cards": [
        {
            "uuid": "00000000-0000-4000-8000-000000000000",
            "summary": "Baseline card",
            "indicator": "info",
            "source": {"label": "baseline"},
        }
    ]
}
DISCOVERY = {"services": [{"id": "baseline", "hook": "patient-view", "description": "x"}]}


def create_baseline_app() -> Flask:
    app = Flask(__name__, static_folder=None)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status":"ok"}', mimetype="application/json")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path: str) -> Response:
        if request.method == "POST":
            body = orjson.loads(request.get_data(cache=False))
            if not isinstance(body, dict) or "hook" not in body:
                return Response(b'{"error":"not a hook request"}', 400)
            return Response(orjson.dumps(CARD), mimetype="application/json")
        return Response(orjson.dumps(DISCOVERY), mimetype="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The service's gunicorn settings, without its logging, metrics folder or gc tuning.
    options = gunicorn_options(Settings(host=args.host, port=args.port))
    GunicornServer(create_baseline_app(), options).run()


if __name__ == "__main__":
    main()
