"""The files a bank takes: a SEPA credit transfer (ISO 20022 pain.001.001.09, written by `sepaxml`
and checked against its schema) and a NACHA ACH file of PPD credits (94-character records, as the
NACHA Operating Rules lay them out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sepaxml import SepaTransfer

SEPA_SCHEMA = "pain.001.001.09"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One line of a batch, with the account it goes to (decrypted for the file only)."""

    reference: str  # the line's id: the end-to-end id the bank reports back
    name: str
    amount: Decimal  # in the batch's currency
    account: str  # an IBAN, or a US account number
    bic: str | None = None
    routing_number: str | None = None
    savings: bool = False


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_exact())


def sepa_credit_transfer(
    *,
    debtor: dict[str, str | None],
    execution_date: date,
    batch_id: str,
    transfers: Sequence[Transfer],
) -> bytes:
    """A pain.001.001.09 document, one payment information block for the batch."""
    config = {
        "name": debtor["name"],
        "IBAN": debtor["iban"],
        "BIC": debtor.get("bic") or None,
        "batch": True,
        "currency": "EUR",
    }
    if config["BIC"] is None:
        del config["BIC"]
    sepa = SepaTransfer(config, schema=SEPA_SCHEMA, clean=True)
    for t in transfers:
        payment = {
            "name": t.name,
            "IBAN": t.account,
            "amount": cents(t.amount),
            "execution_date": execution_date,
            "description": f"Expense reimbursement {batch_id[:8]}",
            "endtoend_id": t.reference.replace("-", "")[:35],
        }
        if t.bic:
            payment["BIC"] = t.bic
        sepa.add_payment(payment)
    out: bytes = sepa.export(validate=True)
    return out


# --- NACHA ----------------------------------------------------------------------------------------

RECORD = 94
BLOCKING = 10
CHECKING_CREDIT, SAVINGS_CREDIT = "22", "32"
CREDITS_ONLY = "220"


def _alpha(value: str, width: int) -> str:
    """Alphanumeric fields: upper case, left-justified, blank-filled, cut to the width."""
    clean = "".join(c if 32 <= ord(c) < 127 else " " for c in value.upper())
    return clean[:width].ljust(width)


def _num(value: int | str, width: int) -> str:
    """Numeric fields: right-justified, zero-filled."""
    text = str(value)
    if len(text) > width or not text.isdigit():
        raise ValueError(f"{text!r} does not fit a numeric field of {width}")
    return text.rjust(width, "0")


def nacha_ppd(
    *,
    originator: dict[str, str],
    execution_date: date,
    created: datetime,
    transfers: Sequence[Transfer],
    file_id_modifier: str = "A",
) -> bytes:
    """An ACH file: one PPD batch of credits to the employees' accounts, balanced totals and
    hashes, padded with 9s to a multiple of ten records."""
    odfi = originator["routing_number"]
    company_id = originator["company_id"]
    records = [
        "1"
        + "01"
        + " "
        + odfi
        + " "
        + odfi
        + created.strftime("%y%m%d")
        + created.strftime("%H%M")
        + file_id_modifier
        + "094"
        + _num(BLOCKING, 2)
        + "1"
        + _alpha(originator["bank_name"], 23)
        + _alpha(originator["company_name"], 23)
        + _alpha("", 8),
        "5"
        + CREDITS_ONLY
        + _alpha(originator["company_name"], 16)
        + _alpha("", 20)
        + _alpha(company_id, 10)
        + "PPD"
        + _alpha("EXPENSES", 10)
        + execution_date.strftime("%y%m%d")
        + execution_date.strftime("%y%m%d")
        + "   "
        + "1"
        + odfi[:8]
        + _num(1, 7),
    ]
    entry_hash = 0
    total = 0
    for sequence, t in enumerate(transfers, start=1):
        assert t.routing_number is not None
        amount = cents(t.amount)
        total += amount
        entry_hash += int(t.routing_number[:8])
        records.append(
            "6"
            + (SAVINGS_CREDIT if t.savings else CHECKING_CREDIT)
            + t.routing_number[:8]
            + t.routing_number[8]
            + _alpha(t.account, 17)
            + _num(amount, 10)
            + _alpha(t.reference.replace("-", "")[:15], 15)
            + _alpha(t.name, 22)
            + "  "
            + "0"
            + odfi[:8]
            + _num(sequence, 7)
        )
    hash_10 = _num(entry_hash % 10**10, 10)
    count = len(transfers)
    records.append(
        "8"
        + CREDITS_ONLY
        + _num(count, 6)
        + hash_10
        + _num(0, 12)
        + _num(total, 12)
        + _alpha(company_id, 10)
        + _alpha("", 19)
        + _alpha("", 6)
        + odfi[:8]
        + _num(1, 7)
    )
    blocks = math.ceil((len(records) + 1) / BLOCKING)
    records.append(
        "9"
        + _num(1, 6)
        + _num(blocks, 6)
        + _num(count, 8)
        + hash_10
        + _num(0, 12)
        + _num(total, 12)
        + _alpha("", 39)
    )
    while len(records) % BLOCKING:
        records.append("9" * RECORD)
    assert all(len(r) == RECORD for r in records)
    return ("\r\n".join(records) + "\r\n").encode("ascii")


def aba_valid(routing: str) -> bool:
    """The ABA routing number's check digit (weights 3, 7, 1)."""
    if len(routing) != 9 or not routing.isdigit():
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(routing, weights, strict=True)) % 10 == 0
