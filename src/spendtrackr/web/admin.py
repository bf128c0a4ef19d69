"""Administration: users, teams, and policies, with a rule editor that shows the API's
validation errors and a dry run of the draft against the latest spends."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from spendtrackr.web.api import ApiError, refused
from spendtrackr.web.core import WebDep, WebRoute, form_of

router = APIRouter(route_class=WebRoute, prefix="/app/admin", include_in_schema=False)

ROLES = ("employee", "manager", "finance", "admin")
EXAMPLE_RULES = [
    {
        "condition": {"amount_gt": 500},
        "action": {"type": "require_approval", "approver": "manager"},
        "priority": 10,
    }
]


@router.get("")
async def admin_home(web: WebDep) -> Response:
    return web.redirect("/app/admin/users")


# --- users and teams -------------------------------------------------------------------------


async def _people_page(
    web: WebDep,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
) -> Response:
    users, teams = await web.gather(
        web.api.get("/admin/users", limit=200), web.api.get("/teams", limit=200)
    )
    names = {u["id"]: u["full_name"] for u in users["items"]}
    return web.render(
        "admin_people.html.j2",
        status=status,
        title="Users and teams",
        users=users["items"],
        total=users.get("total"),
        teams=teams["items"],
        names=names,
        roles=ROLES,
        error=error,
        values=values or {},
    )


@router.get("/users")
async def people(web: WebDep) -> Response:
    return await _people_page(web)


@router.post("/users")
async def create_user(
    request: Request,
    web: WebDep,
    email: Annotated[str, Form(max_length=320)],
    full_name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=20)] = "employee",
    manager_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    await form_of(request)
    body: dict[str, Any] = {"email": email.strip(), "full_name": full_name.strip(), "role": role}
    if manager_id:
        body["manager_id"] = manager_id
    # No password: the person gets an invitation.
    if error := await refused(web.api.post("/admin/users", body), 409, 422):
        return await _people_page(web, error=error.detail, status=error.status, values=body)
    return web.redirect("/app/admin/users")


@router.post("/users/{user_id}")
async def update_user(
    request: Request,
    web: WebDep,
    user_id: uuid.UUID,
    role: Annotated[str, Form(max_length=20)],
    is_active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """A person's role, and whether they may sign in (deactivating ends their sessions)."""
    await form_of(request)
    changed = web.api.patch(f"/admin/users/{user_id}", {"role": role, "is_active": bool(is_active)})
    if error := await refused(changed, 409, 422):
        return await _people_page(web, error=error.detail, status=error.status)
    return web.redirect("/app/admin/users")


@router.post("/teams")
async def create_team(
    request: Request,
    web: WebDep,
    name: Annotated[str, Form(max_length=200)],
    manager_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    await form_of(request)
    body: dict[str, Any] = {"name": name.strip()}
    if manager_id:
        body["manager_id"] = manager_id
    if error := await refused(web.api.post("/teams", body), 409, 422):
        return await _people_page(web, error=error.detail, status=error.status)
    return web.redirect("/app/admin/users")


@router.post("/teams/{team_id}/members")
async def add_member(
    request: Request, web: WebDep, team_id: uuid.UUID, user_id: Annotated[uuid.UUID, Form()]
) -> Response:
    await form_of(request)
    added = web.api.post(f"/teams/{team_id}/members", {"user_id": str(user_id)})
    if error := await refused(added, 409, 422):
        return await _people_page(web, error=error.detail, status=error.status)
    return web.redirect("/app/admin/users")


# --- policies --------------------------------------------------------------------------------


@router.get("/policies")
async def policies(web: WebDep) -> Response:
    listed = await web.api.get("/policies", limit=100)
    return web.render("admin_policies.html.j2", title="Policies", policies=listed["items"])


async def _editor(
    web: WebDep,
    *,
    policy: dict[str, Any] | None,
    name: str,
    rules_text: str,
    active: bool,
    error: str | None = None,
    dry_run: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return web.render(
        "admin_policy.html.j2",
        status=status,
        title=f"Policy: {name}" if policy else "New policy",
        policy=policy,
        name=name,
        rules_text=rules_text,
        active=active,
        error=error,
        dry_run=dry_run,
    )


@router.get("/policies/new")
async def new_policy(web: WebDep) -> Response:
    return await _editor(
        web, policy=None, name="", rules_text=json.dumps(EXAMPLE_RULES, indent=2), active=True
    )


@router.get("/policies/{policy_id}")
async def edit_policy(web: WebDep, policy_id: uuid.UUID) -> Response:
    policy = await web.api.get(f"/policies/{policy_id}")
    return await _editor(
        web,
        policy=policy,
        name=policy["name"],
        rules_text=json.dumps(policy["rules"], indent=2),
        active=policy["is_active"],
    )


@router.post("/policies/save")
async def save_policy(
    request: Request,
    web: WebDep,
    name: Annotated[str, Form(max_length=200)],
    rules: Annotated[str, Form(max_length=200_000)],
    action: Annotated[str, Form(pattern="^(save|dry_run)$")] = "save",
    policy_id: Annotated[str, Form(max_length=36)] = "",
    is_active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Save the policy (the API validates it), or try it on the latest spends first."""
    await form_of(request)
    policy = await web.api.get(f"/policies/{uuid.UUID(policy_id)}") if policy_id else None
    state: dict[str, Any] = {
        "policy": policy,
        "name": name,
        "rules_text": rules,
        "active": bool(is_active),
    }
    try:
        parsed = json.loads(rules)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return await _editor(
            web, **state, error=f"The rules are not valid JSON ({where}): {exc.msg}", status=422
        )
    try:
        if action == "dry_run":
            body: dict[str, Any] = {"rules": parsed, "name": name or "Draft"}
            if policy_id:
                body["policy_id"] = policy_id
            result = await web.api.post("/policies/dry-run", body)
            return await _editor(web, **state, dry_run=result)
        payload = {"name": name, "rules": parsed, "is_active": bool(is_active)}
        if policy_id:
            await web.api.patch(f"/policies/{uuid.UUID(policy_id)}", payload)
        else:
            await web.api.post("/policies", payload)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return await _editor(web, **state, error=exc.detail, status=422)
    return web.redirect("/app/admin/policies")
