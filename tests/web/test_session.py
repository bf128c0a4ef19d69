"""Signing in and out of the web app, its cookies, CSRF, and what its pages send."""

from __future__ import annotations

import gzip

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import create_user, signup
from tests.web.helpers import Browser, signed_in, text


def test_pages_send_to_sign_in_and_back(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    browser = Browser(app)
    page = browser.get("/app/spends?status=pending")
    assert page.status_code == 303
    assert page.headers["location"] == "/app/login?next=/app/spends%3Fstatus%3Dpending"

    token = browser.csrf()
    wrong = browser.client.post(
        "/app/login",
        data={"csrf": token, "email": admin.email, "password": "not it", "next": "/app/spends"},
    )
    assert wrong.status_code == 401
    assert "Invalid email or password" in text(wrong)
    assert "st_session" not in wrong.cookies

    right = browser.client.post(
        "/app/login",
        data={
            "csrf": token,
            "email": admin.email,
            "password": "correct horse battery staple",
            "next": "/app/spends?status=pending",
        },
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/app/spends?status=pending"
    cookies = right.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("st_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session
    assert "Path=/app" in session
    assert browser.get("/app/spends").status_code == 200


def test_sign_in_never_sends_elsewhere(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    for target in ("https://evil.example/", "//evil.example/app", "/docs", "/app/../auth"):
        browser = Browser(app)
        token = browser.csrf()
        answer = browser.client.post(
            "/app/login",
            data={
                "csrf": token,
                "email": admin.email,
                "password": "correct horse battery staple",
                "next": target,
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/app"


def test_forms_need_this_browsers_token(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    browser = signed_in(app, employee.email)
    form = {"amount": "12.00", "currency": "USD", "spend_date": "2026-11-02"}

    missing = browser.client.post("/app/spends/new", data=form)
    assert missing.status_code == 403
    assert "reload the page" in text(missing)

    other = signed_in(app, admin.email)  # a token of another session does not do
    stolen = browser.client.post(
        "/app/spends/new", data={**form, "csrf": other.csrf("/app/spends")}
    )
    assert stolen.status_code == 403

    token = browser.csrf("/app/spends")
    cross_site = browser.client.post(
        "/app/spends/new", data={**form, "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert "another site" in text(cross_site)

    nothing = client.get("/spends", headers=employee.headers).json()
    assert nothing["total"] == 0  # none of the refused forms wrote anything

    ours = browser.client.post(
        "/app/spends/new",
        data={**form, "csrf": token},
        headers={"Origin": "http://testserver"},
    )
    assert ours.status_code == 303, ours.text
    assert client.get("/spends", headers=employee.headers).json()["total"] == 1


def test_sign_out_ends_the_api_session(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    browser = signed_in(app, admin.email)
    kept = dict(browser.client.cookies)
    out = browser.post("/app/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/app/login"
    # The API session is revoked, not only the cookies dropped: replaying them is refused.
    replay = TestClient(app, follow_redirects=False, cookies=kept)
    assert replay.get("/app/spends").status_code == 303


def test_a_deactivated_person_is_signed_out_at_once(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    browser = signed_in(app, employee.email)
    assert browser.get("/app/spends").status_code == 200
    deactivated = client.patch(
        f"/admin/users/{employee.id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.status_code == 200
    answer = browser.get("/app/spends")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/app/login")


def test_an_expired_access_token_is_renewed_from_the_session(
    app: FastAPI, client: TestClient
) -> None:
    admin = signup(client)
    browser = signed_in(app, admin.email)
    session = browser.client.cookies.get("st_session")
    browser.client.cookies.clear()
    page = browser.get("/app/spends", headers={"Cookie": f"st_session={session}; st_access=x.y.z"})
    assert page.status_code == 200
    renewed = next(c for c in page.headers.get_list("set-cookie") if c.startswith("st_access="))
    assert "x.y.z" not in renewed


def test_pages_are_locked_down_and_compressed(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    browser = signed_in(app, admin.email)
    page = browser.get("/app/spends", headers={"Accept-Encoding": "gzip"})
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["content-encoding"] == "gzip"
    assert "<script>" not in page.text
    assert " style=" not in page.text
    assert "onclick" not in page.text

    asset = browser.get("/app/static/app.js?v=1", headers={"Accept-Encoding": "gzip"})
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-encoding"] == "gzip"
    raw = TestClient(app).get("/app/static/app.css", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content)

    # The API itself is not compressed, and keeps its own headers.
    api = client.get("/users/me", headers={**admin.headers, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in api.headers
    assert api.headers["referrer-policy"] == "no-referrer"


def test_amounts_and_dates_in_the_persons_locale(app: FastAPI, client: TestClient) -> None:
    admin = signup(client, base_currency="EUR")
    spend = client.post(
        "/spends",
        json={"amount": "1234.50", "currency": "EUR", "spend_date": "2026-11-02"},
        headers=admin.headers,
    )
    assert spend.status_code == 201, spend.text
    german = signed_in(app, admin.email, **{"Accept-Language": "de-DE,de;q=0.9"})
    assert "1.234,50 €" in text(german.get("/app/spends"))
    assert "02.11.2026" in text(german.get("/app/spends"))
    american = signed_in(app, admin.email, **{"Accept-Language": "en-US"})
    assert "€1,234.50" in text(american.get("/app/spends"))
    assert "Nov 2, 2026" in text(american.get("/app/spends"))
    # A locale the person chose (their notification preferences) wins over the browser's.
    chosen = client.put(
        "/users/me/notification-preferences", json={"locale": "fr_FR"}, headers=admin.headers
    )
    assert chosen.status_code == 200, chosen.text
    assert "1 234,50 €" in text(american.get("/app/spends")).replace("\u202f", " ")


def test_unknown_pages_and_mangled_links_are_pages_too(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    browser = signed_in(app, admin.email)
    missing = browser.get("/app/no/such/page")
    assert missing.status_code == 404
    assert "There is no such page" in text(missing)
    assert missing.headers["content-type"].startswith("text/html")
    mangled = browser.get("/app/spends/not-a-uuid")
    assert mangled.status_code == 422
    assert "spend_id" in text(mangled)
    assert mangled.headers["content-type"].startswith("text/html")
