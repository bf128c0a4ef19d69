from __future__ import annotations

import hashlib
import uuid
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from spendtrackr.apps.receipts import flows
from spendtrackr.apps.receipts.models import OcrStatus
from spendtrackr.apps.receipts.schemas import MatchRequest, ReceiptRead
from spendtrackr.apps.receipts.service import EXTENSIONS
from spendtrackr.apps.users.deps import SIGNED_IN, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import SettingsDep, StorageDep
from spendtrackr.core.idempotency import IdempotencyDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, SyncPageDep
from spendtrackr.core.routing import JSONRoute

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/receipts",
    tags=["receipts"],
    responses=errors(401),
)


def _digest(upload: UploadFile) -> str:
    digest = hashlib.sha256()
    upload.file.seek(0)
    while chunk := upload.file.read(1024 * 1024):
        digest.update(chunk)
    upload.file.seek(0)
    return digest.hexdigest()


@router.post(
    "",
    response_model=ReceiptRead,
    status_code=201,
    responses={**errors(403, 404, 409, 413, 415, 422)},
)
def upload_receipt(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    user: CurrentUser,
    idem: IdempotencyDep,
    storage: StorageDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WEBP or PDF")],
    spend_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """Attach a receipt to a spend (its submitter, finance or admin), or upload it alone: once
    read, it is matched to one of your card purchases without a receipt (same currency, amount
    within tolerance, date within 3 days, the merchant's name alike); when several fit as well,
    it waits with `match_status: ambiguous` and its `candidates` for `POST
    /receipts/{id}/match`. The type is read from the bytes, not from the declared content type.
    OCR starts right after the response: `ocr_status` goes pending -> processing -> done |
    failed."""
    state = request.app.state  # the OCR that follows: its sessions, extractor and threads
    uploaded: list[ReceiptRead] = []

    def produce() -> ReceiptRead:
        receipt = flows.upload(
            session,
            actor=user,
            spend_id=spend_id,
            source=file.file,
            storage=storage,
            max_bytes=settings.max_upload_bytes,
        )
        uploaded.append(receipt)
        return receipt

    response = idem.run(
        session,
        company_id=user.company_id,
        caller=f"user:{user.id}",
        produce=produce,
        response_type=ReceiptRead,
        status_code=201,
        fingerprint=f"{spend_id}|{_digest(file)}" if idem.key else None,
    )
    if uploaded and settings.ocr_in_process:
        # Not a sync background task: Starlette would run it on the routes' thread pool, where
        # reads waiting on Gemini would hold the threads every other request needs.
        read = partial(
            flows.run_after_upload,
            state.session_factory,
            uploaded[0].id,
            storage=storage,
            extractor=state.extractor,
            settings=settings,
        )
        background.add_task(anyio.to_thread.run_sync, read, limiter=state.ocr_threads)
    return response


@router.get("", response_model=Page[ReceiptRead])
def list_receipts(
    session: SessionDep,
    user: CurrentUser,
    page: SyncPageDep,
    spend_id: Annotated[uuid.UUID | None, Query()] = None,
    ocr_status: Annotated[OcrStatus | None, Query()] = None,
    unmatched: Annotated[
        bool | None,
        Query(description="true: receipts uploaded alone and not attached yet (with candidates)"),
    ] = None,
) -> Page[ReceiptRead]:
    """Receipts you uploaded (finance and admins: the company's), newest first, or by cursor
    (`updated_since`, `cursor`) in the order they changed (a receipt changes as it is read)."""
    return flows.list_receipts(
        session,
        actor=user,
        spend_id=spend_id,
        ocr_status=ocr_status,
        page=page,
        unmatched=unmatched,
    )


@router.post(
    "/{receipt_id}/match", response_model=ReceiptRead, responses=errors(403, 404, 409, 422)
)
def match_receipt(
    receipt_id: uuid.UUID, body: MatchRequest, session: SessionDep, user: CurrentUser
) -> ReceiptRead:
    """Attach a receipt uploaded alone to one of its uploader's spends (the uploader, finance,
    admins): it is then checked against the spend as any receipt. 409 `already_matched`; 422
    `invalid_spend`, `not_uploader_spend`."""
    return flows.match_by_hand(session, actor=user, receipt_id=receipt_id, spend_id=body.spend_id)


@router.get("/{receipt_id}", response_model=ReceiptRead, responses=errors(404))
def get_receipt(receipt_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> ReceiptRead:
    return ReceiptRead.model_validate(
        flows.visible_receipt(session, actor=user, receipt_id=receipt_id)
    )


@router.get(
    "/{receipt_id}/file",
    response_class=StreamingResponse,
    responses={
        200: {"content": {t: {} for t in EXTENSIONS}, "description": "The file"},
        **errors(404),
    },
)
def download_receipt(
    receipt_id: uuid.UUID, session: SessionDep, user: CurrentUser, storage: StorageDep
) -> StreamingResponse:
    """The stored bytes, with their sniffed content type, as an attachment."""
    receipt = flows.visible_receipt(session, actor=user, receipt_id=receipt_id)
    filename = f"receipt-{receipt.id}.{EXTENSIONS[receipt.content_type]}"
    return StreamingResponse(
        storage.iter_chunks(receipt.storage_key),
        media_type=receipt.content_type,
        headers={
            "Content-Length": str(receipt.size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
