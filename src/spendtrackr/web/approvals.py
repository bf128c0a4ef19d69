"""The approvals inbox: the steps waiting for me, each with its spend; approve or reject one
(with a comment), or approve several at once."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from spendtrackr.web.api import ApiError, refused
from spendtrackr.web.core import WebDep, WebRoute, form_of
from spendtrackr.web.spends import categories_of, names_of

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)


DONE = {"approved": "Approved", "rejected": "Rejected"}


@router.get("/approvals")
async def inbox(web: WebDep, done: str | None = None, n: int = 0) -> Response:
    if done == "bulk":
        return await _inbox(web, done=f"Approved {n}")
    return await _inbox(web, done=DONE.get(done or ""))


async def _inbox(
    web: WebDep, *, done: str | None = None, failed: str | None = None, status: int = 200
) -> Response:
    steps = await web.api.get("/approvals", status="pending", limit=100)
    by_id = await _spends_of(web, {s["spend_id"] for s in steps["items"]})
    people, categories = await web.gather(
        names_of(web, {s["user_id"] for s in by_id.values()}), categories_of(web)
    )
    rows = [{"step": step, "spend": by_id[step["spend_id"]]} for step in steps["items"]]
    return web.render(
        "approvals.html.j2",
        status=status,
        title="Approvals",
        rows=rows,
        total=steps.get("total") or 0,
        people=people,
        categories=categories,
        done=done,
        failed=failed,
    )


async def _spends_of(web: WebDep, wanted: set[str]) -> dict[str, Any]:
    """The spends of the steps, by id: one page of the pending spends the person may see holds
    most (their reports', their teams', or the company's); the rest (a colleague's, stood in
    for) are read one by one. Every call counts against the person's rate limit, and the inbox
    is reloaded after each decision."""
    if not wanted:
        return {}
    listed = await web.api.get("/spends", status="pending", limit=200)
    found = {s["id"]: s for s in listed["items"] if s["id"] in wanted}
    rest = await web.gather(*(web.api.get(f"/spends/{i}") for i in sorted(wanted - found.keys())))
    return found | {s["id"]: s for s in rest}


@router.post("/approvals/{approval_id}")
async def decide(
    request: Request,
    web: WebDep,
    approval_id: uuid.UUID,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    await form_of(request)
    if decision == "reject" and not comment.strip():
        return await _inbox(web, failed="Say why in the comment to reject", status=422)
    body = {"approved": decision == "approve", "comment": comment.strip() or None}
    if error := await refused(web.api.post(f"/approvals/{approval_id}/decision", body), 403, 409):
        return await _inbox(web, failed=error.detail, status=error.status)
    return web.redirect(f"/app/approvals?done={'approved' if body['approved'] else 'rejected'}")


@router.post("/approvals")
async def approve_many(request: Request, web: WebDep) -> Response:
    """Bulk approve: each selected step is decided on its own (one refused, say decided by
    someone else meanwhile, does not stop the others)."""
    form = await form_of(request)
    chosen = [str(v) for v in form.getlist("approval_id")][:100]
    approved, refused = 0, []
    for approval_id in chosen:
        try:
            await web.api.post(f"/approvals/{uuid.UUID(approval_id)}/decision", {"approved": True})
            approved += 1
        except (ApiError, ValueError) as exc:
            refused.append(getattr(exc, "detail", str(exc)))
    if refused:
        return await _inbox(web, done=f"Approved {approved}", failed="; ".join(refused))
    return web.redirect(f"/app/approvals?done=bulk&n={approved}")
