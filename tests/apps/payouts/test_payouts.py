"""Reimbursement payouts: bank details checked (IBAN/BIC by schwifty, the ABA check digit) and
sealed at rest; SEPA batches whose pain.001 file the official XSD accepts (lxml); NACHA files
whose fields sit where the NACHA rules put them; spends reimbursed only when paid, freed when
returned; and never in two batches, even when batches are made at once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sepaxml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from spendtrackr.apps.payouts.models import BankAccount
from tests.factories import Actor, create_user, signup, submit_spend

XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
IBANS = ("DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300")


def bank(client: TestClient, actor: Actor, **body: Any) -> httpx.Response:
    return client.put(
        "/users/me/bank-account", json={"holder_name": "Émile Zoë", **body}, headers=actor.headers
    )


def eur_company(client: TestClient) -> tuple[Actor, Actor]:
    admin = signup(client, base_currency="EUR")
    finance = create_user(client, admin, role="finance")
    response = client.put(
        "/payouts/settings",
        json={
            "sepa": {"name": "Acme GmbH", "iban": "DE02120300000000202051", "bic": "BYLADEM1001"}
        },
        headers=finance.headers,
    )
    assert response.status_code == 200, response.text
    return admin, finance


def eur_spend(client: TestClient, actor: Actor, amount: str) -> dict[str, Any]:
    return submit_spend(client, actor, amount, currency="EUR")


# --- bank details -------------------------------------------------------------------------------


def test_bank_details_are_checked_masked_and_sealed(client: TestClient, app: FastAPI) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    saved = bank(client, employee, iban="DE89 3704 0044 0532 0130 00")
    assert saved.status_code == 200, saved.text
    assert saved.json()["account"] == "****3000"
    assert (saved.json()["country"], saved.json()["bic"]) == ("DE", "COBADEFFXXX")  # derived
    assert client.get("/users/me/bank-account", headers=employee.headers).json()["kind"] == "iban"
    with Session(app.state.engine) as session:
        row = session.scalars(
            select(BankAccount).where(BankAccount.user_id == uuid.UUID(employee.id))
        ).one()
        assert "0532013000" not in row.number_enc  # sealed, not stored as given
    us = bank(client, employee, routing_number="021000021", account_number="000123456789")
    assert us.status_code == 200, us.text
    assert (us.json()["kind"], us.json()["account"]) == ("us", "****6789")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"iban": "DE89370400440532013001"}, "invalid_iban"),
        ({"iban": "XX00"}, "invalid_iban"),
        ({"iban": "DE89370400440532013000", "bic": "NOTABIC"}, "invalid_bic"),
        ({"routing_number": "021000022", "account_number": "1234"}, "invalid_routing_number"),
        ({"routing_number": "02100002", "account_number": "1234"}, "validation_error"),
        ({"routing_number": "021000021"}, "validation_error"),
        ({"iban": "DE89370400440532013000", "account_number": "1234"}, "validation_error"),
        ({}, "validation_error"),
    ],
)
def test_bad_bank_details_are_refused(client: TestClient, body: dict[str, Any], code: str) -> None:
    admin = signup(client)
    response = bank(client, admin, **body)
    assert (response.status_code, response.json()["code"]) == (422, code)
    assert client.get("/users/me/bank-account", headers=admin.headers).status_code == 404


# --- SEPA ----------------------------------------------------------------------------------------


def test_a_sepa_batch_pays_each_employee_once_and_validates(client: TestClient) -> None:
    admin, finance = eur_company(client)
    anna, ben, cleo = (create_user(client, admin) for _ in range(3))
    assert bank(client, anna, iban=IBANS[0]).status_code == 200
    assert bank(client, ben, iban=IBANS[1], bic="BNPAFRPP").status_code == 200
    # cleo has no account: skipped
    a1, a2 = eur_spend(client, anna, "12.50"), eur_spend(client, anna, "7.25")
    b1 = eur_spend(client, ben, "100.00")
    eur_spend(client, cleo, "5.00")
    eur_spend(client, finance, "9.99")  # the batch maker's own: left for another's batch

    created = client.post("/payouts", json={"method": "sepa"}, headers=finance.headers)
    assert created.status_code == 201, created.text
    payout = created.json()
    assert payout["total"] == "119.75"
    assert sorted((line["amount"], len(line["spend_ids"])) for line in payout["lines"]) == [
        ("100.00", 1),
        ("19.75", 2),
    ]
    assert [(s["user_id"], s["reason"]) for s in payout["skipped"]] == [
        (cleo.id, "no_bank_account")
    ]

    file = client.get(payout["file_url"], headers=finance.headers)
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("application/xml")
    document = etree.fromstring(file.content)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(document), schema.error_log
    assert document.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert document.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "119.75"
    assert document.findtext(".//p:Dbtr/p:Nm", namespaces=NS) == "Acme GmbH"
    creditors = sorted(x.text for x in document.iterfind(".//p:CdtrAcct//p:IBAN", namespaces=NS))
    assert creditors == sorted(IBANS[:2])
    assert "Emile Zoe" in file.text  # transliterated to the SEPA character set

    # In a batch: not reimbursed by hand, not in a second batch.
    by_hand = client.post(f"/spends/{a1['id']}/reimburse", headers=admin.headers)
    assert (by_hand.status_code, by_hand.json()["code"]) == (409, "in_payout")
    again = client.post("/payouts", json={"method": "sepa"}, headers=finance.headers)
    assert (again.status_code, again.json()["code"]) == (422, "nothing_to_pay")
    # Reimbursed only once paid; the ledger settles the payable from cash then.
    assert client.get(f"/spends/{b1['id']}", headers=admin.headers).json()["status"] == "approved"
    paid = client.post(f"/payouts/{payout['id']}/paid", headers=finance.headers)
    assert paid.status_code == 200, paid.text
    assert {line["status"] for line in paid.json()["lines"]} == {"paid"}
    for spend in (a1, a2, b1):
        assert client.get(f"/spends/{spend['id']}", headers=admin.headers).json()["status"] == (
            "reimbursed"
        )
    lines = client.get("/ledger-lines?limit=200", headers=finance.headers).json()["items"]
    settled = [x for x in lines if x["spend_id"] == b1["id"] and x["kind"] == "reimbursement"]
    assert sorted((x["account"], x["debit"], x["credit"]) for x in settled) == [
        ("1000", "0.00", "100.00"),
        ("2000", "100.00", "0.00"),
    ]
    twice = client.post(f"/payouts/{payout['id']}/paid", headers=finance.headers)
    assert (twice.status_code, twice.json()["code"]) == (409, "payout_settled")


def test_a_returned_line_frees_its_spends_for_the_next_batch(client: TestClient) -> None:
    admin, finance = eur_company(client)
    anna, ben = create_user(client, admin), create_user(client, admin)
    bank(client, anna, iban=IBANS[0])
    bank(client, ben, iban=IBANS[2])
    eur_spend(client, anna, "10.00")
    ben_spend = eur_spend(client, ben, "20.00")
    payout = client.post("/payouts", json={"method": "sepa"}, headers=finance.headers).json()
    (ben_line,) = [x for x in payout["lines"] if x["user_id"] == ben.id]
    returned = client.post(
        f"/payouts/{payout['id']}/lines/{ben_line['id']}/return",
        json={"reason": "AC04 account closed"},
        headers=finance.headers,
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["total"] == "10.00"
    again = client.post(
        f"/payouts/{payout['id']}/lines/{ben_line['id']}/return",
        json={"reason": "x"},
        headers=finance.headers,
    )
    assert (again.status_code, again.json()["code"]) == (409, "line_settled")
    file = client.get(f"/payouts/{payout['id']}/file", headers=finance.headers)
    assert IBANS[2] not in file.text
    client.post(f"/payouts/{payout['id']}/paid", headers=finance.headers)
    assert client.get(f"/spends/{ben_spend['id']}", headers=admin.headers).json()["status"] == (
        "approved"
    )
    bank(client, ben, iban=IBANS[1])
    next_batch = client.post("/payouts", json={"method": "sepa"}, headers=finance.headers).json()
    assert [line["spend_ids"] for line in next_batch["lines"]] == [[ben_spend["id"]]]


def test_batches_need_the_right_currency_and_a_paying_account(client: TestClient) -> None:
    usd = signup(client)
    finance = create_user(client, usd, role="finance")
    sepa = client.post("/payouts", json={"method": "sepa"}, headers=finance.headers)
    assert (sepa.status_code, sepa.json()["code"]) == (422, "currency_not_supported")
    ach = client.post("/payouts", json={"method": "nacha"}, headers=finance.headers)
    assert (ach.status_code, ach.json()["code"]) == (422, "payout_account_missing")
    employee = create_user(client, usd)
    assert (
        client.post("/payouts", json={"method": "nacha"}, headers=employee.headers).status_code
        == 403
    )
    assert client.get("/payouts", headers=employee.headers).status_code == 403


# --- NACHA ---------------------------------------------------------------------------------------


def test_a_nacha_file_puts_every_field_where_the_rules_say(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    settings = client.put(
        "/payouts/settings",
        json={
            "ach": {
                "company_name": "Acme Inc",
                "company_id": "1234567890",
                "routing_number": "011000015",
                "bank_name": "Federal Reserve Bank",
            }
        },
        headers=finance.headers,
    )
    assert settings.status_code == 200, settings.text
    dana, eli = create_user(client, admin), create_user(client, admin)
    bank(
        client,
        dana,
        routing_number="021000021",
        account_number="123456789",
        account_type="checking",
    )
    bank(client, eli, routing_number="122105155", account_number="99887766", account_type="savings")
    submit_spend(client, dana, "1234.56")
    submit_spend(client, eli, "0.99")
    payout = client.post(
        "/payouts",
        json={"method": "nacha", "execution_date": "2026-12-10"},
        headers=finance.headers,
    ).json()
    body = client.get(payout["file_url"], headers=finance.headers).content.decode("ascii")
    records = body.split("\r\n")[:-1]
    assert all(len(r) == 94 for r in records)
    assert len(records) % 10 == 0  # blocked by ten
    kinds = "".join(r[0] for r in records)
    assert kinds.rstrip("9").startswith("15668")
    assert kinds[5] == "9"
    header, batch = records[:2]
    # File header (positions are 1-based in the rules, slices 0-based here).
    assert header[1:3] == "01"
    assert header[3:13] == " 011000015"  # immediate destination
    assert header[34:37] == "094"  # record size
    assert header[37:39] == "10"  # blocking factor
    assert header[40:63].rstrip() == "FEDERAL RESERVE BANK"
    # Batch header.
    assert batch[1:4] == "220"  # credits only
    assert batch[4:20].rstrip() == "ACME INC"
    assert batch[40:50] == "1234567890"
    assert batch[50:53] == "PPD"
    assert batch[69:75] == "261210"  # effective entry date YYMMDD
    assert batch[79:87] == "01100001"  # ODFI
    by_account = {r[12:29].rstrip(): r for r in records if r[0] == "6"}
    dana_entry, eli_entry = by_account["123456789"], by_account["99887766"]
    assert dana_entry[1:3] == "22"  # checking credit
    assert eli_entry[1:3] == "32"  # savings credit
    assert (dana_entry[3:11], dana_entry[11]) == ("02100002", "1")  # RDFI and check digit
    assert dana_entry[29:39] == "0000123456"  # $1,234.56 in cents
    assert eli_entry[29:39] == "0000000099"
    assert dana_entry[78] == "0"  # no addenda
    assert dana_entry[79:87] == "01100001"  # trace number: ODFI + sequence
    control = next(r for r in records if r[0] == "8")
    assert control[4:10] == "000002"  # entries
    assert control[10:20] == str(2100002 + 12210515).rjust(10, "0")  # entry hash
    assert control[20:32] == "0" * 12  # debits
    assert control[32:44] == "000000123555"  # credits
    file_control = next(r for r in records if r[0] == "9" and r != "9" * 94)
    assert file_control[1:7] == "000001"  # batches
    assert file_control[7:13] == "000001"  # blocks
    assert file_control[13:21] == "00000002"
    assert file_control[31:43] == "0" * 12
    assert file_control[43:55] == "000000123555"


# --- never twice ---------------------------------------------------------------------------------


def test_concurrent_batches_never_take_a_spend_twice(client: TestClient, live_server: str) -> None:
    admin, finance = eur_company(client)
    makers = [create_user(client, admin, role="finance") for _ in range(3)] + [finance]
    employees = [create_user(client, admin) for _ in range(6)]
    spend_ids = []
    for i, employee in enumerate(employees):
        bank(client, employee, iban=IBANS[i % 3])
        spend_ids += [eur_spend(client, employee, f"{i + 1}.00")["id"] for _ in range(3)]

    def attempt(i: int) -> dict[str, Any]:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            response = http.post(
                "/payouts", json={"method": "sepa"}, headers=makers[i % len(makers)].headers
            )
            assert response.status_code in (201, 422), response.text
            return dict(response.json())

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(8)))
    taken = [
        sid for r in results if "lines" in r for line in r["lines"] for sid in line["spend_ids"]
    ]
    assert sorted(taken) == sorted(spend_ids)  # every spend once, none twice
    total = sum(Decimal(r["total"]) for r in results if "lines" in r)
    assert total == sum(Decimal(i + 1) * 3 for i in range(6))
