"""Receipts uploaded without a spend: the matcher on a table of real-looking receipts, the whole
path through the API (read, matched, or left with its candidates and matched by hand), and the
reminder for card purchases still without a receipt."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.receipts import flows
from spendtrackr.apps.receipts.matching import Candidate, Read, match
from tests.conftest import Clock
from tests.factories import Actor, authorize, create_user, issue_card, signup, webhook_secret
from tests.receipts import pdf_receipt

TIP = Decimal("0.20")
DAY = date(2026, 11, 20)
A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))


def cand(
    spend_id: uuid.UUID, amount: str, merchant: str, days: int = 0, currency: str = "USD"
) -> Candidate:
    return Candidate(spend_id, Decimal(amount), currency, DAY + timedelta(days=days), merchant)


@pytest.mark.parametrize(
    ("receipt", "candidates", "matched", "listed"),
    [
        # The one purchase that fits.
        (
            Read(Decimal("8.37"), "USD", DAY, "Blue Bottle Coffee"),
            [cand(A, "8.37", "BLUE BOTTLE COFFEE #0042"), cand(B, "40.00", "Shell Oil 5741")],
            A,
            (),
        ),
        # A tip added after the receipt was printed.
        (
            Read(Decimal("54.10"), "USD", DAY, "Chez Panisse"),
            [cand(A, "62.00", "CHEZ PANISSE BERKELEY")],
            A,
            (),
        ),
        # Beyond the tip tolerance: not this one.
        (
            Read(Decimal("54.10"), "USD", DAY, "Chez Panisse"),
            [cand(A, "70.00", "CHEZ PANISSE BERKELEY")],
            None,
            (),
        ),
        # Posted two days after the receipt's date (hotels, weekends).
        (
            Read(Decimal("412.80"), "USD", DAY, "Marriott Downtown"),
            [cand(A, "412.80", "MARRIOTT SF DOWNTOWN", days=2)],
            A,
            (),
        ),
        # Too far apart in time.
        (
            Read(Decimal("412.80"), "USD", DAY, "Marriott"),
            [cand(A, "412.80", "MARRIOTT", days=5)],
            None,
            (),
        ),
        # Another currency than the receipt's.
        (
            Read(Decimal("25.00"), "EUR", DAY, "Deutsche Bahn"),
            [cand(A, "25.00", "DB BAHN", currency="USD")],
            None,
            (),
        ),
        # Two at the same amount: the merchant decides when it is clearly closer.
        (
            Read(Decimal("12.00"), "USD", DAY, "Uber Trip"),
            [cand(A, "12.00", "UBER *TRIP HELP.UBER.COM"), cand(B, "12.00", "Lyft Ride")],
            A,
            (),
        ),
        # Two alike merchants, same amount, same day: a person chooses.
        (
            Read(Decimal("4.50"), "USD", DAY, "Starbucks"),
            [cand(A, "4.50", "STARBUCKS #1234"), cand(B, "4.50", "STARBUCKS #9876", days=1)],
            None,
            (A, B),
        ),
        # The exact amount wins over a close one.
        (
            Read(Decimal("30.00"), "USD", DAY, "Amazon"),
            [cand(A, "31.50", "AMAZON MKTPLACE"), cand(B, "30.00", "AMAZON.COM")],
            B,
            (),
        ),
        # No total read: nothing to match on.
        (Read(None, None, DAY, "Walgreens"), [cand(A, "9.99", "WALGREENS #77")], None, ()),
        # No date read: the amount and currency still find the only one.
        (Read(Decimal("19.99"), "USD", None, None), [cand(A, "19.99", "NETFLIX.COM")], A, ()),
        # Nothing at all.
        (Read(Decimal("19.99"), "USD", DAY, "Spotify"), [], None, ()),
    ],
)
def test_the_matcher_on_real_looking_receipts(
    receipt: Read, candidates: list[Candidate], matched: uuid.UUID | None, listed: tuple[Any, ...]
) -> None:
    outcome = match(receipt, candidates, tip=TIP)
    assert outcome.matched == matched
    assert outcome.candidates == listed


# --- through the API ------------------------------------------------------------------------------


def upload_alone(client: TestClient, actor: Actor, data: bytes | None = None) -> dict[str, Any]:
    response = client.post(
        "/receipts",
        files={"file": ("r.pdf", data or pdf_receipt(), "application/pdf")},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["spend_id"] is None
    return dict(client.get(f"/receipts/{response.json()['id']}", headers=actor.headers).json())


@pytest.fixture
def card_holder(client: TestClient, clock: Clock) -> tuple[Actor, Actor, dict[str, str], Any]:
    clock.now = datetime(2026, 11, 20, 15, tzinfo=UTC)  # the day on the test receipt
    admin = signup(client)
    holder = create_user(client, admin)
    secret = webhook_secret(client, admin)
    return admin, holder, secret, issue_card(client, admin, holder)


def test_a_receipt_uploaded_alone_finds_its_card_purchase(
    client: TestClient, card_holder: tuple[Actor, Actor, dict[str, str], Any]
) -> None:
    admin, holder, secret, card = card_holder
    coffee = authorize(client, secret, card["id"], "8.37", merchant_name="BLUE BOTTLE COFFEE #42")
    authorize(client, secret, card["id"], "40.00", merchant_name="Shell Oil")
    receipt = upload_alone(client, holder)
    assert (receipt["ocr_status"], receipt["match_status"]) == ("done", "matched")
    assert receipt["spend_id"] == coffee["spend_id"]
    assert receipt["verified"] is True
    spend = client.get(f"/spends/{coffee['spend_id']}", headers=holder.headers).json()
    assert [r["id"] for r in spend["receipts"]] == [receipt["id"]]
    assert spend["tax_amount"] == "0.62"  # read off the receipt too
    assert client.get("/receipts?unmatched=true", headers=holder.headers).json()["total"] == 0
    actions = [
        e["action"]
        for e in client.get(f"/audit-logs?entity_id={receipt['id']}", headers=admin.headers).json()[
            "items"
        ]
    ]
    assert "receipt.matched" in actions


def test_an_ambiguous_receipt_waits_with_its_candidates(
    client: TestClient, card_holder: tuple[Actor, Actor, dict[str, str], Any]
) -> None:
    admin, holder, secret, card = card_holder
    first = authorize(client, secret, card["id"], "8.37", merchant_name="Blue Bottle Coffee")
    second = authorize(client, secret, card["id"], "8.37", merchant_name="Blue Bottle Coffee SF")
    receipt = upload_alone(client, holder)
    assert (receipt["match_status"], receipt["spend_id"]) == ("ambiguous", None)
    assert sorted(receipt["candidates"]) == sorted([first["spend_id"], second["spend_id"]])
    waiting = client.get("/receipts?unmatched=true", headers=holder.headers).json()["items"]
    assert [r["id"] for r in waiting] == [receipt["id"]]
    notices = client.get("/notifications", headers=holder.headers).json()["items"]
    assert "receipt.unmatched" in [n["kind"] for n in notices]

    other = create_user(client, admin)
    assert client.get(f"/receipts/{receipt['id']}", headers=other.headers).status_code == 404
    theirs = client.post(
        f"/receipts/{receipt['id']}/match",
        json={"spend_id": first["spend_id"]},
        headers=other.headers,
    )
    assert theirs.status_code == 404
    matched = client.post(
        f"/receipts/{receipt['id']}/match",
        json={"spend_id": second["spend_id"]},
        headers=holder.headers,
    )
    assert matched.status_code == 200, matched.text
    assert (matched.json()["spend_id"], matched.json()["match_status"]) == (
        second["spend_id"],
        "matched",
    )
    assert matched.json()["verified"] is True
    again = client.post(
        f"/receipts/{receipt['id']}/match",
        json={"spend_id": first["spend_id"]},
        headers=holder.headers,
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_matched")


def test_a_receipt_is_matched_only_to_its_uploaders_spends(
    client: TestClient, card_holder: tuple[Actor, Actor, dict[str, str], Any]
) -> None:
    admin, holder, secret, card = card_holder
    authorize(client, secret, card["id"], "8.37", merchant_name="Blue Bottle Coffee")
    finance = create_user(client, admin, role="finance")
    receipt = upload_alone(client, finance)  # finance has no card purchase of its own
    assert (receipt["match_status"], receipt["candidates"]) == ("unmatched", [])
    holder_spend = client.get("/spends", headers=holder.headers).json()["items"][0]
    refused = client.post(
        f"/receipts/{receipt['id']}/match",
        json={"spend_id": holder_spend["id"]},
        headers=finance.headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "not_uploader_spend")


def test_card_purchases_without_a_receipt_remind_their_holder_once(
    client: TestClient, app: FastAPI, card_holder: tuple[Actor, Actor, dict[str, str], Any]
) -> None:
    _, holder, secret, card = card_holder
    lonely = authorize(client, secret, card["id"], "15.00", merchant_name="Parking")
    kept = authorize(client, secret, card["id"], "8.37", merchant_name="Blue Bottle Coffee")
    upload_alone(client, holder)  # matches the coffee
    factory, settings = app.state.session_factory, app.state.settings
    later = datetime.now(UTC) + timedelta(days=settings.receipt_reminder_days, hours=1)
    assert flows.remind_missing_receipts(factory, settings=settings, now=later) >= 1
    notices = client.get("/notifications", headers=holder.headers).json()["items"]
    reminded = [n for n in notices if n["kind"] == "receipt.missing"]
    assert [n["entity_id"] for n in reminded] == [lonely["spend_id"]]
    assert kept["spend_id"] not in [n["entity_id"] for n in reminded]
    flows.remind_missing_receipts(factory, settings=settings, now=later)
    notices = client.get("/notifications", headers=holder.headers).json()["items"]
    assert len([n for n in notices if n["kind"] == "receipt.missing"]) == 1  # once
