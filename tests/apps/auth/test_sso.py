"""Single sign-on against a real OpenID Connect provider (panva's oidc-provider, from the npm
registry) running on loopback: the whole redirect dance driven by an HTTP client, and every way
a sign-in must fail (wrong audience, wrong nonce, an expired token, an unverified email, a domain
outside the company's, a replayed state or code)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from spendtrackr.apps.auth import sso
from spendtrackr.apps.auth.models import SsoLogin
from tests.factories import PASSWORD, Actor, create_user, login, signup

HERE = Path(__file__).resolve().parents[2] / "oidc"
CLIENT_ID, CLIENT_SECRET = "spendtrackr-test", "provider-secret-for-tests"
DOMAIN = "acme-sso.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def provider(app: FastAPI) -> Iterator[tuple[str, RSAKey]]:
    """The provider's issuer URL and its signing key (the tests mint bad tokens with it)."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") or os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("node is needed for the OpenID provider of these tests")
        pytest.skip("node is not installed")
    npm = shutil.which("npm")
    if npm is not None and not (HERE / "node_modules" / "oidc-provider").exists():
        subprocess.run(  # noqa: S603 - our own lock file, from the npm registry
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "alg": "RS256", "use": "sig"})
    port = _free_port()
    redirect = sso.redirect_uri(app.state.settings.public_url)
    jwks = json.dumps({"keys": [key.as_dict(private=True)]})
    process = subprocess.Popen(  # noqa: S603 - the provider script of these tests
        [node, str(HERE / "provider.mjs"), str(port), redirect, CLIENT_ID, CLIENT_SECRET, jwks],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"the OpenID provider did not start: {output}") from None
            time.sleep(0.1)
    yield issuer, key
    process.terminate()
    process.wait(timeout=10)


def configure(client: TestClient, admin: Actor, issuer: str, **fields: Any) -> Any:
    body = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allowed_domains": [DOMAIN],
        **fields,
    }
    response = client.put("/auth/sso", json=body, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()


def sign_in(client: TestClient, company: str, email: str) -> tuple[Any, str, str]:
    """The browser's part: our start, the provider's login and consent pages, back to our
    callback. Returns our callback's response, and the state and code it was called with."""
    start = client.get(f"/auth/sso/start?company={company}", follow_redirects=False)
    assert start.status_code == 302, start.text
    state, code = through_provider(client, start.headers["location"], email)
    return (
        client.get(f"/auth/sso/callback?state={state}&code={code}", follow_redirects=False),
        state,
        code,
    )


def through_provider(client: TestClient, url: str, email: str) -> tuple[str, str]:
    """The provider's login and consent pages, up to its redirect to our callback: the state
    and code it carries."""
    callback_prefix = sso.redirect_uri(client.app.state.settings.public_url)  # type: ignore[attr-defined]
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        for _ in range(20):
            if url.startswith(callback_prefix):
                break
            page = browser.get(url)
            if page.status_code in (302, 303):
                url = urljoin(url, page.headers["location"])
                continue
            assert page.status_code == 200, page.text
            form = re.search(r'<form[^>]*action="([^"]+)"', page.text)
            assert form is not None, page.text
            fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
            if 'name="login"' in page.text:
                fields.update(login=email, password="any")
            answer = browser.post(urljoin(url, html.unescape(form.group(1))), data=fields)
            assert answer.status_code in (302, 303), answer.text
            url = urljoin(url, answer.headers["location"])
        else:
            raise AssertionError("the provider never sent the browser back")
    query = parse_qs(urlparse(url).query)
    return query["state"][0], query["code"][0]


def test_a_person_signs_in_through_the_provider(
    client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    admin = signup(client)
    shown = configure(client, admin, issuer)
    assert shown["client_id"] == CLIENT_ID
    assert "client_secret" not in shown
    made = client.post(  # an account the person already has, found by email
        "/admin/users",
        json={"email": f"alice@{DOMAIN}", "full_name": "Alice", "role": "employee"},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    answer, _, _ = sign_in(client, admin.company_id, f"alice@{DOMAIN}")
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    me = client.get("/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == f"alice@{DOMAIN}"
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200  # the same kind of session as a password login
    # By email instead of company id.
    again, _, _ = sign_in(
        client, f"someone@{DOMAIN}".replace("someone", "alice"), f"alice@{DOMAIN}"
    )
    assert again.status_code == 200, again.text
    actions = [
        e["action"]
        for e in client.get("/audit-logs?limit=200", headers=admin.headers).json()["items"]
    ]
    assert "sso.configured" in actions
    assert "auth.sso_login" in actions


def test_people_are_created_at_first_sign_in_only_when_allowed(
    client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    admin = signup(client)
    configure(client, admin, issuer)
    email = f"new-{uuid.uuid4().hex[:6]}@{DOMAIN}"
    refused, _, _ = sign_in(client, admin.company_id, email)
    assert (refused.status_code, refused.json()["code"]) == (403, "sso_no_account")
    configure(client, admin, issuer, create_users=True, default_role="manager")
    created, _, _ = sign_in(client, admin.company_id, email)
    assert created.status_code == 200, created.text
    me = client.get(
        "/users/me", headers={"Authorization": f"Bearer {created.json()['access_token']}"}
    )
    assert (me.json()["email"], me.json()["role"]) == (email, "manager")


def test_unverified_emails_and_other_domains_are_refused(
    client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    admin = signup(client)
    configure(client, admin, issuer, create_users=True)
    unverified, _, _ = sign_in(client, admin.company_id, f"unverified-bob@{DOMAIN}")
    assert (unverified.status_code, unverified.json()["code"]) == (403, "email_unverified")
    outsider, _, _ = sign_in(client, admin.company_id, "carol@elsewhere.com")
    assert (outsider.status_code, outsider.json()["code"]) == (403, "domain_not_allowed")


def test_a_state_or_code_works_once(
    client: TestClient, provider: tuple[str, RSAKey], app: FastAPI
) -> None:
    issuer, _ = provider
    admin = signup(client)
    configure(client, admin, issuer, create_users=True)
    first, state, code = sign_in(client, admin.company_id, f"dave@{DOMAIN}")
    assert first.status_code == 200, first.text
    replayed = client.get(f"/auth/sso/callback?state={state}&code={code}")
    assert (replayed.status_code, replayed.json()["code"]) == (400, "invalid_state")
    assert client.get("/auth/sso/callback?state=forged&code=x").json()["code"] == "invalid_state"
    # The code itself, traded again at the provider, is refused there.
    config = sso.SsoConfig(
        company_id=uuid.UUID(admin.company_id), issuer=issuer, client_id=CLIENT_ID
    )
    config.client_secret_enc = sso._seal(app.state.settings.sso_key, CLIENT_SECRET)
    with pytest.raises(sso.AppError) as refused:
        sso._trade(
            config,
            sso.discover(issuer),
            code,
            "x" * 43,
            app.state.settings.public_url,
            app.state.settings.sso_key,
        )
    assert refused.value.code == "sso_code_refused"


def _mint(key: RSAKey, issuer: str, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": issuer,
        "aud": CLIENT_ID,
        "sub": "x",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        "email": f"x@{DOMAIN}",
        "email_verified": True,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": "test-key"}, body, key)


@pytest.mark.parametrize(
    ("claims", "valid"),
    [
        ({}, True),
        ({"aud": "another-client"}, False),
        ({"nonce": "n-2"}, False),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, False),
        ({"iss": "http://127.0.0.1:1"}, False),
        ({"aud": [CLIENT_ID, "other"], "azp": "other"}, False),
    ],
)
def test_id_tokens_are_checked_against_the_providers_keys(
    provider: tuple[str, RSAKey], claims: dict[str, Any], valid: bool
) -> None:
    issuer, key = provider
    keys = sso.key_set(sso.discover(issuer))
    token = _mint(key, issuer, **claims)
    if valid:
        assert (
            sso.validate_id_token(
                token, issuer=issuer, client_id=CLIENT_ID, nonce="n-1", keys=keys
            )["sub"]
            == "x"
        )
        return
    with pytest.raises(sso.InvalidIdToken):
        sso.validate_id_token(token, issuer=issuer, client_id=CLIENT_ID, nonce="n-1", keys=keys)


def test_a_token_signed_by_another_key_is_refused(provider: tuple[str, RSAKey]) -> None:
    issuer, _ = provider
    stranger = RSAKey.generate_key(2048, parameters={"kid": "test-key", "alg": "RS256"})
    with pytest.raises(sso.InvalidIdToken):
        sso.validate_id_token(
            _mint(stranger, issuer),
            issuer=issuer,
            client_id=CLIENT_ID,
            nonce="n-1",
            keys=sso.key_set(sso.discover(issuer)),
        )


def test_sso_required_turns_passwords_off_but_for_admins(
    client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    admin = signup(client)
    employee = create_user(client, admin)
    configure(client, admin, issuer, sso_required=True)
    refused = client.post("/auth/login", json={"email": employee.email, "password": PASSWORD})
    assert (refused.status_code, refused.json()["code"]) == (403, "sso_required")
    assert login(client, admin.email)["access_token"]


def test_a_front_end_gets_a_one_time_code(client: TestClient, provider: tuple[str, RSAKey]) -> None:
    issuer, _ = provider
    admin = signup(client)
    configure(client, admin, issuer, create_users=True, frontend_url="https://app.acme-sso.com/sso")
    answer, _, _ = sign_in(client, admin.company_id, f"erin@{DOMAIN}")
    assert answer.status_code == 302
    target = answer.headers["location"]
    assert target.startswith("https://app.acme-sso.com/sso?code=")
    code = parse_qs(urlparse(target).query)["code"][0]
    traded = client.post("/auth/sso/exchange", json={"code": code})
    assert traded.status_code == 200, traded.text
    assert traded.json()["access_token"]
    again = client.post("/auth/sso/exchange", json={"code": code})
    assert (again.status_code, again.json()["code"]) == (400, "invalid_code")


def test_configuration_is_for_admins_and_checks_the_issuer(
    client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    body = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": "s",
        "allowed_domains": [DOMAIN],
    }
    assert client.put("/auth/sso", json=body, headers=finance.headers).status_code == 403
    down = client.put(
        "/auth/sso", json={**body, "issuer": "http://127.0.0.1:1"}, headers=admin.headers
    )
    assert (down.status_code, down.json()["code"]) == (422, "invalid_issuer")
    assert client.get("/auth/sso", headers=admin.headers).status_code == 404
    unknown = client.get("/auth/sso/start?company=nobody@nowhere.com", follow_redirects=False)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "sso_not_configured")


def test_the_web_app_signs_in_through_the_provider(
    app: FastAPI, client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    admin = signup(client)
    configure(client, admin, issuer, frontend_url="http://testserver/app/sso/done")
    email = f"web-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    made = client.post(
        "/admin/users", json={"email": email, "full_name": "Wendy Web"}, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    browser = TestClient(app, follow_redirects=False)

    start = browser.get(f"/app/sso/start?email={email}")  # the sign-in page's SSO form
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(issuer)
    state, code = through_provider(browser, start.headers["location"], email)
    back = browser.get(f"/auth/sso/callback?state={state}&code={code}")
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith("http://testserver/app/sso/done?code=")
    done = browser.get(back.headers["location"])
    assert done.status_code == 303
    assert done.headers["location"] == "/app"
    page = browser.get("/app/spends")
    assert page.status_code == 200
    assert "Wendy Web" in page.text
    # An email whose company has no SSO is told so on the sign-in page.
    nowhere = browser.get("/app/sso/start?email=someone@no-sso.example")
    assert nowhere.status_code == 404
    assert "Email" in nowhere.text


def test_an_email_finds_its_own_company_when_several_allow_the_domain(
    client: TestClient, provider: tuple[str, RSAKey]
) -> None:
    issuer, _ = provider
    shared = f"shared-{uuid.uuid4().hex[:8]}.example"
    first, second = signup(client), signup(client)
    for admin in (first, second):
        configure(client, admin, issuer, allowed_domains=[shared])
    made = client.post(
        "/admin/users",
        json={"email": f"sam@{shared}", "full_name": "Sam"},
        headers=second.headers,
    )
    assert made.status_code == 201
    mine = client.get(f"/auth/sso/start?company=sam@{shared}", follow_redirects=False)
    assert mine.status_code == 302
    with client.app.state.session_factory() as db:  # type: ignore[attr-defined]
        started = db.scalars(select(SsoLogin.company_id)).all()
    assert uuid.UUID(second.company_id) in started
    assert uuid.UUID(first.company_id) not in started
    stranger = client.get(f"/auth/sso/start?company=new@{shared}", follow_redirects=False)
    assert stranger.status_code == 409
    assert stranger.json()["code"] == "company_required"
    only_one = client.get(f"/auth/sso/start?company=x@{DOMAIN}.invalid", follow_redirects=False)
    assert only_one.status_code == 404
