"""SCIM 2.0 provisioning (RFC 7643/7644): Users are the company's users, Groups its teams.

Payloads are parsed, patched and rendered by `scim2-models`; the whole resource the provider
wrote is kept (`ScimResource.body`) so that every attribute reads back as written, and what
SpendTrackr acts on is applied to the user or team: the email (the primary of `emails`, else a
`userName` that is an email), the name, `active` (false deactivates the user and ends their
sessions); a group's `displayName` and `members`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError
from scim2_models import (
    Context,
    Group,
    ListResponse,
    PatchOp,
    Resource,
    ResponseParameters,
    User,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.scim.models import ScimResource, ScimToken
from spendtrackr.apps.teams import flows as team_flows
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.teams.models import Team
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import Role
from spendtrackr.apps.users.models import User as Person
from spendtrackr.core.db import utcnow
from spendtrackr.core.errors import AppError

R = TypeVar("R", bound=Resource[Any])
Tenant = Company  # the company a SCIM token provisions
MAX_COUNT = 200


class ScimError(Exception):
    """An error answered in SCIM's own shape (`urn:...:Error`)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the token -----------------------------------------------------------------------------------


def rotate_token(session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID) -> str:
    """A new bearer token for the company's provider (the old one stops working): shown once."""
    token = "scim_" + secrets.token_urlsafe(32)
    row = session.get(ScimToken, company_id, with_for_update=True)
    if row is None:
        row = ScimToken(company_id=company_id)
        session.add(row)
    row.token_hash = _hash(token)
    row.created_at = utcnow()
    company = companies_service.get_company_or_404(session, company_id)
    audit.record_change(session, company, "scim.token_rotated", actor_id=actor_id)
    return token


def company_for(session: Session, token: str) -> Company:
    row = session.scalars(
        select(ScimToken).where(ScimToken.token_hash == _hash(token))
    ).one_or_none()
    if row is None:
        raise ScimError(401, "The SCIM bearer token is not valid")
    return companies_service.get_company_or_404(session, row.company_id)


# --- rendering -----------------------------------------------------------------------------------

KINDS: dict[str, type[Resource[Any]]] = {"User": User, "Group": Group}
PATHS = {"User": "Users", "Group": "Groups"}


def _model(row: ScimResource, base_url: str) -> Resource[Any]:
    cls = KINDS[row.kind]
    return cls.model_validate(
        {
            **row.body,
            "id": str(row.id),
            "meta": {
                "resourceType": row.kind,
                "created": row.created_at.isoformat(),
                "lastModified": row.updated_at.isoformat(),
                "location": f"{base_url}/{PATHS[row.kind]}/{row.id}",
                "version": f'W/"{row.version}"',
            },
        }
    )


def render(
    row: ScimResource,
    base_url: str,
    ctx: Context,
    attributes: list[str] | None = None,
    excluded: list[str] | None = None,
) -> dict[str, Any]:
    return _model(row, base_url).model_dump(
        scim_ctx=ctx, response_parameters=_parameters(attributes, excluded)
    )


def _parameters(
    attributes: list[str] | None, excluded: list[str] | None
) -> ResponseParameters[Any] | None:
    if not attributes and not excluded:
        return None
    try:
        return ResponseParameters(attributes=attributes, excluded_attributes=excluded)
    except ValidationError:
        raise ScimError(
            400, "attributes and excludedAttributes cannot be combined", "invalidValue"
        ) from None


def _parse(cls: type[R], payload: Any, ctx: Context) -> R:
    try:
        return cls.model_validate(payload, scim_ctx=ctx)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScimError(400, f"{where}: {first['msg']}", "invalidValue") from None


def _stored(resource: Resource[Any]) -> dict[str, Any]:
    body = resource.model_dump(mode="json", exclude_none=True, by_alias=True)
    body.pop("id", None)
    body.pop("meta", None)
    return body


def _row(session: Session, company: Company, kind: str, resource_id: str) -> ScimResource:
    try:
        key = uuid.UUID(resource_id)
    except ValueError:
        key = None
    row = session.get(ScimResource, key, with_for_update=True) if key else None
    if row is None or row.company_id != company.id or row.kind != kind:
        raise ScimError(404, f"{kind} {resource_id} not found")
    return row


def _taken(
    session: Session, company: Company, kind: str, key: str, besides: uuid.UUID | None
) -> None:
    stmt = select(ScimResource.id).where(
        ScimResource.company_id == company.id, ScimResource.kind == kind, ScimResource.key == key
    )
    if besides is not None:
        stmt = stmt.where(ScimResource.id != besides)
    if session.scalar(stmt.limit(1)) is not None:
        what = "userName" if kind == "User" else "displayName"
        raise ScimError(409, f"{what} {key!r} is taken", "uniqueness")


def _insert(
    session: Session,
    company: Company,
    kind: str,
    entity_id: uuid.UUID,
    key: str,
    resource: Resource[Any],
    base_url: str,
) -> dict[str, Any]:
    """Keep a new resource as the provider wrote it (under its user's or team's id)."""
    now = utcnow()
    row = ScimResource(
        id=entity_id,
        company_id=company.id,
        kind=kind,
        key=key,
        external_id=resource.external_id,
        body=_stored(resource),
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(row)
    session.flush()
    return render(row, base_url, Context.RESOURCE_CREATION_RESPONSE)


def _rewrite(
    session: Session,
    row: ScimResource,
    key: str,
    resource: Resource[Any],
    base_url: str,
    ctx: Context,
) -> dict[str, Any]:
    """Keep a replaced or patched resource: a new version (`updated_at` follows the change)."""
    row.key, row.external_id, row.body = key, resource.external_id, _stored(resource)
    row.version += 1
    session.flush()
    return render(row, base_url, ctx)


# --- listing -------------------------------------------------------------------------------------

_FILTER = re.compile(r'^\s*([A-Za-z.]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
FILTERABLE = {
    "User": {"username": "key", "externalid": "external_id", "id": "id"},
    "Group": {"displayname": "key", "externalid": "external_id", "id": "id"},
}


def search(
    session: Session,
    company: Company,
    kind: str | None,
    *,
    base_url: str,
    filter_: str | None,
    start_index: int,
    count: int | None,
    attributes: list[str] | None,
    excluded: list[str] | None,
) -> dict[str, Any]:
    """`filter` as identity providers send it (`userName eq "..."`, `externalId eq "..."`,
    `displayName eq "..."` for groups), `startIndex`/`count` pages."""
    stmt = select(ScimResource).where(ScimResource.company_id == company.id)
    if kind is not None:
        stmt = stmt.where(ScimResource.kind == kind)
    if filter_:
        match = _FILTER.match(filter_)
        kinds = [kind] if kind is not None else list(FILTERABLE)
        columns = {FILTERABLE[k].get(match.group(1).lower()) for k in kinds} if match else {None}
        column = columns.pop() if len(columns) == 1 else None
        if match is None or column is None:
            raise ScimError(400, f"filter {filter_!r} is not supported", "invalidFilter")
        value = match.group(2).replace('\\"', '"')
        if column == "key":
            lowered = value.lower() if kind == "User" else value
            stmt = stmt.where(ScimResource.key.in_({value, lowered}))
        elif column == "external_id":
            stmt = stmt.where(ScimResource.external_id == value)
        else:
            try:
                stmt = stmt.where(ScimResource.id == uuid.UUID(value))
            except ValueError:
                stmt = stmt.where(ScimResource.id.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    start = max(start_index, 1)
    size = MAX_COUNT if count is None else max(0, min(count, MAX_COUNT))
    rows = list(
        session.scalars(
            stmt.order_by(ScimResource.created_at, ScimResource.id).offset(start - 1).limit(size)
        )
    )
    resources = [_model(row, base_url) for row in rows]
    model = KINDS[kind] if kind is not None else User | Group
    listed: ListResponse[Any] = ListResponse[model](  # type: ignore[valid-type]
        total_results=total, start_index=start, items_per_page=len(rows), resources=resources
    )
    return listed.model_dump(
        scim_ctx=Context.SEARCH_RESPONSE, response_parameters=_parameters(attributes, excluded)
    )


# --- users ----------------------------------------------------------------------------------------


def _email_of(user: User[Any]) -> str:
    emails = user.emails or []
    chosen = next((e for e in emails if e.primary), emails[0] if emails else None)
    for candidate in ([chosen.value] if chosen and chosen.value else []) + [user.user_name]:
        try:
            return validate_email(candidate or "", check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            continue
    # No email at all: an address under the reserved .invalid domain keeps the user unique;
    # they cannot sign in or receive email until the provider sends a real one.
    return f"{uuid.uuid5(uuid.NAMESPACE_URL, user.user_name or '').hex}@scim.invalid"


def _full_name(user: User[Any]) -> str:
    if user.display_name:
        return user.display_name[:200]
    name = user.name
    if name is not None:
        if name.formatted:
            return name.formatted[:200]
        parts = [p for p in (name.given_name, name.family_name) if p]
        if parts:
            return " ".join(parts)[:200]
    return (user.user_name or "")[:200]


def _apply_user(session: Session, company: Company, person: Person, user: User[Any]) -> None:
    changes: dict[str, object] = {}
    email, full_name = _email_of(user), _full_name(user)
    if person.email != email:
        changes["email"] = email
        changes["email_claim"] = email
    if person.full_name != full_name:
        changes["full_name"] = full_name
    active = user.active is not False
    if person.is_active != active:
        changes["is_active"] = active
    if changes:
        try:
            users_service.update_user(
                session,
                company_id=company.id,
                actor_id=None,
                user_id=person.id,
                changes=changes,
                context={"via": "scim"},
            )
        except AppError as exc:
            raise ScimError(
                409 if exc.status_code == 409 else 400, exc.detail, "uniqueness"
            ) from None


def create_user(session: Session, company: Company, payload: Any, base_url: str) -> dict[str, Any]:
    user = _parse(User, payload, Context.RESOURCE_CREATION_REQUEST)
    if not user.user_name:
        raise ScimError(400, "userName is required", "invalidValue")
    key = user.user_name.lower()
    _taken(session, company, "User", key, None)
    email = _email_of(user)
    existing = users_service.get_in_company_by_email(session, company_id=company.id, email=email)
    if existing is not None:
        # A person the company had before provisioning: the provider takes them over (once).
        if session.get(ScimResource, existing.id) is not None:
            raise ScimError(409, f"{email} is provisioned already", "uniqueness")
        person = existing
        _apply_user(session, company, person, user)
    else:
        person = users_service.create_user(
            session,
            company_id=company.id,
            actor_id=None,
            email=email,
            full_name=_full_name(user),
            role=Role.employee,
            password_hash=None,
            context={"via": "scim"},
        )
    if user.active is False:
        _apply_user(session, company, person, user)
    return _insert(session, company, "User", person.id, key, user, base_url)


def _save_user(
    session: Session,
    company: Company,
    row: ScimResource,
    user: User[Any],
    base_url: str,
    ctx: Context,
) -> dict[str, Any]:
    if not user.user_name:
        raise ScimError(400, "userName is required", "invalidValue")
    key = user.user_name.lower()
    _taken(session, company, "User", key, row.id)
    person = users_service.get_user_or_404(session, company_id=company.id, user_id=row.id)
    _apply_user(session, company, person, user)
    return _rewrite(session, row, key, user, base_url, ctx)


def replace_user(
    session: Session, company: Company, resource_id: str, payload: Any, base_url: str
) -> dict[str, Any]:
    row = _row(session, company, "User", resource_id)
    user = _parse(User, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    return _save_user(session, company, row, user, base_url, Context.RESOURCE_REPLACEMENT_RESPONSE)


def patch_user(
    session: Session, company: Company, resource_id: str, payload: Any, base_url: str
) -> dict[str, Any]:
    row = _row(session, company, "User", resource_id)
    user = _model(row, base_url)
    _patch(User, user, payload)
    assert isinstance(user, User)
    return _save_user(session, company, row, user, base_url, Context.RESOURCE_PATCH_RESPONSE)


def _patch(cls: type[Resource[Any]], resource: Resource[Any], payload: Any) -> None:
    try:
        operation = PatchOp[cls].model_validate(  # type: ignore[valid-type]
            payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        operation.patch(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ScimError(400, str(first["msg"]), "invalidValue") from None
    except Exception as exc:  # scim2-models' SCIM exceptions carry their own status
        to_error = getattr(exc, "to_error", None)
        if to_error is None:
            raise
        error = to_error()
        raise ScimError(int(error.status or 400), str(error.detail), error.scim_type) from None


def delete_user(session: Session, company: Company, resource_id: str) -> None:
    """The user is deleted (deactivated, sessions ended, email freed); their history stays."""
    row = _row(session, company, "User", resource_id)
    try:
        users_service.delete_user(
            session, company_id=company.id, actor_id=None, user_id=row.id, context={"via": "scim"}
        )
    except AppError as exc:
        raise ScimError(409, exc.detail, "mutability") from None
    session.delete(row)


def get(
    session: Session,
    company: Company,
    kind: str,
    resource_id: str,
    base_url: str,
    attributes: list[str] | None,
    excluded: list[str] | None,
) -> dict[str, Any]:
    row = _row(session, company, kind, resource_id)
    return render(row, base_url, Context.RESOURCE_QUERY_RESPONSE, attributes, excluded)


# --- groups --------------------------------------------------------------------------------------


def _member_ids(session: Session, company: Company, group: Group) -> set[uuid.UUID]:
    ids = set()
    for member in group.members or []:
        try:
            user_id = uuid.UUID(str(member.value))
        except ValueError:
            raise ScimError(400, f"member {member.value!r} is not a user", "invalidValue") from None
        found = session.get(Person, user_id)
        if found is None or found.company_id != company.id:
            raise ScimError(400, f"member {member.value!r} is not a user", "invalidValue")
        ids.add(user_id)
    return ids


def _apply_group(session: Session, company: Company, team: Team, group: Group) -> None:
    name = (group.display_name or "")[:200]
    if not name:
        raise ScimError(400, "displayName is required", "invalidValue")
    if team.name != name:
        teams_service.update_team(
            session, company_id=company.id, actor_id=None, team_id=team.id, changes={"name": name}
        )
    wanted = _member_ids(session, company, group)
    current = set(users_service.team_member_ids(session, team_id=team.id))
    for user_id in sorted(wanted - current):
        team_flows.join(
            session, company_id=company.id, actor_id=None, team_id=team.id, user_id=user_id
        )
    for user_id in sorted(current - wanted):
        team_flows.leave(
            session, company_id=company.id, actor_id=None, team_id=team.id, user_id=user_id
        )


def create_group(session: Session, company: Company, payload: Any, base_url: str) -> dict[str, Any]:
    group = _parse(Group, payload, Context.RESOURCE_CREATION_REQUEST)
    name = (group.display_name or "")[:200]
    if not name:
        raise ScimError(400, "displayName is required", "invalidValue")
    _taken(session, company, "Group", name, None)
    try:
        team = teams_service.create_team(
            session, company_id=company.id, actor_id=None, name=name, manager_id=None
        )
    except AppError as exc:
        raise ScimError(409, exc.detail, "uniqueness") from None
    _apply_group(session, company, team, group)
    return _insert(session, company, "Group", team.id, name, group, base_url)


def _save_group(
    session: Session, company: Company, row: ScimResource, group: Group, base_url: str, ctx: Context
) -> dict[str, Any]:
    name = (group.display_name or "")[:200]
    _taken(session, company, "Group", name, row.id)
    team = teams_service.get_team_or_404(session, company_id=company.id, team_id=row.id)
    try:
        _apply_group(session, company, team, group)
    except AppError as exc:
        raise ScimError(409, exc.detail, "uniqueness") from None
    return _rewrite(session, row, name, group, base_url, ctx)


def replace_group(
    session: Session, company: Company, resource_id: str, payload: Any, base_url: str
) -> dict[str, Any]:
    row = _row(session, company, "Group", resource_id)
    group = _parse(Group, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    return _save_group(
        session, company, row, group, base_url, Context.RESOURCE_REPLACEMENT_RESPONSE
    )


def patch_group(
    session: Session, company: Company, resource_id: str, payload: Any, base_url: str
) -> dict[str, Any]:
    row = _row(session, company, "Group", resource_id)
    group = _model(row, base_url)
    _patch(Group, group, payload)
    assert isinstance(group, Group)
    return _save_group(session, company, row, group, base_url, Context.RESOURCE_PATCH_RESPONSE)


def delete_group(session: Session, company: Company, resource_id: str) -> None:
    row = _row(session, company, "Group", resource_id)
    team = teams_service.get_team_or_404(session, company_id=company.id, team_id=row.id)
    try:
        policies_service.ensure_not_named(
            session, company_id=company.id, kind="team", item_id=team.id
        )
        users_service.remove_all_members(session, company_id=company.id, team_id=team.id)
        session.flush()
        teams_service.delete_team(session, company_id=company.id, actor_id=None, team=team)
    except AppError as exc:
        raise ScimError(409, exc.detail) from None
    session.delete(row)
