"""The OCR job queue: workers share it, never process a receipt twice, and recover from crashes."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from spendtrackr.apps.receipts import flows
from spendtrackr.apps.receipts import service as receipts_service
from spendtrackr.apps.receipts.extractors import LocalExtractor
from spendtrackr.apps.receipts.schemas import ExtractedReceipt
from spendtrackr.cli import app as cli
from spendtrackr.core.config import Settings, get_settings
from spendtrackr.core.db import session_scope
from spendtrackr.main import create_app
from tests.apps.receipts.test_routes import upload
from tests.conftest import make_settings
from tests.factories import Actor, signup, submit_spend
from tests.receipts import pdf_receipt


class CountingExtractor:
    """The real local extractor, counting how often each file is read."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: Counter[bytes] = Counter()
        self.lock = threading.Lock()
        self.inner = LocalExtractor()

    def extract(self, data: bytes, content_type: str) -> ExtractedReceipt:
        with self.lock:
            self.calls[data] += 1
        time.sleep(0.005)  # long enough for the other worker to reach for the same rows
        return self.inner.extract(data, content_type)


@pytest.fixture
def queued_app(settings: Settings, tmp_path: Path) -> FastAPI:
    """An app whose uploads wait for a worker (no OCR in the web process)."""
    return create_app(
        make_settings(settings.database_url, ocr_in_process=False, storage_path=tmp_path)
    )


def _queue(client: TestClient, count: int) -> tuple[Actor, list[str]]:
    admin = signup(client)
    spend = submit_spend(client, admin, amount="3.00")
    ids = []
    for i in range(count):
        response = upload(
            client, admin, spend["id"], pdf_receipt([f"Shop number {i}", "Total 3.00"])
        )
        assert response.status_code == 201
        assert response.json()["ocr_status"] == "pending"
        ids.append(response.json()["id"])
    return admin, ids


def _statuses(client: TestClient, admin: Actor, ids: list[str]) -> set[str]:
    return {client.get(f"/receipts/{i}", headers=admin.headers).json()["ocr_status"] for i in ids}


def test_two_workers_process_each_of_50_receipts_exactly_once(queued_app: FastAPI) -> None:
    extractor = CountingExtractor()
    state = queued_app.state
    with TestClient(queued_app) as client:
        admin, ids = _queue(client, 50)

        def worker() -> None:
            kwargs = {"storage": state.storage, "extractor": extractor, "settings": state.settings}
            while flows.work_once(state.session_factory, batch=3, **kwargs):  # type: ignore[arg-type]
                pass

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sum(extractor.calls.values()) == 50
        assert set(extractor.calls.values()) == {1}
        assert _statuses(client, admin, ids) == {"done"}


def test_a_crash_between_claim_and_finish_is_recovered(queued_app: FastAPI) -> None:
    state = queued_app.state
    with TestClient(queued_app) as client:
        admin, ids = _queue(client, 3)
        # a worker claims the jobs and dies before finishing them
        with session_scope(state.session_factory) as session:
            dead = receipts_service.claim_batch(
                session, limit=10, stale_after=timedelta(seconds=300)
            )
        assert {str(c.receipt_id) for c in dead} >= set(ids)
        assert _statuses(client, admin, ids) == {"processing"}
        # a live worker leaves fresh claims alone ...
        kwargs = {"storage": state.storage, "extractor": LocalExtractor()}
        flows.work_once(state.session_factory, settings=state.settings, **kwargs)  # type: ignore[arg-type]
        assert _statuses(client, admin, ids) == {"processing"}
        # ... and takes over stale ones
        stale = state.settings.model_copy(update={"ocr_stale_seconds": 0.001})
        time.sleep(0.01)
        flows.work_once(state.session_factory, settings=stale, **kwargs)  # type: ignore[arg-type]
        assert _statuses(client, admin, ids) == {"done"}
        # the dead worker waking up cannot write over the result
        flows.process(state.session_factory, dead[0], settings=state.settings, **kwargs)  # type: ignore[arg-type]
        assert _statuses(client, admin, ids) == {"done"}


@pytest.fixture
def worker_env(queued_app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings = queued_app.state.settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STORAGE_PATH", str(settings.storage_path))
    monkeypatch.setenv("LOG_JSON", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_worker_command_runs_the_queue(queued_app: FastAPI, worker_env: None) -> None:
    with TestClient(queued_app) as client:
        admin, ids = _queue(client, 2)
        result = CliRunner().invoke(cli, ["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert "local extractor" in result.output
        assert _statuses(client, admin, ids) == {"done"}


def test_the_worker_in_a_process_of_its_own_reads_receipts(
    queued_app: FastAPI, worker_env: None
) -> None:
    """As operators run it: a fresh interpreter that imports only what the command imports (in
    this test process every model is already mapped). It failed every read when the cards' table
    was not mapped there: a spend's flush could not resolve `spend.card_id`."""
    with TestClient(queued_app) as client:
        admin, ids = _queue(client, 2)
        spend_id = client.get(f"/receipts/{ids[0]}", headers=admin.headers).json()["spend_id"]
        result = subprocess.run(
            [sys.executable, "-m", "spendtrackr.cli", "worker", "--once"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "failed" not in result.stderr
        assert _statuses(client, admin, ids) == {"done"}
        spend = client.get(f"/spends/{spend_id}", headers=admin.headers).json()
        assert [r["ocr_status"] for r in spend["receipts"]] == ["done", "done"]


def test_orphan_files_are_swept(queued_app: FastAPI) -> None:
    state = queued_app.state
    with TestClient(queued_app) as client:
        _queue(client, 1)
    state.storage.put("ffffffffffffffffffffffffffffffff/ab/orphan", io.BytesIO(b"left by a crash"))
    removed = flows.sweep_orphan_files(
        state.session_factory, storage=state.storage, grace_seconds=0
    )
    assert removed == 1
    assert not state.storage.exists("ffffffffffffffffffffffffffffffff/ab/orphan")
    assert len(list(state.storage.keys_older_than(0))) == 1  # the receipt's file stays


def test_a_worker_runs_only_the_queues_it_is_given(queued_app: FastAPI, worker_env: None) -> None:
    with TestClient(queued_app) as client:
        admin, ids = _queue(client, 2)
        others = CliRunner().invoke(cli, ["worker", "--once", "--queues", "webhooks,emails"])
        assert others.exit_code == 0, others.output
        assert "worker started on webhooks, emails" in others.output
        assert _statuses(client, admin, ids) == {"pending"}  # OCR is not its queue
        ocr = CliRunner().invoke(cli, ["worker", "--once", "--queues", "ocr"])
        assert ocr.exit_code == 0, ocr.output
        assert _statuses(client, admin, ids) == {"done"}
    wrong = CliRunner().invoke(cli, ["worker", "--once", "--queues", "ocr,mail"])
    assert wrong.exit_code == 2
    assert "unknown queues: mail" in wrong.output
