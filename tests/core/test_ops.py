from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from spendtrackr.core.config import Settings
from spendtrackr.main import create_app
from tests.conftest import make_settings
from tests.factories import signup


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_and_cache(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_degraded_when_redis_is_down_and_api_keeps_serving(settings: Settings) -> None:
    # Nothing listens on port 1: a configured Redis that is down.
    app = create_app(make_settings(settings.database_url, redis_url="redis://127.0.0.1:1/0"))
    with TestClient(app) as down:
        ready = down.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "degraded",
            "checks": {"database": "ok", "redis": "unavailable"},
        }
        admin = signup(down)  # rate limits fail open
        assert (
            down.post("/vendors", json={"name": "still works"}, headers=admin.headers).status_code
            == 201
        )


def test_readyz_503_when_database_is_down(settings: Settings, tmp_path: object) -> None:
    app = create_app(make_settings("mysql+pymysql://nobody@127.0.0.1:1/none"))
    with TestClient(app) as down:
        response = down.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "unavailable"
        failing = down.post("/auth/login", json={"email": "a@example.com", "password": "x" * 12})
        assert failing.status_code == 503
        assert failing.json()["code"] == "database_unavailable"


def test_metrics_need_their_token(client: TestClient, database_url: str) -> None:
    assert client.get("/metrics").status_code == 404  # no token set: not served at all
    app = create_app(make_settings(database_url, metrics_token="scrape-me-please"))
    with TestClient(app) as guarded:
        assert guarded.get("/metrics").status_code == 401
        wrong = guarded.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
        assert ok.status_code == 200


def test_metrics_by_route_template(database_url: str) -> None:
    app = create_app(make_settings(database_url, metrics_token="scrape-me-please"))
    with TestClient(app) as client:
        admin = signup(client)
        client.get(f"/admin/users/{admin.id}", headers=admin.headers)
        text = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"}).text
    assert 'http_requests_total{method="GET",route="/admin/users/{user_id}",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text
    assert admin.id not in text


def test_production_refuses_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None, environment="production", jwt_secret="short")  # type: ignore[call-arg]
    ok = Settings(_env_file=None, environment="production", jwt_secret="x" * 40)  # type: ignore[call-arg]
    assert ok.environment == "production"


def test_openapi_documents_bearer_auth_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert (
        spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"][
            "tokenUrl"
        ]
        == "/auth/token"
    )
    responses = spec["paths"]["/admin/users/{user_id}"]["get"]["responses"]
    assert {"200", "401", "403", "404", "422"} <= set(responses)
