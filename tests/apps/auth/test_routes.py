from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.core.config import Settings
from spendtrackr.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, create_user, login, signup, unique_email


def test_signup_creates_company_and_admin(client: TestClient) -> None:
    email = unique_email("Founder").upper()
    response = client.post(
        "/auth/signup",
        json={
            "company_name": "Globex",
            "email": email,
            "password": PASSWORD,
            "full_name": "Hank",
            "base_currency": "eur",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["company"]["name"] == "Globex"
    assert body["company"]["base_currency"] == "EUR"
    assert body["user"]["role"] == "admin"
    assert body["user"]["email"] == email.lower()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    me = client.get("/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["company_id"] == body["company"]["id"]


def test_one_person_signs_up_two_companies_and_chooses_at_login(client: TestClient) -> None:
    """Signup says nothing about accounts elsewhere; a person in two companies picks one."""
    admin = signup(client)
    response = client.post(
        "/auth/signup",
        json={
            "company_name": "Second Co",
            "email": admin.email,
            "password": PASSWORD,
            "full_name": "X",
        },
    )
    assert response.status_code == 201, response.text
    second = response.json()["company"]["id"]
    both = client.post("/auth/login", json={"email": admin.email, "password": PASSWORD})
    assert both.status_code == 409
    assert both.json()["code"] == "company_required"
    assert {c["id"] for c in both.json()["companies"]} == {admin.company_id, second}
    chosen = client.post(
        "/auth/login", json={"email": admin.email, "password": PASSWORD, "company": second}
    )
    assert chosen.status_code == 200
    me = client.get(
        "/users/me", headers={"Authorization": f"Bearer {chosen.json()['access_token']}"}
    )
    assert me.json()["company_id"] == second


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "short"),
        ("email", "not-an-email"),
        ("base_currency", "XYZ"),
        ("company_name", ""),
    ],
)
def test_signup_rejects_bad_fields(client: TestClient, field: str, value: str) -> None:
    body = {"company_name": "Co", "email": unique_email(), "password": PASSWORD, "full_name": "N"}
    body[field] = value
    response = client.post("/auth/signup", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert "input" not in response.json()["detail"][0]  # a password is never echoed back


def test_login_wrong_password_and_unknown_email_answer_the_same(client: TestClient) -> None:
    admin = signup(client)
    wrong = client.post("/auth/login", json={"email": admin.email, "password": "wrong password!!"})
    unknown = client.post(
        "/auth/login", json={"email": unique_email(), "password": "wrong password!!"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"detail": "Invalid email or password", "code": "invalid_credentials"}
    )


def test_failed_login_is_audited_although_the_request_fails(client: TestClient) -> None:
    admin = signup(client)
    client.post("/auth/login", json={"email": admin.email, "password": "wrong password!!"})
    entries = client.get("/audit-logs?action=auth.login_failed", headers=admin.headers).json()
    assert entries["total"] == 1
    assert entries["items"][0]["entity_id"] == admin.id


def test_oauth2_token_form_login(client: TestClient) -> None:
    admin = signup(client)
    response = client.post("/auth/token", data={"username": admin.email, "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert (
        client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["id"]
        == admin.id
    )


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient) -> None:
    admin = signup(client)
    first = client.post("/auth/refresh", json={"refresh_token": admin.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != admin.refresh_token
    # the spent token presented again: the whole session dies
    reuse = client.post("/auth/refresh", json={"refresh_token": admin.refresh_token})
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh_token_reused"
    # ... including the legitimately rotated tokens issued in that session
    assert (
        client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]}).status_code
        == 401
    )
    headers = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert client.get("/users/me", headers=headers).status_code == 401
    # another session of the same user is untouched
    other = login(client, admin.email)
    assert (
        client.get(
            "/users/me", headers={"Authorization": f"Bearer {other['access_token']}"}
        ).status_code
        == 200
    )
    # and the revocation was recorded although the reuse request failed
    entries = client.get(
        "/audit-logs?action=auth.refresh_token_reused",
        headers={"Authorization": f"Bearer {other['access_token']}"},
    ).json()
    assert entries["total"] == 1


def test_refresh_with_unknown_token(client: TestClient) -> None:
    response = client.post("/auth/refresh", json={"refresh_token": "nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


def test_logout_revokes_access_and_refresh(client: TestClient) -> None:
    admin = signup(client)
    assert (
        client.post("/auth/logout", json={"refresh_token": admin.refresh_token}).status_code == 204
    )
    assert client.get("/users/me", headers=admin.headers).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": admin.refresh_token}).status_code == 401
    )
    # logging out again, or with garbage, answers the same
    assert (
        client.post("/auth/logout", json={"refresh_token": admin.refresh_token}).status_code == 204
    )
    assert client.post("/auth/logout", json={"refresh_token": "garbage"}).status_code == 204


def test_invite_flow(client: TestClient) -> None:
    admin = signup(client)
    email = unique_email("invitee")
    created = client.post(
        "/admin/users",
        json={"email": email, "full_name": "Ivy", "role": "manager"},
        headers=admin.headers,
    )
    assert created.status_code == 201
    token = created.json()["invite_token"]
    assert token
    # cannot log in before accepting
    assert (
        client.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401
    )
    accepted = client.post("/auth/accept-invite", json={"token": token, "password": PASSWORD})
    assert accepted.status_code == 200
    me = client.get(
        "/users/me", headers={"Authorization": f"Bearer {accepted.json()['access_token']}"}
    )
    assert me.json()["role"] == "manager"
    assert login(client, email)["access_token"]
    # one-time
    again = client.post("/auth/accept-invite", json={"token": token, "password": PASSWORD})
    assert again.status_code == 404
    assert again.json()["code"] == "invalid_invite"
    # the invite token is never shown again
    assert (
        "invite_token"
        not in client.get(f"/admin/users/{created.json()['id']}", headers=admin.headers).json()
    )


def test_me_update_name_and_password(client: TestClient) -> None:
    admin = signup(client)
    other_session = login(client, admin.email)
    renamed = client.patch("/users/me", json={"full_name": "Ada L."}, headers=admin.headers)
    assert renamed.status_code == 200
    assert renamed.json()["full_name"] == "Ada L."
    empty = client.patch("/users/me", json={}, headers=admin.headers)
    assert empty.status_code == 422, empty.text
    assert empty.json() == {"detail": "Nothing to update", "code": "empty_update"}

    wrong = client.patch(
        "/users/me",
        json={"current_password": "not my password", "new_password": "a brand new password"},
        headers=admin.headers,
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_current_password"

    changed = client.patch(
        "/users/me",
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=admin.headers,
    )
    assert changed.status_code == 200
    # this session lives on, the other one is revoked (access and refresh)
    assert client.get("/users/me", headers=admin.headers).status_code == 200
    assert (
        client.get(
            "/users/me", headers={"Authorization": f"Bearer {other_session['access_token']}"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
        ).status_code
        == 401
    )
    assert (
        client.post("/auth/login", json={"email": admin.email, "password": PASSWORD}).status_code
        == 401
    )
    assert login(client, admin.email, "a brand new password")


def test_me_refuses_server_owned_fields(client: TestClient) -> None:
    admin = signup(client)
    response = client.patch("/users/me", json={"role": "admin"}, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"


# --- JWT attacks -----------------------------------------------------------------------------


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _forge(claims: dict[str, object], key: str, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_missing_token_is_401_with_www_authenticate(client: TestClient) -> None:
    response = client.get("/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "mutation",
    ["expired", "wrong_audience", "wrong_issuer", "wrong_signature", "alg_none", "garbage"],
)
def test_forged_or_stale_tokens_are_rejected(
    client: TestClient, settings: Settings, mutation: str
) -> None:
    admin = signup(client)
    claims = _claims(admin.access_token)
    key = settings.jwt_secret.get_secret_value()
    if mutation == "expired":
        claims["exp"] = int(time.time()) - 10
        token = _forge(claims, key)
    elif mutation == "wrong_audience":
        claims["aud"] = "someone-else"
        token = _forge(claims, key)
    elif mutation == "wrong_issuer":
        claims["iss"] = "evil"
        token = _forge(claims, key)
    elif mutation == "wrong_signature":
        token = _forge(claims, "another-secret-of-sufficient-length-123")
    elif mutation == "alg_none":
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    else:
        token = "not.a.jwt"
    response = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_that_worked_is_refused_once_it_expires(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verified tokens are remembered by the process; the expiry must still be applied to them.
    admin = signup(client)
    claims = _claims(admin.access_token)
    claims["exp"] = int(time.time()) + 30
    token = _forge(claims, settings.jwt_secret.get_secret_value())
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/users/me", headers=headers).status_code == 200
    assert client.get("/users/me", headers=headers).status_code == 200
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_token_of_deleted_user_stops_working_at_once(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    assert client.get("/users/me", headers=employee.headers).status_code == 200
    assert client.delete(f"/admin/users/{employee.id}", headers=admin.headers).status_code == 200
    assert client.get("/users/me", headers=employee.headers).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": employee.refresh_token}).status_code
        == 401
    )
    deactivated = client.post("/auth/login", json={"email": employee.email, "password": PASSWORD})
    assert deactivated.status_code == 401


def test_token_claiming_another_company_is_rejected(client: TestClient, settings: Settings) -> None:
    admin = signup(client)
    other = signup(client)
    claims = _claims(admin.access_token)
    claims["company_id"] = other.company_id
    token = _forge(claims, settings.jwt_secret.get_secret_value())
    assert (
        client.get("/companies/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_role_change_takes_effect_immediately(client: TestClient) -> None:
    admin = signup(client)
    promoted = create_user(client, admin, role="admin")
    assert client.get("/admin/users", headers=promoted.headers).status_code == 200
    client.patch(f"/admin/users/{promoted.id}", json={"role": "employee"}, headers=admin.headers)
    assert client.get("/admin/users", headers=promoted.headers).status_code == 401


# --- rate limits ----------------------------------------------------------------------------


@pytest.fixture
def strict_app(settings: Settings) -> FastAPI:
    strict = make_settings(
        settings.database_url,
        rate_limit_login_email="3/minute",
        rate_limit_login_ip="100000/minute",
        rate_limit_signup_ip="2/minute",
    )
    return create_app(strict)


def test_login_rate_limit_per_email_answers_429_with_headers(
    client: TestClient, strict_app: FastAPI
) -> None:
    admin = signup(client)
    with TestClient(strict_app) as strict:
        for _ in range(3):
            assert (
                strict.post(
                    "/auth/login", json={"email": admin.email, "password": "wrong password!"}
                ).status_code
                == 401
            )
        limited = strict.post("/auth/login", json={"email": admin.email, "password": PASSWORD})
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["ratelimit-policy"] == '"login-email";q=3;w=60'
        assert limited.headers["ratelimit"].startswith('"login-email";r=0;t=')
        # another email from the same client is not limited
        assert (
            strict.post(
                "/auth/login", json={"email": unique_email(), "password": PASSWORD}
            ).status_code
            == 401
        )


def test_signup_rate_limit_per_ip(strict_app: FastAPI) -> None:
    with TestClient(
        strict_app, client=(f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 5000)
    ) as strict:
        statuses = [
            strict.post(
                "/auth/signup",
                json={
                    "company_name": "Co",
                    "email": unique_email(),
                    "password": PASSWORD,
                    "full_name": "N",
                },
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [201, 201, 429]


def test_api_rate_limit_per_user(settings: Settings) -> None:
    app = create_app(make_settings(settings.database_url, rate_limit_api_user="2/minute"))
    with TestClient(app) as limited_client:
        admin = signup(limited_client)
        assert limited_client.get("/users/me", headers=admin.headers).status_code == 200
        assert limited_client.get("/users/me", headers=admin.headers).status_code == 200
        third = limited_client.get("/users/me", headers=admin.headers)
        assert third.status_code == 429
        assert third.headers["ratelimit-policy"] == '"api";q=2;w=60'


def test_access_token_lifetime_matches_settings(client: TestClient) -> None:
    admin = signup(client)
    claims = _claims(admin.access_token)
    issued = datetime.fromtimestamp(int(claims["iat"]), UTC)  # type: ignore[arg-type]
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)  # type: ignore[arg-type]
    assert expires - issued == timedelta(minutes=15)
    assert {"sub", "company_id", "role", "iat", "exp", "jti", "iss", "aud"} <= set(claims)
