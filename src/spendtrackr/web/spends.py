"""My spends (list, filters, one spend with its approval trail and receipt), a new spend with
its receipt read by OCR, and the receipt files themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from starlette.responses import Response

from spendtrackr.web.api import ApiError, refused
from spendtrackr.web.core import WebDep, WebRoute, form_of

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)

PAGE = 25
STATUSES = ("pending", "approved", "rejected", "blocked", "reimbursed", "cancelled")


async def names_of(web: WebDep, ids: set[Any]) -> dict[str, str]:
    """People's names by id (`GET /users/names`), for whoever the page mentions."""
    wanted = sorted(str(i) for i in ids if i)
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 100):
        answer = await web.api.get("/users/names", id=wanted[start : start + 100])
        found.update({p["id"]: p["full_name"] for p in answer["items"]})
    return found


async def categories_of(web: WebDep) -> dict[str, str]:
    listed = await web.api.get("/categories", limit=200)
    return {c["id"]: c["name"] for c in listed["items"]}


@router.get("")
async def home(web: WebDep) -> Response:
    return web.redirect("/app/approvals" if web.role == "manager" else "/app/spends")


@router.get("/spends")
async def my_spends(
    web: WebDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
    min_amount: Annotated[str | None, Query(max_length=20)] = None,
    max_amount: Annotated[str | None, Query(max_length=20)] = None,
    category_id: Annotated[str | None, Query(max_length=36)] = None,
    everyone: Annotated[str | None, Query(max_length=3)] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    filters = {
        "status": status,
        "date_from": date_from,
        "date_to": date_to,
        "min_amount": min_amount,
        "max_amount": max_amount,
        "category_id": category_id,
    }
    mine = not (everyone and web.role != "employee")
    error = None
    try:
        listed, categories = await web.gather(
            web.api.get(
                "/spends",
                **filters,
                user_id=web.me["id"] if mine else None,
                limit=PAGE,
                offset=offset,
            ),
            categories_of(web),
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        error = exc.detail  # a filter the API refused: say which, show the form again
        listed, categories = {"items": [], "total": 0}, await categories_of(web)
    people = await names_of(web, {s["user_id"] for s in listed["items"]}) if not mine else {}
    return web.render(
        "spends.html.j2",
        title="My spends" if mine else "Spends",
        spends=listed["items"],
        total=listed.get("total") or 0,
        offset=offset,
        page=PAGE,
        filters=filters,
        everyone=not mine,
        statuses=STATUSES,
        categories=categories,
        people=people,
        error=error,
        query={k: v for k, v in {**filters, "everyone": everyone}.items() if v},
    )


@router.get("/spends/new")
async def new_spend(web: WebDep) -> Response:
    categories = await categories_of(web)
    return web.render(
        "spend_new.html.j2",
        title="New spend",
        categories=categories,
        values={"spend_date": datetime.now(UTC).date().isoformat()},
        error=None,
        base_currency=await _base_currency(web),
        idempotency_key=uuid.uuid4().hex,
    )


async def _base_currency(web: WebDep) -> str:
    company = await web.api.get("/companies/me")
    return str(company.get("base_currency") or "USD")


@router.post("/spends/new")
async def submit_spend(
    request: Request,
    web: WebDep,
    receipt: Annotated[UploadFile | None, File()] = None,  # without JS: the file comes along
) -> Response:
    form = await form_of(request)
    body: dict[str, Any] = {
        "amount": str(form.get("amount", "")).strip(),
        "currency": str(form.get("currency", "")).strip().upper(),
        "spend_date": str(form.get("spend_date", "")).strip(),
        "description": str(form.get("description", "")).strip(),
    }
    if form.get("category_id"):
        body["category_id"] = str(form["category_id"])
    receipt_id = str(form.get("receipt_id") or "").strip()
    try:
        # The form's own key: submitting it twice (a double click, a retry) makes one spend.
        key = str(form.get("idempotency_key") or "") or None
        spend = await web.api.post(
            "/spends", body, headers={"Idempotency-Key": key} if key else None
        )
    except ApiError as exc:
        return web.render(
            "spend_new.html.j2",
            status=exc.status,
            title="New spend",
            categories=await categories_of(web),
            values={**body, "receipt_id": receipt_id},
            error=exc.detail,
            base_currency=await _base_currency(web),
            idempotency_key=uuid.uuid4().hex,
        )
    attached = None
    if receipt_id:
        attached = web.api.post(
            f"/receipts/{uuid.UUID(receipt_id)}/match", {"spend_id": spend["id"]}
        )
    elif receipt is not None and receipt.filename:
        attached = web.api.post(
            "/receipts",
            files={"file": (receipt.filename, await receipt.read(), receipt.content_type)},
            data={"spend_id": spend["id"]},
        )
    if attached is not None and (error := await refused(attached, 404, 409, 413, 415, 422)):
        # The spend is made: its page says so, and why its receipt is not on it.
        return await _spend_view(
            web,
            spend["id"],
            submitted=True,
            receipt_error=f"The receipt could not be attached: {error.detail}",
        )
    return web.redirect(f"/app/spends/{spend['id']}?submitted=1")


@router.get("/spends/{spend_id}")
async def spend_page(web: WebDep, spend_id: uuid.UUID, submitted: int = 0) -> Response:
    return await _spend_view(web, spend_id, submitted=bool(submitted))


async def _spend_view(
    web: WebDep, spend_id: uuid.UUID, *, status: int = 200, **notices: object
) -> Response:
    spend, categories = await web.gather(web.api.get(f"/spends/{spend_id}"), categories_of(web))
    mentioned = {spend["user_id"]} | {
        a.get(k) for a in spend["approvals"] for k in ("approver_id", "decided_by")
    }
    people = await names_of(web, mentioned)
    return web.render(
        "spend.html.j2",
        status=status,
        title=spend["description"] or "Spend",
        spend=spend,
        categories=categories,
        people=people,
        **notices,
    )


@router.post("/spends/{spend_id}/receipt")
async def add_receipt(
    request: Request,
    web: WebDep,
    spend_id: uuid.UUID,
    upload: Annotated[UploadFile, File(alias="file")],
) -> Response:
    """A receipt for a spend that has one missing (a card purchase's, say)."""
    await form_of(request)
    sent = web.api.post(
        "/receipts",
        files={"file": (upload.filename, await upload.read(), upload.content_type)},
        data={"spend_id": str(spend_id)},
    )
    if error := await refused(sent, 403, 409, 413, 415, 422):
        return await _spend_view(web, spend_id, status=error.status, receipt_error=error.detail)
    return web.redirect(f"/app/spends/{spend_id}")


@router.post("/spends/{spend_id}/cancel")
async def cancel_spend(request: Request, web: WebDep, spend_id: uuid.UUID) -> Response:
    await form_of(request)
    await web.api.post(f"/spends/{spend_id}/cancel")
    return web.redirect(f"/app/spends/{spend_id}")


# --- receipts ------------------------------------------------------------------------------


@router.post("/receipts")
async def upload_receipt(
    request: Request,
    web: WebDep,
    upload: Annotated[UploadFile, File(alias="file")],
) -> Response:
    """A receipt dropped on the new-spend form, uploaded alone: its OCR runs while the person
    fills the form, and the form polls `/app/receipts/{id}/ocr` for the result."""
    await form_of(request)
    try:
        receipt = await web.api.post(
            "/receipts",
            files={"file": (upload.filename, await upload.read(), upload.content_type)},
        )
    except ApiError as exc:
        return web.render(
            "receipt_status.html.j2", status=exc.status, receipt=None, error=exc.detail
        )
    return web.render("receipt_status.html.j2", status=201, receipt=receipt, error=None)


@router.get("/receipts/{receipt_id}/ocr")
async def receipt_status(web: WebDep, receipt_id: uuid.UUID) -> Response:
    receipt = await web.api.get(f"/receipts/{receipt_id}")
    return web.render("receipt_status.html.j2", receipt=receipt, error=None)


@router.get("/receipts/{receipt_id}/file")
async def receipt_file(web: WebDep, receipt_id: uuid.UUID) -> Response:
    answer = await web.api.checked("GET", f"/receipts/{receipt_id}/file")
    keep = ("content-type", "content-disposition", "etag")
    headers = {k: v for k, v in answer.headers.items() if k.lower() in keep}
    headers["cache-control"] = "private, max-age=300"
    return web.finish(Response(answer.content, status_code=200, headers=headers))
