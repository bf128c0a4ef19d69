"""Attaching receipts to spends, and the OCR job that reads them and checks them against the spend.

The job runs outside any transaction while it talks to the extractor (which may take seconds), and
inside short ones to claim the row and to record the result; a claim id makes sure a worker that
was presumed dead and overtaken cannot write over its successor's result.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.receipts import matching
from spendtrackr.apps.receipts import service as receipts_service
from spendtrackr.apps.receipts.extractors import ExtractionFailed, Extractor
from spendtrackr.apps.receipts.models import MatchStatus, OcrStatus, Receipt
from spendtrackr.apps.receipts.schemas import ExtractedReceipt, ReceiptRead
from spendtrackr.apps.spends import flows as spend_flows
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import Spend
from spendtrackr.apps.users.models import User
from spendtrackr.apps.users.permissions import Capability, can
from spendtrackr.core.config import Settings
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from spendtrackr.core.pagination import Page, SyncParams
from spendtrackr.core.storage import Storage

logger = logging.getLogger(__name__)
SPEND_NOT_FOUND = "Spend event not found"  # the wording clients of API.md match on


def upload(
    session: Session,
    *,
    actor: User,
    spend_id: uuid.UUID | None,
    source: BinaryIO,
    storage: Storage,
    max_bytes: int,
) -> ReceiptRead:
    """Attach a file to a spend: its submitter, or finance/admin; or, without a spend, keep it to
    be matched to one of the uploader's card purchases once read. The row and the file are
    created together: a failed request removes the file it stored."""
    spend = None
    if spend_id is not None:
        try:
            spend = spend_flows.visible_spend(session, actor, spend_id, for_update=True)
        except NotFound:
            raise NotFound(SPEND_NOT_FOUND) from None
        if spend.user_id != actor.id and not can(actor.role, Capability.manage_cards):
            raise Forbidden(
                "Only the spend's submitter, finance or an admin can attach receipts",
                code="not_submitter",
            )
    checked = receipts_service.inspect_upload(source, max_bytes=max_bytes)
    key = receipts_service.storage_key(actor.company_id, checked.sha256)
    receipts_service.store_file(session, storage, key=key, source=source)
    receipt = receipts_service.create_receipt(
        session,
        company_id=actor.company_id,
        spend_id=spend_id,
        uploaded_by=actor.id,
        checked=checked,
        key=key,
    )
    if spend is not None and receipts_service.sha_seen_before(
        session, company_id=actor.company_id, sha256=checked.sha256, exclude=receipt.id
    ):
        spends_service.add_system_flag(spend, "possible_duplicate")
    return ReceiptRead.model_validate(receipt)


def visible_receipt(
    session: Session, *, actor: User, receipt_id: uuid.UUID, for_update: bool = False
) -> Receipt:
    """A receipt is visible to whoever may see its spend (one not matched yet: its uploader,
    finance and admins); anyone else gets a 404."""
    receipt = receipts_service.get_receipt_or_404(
        session, company_id=actor.company_id, receipt_id=receipt_id, for_update=for_update
    )
    if receipt.spend_id is None:
        if receipt.uploaded_by != actor.id and not can(actor.role, Capability.read_company_spends):
            raise NotFound(receipts_service.RECEIPT_NOT_FOUND)
        return receipt
    try:
        spend_flows.visible_spend(session, actor, receipt.spend_id)
    except NotFound:
        raise NotFound(receipts_service.RECEIPT_NOT_FOUND) from None
    return receipt


# --- the job ------------------------------------------------------------------------------------


def _is_verified(spend: Spend, extracted: ExtractedReceipt) -> bool:
    if extracted.total is None:
        return False
    if extracted.currency is not None and extracted.currency != spend.currency:
        return False
    return quantize(extracted.total, spend.currency) == spend.amount


def _record_success(
    session: Session, receipt: Receipt, spend: Spend, extracted: ExtractedReceipt, engine: str
) -> None:
    verified = _is_verified(spend, extracted)
    receipts_service.mark_done(receipt, extracted=extracted, verified=verified, engine=engine)
    if verified and extracted.tax is not None:
        spend_flows.learn_tax(session, spend, extracted.tax)
    if not verified:
        spends_service.add_system_flag(spend, "receipt_amount_mismatch")
        read_total = (
            "nothing"
            if extracted.total is None
            else f"{extracted.total} {extracted.currency or ''}".strip()
        )
        notifications.notify(
            session,
            company_id=spend.company_id,
            user_ids=[spend.user_id],
            kind="receipt.amount_mismatch",
            message=f"The receipt shows {read_total}, the spend says "
            f"{quantize(spend.amount, spend.currency)} {spend.currency}",
            entity_type="spend",
            entity_id=spend.id,
        )
    audit.record_change(
        session,
        receipt,
        "receipt.ocr_completed",
        actor_id=None,
        metadata={
            "engine": engine,
            "verified": verified,
            "total": extracted.total,
            "currency": extracted.currency,
        },
    )
    spend_flows.reevaluate(session, spend)


def _record_failure(
    session: Session,
    receipt: Receipt,
    *,
    error: str,
    retryable: bool,
    engine: str,
    settings: Settings,
) -> None:
    retry_in = None
    if retryable and receipt.ocr_attempts < settings.ocr_max_attempts:
        retry_in = timedelta(
            seconds=settings.ocr_retry_base_seconds * 2 ** (receipt.ocr_attempts - 1)
        )
    receipts_service.mark_failed(receipt, error=error, retry_in=retry_in, engine=engine)
    if retry_in is None:
        audit.record_change(
            session,
            receipt,
            "receipt.ocr_failed",
            actor_id=None,
            metadata={
                "engine": engine,
                "error": receipt.ocr_error,
                "attempts": receipt.ocr_attempts,
            },
        )
        notifications.notify(
            session,
            company_id=receipt.company_id,
            user_ids=[receipt.uploaded_by],
            kind="receipt.unreadable",
            message=f"Your receipt could not be read ({receipt.ocr_error}): check the spend's "
            "amount and date yourself, or upload a clearer copy",
            entity_type="spend" if receipt.spend_id is not None else "receipt",
            entity_id=receipt.spend_id or receipt.id,
        )


def process(
    factory: sessionmaker[Session],
    claim: receipts_service.Claim,
    *,
    storage: Storage,
    extractor: Extractor,
    settings: Settings,
) -> None:
    """Run one claimed job to its end (done, failed, or back to pending for a retry)."""
    with session_scope(factory) as session:
        receipt = receipts_service.load_claimed(session, claim)
        if receipt is None:
            return
        key, content_type, spend_id, company_id = (
            receipt.storage_key,
            receipt.content_type,
            receipt.spend_id,
            receipt.company_id,
        )
    extracted: ExtractedReceipt | None = None
    error: str | None = None
    retryable = False
    try:
        extracted = extractor.extract(storage.read(key), content_type)
    except ExtractionFailed as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - any other failure (network, 5xx, time-out) is retried
        logger.warning("OCR attempt failed for receipt %s: %s", claim.receipt_id, exc)
        error, retryable = f"{type(exc).__name__}: {exc}", True
    matched: uuid.UUID | None = None
    with session_scope(factory) as session:
        # Spend first, then receipt: the order every writer of both follows.
        spend = (
            spends_service.get_spend_or_404(
                session, company_id=company_id, spend_id=spend_id, for_update=True
            )
            if spend_id is not None
            else None
        )
        receipt = receipts_service.load_claimed(session, claim, for_update=True)
        if receipt is None:
            return  # presumed dead and taken over; the new owner records the result
        if extracted is not None and spend is not None:
            _record_success(session, receipt, spend, extracted, extractor.name)
        elif extracted is not None:
            matched = _record_alone(session, receipt, extracted, extractor.name, settings)
        else:
            assert error is not None
            _record_failure(
                session,
                receipt,
                error=error,
                retryable=retryable,
                engine=extractor.name,
                settings=settings,
            )
    if matched is not None:
        with session_scope(factory) as session:
            _attach_found(session, claim.receipt_id, company_id, matched)


def _record_alone(
    session: Session,
    receipt: Receipt,
    extracted: ExtractedReceipt,
    engine: str,
    settings: Settings,
) -> uuid.UUID | None:
    """A receipt uploaded alone was read: look for the card purchase it belongs to. The spend
    it found (attached next, in a transaction of its own: spend first, then receipt)."""
    receipts_service.mark_done(receipt, extracted=extracted, verified=None, engine=engine)
    rows = spends_service.card_spends_without_receipt(
        session,
        company_id=receipt.company_id,
        user_id=receipt.uploaded_by,
        around=extracted.date,
        days=matching.DAYS,
    )
    outcome = matching.match(
        matching.Read(
            total=extracted.total,
            currency=extracted.currency,
            day=extracted.date,
            vendor=extracted.vendor,
        ),
        [matching.Candidate(r[0], r[1], r[2], r[3], r[4]) for r in rows],
        tip=settings.card_capture_tolerance_percent / 100,
    )
    receipt.candidates = [str(c) for c in outcome.candidates]
    receipt.match_status = MatchStatus.ambiguous if outcome.candidates else MatchStatus.unmatched
    audit.record_change(
        session,
        receipt,
        "receipt.ocr_completed",
        actor_id=None,
        metadata={"engine": engine, "total": extracted.total, "currency": extracted.currency},
    )
    if outcome.matched is None:
        notifications.notify(
            session,
            company_id=receipt.company_id,
            user_ids=[receipt.uploaded_by],
            kind="receipt.unmatched",
            message="Your receipt"
            + (f" from {extracted.vendor}" if extracted.vendor else "")
            + (
                f" fits {len(outcome.candidates)} card purchases: choose one"
                if outcome.candidates
                else " matches none of your card purchases yet"
            ),
            entity_type="receipt",
            entity_id=receipt.id,
        )
    return outcome.matched


def _attach_found(
    session: Session, receipt_id: uuid.UUID, company_id: uuid.UUID, spend_id: uuid.UUID
) -> None:
    spend = spends_service.get_spend_or_404(
        session, company_id=company_id, spend_id=spend_id, for_update=True
    )
    receipt = receipts_service.get_receipt_or_404(
        session, company_id=company_id, receipt_id=receipt_id, for_update=True
    )
    if receipt.spend_id is None:  # not matched by hand meanwhile
        _attach(session, receipt, spend, actor_id=None)


def _attach(
    session: Session, receipt: Receipt, spend: Spend, *, actor_id: uuid.UUID | None
) -> None:
    """Attach a receipt uploaded alone to its spend, and check it against the spend once read."""
    receipt.spend_id = spend.id
    receipt.match_status = MatchStatus.matched
    receipt.candidates = []
    audit.record_change(
        session,
        receipt,
        "receipt.matched",
        actor_id=actor_id,
        metadata={"spend_id": spend.id, "by": "hand" if actor_id else "matcher"},
    )
    if receipt.ocr_status is OcrStatus.done and receipt.extracted is not None:
        extracted = ExtractedReceipt.model_validate(receipt.extracted)
        _record_success(session, receipt, spend, extracted, receipt.ocr_engine or "")
    else:
        spend_flows.reevaluate(session, spend)


def match_by_hand(
    session: Session, *, actor: User, receipt_id: uuid.UUID, spend_id: uuid.UUID
) -> ReceiptRead:
    """Attach a receipt uploaded alone to a spend of its uploader (the uploader, finance or an
    admin). 409 `already_matched` once attached; 422 `not_uploader_spend` for someone else's."""
    visible_receipt(session, actor=actor, receipt_id=receipt_id)  # a 404 before all else
    try:
        spend = spend_flows.visible_spend(session, actor, spend_id, for_update=True)
    except NotFound:
        raise ValidationFailed(
            "spend_id is not a spend you can see", code="invalid_spend"
        ) from None
    receipt = visible_receipt(session, actor=actor, receipt_id=receipt_id, for_update=True)
    if receipt.spend_id is not None:
        raise Conflict("The receipt is attached to a spend already", code="already_matched")
    if spend.user_id != receipt.uploaded_by:
        raise ValidationFailed(
            "the spend is not the receipt's uploader's", code="not_uploader_spend"
        )
    _attach(session, receipt, spend, actor_id=actor.id)
    return ReceiptRead.model_validate(receipt)


def remind_missing_receipts(
    factory: sessionmaker[Session], *, settings: Settings, now: datetime | None = None
) -> int:
    """Tell each holder of a card purchase still without a receipt RECEIPT_REMINDER_DAYS after
    it, once (their notification preferences choose how). The number reminded."""
    at = now or utcnow()
    before = at - timedelta(days=settings.receipt_reminder_days)
    with session_scope(factory) as session:
        spends = spends_service.missing_receipts(session, before=before)
        for spend in spends:
            spend.receipt_reminded_at = at
            notifications.notify_owner(
                session,
                spend,
                kind="receipt.missing",
                message=f"Your card purchase {spends_service.describe(spend)} has no receipt "
                "yet: upload it",
            )
        return len(spends)


def run_after_upload(
    factory: sessionmaker[Session],
    receipt_id: uuid.UUID,
    *,
    storage: Storage,
    extractor: Extractor,
    settings: Settings,
) -> None:
    """The web process's background task: claim this receipt (unless a worker already did)."""
    try:
        with session_scope(factory) as session:
            claim = receipts_service.claim_one(session, receipt_id=receipt_id)
        if claim is not None:
            process(factory, claim, storage=storage, extractor=extractor, settings=settings)
    except Exception:
        # Left pending or processing: a worker, or the stale-claim sweep, picks it up.
        logger.exception("background OCR of receipt %s failed", receipt_id)


def work_once(
    factory: sessionmaker[Session],
    *,
    storage: Storage,
    extractor: Extractor,
    settings: Settings,
    batch: int = 10,
) -> int:
    """Claim a batch of due jobs and run them; the number run."""
    with session_scope(factory) as session:
        claims = receipts_service.claim_batch(
            session, limit=batch, stale_after=timedelta(seconds=settings.ocr_stale_seconds)
        )
    for claim in claims:
        try:
            process(factory, claim, storage=storage, extractor=extractor, settings=settings)
        except Exception:
            logger.exception(
                "OCR of receipt %s failed; it will be retried when stale", claim.receipt_id
            )
    return len(claims)


def sweep_orphan_files(
    factory: sessionmaker[Session], *, storage: Storage, grace_seconds: float
) -> int:
    """Delete stored files that no receipt row refers to (left by a crash between the file write
    and the commit), once they are older than any request could be."""
    removed = 0
    # Export files (`exports/...`) belong to the ledger's own sweep.
    candidates = [k for k in storage.keys_older_than(grace_seconds) if not k.startswith("exports/")]
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        with session_scope(factory) as session:
            referenced = receipts_service.referenced_keys(session, chunk)
        for key in chunk:
            if key not in referenced:
                storage.delete(key)
                removed += 1
    return removed


def list_receipts(
    session: Session,
    *,
    actor: User,
    spend_id: uuid.UUID | None,
    ocr_status: OcrStatus | None,
    page: SyncParams,
    unmatched: bool | None = None,
) -> Page[ReceiptRead]:
    """The company's receipts (finance, admins), or those the caller uploaded; `unmatched`:
    only those uploaded alone and not attached yet (or only attached ones)."""
    mine = None if can(actor.role, Capability.read_company_spends) else actor.id
    listed = receipts_service.list_receipts(
        session,
        company_id=actor.company_id,
        uploaded_by=mine,
        spend_id=spend_id,
        ocr_status=ocr_status,
        page=page,
        unmatched=unmatched,
    )
    return listed.page([ReceiptRead.model_validate(r) for r in listed.rows])
