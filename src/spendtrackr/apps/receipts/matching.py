"""Which card purchase a receipt uploaded on its own belongs to: a pure function of what the
receipt says and the holder's card spends that have no receipt yet.

A candidate must be in the receipt's currency (when it names one), dated within `DAYS` of the
receipt's date (when it has one), and charged between `AMOUNT_BELOW` under and the capture
tolerance over the receipt's total (a tip is added after the receipt is printed). Among those,
one is chosen when it stands out: the only one, or the only one at the exact amount, or one whose
merchant name is clearly closer to the receipt's vendor than the next. Otherwise the receipt
stays unmatched and the candidates are listed for a person to choose.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from difflib import SequenceMatcher

DAYS = 3
AMOUNT_BELOW = Decimal("0.02")  # 2% under the receipt's total
CLEARLY_CLOSER = 0.25  # how much more alike a merchant name must be to win
_NOISE = re.compile(r"[^a-z0-9 ]+")
_WORDS_OF_NO_ACCOUNT = frozenset({"inc", "llc", "ltd", "gmbh", "sa", "sarl", "the", "co", "corp"})


@dataclass(frozen=True, slots=True)
class Candidate:
    spend_id: uuid.UUID
    amount: Decimal
    currency: str
    spend_date: date
    merchant: str


@dataclass(frozen=True, slots=True)
class Read:
    """What the receipt says (any of it may be missing)."""

    total: Decimal | None
    currency: str | None
    day: date | None
    vendor: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    matched: uuid.UUID | None
    candidates: tuple[uuid.UUID, ...]  # when not matched: the plausible ones, best first


def normalize(name: str) -> str:
    words = _NOISE.sub(" ", name.lower()).split()
    return " ".join(w for w in words if w not in _WORDS_OF_NO_ACCOUNT)


def likeness(a: str, b: str) -> float:
    """0..1: how alike two merchant names are (one inside the other counts as alike)."""
    x, y = normalize(a), normalize(b)
    if not x or not y:
        return 0.0
    if x in y or y in x:
        return 1.0
    return SequenceMatcher(None, x, y).ratio()


def match(read: Read, candidates: Sequence[Candidate], *, tip: Decimal) -> Outcome:
    """The candidate the receipt belongs to, if one stands out (`tip`: the fraction a capture
    may exceed the receipt's total by)."""
    if read.total is None:
        return Outcome(None, ())
    total = read.total
    plausible = []
    for c in candidates:
        if read.currency is not None and c.currency != read.currency:
            continue
        if read.day is not None and abs((c.spend_date - read.day).days) > DAYS:
            continue
        if not total * (1 - AMOUNT_BELOW) <= c.amount <= total * (1 + tip):
            continue
        alike = likeness(read.vendor, c.merchant) if read.vendor else 0.0
        distance = abs((c.spend_date - read.day).days) if read.day else DAYS
        plausible.append((c.amount == total, alike, -distance, c.spend_id))
    plausible.sort(reverse=True)
    ranked = tuple(p[3] for p in plausible)
    if not plausible:
        return Outcome(None, ())
    if len(plausible) == 1:
        return Outcome(ranked[0], ())
    best, second = plausible[0], plausible[1]
    if best[0] and not second[0]:
        return Outcome(best[3], ())  # the only one at the exact amount
    if best[0] == second[0] and best[1] - second[1] >= CLEARLY_CLOSER:
        return Outcome(best[3], ())
    return Outcome(None, ranked)
