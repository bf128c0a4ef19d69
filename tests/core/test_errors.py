"""Bad input never gives a 500; errors are `{detail, code}`; every response has a request id and the
security headers; a write whose commit fails is never answered 2xx."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from spendtrackr.apps.catalog.models import Vendor
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser
from spendtrackr.core.config import Settings
from spendtrackr.core.db import SessionDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import Message
from spendtrackr.main import create_app
from tests.conftest import make_settings
from tests.factories import signup


def test_unknown_route_and_method(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found", "code": "not_found"}
    wrong_method = client.put("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": ', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"name=x", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_malformed_bodies_are_4xx(client: TestClient, content: bytes, content_type: str) -> None:
    admin = signup(client)
    response = client.post(
        "/vendors", content=content, headers={**admin.headers, "Content-Type": content_type}
    )
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"name": ["a"]},
        {"name": {"a": 1}},
        {"name": True},
        {"name": "x", "extra": 1},
        {},
    ],
)
def test_wrong_types_and_unknown_fields_are_422(
    client: TestClient, body: dict[str, object]
) -> None:
    admin = signup(client)
    assert client.post("/vendors", json=body, headers=admin.headers).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/spends",
        "/reports/spend-summary?group_by=category",
        "/exports/accounting.csv",
        "/audit-logs",
    ],
)
def test_a_date_range_that_ends_before_it_starts_is_422(client: TestClient, path: str) -> None:
    admin = signup(client)
    joiner = "&" if "?" in path else "?"
    response = client.get(
        f"{path}{joiner}date_from=2026-12-01&date_to=2026-01-01", headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": "date_from is after date_to", "code": "invalid_range"}


def test_oversized_body_is_413(client: TestClient, settings: Settings) -> None:
    admin = signup(client)
    huge = b'{"name": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    declared = client.post(
        "/vendors", content=huge, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(settings.max_body_bytes // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    streamed = client.post(
        "/vendors", content=chunks(), headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.get("/vendors", headers=admin.headers).json()["total"] == 0


def test_request_id_and_security_headers(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "client-supplied-id-123"})
    assert response.headers["x-request-id"] == "client-supplied-id-123"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert generated.headers["x-request-id"] != "bad id\twith junk"
    assert len(generated.headers["x-request-id"]) == 32
    # The docs pages get a CSP of their own: scripts from this origin only, never inline
    # (tests/browser renders them under it).
    for page in ("/docs", "/redoc"):
        docs = client.get(page)
        assert docs.status_code == 200
        assert "script-src 'self';" in docs.headers["content-security-policy"]
        assert "http" not in docs.text.replace("http-equiv", "")  # nothing from elsewhere


def test_cors_only_for_configured_origins(settings: Settings) -> None:
    app = create_app(make_settings(settings.database_url, cors_origins=["https://app.example.com"]))
    with TestClient(app) as cors_client:
        allowed = cors_client.options(
            "/auth/login",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        denied = cors_client.options(
            "/auth/login",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in denied.headers


@pytest.fixture
def faulty_app(settings: Settings) -> FastAPI:
    """The real app plus routes that fail on purpose, on FastAPI's route class and on ours (which
    serializes and commits in the route's thread)."""
    app = create_app(settings)
    public = APIRouter()

    @public.get("/_test/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM user")

    app.include_router(public)
    plain = APIRouter(dependencies=SIGNED_IN)

    @plain.post("/_test/lock-vendor/{vendor_id}")
    def lock_vendor(vendor_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> None:
        session.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        session.execute(select(Vendor.id).where(Vendor.id == vendor_id).with_for_update()).one()

    json_routes = APIRouter(route_class=JSONRoute, dependencies=SIGNED_IN)
    for prefix, router in (("/_test", plain), ("/_test/json", json_routes)):

        @router.post(f"{prefix}/vendor-then-commit-fails", status_code=201)
        def commit_fails(session: SessionDep, actor: AdminUser) -> dict[str, str]:
            session.add(Vendor(company_id=actor.company_id, name="never committed"))

            def fail(_session: Session) -> None:
                raise RuntimeError("disk full")

            event.listen(session, "before_commit", fail, once=True)
            return {"status": "created"}

        @router.post(f"{prefix}/vendor-then-bad-response", response_model=Message, status_code=201)
        def bad_response(session: SessionDep, actor: AdminUser) -> dict[str, int]:
            session.add(Vendor(company_id=actor.company_id, name="never committed"))
            return {"not_a_message": 1}

        app.include_router(router)
    return app


def test_a_row_lock_held_too_long_is_a_409_to_retry(
    faulty_app: FastAPI, client: TestClient, app: FastAPI
) -> None:
    """A real lock wait timeout (MariaDB's error 1205): another transaction holds the row. The
    database is not down, so not a 503: a 409 `lock_timeout` the client may send again."""
    if app.state.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: every transaction takes the database's write lock")
    admin = signup(client)
    vendor = client.post("/vendors", json={"name": "Held"}, headers=admin.headers).json()
    with app.state.engine.connect() as other:
        other.execute(
            select(Vendor.id).where(Vendor.id == uuid.UUID(vendor["id"])).with_for_update()
        ).one()
        try:
            with TestClient(faulty_app, raise_server_exceptions=False) as faulty:
                response = faulty.post(f"/_test/lock-vendor/{vendor['id']}", headers=admin.headers)
        finally:
            other.rollback()
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "lock_timeout"
    assert response.headers["retry-after"] == "1"


def test_unexpected_error_is_a_clean_500_with_request_id(faulty_app: FastAPI) -> None:
    with TestClient(faulty_app, raise_server_exceptions=False) as faulty:
        response = faulty.get("/_test/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("prefix", ["/_test", "/_test/json"])
@pytest.mark.parametrize("route", ["vendor-then-commit-fails", "vendor-then-bad-response"])
def test_failed_commit_or_response_is_never_answered_2xx(
    faulty_app: FastAPI, client: TestClient, app: FastAPI, prefix: str, route: str
) -> None:
    admin = signup(client)
    with TestClient(faulty_app, raise_server_exceptions=False) as faulty:
        response = faulty.post(f"{prefix}/{route}", headers=admin.headers)
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    with Session(app.state.engine) as session:
        assert (
            session.scalars(select(Vendor).where(Vendor.name == "never committed")).first() is None
        )


EVIL = [
    "' OR '1'='1",
    "1; DROP TABLE spend; --",
    "%' UNION SELECT password_hash FROM user --",
    "\\x00",
    "🙂" * 10,
]


def test_sql_metacharacters_in_every_filter_are_data(client: TestClient) -> None:
    """Free-text filters are bound parameters (they match nothing); typed filters refuse them."""
    admin = signup(client)
    for evil in EVIL:
        for name in ("action", "entity_type", "entity_id"):
            response = client.get("/audit-logs", params={name: evil[:64]}, headers=admin.headers)
            assert response.status_code == 200, response.text
            assert response.json()["total"] == 0
        for path, name in (
            ("/spends", "status"),
            ("/spends", "user_id"),
            ("/spends", "category_id"),
            ("/spends", "vendor_id"),
            ("/spends", "date_from"),
            ("/spends", "min_amount"),
            ("/admin/users", "role"),
            ("/admin/users", "is_active"),
            ("/cards", "status"),
            ("/cards", "user_id"),
            ("/approvals", "status"),
            ("/audit-logs", "actor_id"),
            ("/reports/spend-summary", "group_by"),
            ("/exports/accounting.csv", "date_to"),
            ("/notifications", "unread_only"),
        ):
            assert (
                client.get(path, params={name: evil}, headers=admin.headers).status_code == 422
            ), (path, name)
    assert client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/users/me", 401), ("GET", "/nope", 404), ("POST", "/auth/login", 422)],
)
def test_security_headers_on_errors_too(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, json={})
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]
