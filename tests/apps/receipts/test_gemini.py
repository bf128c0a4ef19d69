"""The Gemini extractor through the real google-genai SDK, against a fake server on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.receipts import flows
from spendtrackr.core.config import Settings
from spendtrackr.main import create_app
from tests.apps.receipts.test_routes import upload
from tests.conftest import make_settings
from tests.factories import signup, submit_spend
from tests.fake_gemini import FakeGemini, Reply, fake_gemini
from tests.receipts import image_receipt, pdf_receipt

GOOD = {
    "vendor": "Blue Bottle Coffee",
    "date": "2026-11-20",
    "total": "8.37",
    "currency": "usd",
    "tax": "0.62",
    "line_items": [
        {"description": "Latte", "amount": "4.50"},
        {"description": "Croissant", "amount": "3.25"},
    ],
    "vendor_confidence": 0.98,
    "date_confidence": 0.9,
    "total_confidence": 0.97,
}


@pytest.fixture
def gemini(settings: Settings, tmp_path: Path) -> Iterator[tuple[FakeGemini, FastAPI]]:
    with fake_gemini() as fake:
        app = create_app(
            make_settings(
                settings.database_url,
                gemini_api_key="test-key",
                gemini_base_url=fake.url,
                gemini_model="gemini-test",
                gemini_timeout_seconds=1,
                ocr_max_attempts=2,
                storage_path=tmp_path,
            )
        )
        yield fake, app


def _run_pending(app: FastAPI) -> None:
    state = app.state
    flows.work_once(
        state.session_factory,
        storage=state.storage,
        extractor=state.extractor,
        settings=state.settings,
    )


def test_structured_answer_is_stored_and_verified(gemini: tuple[FakeGemini, FastAPI]) -> None:
    fake, app = gemini
    fake.replies.append(FakeGemini.answer(GOOD))
    with TestClient(app) as client:
        admin = signup(client)
        spend = submit_spend(client, admin, amount="8.37")
        data = image_receipt("JPEG")
        receipt = upload(client, admin, spend["id"], data, declared="image/jpeg").json()
        done = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert done["ocr_status"] == "done", done
    assert done["verified"] is True
    assert done["extracted"] == {
        "vendor": "Blue Bottle Coffee",
        "date": "2026-11-20",
        "total": "8.37",
        "currency": "USD",
        "tax": "0.62",
        "line_items": [
            {"description": "Latte", "amount": "4.50"},
            {"description": "Croissant", "amount": "3.25"},
        ],
        "confidence": {"vendor": 0.98, "date": 0.9, "total": 0.97},
    }
    # the real request: the configured model, the file inline, JSON output with a schema
    assert fake.paths[0].endswith("/models/gemini-test:generateContent")
    request: dict[str, Any] = fake.requests[0]
    parts = request["contents"][0]["parts"]
    inline = next(p["inlineData"] for p in parts if "inlineData" in p)
    assert (inline.get("mimeType") or inline.get("mime_type")) == "image/jpeg"
    assert base64.urlsafe_b64decode(inline["data"]) == data
    config = request["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "total" in str(config.get("responseSchema") or config.get("responseJsonSchema"))


def test_server_errors_are_retried_then_fail(gemini: tuple[FakeGemini, FastAPI]) -> None:
    fake, app = gemini
    error = Reply(503, {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    fake.replies.extend([error, error])
    with TestClient(app) as client:
        admin = signup(client)
        spend = submit_spend(client, admin)
        receipt = upload(client, admin, spend["id"], pdf_receipt()).json()
        first = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
        assert first["ocr_status"] == "pending"  # waiting for its retry
        assert "503" in first["ocr_error"] or "overloaded" in first["ocr_error"]
        _run_pending(app)
        final = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert final["ocr_status"] == "failed"
    assert len(fake.requests) == 2


def test_retry_succeeds_after_a_transient_error(gemini: tuple[FakeGemini, FastAPI]) -> None:
    fake, app = gemini
    fake.replies.extend(
        [Reply(500, {"error": {"code": 500, "message": "boom"}}), FakeGemini.answer(GOOD)]
    )
    with TestClient(app) as client:
        admin = signup(client)
        spend = submit_spend(client, admin, amount="8.37")
        receipt = upload(client, admin, spend["id"], pdf_receipt()).json()
        _run_pending(app)
        final = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert final["ocr_status"] == "done"
    assert final["verified"] is True


def test_timeout_is_retried(gemini: tuple[FakeGemini, FastAPI]) -> None:
    fake, app = gemini
    fake.replies.extend([Reply(delay=3, body={}), FakeGemini.answer(GOOD)])
    with TestClient(app) as client:
        admin = signup(client)
        spend = submit_spend(client, admin, amount="8.37")
        receipt = upload(client, admin, spend["id"], pdf_receipt()).json()
        assert (
            client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()["ocr_status"]
            == "pending"
        )
        _run_pending(app)
        assert (
            client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()["ocr_status"]
            == "done"
        )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("this is not json at all", "not the requested JSON"),
        ({**GOOD, "total": "twelve dollars"}, "total"),
        ({**GOOD, "total": "-5.00"}, "total"),
        ({**GOOD, "total": "1,234.00"}, "total"),
        ({**GOOD, "currency": "DOLLARS"}, "currency"),
        ({**GOOD, "date": "yesterday"}, "date"),
        ({**GOOD, "total_confidence": 7}, "confidence"),
    ],
)
def test_nonsense_fails_at_once_with_a_reason(
    gemini: tuple[FakeGemini, FastAPI], answer: Any, reason: str
) -> None:
    fake, app = gemini
    fake.replies.append(FakeGemini.answer(answer))
    with TestClient(app) as client:
        admin = signup(client)
        spend = submit_spend(client, admin)
        receipt = upload(client, admin, spend["id"], pdf_receipt()).json()
        final = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert final["ocr_status"] == "failed"
    assert reason in final["ocr_error"]
    assert final["extracted"] is None
    assert len(fake.requests) == 1
