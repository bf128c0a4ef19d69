"""Card decline reasons at the flow level: each reason on its own, and which wins when several
apply (the order the API documents)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from spendtrackr.apps.cards.flows import decline_reason
from spendtrackr.apps.cards.models import Card, CardStatus
from spendtrackr.apps.cards.schemas import AuthorizationRequest
from spendtrackr.apps.policies.engine import Decision
from spendtrackr.apps.users.models import User

FOOD, TRAVEL = uuid.uuid4(), uuid.uuid4()


@dataclass
class Usage:
    """What the card's limits say of the amount: the interval it would exceed, if any."""

    over: str | None = None

    def exceeded(self, _amount: Decimal) -> str | None:
        return self.over


def _reason(
    *,
    status: str = CardStatus.active.value,
    holder: bool = True,
    currency: str = "USD",
    allowed: list[uuid.UUID] | None = None,
    blocked: list[uuid.UUID] | None = None,
    category: uuid.UUID | None = None,
    over: str | None = None,
    outcome: str = "approved",
) -> str | None:
    card = Card(
        status=status,
        currency="USD",
        allowed_categories=[str(c) for c in allowed or []],
        blocked_categories=[str(c) for c in blocked or []],
    )
    body = AuthorizationRequest(
        card_id=uuid.uuid4(),
        amount=Decimal("12.00"),
        currency=currency,
        merchant_name="Cafe",
        category_id=category,
        authorization_id="auth_1",
    )
    usage: Any = Usage(over)
    return decline_reason(
        card,
        User() if holder else None,
        body,
        Decimal("12.00"),
        category,
        Decision(outcome=outcome),  # type: ignore[arg-type]
        usage,
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({}, None),
        ({"status": CardStatus.frozen.value}, "card_frozen"),
        ({"status": CardStatus.cancelled.value}, "card_cancelled"),
        ({"holder": False}, "cardholder_inactive"),
        ({"currency": "EUR"}, "currency_mismatch"),
        ({"allowed": [TRAVEL], "category": FOOD}, "category_blocked"),
        ({"allowed": [TRAVEL]}, "category_blocked"),  # an unknown category is not allowed
        ({"allowed": [TRAVEL], "category": TRAVEL}, None),
        ({"blocked": [FOOD], "category": FOOD}, "category_blocked"),
        ({"blocked": [FOOD]}, None),
        ({"over": "daily"}, "spending_limit_exceeded:daily"),
        ({"outcome": "blocked"}, "policy_blocked"),
        ({"outcome": "pending"}, None),  # a purchase needing review is approved, then reviewed
    ],
)
def test_each_reason(case: dict[str, Any], expected: str | None) -> None:
    assert _reason(**case) == expected


def test_the_first_reason_wins() -> None:
    everything: dict[str, Any] = {
        "status": CardStatus.frozen.value,
        "holder": False,
        "currency": "EUR",
        "blocked": [FOOD],
        "category": FOOD,
        "over": "monthly",
        "outcome": "blocked",
    }
    order = ["card_frozen", "cardholder_inactive", "currency_mismatch", "category_blocked"]
    removals = [("status", CardStatus.active.value), ("holder", True), ("currency", "USD")]
    assert _reason(**everything) == order[0]
    for (key, value), expected in zip(removals, order[1:], strict=True):
        everything[key] = value
        assert _reason(**everything) == expected
    everything["blocked"] = []
    assert _reason(**everything) == "spending_limit_exceeded:monthly"
    everything["over"] = None
    assert _reason(**everything) == "policy_blocked"
