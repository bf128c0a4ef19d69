"""The outside probe's findings, each replayed as the attacker sent it (docs/SECURITY.md)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import text

from spendtrackr.apps.receipts.extractors import ExtractionFailed, LocalExtractor
from tests.factories import (
    PASSWORD,
    Actor,
    approval_over,
    authorize,
    create_policy,
    create_team,
    create_user,
    directory_secret,
    issue_card,
    join_team,
    signup,
    submit_spend,
    unique_email,
    webhook_secret,
)


def _card_spend(client: TestClient) -> tuple[Actor, Actor, dict[str, Any]]:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    holder = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100)])
    card = issue_card(client, admin, holder)
    answer = authorize(client, webhook_secret(client, admin), card["id"], "480.00")
    spend = client.get(f"/spends/{answer['spend_id']}", headers=holder.headers).json()
    assert spend["status"] == "pending"
    return admin, holder, spend


def test_1_a_cardholder_cannot_rewrite_a_card_purchase(client: TestClient) -> None:
    _admin, holder, spend = _card_spend(client)
    rewrite = client.patch(
        f"/spends/{spend['id']}", json={"amount": "4.80"}, headers=holder.headers
    )
    assert rewrite.status_code == 422
    assert rewrite.json()["code"] == "card_spend_field_locked"
    memo = client.patch(
        f"/spends/{spend['id']}", json={"description": "team dinner"}, headers=holder.headers
    )
    assert memo.status_code == 200
    after = memo.json()
    assert (after["amount"], after["status"]) == ("480.00", "pending")
    assert after["approvals"][0]["status"] == "pending"  # the manager's step is still open
    cancel = client.post(f"/spends/{spend['id']}/cancel", headers=holder.headers)
    assert cancel.status_code == 409


def test_2_team_id_must_be_one_of_the_submitters_teams(client: TestClient) -> None:
    admin = signup(client)
    executives = create_team(client, admin, name="Executives")
    create_policy(
        client,
        admin,
        [
            {"condition": {"team_in": [executives["id"]]}, "action": {"type": "auto_approve"}},
            {"condition": {"amount_gt": 1000}, "action": {"type": "block", "reason": "too much"}},
        ],
    )
    employee = create_user(client, admin)
    body = {"amount": "4000", "currency": "USD", "spend_date": "2026-03-01"}
    dodge = client.post(
        "/spends", json={**body, "team_id": executives["id"]}, headers=employee.headers
    )
    assert dodge.status_code == 422
    assert dodge.json()["code"] == "not_team_member"
    join_team(client, admin, executives, employee)
    member = client.post(
        "/spends", json={**body, "team_id": executives["id"]}, headers=employee.headers
    )
    assert member.status_code == 201


def test_3_the_card_network_secret_cannot_change_users(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    event = {"id": "e1", "type": "user.updated", "data": {"email": employee.email, "role": "admin"}}
    card_secret = webhook_secret(client, admin)
    assert client.post("/events/webhook", json=[event], headers=card_secret).status_code == 401
    directory = directory_secret(client, admin)
    refused = client.post("/events/webhook", json=[event], headers=directory)
    assert refused.status_code == 422
    assert refused.json()["code"] == "directory_admin_forbidden"
    allow = client.patch(
        "/companies/me", json={"directory_may_grant_admin": True}, headers=admin.headers
    )
    assert allow.status_code == 200
    assert client.post("/events/webhook", json=[event], headers=directory).status_code == 200
    log = client.get("/audit-logs?action=user.updated", headers=admin.headers).json()
    assert log["items"][0]["metadata"]["directory_event_id"] == "e1"


def test_4_an_email_belongs_to_each_company_separately(client: TestClient) -> None:
    a = signup(client)
    b = signup(client)
    person = create_user(client, a)
    # Tenant B can create the same person: no 409 tells it they exist elsewhere.
    body = {"email": person.email, "full_name": "P", "role": "employee", "password": PASSWORD}
    assert client.post("/admin/users", json=body, headers=b.headers).status_code == 201
    # Tenant A deleting them does not lock them out of B, and frees the email in A.
    assert client.delete(f"/admin/users/{person.id}", headers=a.headers).status_code == 200
    login = client.post("/auth/login", json={"email": person.email, "password": PASSWORD})
    assert login.status_code == 200
    assert client.post("/admin/users", json=body, headers=a.headers).status_code == 201
    stranger = client.post("/auth/login", json={"email": person.email, "password": "wrong" * 3})
    assert stranger.json() == {"detail": "Invalid email or password", "code": "invalid_credentials"}


class _CountedLogins:
    """Logins, each with the number of Argon2 computations (hashes and verifications) it cost."""

    def __init__(self, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client = client
        self.hashes = 0
        for name in ("hash", "verify"):
            original = getattr(Argon2Hasher, name)

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.hashes += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(Argon2Hasher, name, counted)

    def __call__(self, email: str, password: str) -> tuple[int, int]:
        before = self.hashes
        status = self.client.post(
            "/auth/login", json={"email": email, "password": password}
        ).status_code
        return status, self.hashes - before


def test_4_a_login_costs_one_hash_however_many_companies_know_the_email(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing must not tell a tenant that its user has accounts elsewhere: an unknown email, an
    email with one account and one with three all cost exactly one Argon2 computation."""
    admins = [signup(client) for _ in range(3)]
    single = create_user(client, admins[0])
    several = unique_email("several")
    body = {"email": several, "full_name": "P", "role": "employee", "password": PASSWORD}
    for admin in admins:
        assert client.post("/admin/users", json=body, headers=admin.headers).status_code == 201
    login = _CountedLogins(client, monkeypatch)
    assert login(unique_email(), PASSWORD) == (401, 1)
    assert login(single.email, "wrong password!!") == (401, 1)
    assert login(single.email, PASSWORD) == (200, 1)
    assert login(several, "wrong password!!") == (401, 1)
    assert login(several, PASSWORD) == (409, 1)


def test_4_a_hash_under_another_salt_is_replaced_at_its_next_login(
    client: TestClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = signup(client)
    user = create_user(client, admin)
    legacy = app.state.passwords.hash(PASSWORD, email=None)  # a random salt, as before
    sqlite = app.state.engine.dialect.name == "sqlite"
    with app.state.engine.begin() as conn:
        conn.execute(
            text("UPDATE user SET password_hash = :h WHERE id = :id"),
            {"h": legacy, "id": user.id.replace("-", "") if sqlite else user.id},
        )
    login = _CountedLogins(client, monkeypatch)
    assert login(user.email, PASSWORD) == (200, 2)  # the email's hash, then the old one's
    assert login(user.email, PASSWORD) == (200, 1)  # replaced: one hash from now on


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _pdf_bomb(inflated: int) -> bytes:
    """A page whose text (with a font to show it) is followed by `inflated` bytes of padding:
    pypdf inflates all of it to read the text (without the font it would not look)."""
    stream = zlib.compress(b"BT /F1 12 Tf 72 700 Td (TOTAL 12.00) Tj ET\n" + b" " * inflated, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
        b" >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_5_decompression_bombs_fail_for_good_never_500(client: TestClient) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin)
    png = _png_declaring(200_000, 200_000)
    upload = client.post(
        "/receipts",
        data={"spend_id": spend["id"]},
        files={"file": ("bomb.png", png, "image/png")},
        headers=admin.headers,
    )
    assert upload.status_code == 201, upload.text
    extractor = LocalExtractor()
    extractor.tesseract = extractor.tesseract or "/usr/bin/tesseract"
    for data, kind, reason in (
        (png, "image/png", "pixels"),
        (_pdf_bomb(60_000_000), "application/pdf", "inflates past"),
    ):
        # Permanent (ExtractionFailed): the job records the reason and does not retry.
        with pytest.raises(ExtractionFailed, match=reason):
            extractor.extract(data, kind)


def test_6_date_filters_hold_at_the_calendar_edges(client: TestClient) -> None:
    admin = signup(client)
    for path in ("/audit-logs", "/spends", "/reports/spend-summary?group_by=month&"):
        sep = "" if path.endswith("&") else "?"
        for query in (
            "date_to=9999-12-31",
            "date_from=0001-01-01",
            "date_from=0001-01-01&date_to=9999-12-31",
            "date_from=9999-12-31",
        ):
            response = client.get(f"{path}{sep}{query}", headers=admin.headers)
            assert response.status_code == 200, (path, query, response.text)
    everything = client.get("/audit-logs?date_to=9999-12-31", headers=admin.headers).json()
    assert everything["total"] >= 1
    export = client.get("/exports/accounting.csv?date_to=9999-12-31", headers=admin.headers)
    assert export.status_code == 200


def test_7_the_body_limit_follows_the_route_not_the_content_type(client: TestClient) -> None:
    admin = signup(client)
    big = b"x" * (5 * 1024 * 1024)
    for path, headers in (("/spends", admin.headers), ("/auth/login", {})):
        response = client.post(
            path, files={"file": ("a.bin", big, "application/octet-stream")}, headers=headers
        )
        assert response.status_code == 413, (path, response.status_code)


def _million_a_day_card(client: TestClient, issuer: Actor, holder: Actor) -> Any:
    body = {
        "user_id": holder.id,
        "currency": "USD",
        "spending_limits": [{"amount": "1000000", "interval": "daily"}],
    }
    return client.post("/cards", json=body, headers=issuer.headers)


def test_9_nobody_reimburses_or_sets_limits_for_themselves(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    own = submit_spend(client, finance, amount="50")
    assert own["status"] == "approved"
    mine = client.post(f"/spends/{own['id']}/reimburse", headers=finance.headers)
    assert mine.status_code == 403
    assert mine.json()["code"] == "separation_of_duties"
    assert client.post(f"/spends/{own['id']}/reimburse", headers=admin.headers).status_code == 200
    assert _million_a_day_card(client, finance, finance).status_code == 403
    ceiling = client.patch(
        "/companies/me",
        json={"max_card_limits": [{"amount": "5000", "interval": "daily"}]},
        headers=admin.headers,
    )
    assert ceiling.status_code == 200
    assert ceiling.json()["max_card_limits"] == [{"amount": "5000.00", "interval": "daily"}]
    tiny = client.patch(
        "/companies/me",
        json={"max_card_limits": [{"amount": "0.001", "interval": "weekly"}]},
        headers=admin.headers,
    )
    assert tiny.status_code == 422
    assert tiny.json()["code"] == "invalid_limit"
    employee = create_user(client, admin)
    above = _million_a_day_card(client, finance, employee)
    assert above.status_code == 422
    assert above.json()["code"] == "limit_above_company_maximum"
    capped = issue_card(client, finance, employee)
    assert capped["spending_limits"] == [{"amount": "5000.00", "interval": "daily"}]


def test_10_metrics_are_not_public(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_11_a_row_edited_in_the_database_shows_in_deep_verify(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    spend = submit_spend(client, employee, amount="480.00")
    clean = client.get("/audit-logs/verify?deep=true", headers=admin.headers).json()
    assert clean["valid"] is True
    assert clean["deep"]["mismatches"] == []
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE spend SET amount = 4.80 WHERE id = :id"),
            {
                "id": spend["id"].replace("-", "")
                if engine.dialect.name == "sqlite"
                else spend["id"]
            },
        )
    chain_only = client.get("/audit-logs/verify", headers=admin.headers).json()
    assert chain_only["valid"] is True  # the chain alone cannot see it
    deep = client.get("/audit-logs/verify?deep=true", headers=admin.headers).json()
    assert deep["valid"] is False
    assert [m["entity_id"] for m in deep["deep"]["mismatches"]] == [spend["id"]]


def test_8_strangers_cannot_lock_out_a_known_email(database_url: str) -> None:
    from spendtrackr.main import create_app
    from tests.conftest import make_settings

    app = create_app(
        make_settings(
            database_url, rate_limit_login_email="5/minute", rate_limit_login_email_ip="100/minute"
        )
    )
    app.state.limiter.reset()
    with TestClient(app) as client:
        admin = signup(client)
        good = client.post("/auth/login", json={"email": admin.email, "password": PASSWORD})
        assert good.status_code == 200
        device = good.cookies.get("spendtrackr_device")
        assert device
        client.cookies.clear()
        wrong = {"email": admin.email, "password": "not the password"}
        for n in range(10):  # ten addresses, each wrong
            ip_headers = {"X-Forwarded-For": f"10.0.0.{n}"}
            client.post("/auth/login", json=wrong, headers=ip_headers)
        blocked = client.post("/auth/login", json={"email": admin.email, "password": PASSWORD})
        assert blocked.status_code == 429  # an unknown device waits
        known = client.post(
            "/auth/login",
            json={"email": admin.email, "password": PASSWORD},
            cookies={"spendtrackr_device": device},
        )
        assert known.status_code == 200  # the real user's device still gets in
        assert unique_email()
