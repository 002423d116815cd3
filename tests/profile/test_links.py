"""Profile links: signed, expiring, opaque tokens (itsdangerous) and the settings behind them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from cds_service.composition import profile_links
from cds_service.profile.links import SECRET_FILE, LinkRefused, ProfileLinks
from cds_service.settings import Settings

SECRET = b"s" * 32
BASE = "https://cds.hospital.example/cytokine"
TOKEN = re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_link_names_a_random_assessment_under_the_base_url_and_reads_back() -> None:
    links = ProfileLinks(SECRET, 3600)
    first, second = links.issue(BASE), links.issue(BASE + "/")
    assert first.assessment_id != second.assessment_id
    assert first.url == f"{BASE}/profile/{first.token}"
    assert second.url == f"{BASE}/profile/{second.token}"
    # Only the opaque token: random id, timestamp, signature (URL-safe, nothing else).
    assert TOKEN.fullmatch(first.token)
    assert links.read(first.token) == first.assessment_id


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_token_changed_anywhere_is_refused(part: int) -> None:
    links = ProfileLinks(SECRET, 3600)
    token = links.issue(BASE).token
    pieces = token.split(".")
    piece = pieces[part]
    # The first character: the last one of a base64 piece may carry ignored padding bits.
    pieces[part] = ("A" if piece[0] != "A" else "B") + piece[1:]
    with pytest.raises(LinkRefused):
        links.read(".".join(pieces))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 500, "..", "é.é.é"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(LinkRefused):
        ProfileLinks(SECRET, 3600).read(token)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = ProfileLinks(b"t" * 32, 3600).issue(BASE).token
    with pytest.raises(LinkRefused, match="bad signature"):
        ProfileLinks(SECRET, 3600).read(token)


def test_a_token_expires_after_its_lifetime() -> None:
    clock = Clock(1_800_000_000.0)
    links = ProfileLinks(SECRET, 3600, clock=clock)
    link = links.issue(BASE)
    clock.now += 3600
    assert links.read(link.token) == link.assessment_id  # at the limit: still valid
    clock.now += 1
    with pytest.raises(LinkRefused, match="expired"):
        links.read(link.token)


def test_a_token_from_the_future_is_refused() -> None:
    clock = Clock(1_800_000_000.0)
    token = ProfileLinks(SECRET, 3600, clock=clock).issue(BASE).token
    clock.now -= 120
    with pytest.raises(LinkRefused):
        ProfileLinks(SECRET, 3600, clock=clock).read(token)


def test_the_generated_secret_is_kept_in_the_data_dir_and_reused(tmp_path: Path) -> None:
    settings = Settings(auth="off", data_dir=tmp_path / "data")
    first = profile_links(settings)
    second = profile_links(settings)
    assert first is not None and second is not None
    token = first.issue(BASE).token
    second.read(token)  # a restart (or another worker) reads links made before it
    secret = tmp_path / "data" / SECRET_FILE
    assert secret.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "data" / "patient-key.secret").exists()  # a separate secret


def test_a_configured_secret_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    settings = Settings(auth="off", data_dir=tmp_path / "data", profile_secret="k" * 32)  # type: ignore[arg-type]
    links = profile_links(settings)
    assert links is not None
    ProfileLinks(b"k" * 32, 3600).read(links.issue(BASE).token)
    assert not (tmp_path / "data" / SECRET_FILE).exists()


def test_page_off_means_no_link_maker(tmp_path: Path) -> None:
    assert profile_links(Settings(auth="off", profile_page=False)) is None


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYTOKINE_CDS_PROFILE_PAGE", "false")
    monkeypatch.setenv("CYTOKINE_CDS_PROFILE_LINK_LIFETIME_SECONDS", "900")
    monkeypatch.setenv(
        "CYTOKINE_CDS_PROFILE_FRAME_ANCESTORS", "'self', https://ehr.example.org:8443"
    )
    settings = Settings(auth="off")
    assert settings.profile_page is False
    assert settings.profile_link_lifetime_seconds == 900
    assert settings.profile_frame_ancestors == ["'self'", "https://ehr.example.org:8443"]


@pytest.mark.parametrize(
    "entry",
    [
        "https://ehr.example.org; script-src *",
        "*",
        "https://ehr.example.org/path",
        "javascript:alert(1)",
        "'unsafe-inline'",
        "https://ehr.example.org\r\nSet-Cookie: a=b",
    ],
)
def test_frame_ancestors_accept_only_origins_and_self(entry: str) -> None:
    with pytest.raises(ValidationError, match="must be 'self' or an origin"):
        Settings(auth="off", profile_frame_ancestors=[entry])


@pytest.mark.parametrize(
    ("field", "value"), [("profile_secret", "short"), ("profile_link_lifetime_seconds", 10)]
)
def test_unusable_profile_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(auth="off", **{field: value})  # type: ignore[arg-type]
