"""Users of a company, their invites and their team memberships."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.users.models import AuthSession, Role, TeamMember, User, UserInvite
from spendtrackr.apps.users.schemas import UserRead
from spendtrackr.core.db import get_in_company_or_404, referenced, utcnow
from spendtrackr.core.errors import Conflict, NotFound, ValidationFailed
from spendtrackr.core.pagination import Listed, SyncParams, listing
from spendtrackr.core.security import new_opaque_token, normalize_email, token_digest

USER_NOT_FOUND = "User not found"


class EmailTaken(Conflict):
    code = "email_taken"


class LastAdmin(Conflict):
    code = "last_admin"


def get_user_or_404(session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID) -> User:
    return get_in_company_or_404(session, User, user_id, company_id, detail=USER_NOT_FOUND)


def get_in_company_by_email(session: Session, *, company_id: uuid.UUID, email: str) -> User | None:
    """The company's user (not deleted) with this email."""
    return session.scalars(
        select(User).where(
            User.company_id == company_id, User.email_claim == normalize_email(email)
        )
    ).one_or_none()


def accounts_for_email(
    session: Session, email: str, *, company_id: uuid.UUID | None = None, limit: int = 20
) -> list[User]:
    """Every user (not deleted) with this email, one per company, oldest first: the accounts a
    person may log in to."""
    stmt = select(User).where(User.email == normalize_email(email), User.deleted_at.is_(None))
    if company_id is not None:
        stmt = stmt.where(User.company_id == company_id)
    return list(session.scalars(stmt.order_by(User.created_at, User.id).limit(limit)))


def check_manager(
    session: Session,
    *,
    company_id: uuid.UUID,
    manager_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
) -> None:
    """`manager_id` may manage `user_id` (or a team, with no user): an active user of the
    company, not the user, and not below the user in the chain of managers; else 422."""
    if manager_id is None:
        return
    if manager_id == user_id:
        raise ValidationFailed("A user cannot be their own manager", code="invalid_manager")
    manager = referenced(session, User, manager_id, company_id, what="manager_id")
    if not manager.is_active:
        # Their approvals would all go to the admins instead: a stale pick, not a choice.
        raise ValidationFailed(
            "manager_id is a deactivated user: pick an active one", code="invalid_manager"
        )
    # Up the new manager's chain: meeting the user there would make a loop of managers.
    seen = {manager.id}
    above = manager.manager_id
    while user_id is not None and above is not None and above not in seen:
        if above == user_id:
            raise ValidationFailed(
                "manager_id reports to this user: managers cannot form a loop",
                code="invalid_manager",
            )
        seen.add(above)
        above = session.scalar(
            select(User.manager_id).where(User.company_id == company_id, User.id == above)
        )


def create_user(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    email: str,
    full_name: str,
    role: Role,
    password_hash: str | None,
    manager_id: uuid.UUID | None = None,
    context: dict[str, object] | None = None,
) -> User:
    """A new user. The email is unique within the company only: nothing here says whether it
    has an account elsewhere."""
    check_manager(session, company_id=company_id, manager_id=manager_id, user_id=None)
    user = User(
        id=uuid.uuid4(),
        company_id=company_id,
        email=normalize_email(email),
        email_claim=normalize_email(email),
        full_name=full_name,
        role=role,
        password_hash=password_hash,
        manager_id=manager_id,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise EmailTaken("A user with this email already exists in this company") from None
    audit.record_change(
        session,
        user,
        "user.created",
        actor_id=actor_id,
        metadata={
            "email": user.email,
            "role": user.role,
            "invited": password_hash is None,
            **(context or {}),
        },
    )
    return user


def create_invite(session: Session, *, user: User, ttl: timedelta) -> str:
    token = new_opaque_token()
    session.add(
        UserInvite(
            company_id=user.company_id,
            user_id=user.id,
            token_hash=token_digest(token),
            expires_at=utcnow() + ttl,
        )
    )
    return token


def consume_invite(session: Session, *, token: str, hash_password: Callable[[str], str]) -> User:
    """Use a one-time invite: set the password (`hash_password` gets the user's email). Locked,
    so two accepts of one token give one."""
    invite = session.scalars(
        select(UserInvite).where(UserInvite.token_hash == token_digest(token)).with_for_update()
    ).one_or_none()
    now = utcnow()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise NotFound("Invite not found or expired", code="invalid_invite")
    user = session.get(User, invite.user_id)
    if user is None or not user.is_active:
        raise NotFound("Invite not found or expired", code="invalid_invite")
    invite.used_at = now
    user.password_hash = hash_password(user.email)
    audit.record_change(session, user, "user.invite_accepted", actor_id=user.id)
    return user


def list_users(
    session: Session,
    *,
    company_id: uuid.UUID,
    role: Role | None,
    is_active: bool | None,
    page: SyncParams,
) -> Listed:
    stmt = select(User).where(User.company_id == company_id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    stmt = stmt.order_by(User.created_at.desc(), User.id)
    return listing(session, stmt, page, updated=User.updated_at, ident=User.id)


def _lock_active_admins(session: Session, company_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the company's active admins' rows, always in the same (id) order.

    A request that may take an admin away takes these locks before any user row of its own:
    two admins demoting each other at once then wait for each other in turn instead of each
    holding the other's row and deadlocking. The second counts again once the first is done.
    """
    return list(
        session.scalars(
            select(User.id)
            .where(User.company_id == company_id, User.role == Role.admin, User.is_active)
            .order_by(User.id)
            .with_for_update()
        ).all()
    )


def _ensure_other_active_admin(user: User, admins: list[uuid.UUID]) -> None:
    """Refuse to leave a company without an active admin (`admins`: from `_lock_active_admins`)."""
    if user.role != Role.admin or not user.is_active:
        return
    if not [a for a in admins if a != user.id]:
        raise LastAdmin("The company's last active admin cannot be demoted or deactivated")


def _deactivate(user: User, now: datetime) -> None:
    user.is_active = False
    user.deactivated_at = now
    user.token_version += 1  # every session and access token of this user stops working now


def update_user(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    user_id: uuid.UUID,
    changes: dict[str, object],
    context: dict[str, object] | None = None,
) -> User:
    may_remove_admin = (
        changes.get("role", Role.admin) != Role.admin or changes.get("is_active") is False
    )
    # Before the user's own row: see _lock_active_admins.
    admins = _lock_active_admins(session, company_id) if may_remove_admin else []
    user = get_in_company_or_404(
        session, User, user_id, company_id, detail=USER_NOT_FOUND, for_update=True
    )
    if "manager_id" in changes:
        manager_id = changes["manager_id"]
        assert manager_id is None or isinstance(manager_id, uuid.UUID)
        check_manager(session, company_id=company_id, manager_id=manager_id, user_id=user.id)
    demoting = "role" in changes and changes["role"] != Role.admin and user.role == Role.admin
    deactivating = changes.get("is_active") is False and user.is_active
    if demoting or deactivating:
        _ensure_other_active_admin(user, admins)
    before = {k: getattr(user, k) for k in changes}
    for key, value in changes.items():
        if key == "is_active":
            continue
        setattr(user, key, value)
    if deactivating:
        _deactivate(user, utcnow())
    elif changes.get("is_active") is True and not user.is_active:
        _reactivate(session, user)
    if "role" in changes and before.get("role") != user.role:
        user.token_version += 1  # access tokens carry the role: re-issue them
    audit.record_change(
        session,
        user,
        "user.updated",
        actor_id=actor_id,
        metadata={
            "changes": {k: [before[k], getattr(user, k)] for k in changes},
            **(context or {}),
        },
    )
    return user


def _reactivate(session: Session, user: User) -> None:
    """Back from deactivation (or deletion, if nobody took the email since)."""
    user.is_active = True
    user.deactivated_at = None
    if user.deleted_at is not None:
        user.deleted_at = None
        user.email_claim = user.email
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise EmailTaken(
                "Another user of this company has this email now: the deleted user cannot be "
                "restored"
            ) from None


def delete_user(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    user_id: uuid.UUID,
    context: dict[str, object] | None = None,
) -> None:
    """Soft delete: deactivate, revoke every token, keep the row and its history, and free
    the email for someone new."""
    admins = _lock_active_admins(session, company_id)  # before the user's own row
    user = get_in_company_or_404(
        session, User, user_id, company_id, detail=USER_NOT_FOUND, for_update=True
    )
    if user.deleted_at is not None:
        raise NotFound(USER_NOT_FOUND)
    now = utcnow()
    if user.is_active:
        _ensure_other_active_admin(user, admins)
        _deactivate(user, now)
    user.deleted_at = now
    user.email_claim = None
    audit.record_change(session, user, "user.deleted", actor_id=actor_id, metadata=context)


def set_password(user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    user.token_version += 1


def team_ids_of(session: Session, user: User) -> frozenset[uuid.UUID]:
    """The teams `user` verifiably belongs to."""
    return frozenset(team_ids_for(session, [user.id]).get(user.id, []))


def team_ids_for(
    session: Session, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    ids = list(user_ids)
    result: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if not ids:
        return result
    rows = session.execute(
        select(TeamMember.user_id, TeamMember.team_id)
        .where(TeamMember.user_id.in_(ids))
        .order_by(TeamMember.created_at)
    )
    for user_id, team_id in rows:
        result[user_id].append(team_id)
    return result


def add_team_member(
    session: Session, *, company_id: uuid.UUID, team_id: uuid.UUID, user_id: uuid.UUID
) -> TeamMember:
    get_user_or_404(session, company_id=company_id, user_id=user_id)
    member = TeamMember(team_id=team_id, user_id=user_id, company_id=company_id)
    try:
        with session.begin_nested():
            session.add(member)
    except IntegrityError:
        raise Conflict("User is already a member of this team", code="already_member") from None
    return member


def remove_team_member(
    session: Session, *, company_id: uuid.UUID, team_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    member = session.scalars(
        select(TeamMember).where(
            TeamMember.company_id == company_id,
            TeamMember.team_id == team_id,
            TeamMember.user_id == user_id,
        )
    ).one_or_none()
    if member is None:
        raise NotFound("Team member not found")
    session.delete(member)


def team_member_ids(session: Session, *, team_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(TeamMember.user_id)
            .where(TeamMember.team_id == team_id)
            .order_by(TeamMember.created_at)
        )
    )


def member_ids(
    session: Session, *, company_id: uuid.UUID, team_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Everyone in any of these teams."""
    ids = list(team_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(TeamMember.user_id).where(
                TeamMember.company_id == company_id, TeamMember.team_id.in_(ids)
            )
        )
    )


def remove_all_members(session: Session, *, company_id: uuid.UUID, team_id: uuid.UUID) -> None:
    for member in session.scalars(
        select(TeamMember).where(TeamMember.company_id == company_id, TeamMember.team_id == team_id)
    ):
        session.delete(member)


def to_read(session: Session, users: list[User]) -> list[UserRead]:
    teams = team_ids_for(session, (u.id for u in users))
    return [
        UserRead.model_validate(u).model_copy(update={"team_ids": teams.get(u.id, [])})
        for u in users
    ]


def start_session(session: Session, *, user: User, ttl: timedelta) -> AuthSession:
    auth_session = AuthSession(
        id=uuid.uuid4(),
        company_id=user.company_id,
        user_id=user.id,
        token_version=user.token_version,
        expires_at=utcnow() + ttl,
    )
    session.add(auth_session)
    session.flush()  # refresh tokens reference it; no ORM relationship orders the inserts
    return auth_session


def revoke_session(session: Session, *, session_id: uuid.UUID) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def change_password(
    session: Session, *, user: User, password_hash: str, keep_session_id: uuid.UUID
) -> None:
    """New password: every other session dies (its version is now stale); this one lives on."""
    set_password(user, password_hash)
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == keep_session_id)
        .values(token_version=user.token_version)
    )
    audit.record_change(session, user, "user.password_changed", actor_id=user.id)


def active_user(
    session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID | None
) -> User | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or user.company_id != company_id or not user.is_active:
        return None
    return user


def active_ids_with_role(
    session: Session, *, company_id: uuid.UUID, role: str, exclude: uuid.UUID | None = None
) -> list[uuid.UUID]:
    stmt = select(User.id).where(User.company_id == company_id, User.role == role, User.is_active)
    if exclude is not None:
        stmt = stmt.where(User.id != exclude)
    return list(session.scalars(stmt.order_by(User.created_at)))


def report_ids(
    session: Session, *, company_id: uuid.UUID, manager_id: uuid.UUID
) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(User.id).where(User.company_id == company_id, User.manager_id == manager_id)
        )
    )


def names(session: Session, *, company_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.full_name).where(User.company_id == company_id, User.id.in_(ids))
    )
    return {row.id: row.full_name for row in rows}


def directory(session: Session, *, company_id: uuid.UUID, limit: int) -> dict[uuid.UUID, str]:
    """The company's active people by name."""
    rows = session.execute(
        select(User.id, User.full_name)
        .where(User.company_id == company_id, User.is_active.is_(True))
        .order_by(User.full_name, User.id)
        .limit(limit)
    )
    return {row.id: row.full_name for row in rows}


def by_ids(session: Session, *, company_id: uuid.UUID, ids: list[uuid.UUID]) -> list[User]:
    if not ids:
        return []
    return list(
        session.scalars(select(User).where(User.company_id == company_id, User.id.in_(ids)))
    )
