"""Per-client card shapes from the trusted-clients file, through the hook endpoint, auth on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_service import create_app
from cds_service.api.runtime import current_runtime
from cds_service.demo import hook_request
from cds_service.settings import Settings
from tests.auth.conftest import (
    BASE,
    ISSUER,
    RSA_ISSUER,
    JwksServer,
    Signer,
    bearer,
    write_clients,
)
from tests.conftest import load_fixture

ORDER_SIGN = "/cds-services/cytokine-storm-order-sign"


def mismatch_suggestions(
    tmp_path: Path, ec_signer: Signer, rsa_signer: Signer, jwks_server: JwksServer
) -> dict[str, Any]:
    jwks_server.publish("/ehr/jwks.json", [ec_signer.jwk()])
    clients = write_clients(
        tmp_path / "trusted-clients.json",
        [
            {"iss": ISSUER, "jku": [ec_signer.jku]},  # the default: what every EHR accepts
            {
                "iss": RSA_ISSUER,
                "name": "Payer (Da Vinci CRD)",
                "jwks": {"keys": [rsa_signer.jwk()]},
                "cards": {"alternative_order": "one-suggestion"},
            },
        ],
    )
    app = create_app(Settings(trusted_clients=clients, public_base_url=BASE))
    with app.app_context():
        service = current_runtime().services["cytokine-storm-order-sign"]
    body = hook_request(
        service,
        load_fixture("patients/case-sjia-mas.json"),  # emapalumab before glucocorticoids
        draft_orders=load_fixture("orders/emapalumab.json"),
        now=datetime.now(UTC),
    )
    shapes = {}
    with app.test_client() as client:
        for signer in (ec_signer, rsa_signer):
            response = client.post(ORDER_SIGN, json=body, headers=bearer(signer.token(ORDER_SIGN)))
            assert response.status_code == 200, response.get_json()
            (card,) = response.get_json()["cards"]
            assert card["source"]["topic"]["code"] == "ordermismatch"
            shapes[signer.issuer] = [[a["type"] for a in s["actions"]] for s in card["suggestions"]]
    return shapes


def test_the_trusted_clients_file_chooses_the_alternate_request_shape(
    tmp_path: Path, ec_signer: Signer, rsa_signer: Signer, jwks_server: JwksServer
) -> None:
    shapes = mismatch_suggestions(tmp_path, ec_signer, rsa_signer, jwks_server)
    assert shapes[ISSUER] == [["delete"], ["create"]]
    assert shapes[RSA_ISSUER] == [["delete", "create"]]
