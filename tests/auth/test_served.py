"""Authentication end to end through `cytokine-cds serve` (gunicorn, two worker processes),
with the JWK Set on a real HTTP server and, for the shared replay cache, a real redis-server."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.auth.conftest import DISCOVERY, FEEDBACK, FEEDBACK_BODY, SERVICE, Signer, bearer
from tests.conftest import load_fixture
from tests.observability.served import served
from tests.servers import cds_service


def test_served_calls_need_and_accept_real_tokens(trusted_clients: Path, ec_signer: Signer) -> None:
    env = {"CYTOKINE_CDS_AUTH": "on", "CYTOKINE_CDS_TRUSTED_CLIENTS": str(trusted_clients)}
    with cds_service(env) as base:

        def token(path: str) -> dict[str, str]:
            return bearer(ec_signer.token(path, aud=base + path))

        missing = requests.get(base + DISCOVERY, timeout=5)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert missing.json()["issue"][0]["diagnostics"].startswith("missing_token: ")

        preflight = requests.options(
            base + SERVICE,
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
            timeout=5,
        )
        assert preflight.status_code == 200

        discovery = requests.get(base + DISCOVERY, headers=token(DISCOVERY), timeout=5)
        assert discovery.status_code == 200
        assert len(discovery.json()["services"]) == 3
        call = requests.post(
            base + SERVICE,
            json=load_fixture("hooks/patient-view.json"),
            headers=token(SERVICE),
            timeout=5,
        )
        assert call.status_code == 200, call.text
        feedback = requests.post(
            base + FEEDBACK, json=FEEDBACK_BODY, headers=token(FEEDBACK), timeout=5
        )
        assert feedback.status_code == 200
        assert requests.get(base + "/healthz", timeout=5).status_code == 200


def test_with_redis_a_token_is_accepted_once_across_workers(
    trusted_clients: Path, ec_signer: Signer, redis_url: str
) -> None:
    env = {
        "CYTOKINE_CDS_AUTH": "on",
        "CYTOKINE_CDS_TRUSTED_CLIENTS": str(trusted_clients),
        "CYTOKINE_CDS_REDIS_URL": redis_url,
    }
    with cds_service(env, workers=2) as base:
        token = bearer(ec_signer.token(DISCOVERY, aud=base + DISCOVERY))
        # A new connection per request, so the requests spread over both workers.
        answers = [requests.get(base + DISCOVERY, headers=token, timeout=5) for _ in range(8)]
        assert sorted(a.status_code for a in answers) == [200] + [401] * 7
        for answer in answers:
            if answer.status_code == 401:
                assert answer.json()["issue"][0]["diagnostics"].startswith("replayed: ")


def test_by_default_a_token_is_accepted_once_across_all_workers(
    tmp_path: Path, trusted_clients: Path, ec_signer: Signer
) -> None:
    # The default set-up: four workers, no Redis; the replay cache is the audit store's SQLite.
    env = {"CYTOKINE_CDS_AUTH": "on", "CYTOKINE_CDS_TRUSTED_CLIENTS": str(trusted_clients)}
    with served(tmp_path, env, workers=4) as server:
        token = bearer(ec_signer.token(DISCOVERY, aud=server.base + DISCOVERY))

        def send(_: int) -> requests.Response:
            # A new connection per request: sync workers take them in turn from the socket.
            return requests.get(server.base + DISCOVERY, headers=token, timeout=10)

        def answering_workers() -> set[int]:
            return {
                json.loads(line)["pid"]
                for line in server.text().splitlines()
                if line.startswith("{") and '"endpoint": "discovery' in line.replace('":"', '": "')
            }

        # On a busy machine one worker may take a whole round: send more rounds of the same
        # token until at least two workers have seen it (the point of the test).
        answers: list[requests.Response] = []
        with ThreadPoolExecutor(8) as pool:
            for _ in range(5):
                answers += pool.map(send, range(24))
                if len(answering_workers()) >= 2:
                    break
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [401] * (len(answers) - 1), statuses
        for answer in answers:
            if answer.status_code == 401:
                assert answer.json()["issue"][0]["diagnostics"].startswith("replayed: ")
        assert len(answering_workers()) >= 2, "the calls never reached a second worker"
