"""Outbound webhooks over real HTTP: signed as Standard Webhooks specifies (checked with the
`standardwebhooks` package's own verifier), retried on a schedule, disabled when retries run
out, with the secret rotated under an overlap, and refused for private destinations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from spendtrackr.apps.webhooks import flows
from spendtrackr.apps.webhooks.models import WebhookEndpoint
from spendtrackr.core.config import Settings
from spendtrackr.core.db import utcnow
from tests.apps.webhooks.conftest import Receiver, factory
from tests.factories import Actor, create_user, signup, submit_spend


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=1.0, follow_redirects=False, trust_env=False) as client:
        yield client


def create_endpoint(
    client: TestClient, admin: Actor, url: str, types: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "ERP"}
    if types is not None:
        body["event_types"] = types
    response = client.post("/webhook-endpoints", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def run(
    app: FastAPI,
    admin: Actor,
    settings: Settings,
    http: httpx.Client,
    now: datetime | None = None,
) -> int:
    """One worker turn, for `admin`'s company only."""
    only(app, admin)
    return flows.work_once(factory(app), settings=settings, client=http, now=now)


def only(app: FastAPI, admin: Actor) -> None:
    """A worker serves every company: endpoints other tests left (the contract fuzzer creates
    some) are turned off, so that what it sends is this test's alone."""
    with factory(app).begin() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.company_id != uuid.UUID(admin.company_id))
            .values(enabled=False)
        )


def deliveries(client: TestClient, admin: Actor, endpoint_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/webhook-endpoints/{endpoint_id}/deliveries", headers=admin.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_an_approved_spend_reaches_the_endpoint_signed(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    worker_settings: Settings,
    http: httpx.Client,
) -> None:
    endpoint = create_endpoint(client, admin, receiver.url, ["spend.created", "spend.approved"])
    assert endpoint["secret"].startswith("whsec_")
    assert (
        "secret"
        not in client.get(f"/webhook-endpoints/{endpoint['id']}", headers=admin.headers).json()
    )
    employee = create_user(client, admin)
    spend = submit_spend(client, employee, amount="42.00")
    assert spend["status"] == "approved"

    assert run(app, admin, worker_settings, http) == 2
    receiver.wait_for(2)
    verifier = Webhook(endpoint["secret"])
    payloads = [verifier.verify(r.body, r.headers) for r in receiver.requests]
    by_type = {p["type"]: p for p in payloads}
    assert set(by_type) == {"spend.created", "spend.approved"}
    approved = by_type["spend.approved"]
    assert approved["data"]["object"] == "spend"
    assert approved["data"]["id"] == spend["id"]
    assert by_type["spend.created"]["sequence"] < approved["sequence"]
    request = next(r for r in receiver.requests if json.loads(r.body)["type"] == "spend.approved")
    assert request.path == "/hooks/spendtrackr"
    assert request.headers["webhook-id"] == "msg_" + approved["id"].replace("-", "")
    assert request.headers["host"].startswith("localhost:")
    # a body changed on the way no longer verifies
    with pytest.raises(WebhookVerificationError):
        verifier.verify(request.body.replace(b"spend", b"spent"), request.headers)

    listed = deliveries(client, admin, endpoint["id"])
    assert {(d["event_type"], d["status"], d["attempts"]) for d in listed} == {
        ("spend.created", "succeeded", 1),
        ("spend.approved", "succeeded", 1),
    }
    attempt = listed[0]["attempt_log"][0]
    assert attempt["status_code"] == 204
    assert attempt["latency_ms"] >= 0
    assert run(app, admin, worker_settings, http) == 0  # nothing is sent twice


def test_failures_are_retried_on_the_schedule_until_the_receiver_recovers(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    worker_settings: Settings,
    http: httpx.Client,
) -> None:
    endpoint = create_endpoint(client, admin, receiver.url, ["user.created"])
    receiver.status = 500
    create_user(client, admin)
    now = utcnow()
    assert run(app, admin, worker_settings, http, now) == 1
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        1,
        500,
    )
    assert delivery["last_error"] == "HTTP 500"
    assert run(app, admin, worker_settings, http, now + timedelta(seconds=2)) == 0  # not due yet

    receiver.hang_seconds = 3  # longer than the worker's 1 s timeout
    assert run(app, admin, worker_settings, http, now + timedelta(seconds=6)) == 1
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["attempts"], delivery["last_status_code"]) == (2, None)
    assert delivery["last_error"] == "timed out"

    receiver.hang_seconds, receiver.status = 0, 200
    assert run(app, admin, worker_settings, http, now + timedelta(minutes=6)) == 1
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 3)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, None, 200]
    # the same event each time: one id, one body
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1


def test_retries_running_out_disable_the_endpoint_and_tell_the_admins(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    worker_settings: Settings,
    http: httpx.Client,
) -> None:
    endpoint = create_endpoint(client, admin, receiver.url, ["user.created"])
    receiver.status = 503
    create_user(client, admin)
    now = utcnow()
    for wait in (timedelta(0), *flows.RETRY.waits):
        now += wait + timedelta(seconds=1)
        assert run(app, admin, worker_settings, http, now) == 1
    assert flows.RETRY.span > timedelta(days=2, hours=23)
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 10)
    disabled = client.get(f"/webhook-endpoints/{endpoint['id']}", headers=admin.headers).json()
    assert disabled["enabled"] is False
    assert "three days" in disabled["disabled_reason"]
    kinds = [n["kind"] for n in client.get("/notifications", headers=admin.headers).json()["items"]]
    assert "webhook_endpoint.disabled" in kinds

    # An admin turns it back on and asks for the failed delivery again.
    receiver.status = 200
    enabled = client.patch(
        f"/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=admin.headers
    )
    assert enabled.json()["disabled_reason"] is None
    retried = client.post(f"/webhook-deliveries/{delivery['id']}/retry", headers=admin.headers)
    assert retried.status_code == 202
    assert retried.json()["status"] == "pending"
    assert run(app, admin, worker_settings, http) == 1
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 11)


def test_a_rotated_secret_signs_alongside_the_old_one_until_the_overlap_ends(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    worker_settings: Settings,
    http: httpx.Client,
) -> None:
    endpoint = create_endpoint(client, admin, receiver.url, ["user.created"])
    rotated = client.post(
        f"/webhook-endpoints/{endpoint['id']}/rotate-secret",
        json={"previous_expires_in_seconds": 3600},
        headers=admin.headers,
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["secret"]
    assert new != endpoint["secret"]
    create_user(client, admin)
    run(app, admin, worker_settings, http)
    receiver.wait_for(1)
    first = receiver.requests[0]
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(first.body, first.headers)
    Webhook(new).verify(first.body, first.headers)

    # After the overlap, only the new secret signs.
    create_user(client, admin)
    run(app, admin, worker_settings, http, utcnow() + timedelta(hours=2))
    receiver.wait_for(2)
    second = receiver.requests[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(second.body, second.headers)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8080/hook", "url_not_allowed"),
        ("http://10.0.0.5/hook", "url_not_allowed"),
        ("http://169.254.169.254/latest/meta-data", "url_not_allowed"),
        ("http://[::1]/hook", "url_not_allowed"),
        ("ftp://example.com/hook", "validation_error"),
        ("https://user:pass@example.com/hook", "validation_error"),
        ("not a url", "validation_error"),
    ],
)
def test_destinations_that_are_not_public_http_are_refused(
    client: TestClient, admin: Actor, url: str, code: str
) -> None:
    response = client.post("/webhook-endpoints", json={"url": url}, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


def test_a_name_resolving_to_loopback_fails_at_send_time(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    settings: Settings,
    http: httpx.Client,
) -> None:
    """Without WEBHOOK_ALLOW_PRIVATE the worker resolves the name, sees loopback, and sends
    nothing: the attempt records why."""
    endpoint = create_endpoint(client, admin, receiver.url, ["user.created"])
    create_user(client, admin)
    assert run(app, admin, settings, http) == 1
    assert receiver.requests == []
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert delivery["status"] == "pending"
    assert "private, loopback or link-local" in delivery["last_error"]


def test_endpoints_are_the_admins_and_the_companys_own(
    client: TestClient, admin: Actor, receiver: Receiver
) -> None:
    endpoint = create_endpoint(client, admin, receiver.url)
    assert endpoint["event_types"] == ["*"]
    for role in ("employee", "manager", "finance"):
        someone = create_user(client, admin, role=role)
        assert client.get("/webhook-endpoints", headers=someone.headers).status_code == 403
        assert (
            client.post(
                "/webhook-endpoints", json={"url": receiver.url}, headers=someone.headers
            ).status_code
            == 403
        )
    other = signup(client)
    for method, path in (
        ("GET", f"/webhook-endpoints/{endpoint['id']}"),
        ("PATCH", f"/webhook-endpoints/{endpoint['id']}"),
        ("DELETE", f"/webhook-endpoints/{endpoint['id']}"),
        ("GET", f"/webhook-endpoints/{endpoint['id']}/deliveries"),
        ("POST", f"/webhook-endpoints/{endpoint['id']}/rotate-secret"),
    ):
        kwargs: dict[str, Any] = {"json": {}} if method in ("PATCH", "POST") else {}
        response = client.request(method, path, headers=other.headers, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    unknown = client.post(
        "/webhook-endpoints",
        json={"url": receiver.url, "event_types": ["spend.exploded"]},
        headers=admin.headers,
    )
    assert unknown.status_code == 422
    assert "spend.exploded" in unknown.text
    assert (
        client.delete(f"/webhook-endpoints/{endpoint['id']}", headers=admin.headers).status_code
        == 204
    )
    assert client.get("/webhook-endpoints", headers=admin.headers).json()["total"] == 0


def test_a_worker_killed_mid_delivery_loses_nothing(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    settings: Settings,
    worker_settings: Settings,
    http: httpx.Client,
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`spendtrackr worker` is killed (SIGKILL) while the receiver holds its request: the
    delivery stays claimed until its lease ends, then the next worker sends it again."""
    endpoint = create_endpoint(client, admin, receiver.url, ["user.created"])
    create_user(client, admin)
    receiver.hang_seconds = 30
    env = {
        **os.environ,
        "JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "60",
        "LOG_LEVEL": "WARNING",
    }
    only(app, admin)
    worker = subprocess.Popen(  # noqa: S603 (our own command)
        [str(Path(sys.executable).parent / "spendtrackr"), "worker", "--poll", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.arrived.wait(30), "the worker never sent"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)
    claimed_until = datetime.fromisoformat(delivery["next_attempt_at"])
    assert claimed_until > utcnow()  # under the dead worker's lease

    receiver.hang_seconds = 0
    assert run(app, admin, worker_settings, http, utcnow()) == 0  # the lease still holds
    assert run(app, admin, worker_settings, http, claimed_until + timedelta(seconds=1)) == 1
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)
    # sent twice, as one message: the receiver tells the repeat by its id
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]


def test_a_secret_that_cannot_be_read_is_never_sent_unsigned(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    worker_settings: Settings,
    http: httpx.Client,
) -> None:
    endpoint = create_endpoint(client, admin, receiver.url, ["user.created"])
    create_user(client, admin)
    other_key = worker_settings.model_copy(
        update={"webhook_secret_key": SecretStr("another-key-than-the-one-that-sealed-it")}
    )
    assert run(app, admin, other_key, http) == 1
    assert receiver.requests == []
    (delivery,) = deliveries(client, admin, endpoint["id"])
    assert "rotate it" in delivery["last_error"]
