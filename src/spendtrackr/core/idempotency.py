"""Idempotency-Key handling, usable by any POST route.

The guarantee is a unique row (company, caller, key) holding the request's fingerprint and the
stored response, written in the request's own transaction. A Redis `SET NX` lock answers
concurrent duplicates with `409 idempotency_in_progress` without touching the database; while it
is held, the row is inserted once, answer included, after the request's work (a retry of a
committed request fails that INSERT, is rolled back whole and replays the first answer). Without
Redis the claim is inserted first, so a concurrent duplicate blocks on the unique index until the
first request commits (then it replays) or rolls back (then it runs): the constraint alone still
guarantees exactly one effect.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Request, Response
from pydantic import TypeAdapter
from sqlalchemy import (
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from spendtrackr.core.cache import Cache, CacheUnavailable
from spendtrackr.core.db import Base, exact_text, id_param, utcnow
from spendtrackr.core.deps import CacheDep, SettingsDep
from spendtrackr.core.errors import AppError, BadRequest, Conflict

_KEY_RE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,254}$")
REPLAY_HEADER = "Idempotent-Replayed"
_FORMS = ("multipart/", "application/x-www-form-urlencoded")
LOCK_TTL_SECONDS = 60


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("company_id", "caller", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID]
    caller: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(exact_text(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(
        LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# Claims and answers are written with plain statements on the table, built once (see core/db.py):
# no ORM object to flush.
_RECORDS = cast(Table, IdempotencyRecord.__table__)
_CLAIM = insert(_RECORDS)
_ANSWER = update(_RECORDS).where(_RECORDS.c.id == id_param("record"))


class IdempotencyKeyReused(AppError):
    status_code = 422
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


@dataclass(slots=True)
class IdempotentRequest:
    key: str | None
    fingerprint: str
    cache: Cache
    ttl: timedelta

    def run(
        self,
        session: Session,
        *,
        company_id: uuid.UUID,
        caller: str,
        produce: Callable[[], Any],
        response_type: Any,
        status_code: int,
        fingerprint: str | None = None,
        stored_type: Any = None,
    ) -> Response:
        """Run `produce` at most once per (company, caller, key) and answer with its JSON.

        `fingerprint` stands in for the body's when the body is not comparable between retries
        (multipart uploads: pass a digest of the parts). `stored_type` serializes the copy kept for
        replays when the first answer holds what must not be stored (a card number)."""
        if fingerprint is not None:
            self.fingerprint = hashlib.sha256(
                f"{self.fingerprint}|{fingerprint}".encode()
            ).hexdigest()
        adapter = _adapter(response_type)
        if self.key is None:
            return _json(adapter.dump_json(produce()), status_code)

        key = self.key
        lock = f"idem:{{{company_id}}}:{hashlib.sha256(f'{caller}|{key}'.encode()).hexdigest()}"
        try:
            if not self.cache.set_nx(lock, "1", LOCK_TTL_SECONDS):
                return self._replay_or_in_progress(session, company_id, caller)
        except CacheUnavailable:
            pass  # the database constraint below is the guarantee
        else:
            _release_after_transaction(session, self.cache, lock)
            answered = self._answer_last(
                session, company_id, caller, produce, adapter, status_code, stored_type
            )
            if answered is not None:
                return answered

        # Claim first: a new key (the usual case) costs one INSERT and no lookup. A taken one
        # fails on the unique index, after the request holding it has committed (InnoDB waits
        # for it), and is then replayed; an expired one is removed and claimed again.
        record_id = self._claim(session, company_id, caller)
        if record_id is None:
            found = self._find(session, company_id, caller)
            if found is not None:
                return self._replay(found)
            record_id = self._claim(session, company_id, caller)
            if record_id is None:
                return self._replay_or_in_progress(session, company_id, caller)

        result = produce()
        body = adapter.dump_json(result)
        stored = body if stored_type is None else _adapter(stored_type).dump_json(result)
        session.execute(
            _ANSWER, {"record": record_id, "status_code": status_code, "response_body": stored}
        )
        return _json(body, status_code)

    def _answer_last(
        self,
        session: Session,
        company_id: uuid.UUID,
        caller: str,
        produce: Callable[[], Any],
        adapter: TypeAdapter[Any],
        status_code: int,
        stored_type: Any,
    ) -> Response | None:
        """With the lock held no duplicate runs beside this request, so the key's row is
        written once, with the answer, after `produce`: one statement instead of a claim and
        an answer. A retry of a request that committed before finds its row taken at that
        INSERT (or, if `produce` now refuses, looks for it): this attempt is then rolled back
        whole and the first answer replayed, so the first request's effect stays the only one.
        None: the row found had expired (it is gone now); claim the key as usual."""
        try:
            result = produce()
        except AppError:
            if (first := self._first_answer_instead(session, company_id, caller)) is not None:
                return first
            raise
        body = adapter.dump_json(result)
        stored = body if stored_type is None else _adapter(stored_type).dump_json(result)
        if self._claim(session, company_id, caller, answer=(status_code, stored)) is not None:
            return _json(body, status_code)
        return self._first_answer_instead(session, company_id, caller)

    def _first_answer_instead(
        self, session: Session, company_id: uuid.UUID, caller: str
    ) -> Response | None:
        """This attempt undone whole, and the first request's answer replayed; None when the
        key has no row (or had an expired one, now gone)."""
        session.rollback()
        found = self._find(session, company_id, caller)
        return None if found is None else self._replay(found)

    def _claim(
        self,
        session: Session,
        company_id: uuid.UUID,
        caller: str,
        *,
        answer: tuple[int, bytes] | None = None,
    ) -> uuid.UUID | None:
        """Insert the key's row (with its `answer`, status and body, when it is known); its id,
        or None when the key is already taken.

        A plain INSERT, no savepoint: a duplicate key fails only its own statement (InnoDB and
        SQLite roll back the statement, not the transaction, and a Core statement does not put
        the session in the failed-flush state), so the transaction goes on to replay."""
        record_id = uuid.uuid4()
        status_code, response_body = answer or (None, None)
        try:
            session.execute(
                _CLAIM,
                {
                    "id": record_id,
                    "company_id": company_id,
                    "caller": caller,
                    "key": self.key,
                    "fingerprint": self.fingerprint,
                    "created_at": utcnow(),
                    "status_code": status_code,
                    "response_body": response_body,
                },
            )
        except IntegrityError:
            return None
        return record_id

    def _find(
        self, session: Session, company_id: uuid.UUID, caller: str
    ) -> IdempotencyRecord | None:
        record = session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.company_id == company_id,
                IdempotencyRecord.caller == caller,
                IdempotencyRecord.key == self.key,
            )
        ).one_or_none()
        if record is not None and record.created_at < utcnow() - self.ttl:
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
            return None
        return record

    def _replay(self, record: IdempotencyRecord) -> Response:
        if record.fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request"
            )
        if record.status_code is None or record.response_body is None:
            raise IdempotencyInProgress("A request with this Idempotency-Key is still running")
        response = _json(record.response_body, record.status_code)
        response.headers[REPLAY_HEADER] = "true"
        return response

    def _replay_or_in_progress(
        self, session: Session, company_id: uuid.UUID, caller: str
    ) -> Response:
        record = self._find(session, company_id, caller)
        if record is None:
            raise IdempotencyInProgress("A request with this Idempotency-Key is still running")
        return self._replay(record)


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(response_type: Any) -> TypeAdapter[Any]:
    adapter = _adapters.get(response_type)
    if adapter is None:
        adapter = _adapters[response_type] = TypeAdapter(response_type)
    return adapter


def _json(body: bytes, status_code: int) -> Response:
    return Response(content=body, status_code=status_code, media_type="application/json")


_LOCKS = "idempotency_locks"


def _release_after_transaction(session: Session, cache: Cache, lock: str) -> None:
    # Released only once the request's transaction has ended, so that the row is visible (or
    # gone) by the time a duplicate can take the lock.
    session.info.setdefault(_LOCKS, []).append((cache, lock))


def release_locks(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for cache, lock in session.info.pop(_LOCKS, ()):
            cache.delete(lock)


def _canonical_json(body: bytes) -> bytes:
    """The same JSON however a retry writes it (spacing, key order), as Stripe compares a
    retry's parameters rather than its bytes. Values keep their type and numbers their text
    (3.00 is neither 3 nor "3.00"); a body that is not JSON is taken as sent."""
    try:
        return repr(_sorted_keys(json.loads(body, parse_float=Decimal))).encode()
    except (ValueError, RecursionError):
        return body


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _sorted_keys(v)) for k, v in value.items()))
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


async def idempotent_request(
    request: Request,
    cache: CacheDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1..255 printable characters; the same key and body replay the "
            "first response for 24 hours",
        ),
    ] = None,
) -> IdempotentRequest:
    if idempotency_key is not None and not _KEY_RE.fullmatch(idempotency_key):
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            code="invalid_idempotency_key",
        )
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}\n".encode())
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(_FORMS):
        # Forms are parsed (and their stream consumed) before dependencies run, and multipart
        # boundaries differ between retries anyway: such routes fingerprint their parts.
        body = await request.body()
        digest.update(_canonical_json(body) if idempotency_key is not None else body)
    return IdempotentRequest(
        key=idempotency_key,
        fingerprint=digest.hexdigest(),
        cache=cache,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
    )


IdempotencyDep = Annotated[IdempotentRequest, Depends(idempotent_request)]
