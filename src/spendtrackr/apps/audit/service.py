"""The audit log: every state change in the product records one entry here, in the same transaction.

Entries are staged by `record()` and appended just before the transaction commits (a `before_commit`
hook), after the transaction's other writes are flushed: the company's chain head is locked only
for that last moment (read the head, insert the entries, update the head, commit), not for the
whole request, and the chain stays a single line per company under any number of writers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from spendtrackr.apps.audit.models import AuditChainHead, AuditLog
from spendtrackr.core.db import force_index, id_param, plain, utcnow
from spendtrackr.core.pagination import Listed, SyncParams, listing
from spendtrackr.core.schemas import DateRange

GENESIS_HASH = "0" * 64
_PENDING = "audit_pending"


@dataclass(frozen=True, slots=True)
class _Staged:
    company_id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str | None
    metadata: dict[str, Any]
    # The entity itself when it declares `__audit_digest__`: held here, since the session's
    # identity map keeps it only while someone else does, and its state at commit is digested.
    entity: Any = None


_ACTOR_LABELS = "audit.actor_labels"


def label_actor(session: Session, actor_id: uuid.UUID, label: str) -> None:
    """Entries this session records for `actor_id` name it `label` (`metadata.actor`): an API
    key acts under its own id, which no user has."""
    session.info.setdefault(_ACTOR_LABELS, {})[actor_id] = label


def record(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str | None,
    metadata: dict[str, Any] | None = None,
    entity: Any = None,
) -> None:
    """Stage one audit entry; it is written with the transaction's commit or not at all. An
    entity that declares `__audit_digest__` has those fields digested into the entry then."""
    label = session.info.get(_ACTOR_LABELS, {}).get(actor_id)
    if label is not None:
        metadata = {**(metadata or {}), "actor": label}
    session.info.setdefault(_PENDING, []).append(
        _Staged(
            company_id=company_id,
            actor_id=actor_id,
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            metadata=_jsonable(metadata or {}),
            entity=entity if hasattr(entity, "__audit_digest__") else None,
        )
    )


def record_change(
    session: Session,
    entity: Any,
    action: str,
    *,
    actor_id: uuid.UUID | None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Stage an audit entry about `entity`, a model that declares `__audit_entity__` (its type in
    the log): the company and id come from it (`__audit_company__` names the company's column
    when it is not `company_id`)."""
    record(
        session,
        company_id=getattr(entity, getattr(entity, "__audit_company__", "company_id")),
        actor_id=actor_id,
        action=action,
        entity_type=entity.__audit_entity__,
        entity_id=entity.id,
        metadata=metadata,
        entity=entity,
    )


# What JSON has no type for, written as its text: exact numbers, ids and times.
_AS_TEXT = (Decimal, uuid.UUID, datetime, date)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, _AS_TEXT):
        return str(value)
    return value


def _json_default(value: Any) -> Any:
    # The encoder's fallback, as `_jsonable` reads each value: text, or a set as a list.
    if isinstance(value, _AS_TEXT):
        return str(value)
    if isinstance(value, set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Built once: `json.dumps` with any option builds a new encoder on every call.
_DIGEST_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_json_default)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _comparable(value: Any) -> Any:
    # As read back from any database: 480.0000 is 480, a timestamp is UTC to the microsecond.
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return value


def digest(values: dict[str, Any]) -> str:
    """A fingerprint of an entity's money fields, as an entry records it."""
    comparable = {name: _comparable(value) for name, value in values.items()}
    body = _DIGEST_JSON.encode(comparable)
    return hashlib.sha256(body.encode()).hexdigest()


def entity_digest(entity: Any) -> str:
    return digest({name: getattr(entity, name) for name in entity.__audit_digest__})


# The columns that an entry's hash covers, in the order `canonical` reads them.
_HASHED = (
    AuditLog.id,
    AuditLog.company_id,
    AuditLog.seq,
    AuditLog.actor_id,
    AuditLog.action,
    AuditLog.entity_type,
    AuditLog.entity_id,
    AuditLog.meta.label("meta"),
    AuditLog.created_at,
)


def canonical(entry: Any) -> bytes:
    """The entry as canonical JSON; `entry` is an AuditLog or a row of the `_HASHED` columns."""
    body = {
        "id": str(entry.id),
        "company_id": str(entry.company_id),
        "seq": entry.seq,
        "actor_id": None if entry.actor_id is None else str(entry.actor_id),
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "metadata": entry.meta,
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
    }
    return _CANONICAL_JSON.encode(body).encode()


def chain_hash(prev_hash: str, entry: Any) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


# Built once, executed with parameters: every write's commit (and every list's total) runs them.
# See core/db.py.
_HEAD_SEQ = select(AuditChainHead.seq).where(AuditChainHead.company_id == id_param("company_id"))
_LOCK_HEAD = (
    select(AuditChainHead.seq, AuditChainHead.last_hash)
    .where(AuditChainHead.company_id == id_param("company_id"))
    .with_for_update()
)
# (An UPDATE's own parameters may not be named after its table's columns.)
_MOVE_HEAD = (
    update(AuditChainHead)
    .where(AuditChainHead.company_id == id_param("head"))
    .values(seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
)


def append_staged(session: Session) -> None:
    """Before the commit: the staged entries join their company's chain, under its head's lock."""
    if session.in_nested_transaction():
        return  # a savepoint is released; the entries wait for the real commit
    staged: list[_Staged] = session.info.pop(_PENDING, [])
    if not staged:
        return
    # Everything else the transaction writes goes out now, before the head is locked: under the
    # lock there remain only the head read, the entries, the head update and the commit.
    session.flush()
    by_company: dict[uuid.UUID, list[_Staged]] = {}
    for item in staged:
        by_company.setdefault(item.company_id, []).append(item)
    # Lock heads in a fixed order so two transactions touching two companies cannot deadlock.
    # Plain statements, no ORM objects: this runs in every write's commit, and the unit of work
    # would add a second flush for rows that are never read back.
    connection = plain(session)  # flushed above
    for company_id in sorted(by_company, key=str):
        head = connection.execute(_LOCK_HEAD, {"company_id": company_id}).one_or_none()
        seq, last_hash = (0, GENESIS_HASH) if head is None else (head.seq, head.last_hash)
        now = utcnow()
        rows = []
        for item in by_company[company_id]:
            seq += 1
            entry = _Entry(
                id=uuid.uuid4(),
                company_id=company_id,
                seq=seq,
                actor_id=item.actor_id,
                action=item.action,
                entity_type=item.entity_type,
                entity_id=item.entity_id,
                meta=_with_digest(item),
                created_at=now,
            )
            row, last_hash = _linked(last_hash, entry)
            rows.append(row)
        connection.execute(_APPEND, rows)
        if head is None:
            # The first entry of a company is written by the transaction that creates it, so no
            # other writer can race this insert.
            session.execute(
                insert(AuditChainHead).values(company_id=company_id, seq=seq, last_hash=last_hash)
            )
        else:
            connection.execute(
                _MOVE_HEAD, {"head": company_id, "new_seq": seq, "new_hash": last_hash}
            )


def _with_digest(item: _Staged) -> dict[str, Any]:
    """The entry's metadata, with the digest of its entity's state at commit when it has one."""
    if item.entity is None:
        return item.metadata
    return {**item.metadata, "digest": entity_digest(item.entity)}


class _Entry(NamedTuple):
    """An entry's hashed fields, as `canonical` reads them."""

    id: uuid.UUID
    company_id: uuid.UUID
    seq: int
    actor_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str | None
    meta: dict[str, Any]
    created_at: datetime


def _linked(prev_hash: str, entry: _Entry) -> tuple[dict[str, Any], str]:
    """The `audit_log` row of `entry` chained after `prev_hash`, and its hash."""
    digest = chain_hash(prev_hash, entry)
    row = entry._asdict()
    row["metadata"] = row.pop("meta")  # the column's name (reserved on ORM classes)
    return {**row, "prev_hash": prev_hash, "hash": digest}, digest


_AUDIT_LOG = cast(Table, AuditLog.__table__)
_APPEND = insert(_AUDIT_LOG)


def drop_staged(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended: after a commit the list is already empty; after a
    # rollback its entries describe changes that never happened. (Savepoints do not count: stage
    # an entry only once the savepoint that makes its change has been released.)
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def head_seq(session: Session, *, company_id: uuid.UUID) -> int:
    """How many entries the company's chain holds: it moves with every change in the company."""
    seq = plain(session).scalar(_HEAD_SEQ, {"company_id": company_id})
    return seq or 0


@dataclass(frozen=True, slots=True)
class AuditFilters:
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    actor_id: uuid.UUID | None = None
    dates: DateRange = field(default_factory=DateRange)


def _filtered(company_id: uuid.UUID, filters: AuditFilters) -> Select[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.company_id == company_id)
    if filters.action:
        stmt = stmt.where(AuditLog.action == filters.action)
    if filters.entity_type:
        stmt = stmt.where(AuditLog.entity_type == filters.entity_type)
    if filters.entity_id:
        stmt = stmt.where(AuditLog.entity_id == filters.entity_id)
    if filters.actor_id:
        stmt = stmt.where(AuditLog.actor_id == filters.actor_id)
    if (starts_at := filters.dates.starts_at()) is not None:
        stmt = stmt.where(AuditLog.created_at >= starts_at)
    if (ends_before := filters.dates.ends_before()) is not None:
        stmt = stmt.where(AuditLog.created_at < ends_before)
    return stmt


def list_entries(
    session: Session, *, company_id: uuid.UUID, filters: AuditFilters, page: SyncParams
) -> Listed:
    """Newest first, or by cursor in the order they were written (entries never change:
    `created_at` is when)."""
    stmt = _filtered(company_id, filters).order_by(AuditLog.seq.desc())
    return listing(session, stmt, page, updated=AuditLog.created_at, ident=AuditLog.id)


@dataclass(frozen=True, slots=True)
class Verification:
    valid: bool
    checked: int
    first_invalid_id: uuid.UUID | None


# The company's entries from a position on, in order. MariaDB otherwise reads this by the
# company alone (`ref`) and skips the entries before the position one by one: every batch of a
# verification, every poll of the event feed and every fill of a webhook outbox cost as much as
# the chain was long (docs/DESIGN.md).
CHAIN_ORDER = "uq_audit_log_company_id_seq"


def verify_chain(session: Session, *, company_id: uuid.UUID, batch: int = 2000) -> Verification:
    """Walk the company's chain in order, recomputing every hash; stream in batches by seq."""
    prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    while True:
        rows = list(
            session.execute(
                force_index(
                    select(*_HASHED, AuditLog.prev_hash, AuditLog.hash)
                    .where(AuditLog.company_id == company_id, AuditLog.seq >= expected_seq)
                    .order_by(AuditLog.seq)
                    .limit(batch),
                    AuditLog,
                    CHAIN_ORDER,
                )
            )
        )
        if not rows:
            break
        for entry in rows:
            checked += 1
            if (
                entry.seq != expected_seq
                or entry.prev_hash != prev
                or chain_hash(prev, entry) != entry.hash
            ):
                return Verification(valid=False, checked=checked, first_invalid_id=entry.id)
            prev = entry.hash
            expected_seq += 1
    head = session.get(AuditChainHead, company_id)
    if head is not None and (head.seq != expected_seq - 1 or head.last_hash != prev):
        # Entries at the end were removed (or the head was forged).
        return Verification(valid=False, checked=checked, first_invalid_id=None)
    return Verification(valid=True, checked=checked, first_invalid_id=None)


@dataclass
class BulkChain:
    """A company's chain extended in memory, for a bulk load that writes its entries with plain
    INSERTs and then moves the head (`seq`, `prev`) itself: each entry linked to the last."""

    company_id: uuid.UUID
    seq: int
    prev: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def append(
        self,
        action: str,
        entity_type: str,
        entity_id: Any,
        actor_id: Any,
        meta: dict[str, Any],
        at: datetime,
    ) -> None:
        self.seq += 1
        entry = _Entry(
            id=uuid.uuid4(),
            company_id=self.company_id,
            seq=self.seq,
            actor_id=actor_id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            meta=meta,
            created_at=at,
        )
        row, self.prev = _linked(self.prev, entry)
        self.rows.append(row)

    def take(self) -> list[dict[str, Any]]:
        rows, self.rows = self.rows, []
        return rows


# --- anchors ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Anchor:
    """A company's chain head, to be kept outside the database: whoever can rewrite the whole
    tail of the log (entries and head together) cannot change an entry at or before `seq`
    without the anchored hash no longer matching."""

    company_id: uuid.UUID
    seq: int
    hash: str


def anchors(session: Session, *, company_id: uuid.UUID | None = None) -> list[Anchor]:
    stmt = select(AuditChainHead).order_by(AuditChainHead.company_id)
    if company_id is not None:
        stmt = stmt.where(AuditChainHead.company_id == company_id)
    return [Anchor(h.company_id, h.seq, h.last_hash) for h in session.scalars(stmt)]


def anchor_holds(session: Session, anchor: Anchor) -> bool:
    """The entry at the anchored position still carries the anchored hash. With a valid chain
    this proves every entry up to it is as it was when the anchor was taken."""
    stored = session.scalar(
        select(AuditLog.hash).where(
            AuditLog.company_id == anchor.company_id, AuditLog.seq == anchor.seq
        )
    )
    return stored == anchor.hash


# --- deep verification ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mismatch:
    entity_type: str
    entity_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeepVerification:
    checked: int
    mismatches: list[Mismatch]


def last_digests(
    session: Session, *, company_id: uuid.UUID, entity_type: str, actions: tuple[str, ...] = ()
) -> dict[str, str]:
    """The digest the latest entry recorded for each entity of a type (entries in chain order;
    with `actions`, only those actions' entries)."""
    stmt = select(AuditLog.entity_id, AuditLog.meta).where(
        AuditLog.company_id == company_id, AuditLog.entity_type == entity_type
    )
    if actions:
        stmt = stmt.where(AuditLog.action.in_(actions))
    found: dict[str, str] = {}
    for entity_id, meta in session.execute(stmt.order_by(AuditLog.seq)).yield_per(5000):
        value = (meta or {}).get("digest")
        if entity_id is not None and value is not None:
            found[entity_id] = value
    return found


def compare(
    entity_type: str, current: Iterator[tuple[str, str]], recorded: dict[str, str]
) -> DeepVerification:
    """Current digests of entities against the last ones the log recorded."""
    checked = 0
    mismatches = []
    for entity_id, value in current:
        checked += 1
        last = recorded.get(entity_id)
        if last is None:
            mismatches.append(Mismatch(entity_type, entity_id, "no audit entry records it"))
        elif last != value:
            mismatches.append(
                Mismatch(entity_type, entity_id, "changed since its last audit entry")
            )
    return DeepVerification(checked=checked, mismatches=mismatches)
