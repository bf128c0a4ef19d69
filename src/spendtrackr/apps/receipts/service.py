"""Receipts: files checked by their bytes, stored by content hash, and their OCR jobs."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, SessionTransaction

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.receipts.models import MatchStatus, OcrStatus, Receipt
from spendtrackr.apps.receipts.schemas import ExtractedReceipt, ReceiptRead
from spendtrackr.core.db import force_index, get_in_company_or_404, id_param, utcnow
from spendtrackr.core.errors import PayloadTooLarge, UnsupportedMediaType
from spendtrackr.core.pagination import Listed, SyncParams, listing
from spendtrackr.core.storage import Storage

RECEIPT_NOT_FOUND = "Receipt not found"
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "application/pdf": "pdf",
}


def sniff(head: bytes) -> str | None:
    """The type from the first bytes; the declared content type is never trusted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _check_parses(source: BinaryIO, content_type: str) -> None:
    """A right signature is not enough (a renamed or polyglot file has one): the file must open
    as what it claims to be."""
    # Imported on first use: they add tens of MB to every worker that never sees a receipt.
    from PIL import Image, UnidentifiedImageError
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    source.seek(0)
    try:
        if content_type == "application/pdf":
            reader = PdfReader(source)
            if len(reader.pages) == 0:
                raise ValueError("no pages")
        else:
            try:
                image = Image.open(source)
            except Image.DecompressionBombError:
                # A well-formed header declaring more pixels than Pillow opens: the file is
                # what it says, and its OCR fails for good with the reason (extractors.py).
                return
            with image:
                expected = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}[
                    content_type
                ]
                if image.format != expected:
                    raise ValueError(f"{image.format} is not {expected}")
                image.verify()
    except LimitReachedError:
        raise UnsupportedMediaType(
            "The PDF inflates past what a receipt can be (a decompression bomb?)",
            code="unsupported_media_type",
        ) from None
    except (
        PdfReadError,
        UnidentifiedImageError,
        ValueError,
        OSError,
        SyntaxError,
        KeyError,
    ) as exc:
        raise UnsupportedMediaType(
            f"The file is not a valid {EXTENSIONS[content_type].upper()} ({type(exc).__name__})",
            code="unsupported_media_type",
        ) from None
    finally:
        source.seek(0)


@dataclass(frozen=True, slots=True)
class CheckedFile:
    content_type: str
    size: int
    sha256: str


def inspect_upload(source: BinaryIO, *, max_bytes: int) -> CheckedFile:
    """Hash and measure the upload in chunks (it is spooled to disk, never held whole), sniff its
    type, and make sure it parses."""
    digest = hashlib.sha256()
    size = 0
    source.seek(0)
    head = source.read(16)
    source.seek(0)
    while chunk := source.read(1024 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The file is larger than {max_bytes} bytes")
        digest.update(chunk)
    if size == 0:
        raise UnsupportedMediaType("The file is empty", code="unsupported_media_type")
    content_type = sniff(head)
    if content_type is None:
        raise UnsupportedMediaType(
            "Only JPEG, PNG, WEBP and PDF receipts are accepted", code="unsupported_media_type"
        )
    _check_parses(source, content_type)
    return CheckedFile(content_type=content_type, size=size, sha256=digest.hexdigest())


def storage_key(company_id: uuid.UUID, sha256: str) -> str:
    return f"{company_id.hex}/{sha256[:2]}/{sha256}"


_NEW_FILES = "receipts_new_files"


def store_file(session: Session, storage: Storage, *, key: str, source: BinaryIO) -> None:
    """Put the file; if this transaction then rolls back, the file it created goes too."""
    source.seek(0)
    if storage.put(key, source):
        session.info.setdefault(_NEW_FILES, []).append((storage, key))


def keep_new_files(session: Session) -> None:
    session.info.pop(_NEW_FILES, None)


def drop_new_files(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for storage, key in session.info.pop(_NEW_FILES, ()):
            storage.delete(key)


def create_receipt(
    session: Session,
    *,
    company_id: uuid.UUID,
    spend_id: uuid.UUID | None,
    uploaded_by: uuid.UUID,
    checked: CheckedFile,
    key: str,
) -> Receipt:
    receipt = Receipt(
        id=uuid.uuid4(),
        company_id=company_id,
        spend_id=spend_id,
        uploaded_by=uploaded_by,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        storage_key=key,
        ocr_status=OcrStatus.pending,
        ocr_next_attempt_at=utcnow(),
        match_status=None if spend_id is not None else MatchStatus.unmatched,
        candidates=[],
    )
    session.add(receipt)
    session.flush()
    audit.record_change(
        session,
        receipt,
        "receipt.uploaded",
        actor_id=uploaded_by,
        metadata={
            "spend_id": spend_id,
            "sha256": checked.sha256,
            "size": checked.size,
            "content_type": checked.content_type,
        },
    )
    return receipt


def sha_seen_before(
    session: Session, *, company_id: uuid.UUID, sha256: str, exclude: uuid.UUID
) -> bool:
    return (
        session.scalar(
            select(Receipt.id)
            .where(
                Receipt.company_id == company_id, Receipt.sha256 == sha256, Receipt.id != exclude
            )
            .limit(1)
        )
        is not None
    )


def get_receipt_or_404(
    session: Session, *, company_id: uuid.UUID, receipt_id: uuid.UUID, for_update: bool = False
) -> Receipt:
    return get_in_company_or_404(
        session, Receipt, receipt_id, company_id, detail=RECEIPT_NOT_FOUND, for_update=for_update
    )


# What a ReceiptRead shows, read as plain columns (its file_url is derived from the id).
_READ_FIELDS = tuple(ReceiptRead.model_fields)
_READ_COLUMNS = [getattr(Receipt, name) for name in _READ_FIELDS]
# Built once (as the other statements on every request's path): see core/db.py.
_RECEIPTS_OF = force_index(
    select(*_READ_COLUMNS)
    .where(
        Receipt.company_id == id_param("company_id"),
        Receipt.spend_id.in_(id_param("spend_ids", expanding=True)),
    )
    .order_by(Receipt.created_at),
    Receipt,
    "ix_receipt_company_spend",
)


def receipts_of(
    session: Session, *, company_id: uuid.UUID, spend_ids: list[uuid.UUID]
) -> list[ReceiptRead]:
    """The receipts of these spends, oldest first, as read models (one query, no entities)."""
    if not spend_ids:
        return []
    rows = session.execute(_RECEIPTS_OF, {"company_id": company_id, "spend_ids": spend_ids})
    # Zipped into dicts: a Row's attribute access is slow (see approvals.service.steps_of).
    return [ReceiptRead.model_validate(dict(zip(_READ_FIELDS, row, strict=True))) for row in rows]


# --- the OCR job --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    receipt_id: uuid.UUID
    claim_id: uuid.UUID


def claim_one(session: Session, *, receipt_id: uuid.UUID) -> Claim | None:
    """Claim a pending receipt by id (the web process, right after the upload)."""
    claim_id = uuid.uuid4()
    result = session.execute(
        update(Receipt)
        .where(Receipt.id == receipt_id, Receipt.ocr_status == OcrStatus.pending)
        .values(
            ocr_status=OcrStatus.processing,
            ocr_claim_id=claim_id,
            ocr_started_at=utcnow(),
            ocr_attempts=Receipt.ocr_attempts + 1,
        )
    )
    return Claim(receipt_id, claim_id) if result.rowcount == 1 else None  # type: ignore[attr-defined]


def claim_batch(
    session: Session, *, limit: int, stale_after: timedelta, now: datetime | None = None
) -> list[Claim]:
    """Claim due receipts for a worker: pending ones whose retry time has come, and ones stuck in
    `processing` (their worker died). SKIP LOCKED lets several workers claim side by side without
    waiting for or taking each other's rows; on SQLite the transaction's write lock does that."""
    now = now or utcnow()
    due = or_(
        and_(Receipt.ocr_status == OcrStatus.pending, Receipt.ocr_next_attempt_at <= now),
        and_(
            Receipt.ocr_status == OcrStatus.processing,
            Receipt.ocr_started_at < now - stale_after,
        ),
    )
    rows = session.scalars(
        select(Receipt)
        .where(due)
        .order_by(Receipt.ocr_next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claims = []
    for receipt in rows:
        claim = Claim(receipt.id, uuid.uuid4())
        receipt.ocr_status = OcrStatus.processing
        receipt.ocr_claim_id = claim.claim_id
        receipt.ocr_started_at = now
        receipt.ocr_attempts += 1
        claims.append(claim)
    return claims


def load_claimed(session: Session, claim: Claim, *, for_update: bool = False) -> Receipt | None:
    """The receipt, if this claim still owns it (a stale claim may have been taken over)."""
    stmt = select(Receipt).where(
        Receipt.id == claim.receipt_id,
        Receipt.ocr_claim_id == claim.claim_id,
        Receipt.ocr_status == OcrStatus.processing,
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def mark_done(
    receipt: Receipt, *, extracted: ExtractedReceipt, verified: bool | None, engine: str
) -> None:
    receipt.ocr_status = OcrStatus.done
    receipt.extracted = extracted.model_dump(mode="json")
    receipt.verified = verified
    receipt.ocr_engine = engine
    receipt.ocr_error = None
    receipt.ocr_finished_at = utcnow()
    receipt.ocr_claim_id = None


def mark_failed(receipt: Receipt, *, error: str, retry_in: timedelta | None, engine: str) -> None:
    """Back to `pending` with a later retry time, or `failed` for good."""
    receipt.ocr_error = error[:500]
    receipt.ocr_engine = engine
    receipt.ocr_claim_id = None
    if retry_in is None:
        receipt.ocr_status = OcrStatus.failed
        receipt.ocr_finished_at = utcnow()
    else:
        receipt.ocr_status = OcrStatus.pending
        receipt.ocr_next_attempt_at = utcnow() + retry_in


def referenced_keys(session: Session, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(session.scalars(select(Receipt.storage_key).where(Receipt.storage_key.in_(keys))))


def has_receipt(session: Session, *, company_id: uuid.UUID, spend_id: uuid.UUID) -> bool:
    found = session.scalar(
        select(Receipt.id)
        .where(Receipt.company_id == company_id, Receipt.spend_id == spend_id)
        .limit(1)
    )
    return found is not None


def list_receipts(
    session: Session,
    *,
    company_id: uuid.UUID,
    uploaded_by: uuid.UUID | None,
    spend_id: uuid.UUID | None,
    ocr_status: OcrStatus | None,
    page: SyncParams,
    unmatched: bool | None = None,
) -> Listed:
    stmt = select(Receipt).where(Receipt.company_id == company_id)
    if unmatched is not None:
        stmt = stmt.where(
            Receipt.spend_id.is_(None) if unmatched else Receipt.spend_id.is_not(None)
        )
    if uploaded_by is not None:
        stmt = stmt.where(Receipt.uploaded_by == uploaded_by)
    if spend_id is not None:
        stmt = stmt.where(Receipt.spend_id == spend_id)
    if ocr_status is not None:
        stmt = stmt.where(Receipt.ocr_status == ocr_status)
    stmt = stmt.order_by(Receipt.created_at.desc(), Receipt.id)
    return listing(session, stmt, page, updated=Receipt.updated_at, ident=Receipt.id)
