from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spendtrackr.apps.receipts import service as receipts_service
from spendtrackr.apps.receipts.models import Receipt
from spendtrackr.core.config import Settings
from spendtrackr.main import create_app
from tests.conftest import make_settings
from tests.factories import Actor, create_policy, create_user, signup, submit_spend
from tests.receipts import ELF, FAKE_PDF, image_receipt, pdf_receipt

NEEDS_TESSERACT = pytest.mark.skipif(
    shutil.which("tesseract") is None and not os.environ.get("CI"),
    reason="tesseract-ocr is not installed (.ci/run installs it, and CI fails without it)",
)


def upload(
    client: TestClient,
    actor: Actor,
    spend_id: str,
    data: bytes,
    name: str = "r.pdf",
    declared: str = "application/pdf",
    **headers: str,
) -> httpx.Response:
    return client.post(
        "/receipts",
        files={"file": (name, data, declared)},
        data={"spend_id": spend_id},
        headers={**actor.headers, **headers},
    )


def stored_files(app: FastAPI) -> list[Path]:
    root: Path = app.state.storage.root
    return [p for p in root.rglob("*") if p.is_file()]


def count_receipts(app: FastAPI) -> int:
    with Session(app.state.engine) as session:
        return session.scalar(select(func.count()).select_from(Receipt)) or 0


def test_pdf_upload_is_read_and_verified(client: TestClient) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin, amount="8.37")
    response = upload(client, admin, spend["id"], pdf_receipt())
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["content_type"] == "application/pdf"
    assert receipt["spend_id"] == spend["id"]
    assert receipt["file_url"] == f"/receipts/{receipt['id']}/file"
    assert len(receipt["sha256"]) == 64
    # the background job ran after the response
    done = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert done["ocr_status"] == "done", done
    assert done["extracted"]["total"] == "8.37"
    assert done["extracted"]["currency"] == "USD"
    assert done["extracted"]["date"] == "2026-11-20"
    assert done["extracted"]["vendor"] == "Blue Bottle Coffee"
    assert done["verified"] is True
    spend_after = client.get(f"/spends/{spend['id']}", headers=admin.headers).json()
    assert spend_after["receipts"][0]["id"] == receipt["id"]
    assert "receipt_amount_mismatch" not in spend_after["flags"]
    actions = [
        e["action"]
        for e in client.get("/audit-logs?entity_type=receipt", headers=admin.headers).json()[
            "items"
        ]
    ]
    assert actions == ["receipt.ocr_completed", "receipt.uploaded"]


def test_download_streams_the_same_bytes_with_the_sniffed_type(client: TestClient) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin)
    data = image_receipt("JPEG")
    receipt = upload(
        client, admin, spend["id"], data, name="photo.pdf", declared="application/pdf"
    ).json()
    assert receipt["content_type"] == "image/jpeg"
    download = client.get(f"/receipts/{receipt['id']}/file", headers=admin.headers)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "image/jpeg"
    assert (
        download.headers["content-disposition"]
        == f'attachment; filename="receipt-{receipt["id"]}.jpg"'
    )


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("PNG", "image/png"), ("WEBP", "image/webp"), ("JPEG", "image/jpeg")]
)
def test_each_image_type_is_accepted(client: TestClient, fmt: str, content_type: str) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin)
    response = upload(
        client,
        admin,
        spend["id"],
        image_receipt(fmt),
        name="x.bin",
        declared="application/octet-stream",
    )
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == content_type


@pytest.mark.parametrize(
    ("data", "name", "declared"),
    [
        (ELF, "receipt.pdf", "application/pdf"),
        (FAKE_PDF, "receipt.pdf", "application/pdf"),
        (b"GIF89a" + b"\x00" * 100, "receipt.gif", "image/gif"),
        (b"<html><script>alert(1)</script></html>", "receipt.png", "image/png"),
        (b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10, "receipt.png", "image/png"),
        (b"", "empty.pdf", "application/pdf"),
    ],
)
def test_unsupported_or_disguised_files_are_415_and_nothing_is_stored(
    client: TestClient, app: FastAPI, data: bytes, name: str, declared: str
) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin)
    before = (len(stored_files(app)), count_receipts(app))
    response = upload(client, admin, spend["id"], data, name=name, declared=declared)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    assert (len(stored_files(app)), count_receipts(app)) == before


def test_oversize_uploads_are_413_and_nothing_is_stored(settings: Settings, tmp_path: Path) -> None:
    limit = 64 * 1024
    app = create_app(
        make_settings(
            settings.database_url,
            max_upload_bytes=limit,
            max_body_bytes=4096,
            storage_path=tmp_path,
        )
    )
    with TestClient(app) as small:
        admin = signup(small)
        spend = submit_spend(small, admin)
        # Larger than a JSON body may be, within the upload limit: the upload route's own limit.
        fits = upload(small, admin, spend["id"], pdf_receipt() + b"\n%" + b"x" * (limit // 2))
        assert fits.status_code == 201, fits.text
        stored = set(tmp_path.rglob("*.*"))
        spend = submit_spend(small, admin, amount="13.00")
        padded = pdf_receipt() + b"\n%" + b"x" * (limit + 1000)  # just over: the route counts it
        streamed = pdf_receipt() + b"\n%" + b"x" * (limit * 4)  # far over: cut off while streaming
        for data in (padded, streamed):
            response = upload(small, admin, spend["id"], data)
            assert response.status_code == 413, response.text
        assert set(tmp_path.rglob("*.*")) == stored
        assert small.get(f"/spends/{spend['id']}", headers=admin.headers).json()["receipts"] == []


def test_who_may_attach(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    colleague = create_user(client, admin)
    finance = create_user(client, admin, role="finance")
    spend = submit_spend(client, employee)
    assert upload(client, colleague, spend["id"], pdf_receipt()).status_code == 404
    assert (
        upload(client, colleague, spend["id"], pdf_receipt()).json()["detail"]
        == "Spend event not found"
    )
    assert upload(client, manager, spend["id"], pdf_receipt()).status_code == 403
    assert upload(client, finance, spend["id"], pdf_receipt()).status_code == 201
    assert upload(client, employee, spend["id"], image_receipt()).status_code == 201
    assert upload(client, employee, str(uuid.uuid4()), pdf_receipt()).status_code == 404


def test_bad_form_fields(client: TestClient) -> None:
    admin = signup(client)
    assert (
        client.post(
            "/receipts",
            data={"spend_id": "nope"},
            files={"file": ("a", pdf_receipt(), "application/pdf")},
            headers=admin.headers,
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/receipts", data={"spend_id": str(uuid.uuid4())}, headers=admin.headers
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/receipts", json={"spend_id": str(uuid.uuid4())}, headers=admin.headers
        ).status_code
        == 422
    )


def test_cross_tenant_receipts_are_404(client: TestClient) -> None:
    admin = signup(client)
    intruder = signup(client)
    spend = submit_spend(client, admin)
    receipt = upload(client, admin, spend["id"], pdf_receipt()).json()
    assert client.get(f"/receipts/{receipt['id']}", headers=intruder.headers).status_code == 404
    assert (
        client.get(f"/receipts/{receipt['id']}/file", headers=intruder.headers).status_code == 404
    )
    assert upload(client, intruder, spend["id"], pdf_receipt()).status_code == 404
    colleague = create_user(client, admin)
    assert (
        client.get(f"/receipts/{receipt['id']}/file", headers=colleague.headers).status_code == 404
    )


def test_same_file_twice_flags_possible_duplicate(client: TestClient) -> None:
    admin = signup(client)
    first = submit_spend(client, admin, amount="8.37")
    second = submit_spend(client, admin, amount="9.00")
    data = pdf_receipt()
    upload(client, admin, first["id"], data)
    assert (
        "possible_duplicate"
        not in client.get(f"/spends/{first['id']}", headers=admin.headers).json()["flags"]
    )
    upload(client, admin, second["id"], data)
    assert (
        "possible_duplicate"
        in client.get(f"/spends/{second['id']}", headers=admin.headers).json()["flags"]
    )
    # another company uploading the same bytes is nobody's duplicate
    other = signup(client)
    theirs = submit_spend(client, other, amount="8.37")
    upload(client, other, theirs["id"], data)
    assert (
        "possible_duplicate"
        not in client.get(f"/spends/{theirs['id']}", headers=other.headers).json()["flags"]
    )


def test_mismatch_flags_the_spend_and_tells_the_submitter(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    spend = submit_spend(client, employee, amount="10.00")
    receipt = upload(client, employee, spend["id"], pdf_receipt()).json()
    done = client.get(f"/receipts/{receipt['id']}", headers=employee.headers).json()
    assert done["verified"] is False
    after = client.get(f"/spends/{spend['id']}", headers=employee.headers).json()
    assert "receipt_amount_mismatch" in after["flags"]
    assert after["amount"] == "10.00"  # OCR never overwrites what the submitter typed
    kinds = [
        n["kind"] for n in client.get("/notifications", headers=employee.headers).json()["items"]
    ]
    assert "receipt.amount_mismatch" in kinds


def test_receipt_missing_rule_stops_applying_once_a_receipt_is_read(client: TestClient) -> None:
    admin = signup(client)
    create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    create_policy(
        client,
        admin,
        [
            {
                "condition": {"receipt_missing": True, "amount_gt": 5},
                "action": {"type": "require_approval", "approver": "role:finance"},
            },
            {
                "condition": {"receipt_missing": True},
                "action": {"type": "flag", "flag": "receipt_missing"},
            },
        ],
    )
    spend = submit_spend(client, employee, amount="8.37")
    assert spend["status"] == "pending"
    assert "receipt_missing" in spend["flags"]
    upload(client, employee, spend["id"], pdf_receipt())
    after = client.get(f"/spends/{spend['id']}", headers=employee.headers).json()
    assert after["status"] == "approved"
    assert "receipt_missing" not in after["flags"]
    assert [a["status"] for a in after["approvals"]] == ["skipped"]


def test_idempotent_upload(client: TestClient, app: FastAPI) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin, amount="8.37")
    data = pdf_receipt()
    first = upload(client, admin, spend["id"], data, **{"Idempotency-Key": "rcpt-1"})
    replay = upload(client, admin, spend["id"], data, **{"Idempotency-Key": "rcpt-1"})
    assert first.status_code == replay.status_code == 201
    assert first.json()["id"] == replay.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"
    other = upload(client, admin, spend["id"], image_receipt(), **{"Idempotency-Key": "rcpt-1"})
    assert other.status_code == 422
    assert len(client.get(f"/spends/{spend['id']}", headers=admin.headers).json()["receipts"]) == 1


def test_failed_request_leaves_no_file_and_no_row(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin)
    data = pdf_receipt(["Unique Vendor " + uuid.uuid4().hex, "Total 3.00"])
    key = receipts_service.storage_key(
        uuid.UUID(admin.company_id), __import__("hashlib").sha256(data).hexdigest()
    )

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away after the file was written")

    monkeypatch.setattr(receipts_service, "create_receipt", broken)
    with TestClient(app, raise_server_exceptions=False) as failing:
        response = upload(failing, admin, spend["id"], data)
    assert response.status_code == 500
    assert not app.state.storage.exists(key)


@NEEDS_TESSERACT
def test_png_receipt_is_read_by_tesseract(client: TestClient) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin, amount="8.37")
    receipt = upload(
        client, admin, spend["id"], image_receipt("PNG"), name="r.png", declared="image/png"
    ).json()
    done = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert done["ocr_status"] == "done", done
    assert done["extracted"]["total"] == "8.37"
    assert done["verified"] is True


def test_image_with_no_text_fails_with_a_reason(client: TestClient) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin)
    receipt = upload(
        client, admin, spend["id"], image_receipt("PNG", lines=[" "]), declared="image/png"
    ).json()
    done = client.get(f"/receipts/{receipt['id']}", headers=admin.headers).json()
    assert done["ocr_status"] == "failed"
    assert done["ocr_error"]
