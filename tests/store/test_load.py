"""Feedback under load through real gunicorn processes: nothing lost, nothing stored twice.

These tests start `cytokine-cds serve` (several workers) on 127.0.0.1 against a real SQLite
file or PostgreSQL database, and read the store directly afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from cds_service.hooks.response import Card
from cds_service.settings import Settings
from cds_service.store import AuditStore
from tests.servers import BIN, free_port, wait_until_up
from tests.store.helpers import (
    SERVICE_ID,
    feedback_json,
    hook_call_record,
    make_card,
    stored_feedback,
)

FEEDBACK_PATH = f"/cds-services/{SERVICE_ID}/feedback"  # the service the cards were recorded for
BASE_TIME = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@contextmanager
def served_store(
    settings: Settings, log: Path, workers: int = 3
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`cytokine-cds serve` in its own process group (so a test can SIGKILL all of it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CYTOKINE_CDS_WORKERS": str(workers),
        "CYTOKINE_CDS_DATA_DIR": str(settings.data_dir),
        "CYTOKINE_CDS_DB_AUTO_UPGRADE": "true",
        "CYTOKINE_CDS_AUTH": "off",  # what is stored is the subject here, not who calls
    }
    if settings.database_url:
        env["CYTOKINE_CDS_DATABASE_URL"] = settings.database_url.get_secret_value()
    command = [str(BIN / "cytokine-cds"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_up(f"{base}/healthz", process)
        yield base, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def seeded_cards(store: AuditStore, count: int) -> list[Card]:
    cards = [make_card(("il1-driven", "il6-driven", "ifng-driven")[n % 3]) for n in range(count)]
    store.record_hook_call(hook_call_record(cards))
    return cards


def item_for(cards: list[Card], thread: int, n: int) -> dict[str, Any]:
    """A distinct feedback item per (thread, n): its own outcomeTimestamp."""
    card = cards[(thread * 7 + n) % len(cards)]
    at = BASE_TIME + timedelta(seconds=thread * 10_000 + n)
    if n % 3 == 0:
        return feedback_json(card, "overridden", at=at.isoformat(), reason="not-indicated")
    return feedback_json(card, at=at.isoformat())


def stored_identities(store: AuditStore) -> list[tuple[str, datetime]]:
    return [(row["card_uuid"], row["outcome_at"]) for row in stored_feedback(store.engine)]


def identity(item: dict[str, Any]) -> tuple[str, datetime]:
    at = datetime.fromisoformat(item["outcomeTimestamp"]).astimezone(UTC)
    return item["card"], at


def test_concurrent_feedback_is_stored_exactly_once(
    store: AuditStore, store_settings: Settings, tmp_path: Path
) -> None:
    threads, posts = 8, 200
    cards = seeded_cards(store, 40)
    errors: list[str] = []
    sent: set[tuple[str, datetime]] = set()
    lock = threading.Lock()

    def client(thread: int, base: str) -> None:
        session = requests.Session()
        previous: dict[str, Any] | None = None
        for n in range(posts):
            # Every tenth post resends the previous item, as a client retrying would.
            item = previous if (n % 10 == 9 and previous) else item_for(cards, thread, n)
            response = session.post(base + FEEDBACK_PATH, json={"feedback": [item]}, timeout=30)
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
            with lock:
                sent.add(identity(item))
            previous = item

    with served_store(store_settings, tmp_path / "server.log") as (base, _process):
        started = time.perf_counter()
        workers = [threading.Thread(target=client, args=(t, base)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started

    assert errors == []
    stored = stored_identities(store)
    assert len(stored) == len(set(stored)) == len(sent) == threads * (posts - posts // 10)
    assert set(stored) == sent
    assert all(row["orphan"] is False for row in stored_feedback(store.engine))
    print(
        f"\n{store.dialect}: {threads * posts} feedback posts in {elapsed:.2f} s "
        f"({threads * posts / elapsed:.0f}/s, 3 workers)"
    )


def test_sigkill_mid_load_loses_no_acknowledged_feedback(
    store: AuditStore, store_settings: Settings, tmp_path: Path
) -> None:
    cards = seeded_cards(store, 20)
    acknowledged: set[tuple[str, datetime]] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(thread: int, base: str) -> None:
        session = requests.Session()
        for n in range(100_000):
            if stop.is_set():
                return
            item = item_for(cards, thread, n)
            try:
                response = session.post(base + FEEDBACK_PATH, json={"feedback": [item]}, timeout=10)
            except requests.RequestException:
                return  # the server is gone; this item may or may not be stored
            if response.status_code == 200:
                with lock:
                    acknowledged.add(identity(item))

    log = tmp_path / "server.log"
    with served_store(store_settings, log, workers=2) as (base, process):
        workers = [threading.Thread(target=client, args=(t, base)) for t in range(6)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 400 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)  # master and workers, mid-request
        process.wait()
        stop.set()
        for worker in workers:
            worker.join()
    assert len(acknowledged) >= 400

    # Restart on the same store: it recovers and serves; every acknowledged item is there.
    with served_store(store_settings, log, workers=2) as (base, _process):
        again = requests.post(
            base + FEEDBACK_PATH, json={"feedback": [item_for(cards, 99, 1)]}, timeout=10
        )
        assert again.status_code == 200
    stored = set(stored_identities(store))
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged item(s) lost"
    print(f"\n{store.dialect}: {len(acknowledged)} acknowledged before SIGKILL, all stored")
