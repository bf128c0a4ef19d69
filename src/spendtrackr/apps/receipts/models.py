from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity, StrEnumType


class OcrStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    done = "done"
    failed = "failed"


class MatchStatus(StrEnum):
    """Where a receipt uploaded without a spend stands."""

    matched = "matched"  # attached to the card spend it was found to belong to
    unmatched = "unmatched"  # no card spend fits (yet)
    ambiguous = "ambiguous"  # several fit as well: `candidates` lists them for a person


class Receipt(Entity):
    """A stored file, attached to a spend or uploaded on its own to be matched to one, and its
    OCR job (the row is the job)."""

    __audit_entity__ = "receipt"

    __tablename__ = "receipt"
    __table_args__ = (
        Index("ix_receipt_company_spend", "company_id", "spend_id"),
        Index("ix_receipt_company_updated", "company_id", "updated_at", "id"),
        Index("ix_receipt_company_sha256", "company_id", "sha256"),
        Index("ix_receipt_ocr_queue", "ocr_status", "ocr_next_attempt_at"),
        Index("ix_receipt_company_match", "company_id", "match_status"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    spend_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spend.id"))
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    ocr_status: Mapped[OcrStatus] = mapped_column(
        StrEnumType(OcrStatus, 12), default=OcrStatus.pending
    )
    ocr_attempts: Mapped[int] = mapped_column(default=0)
    ocr_claim_id: Mapped[uuid.UUID | None]
    ocr_started_at: Mapped[datetime | None]
    ocr_next_attempt_at: Mapped[datetime | None]
    ocr_finished_at: Mapped[datetime | None]
    ocr_error: Mapped[str | None] = mapped_column(String(500))
    ocr_engine: Mapped[str | None] = mapped_column(String(32))
    extracted: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    verified: Mapped[bool | None]
    # Uploaded without a spend: how matching went (none for one uploaded to a spend).
    match_status: Mapped[MatchStatus | None] = mapped_column(StrEnumType(MatchStatus, 10))
    candidates: Mapped[list[str]] = mapped_column(JSON, default=list)
