"""`spendtrackr demo`: a realistic demo company, built through the same flows the API runs, and
`--spends N` beyond a few thousand builds a large tenant for the benchmark in bulk.

Both are safe to run twice: a tenant that exists already is reported, not built again.
"""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from fpdf import FPDF
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table as RichTable
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.approvals import flows as approval_flows
from spendtrackr.apps.approvals import service as approvals_service
from spendtrackr.apps.approvals.models import StepStatus
from spendtrackr.apps.auth import flows as auth_flows
from spendtrackr.apps.cards import flows as card_flows
from spendtrackr.apps.cards.schemas import AuthorizationRequest, CardCreate, SpendingLimit
from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.policies.rules import Rule
from spendtrackr.apps.receipts import flows as receipt_flows
from spendtrackr.apps.receipts.extractors import LocalExtractor
from spendtrackr.apps.spends import flows as spend_flows
from spendtrackr.apps.spends.models import Spend
from spendtrackr.apps.spends.schemas import SpendCreate
from spendtrackr.apps.teams import flows as team_flows
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import Role, User
from spendtrackr.core.config import Settings
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.pagination import PageParams
from spendtrackr.core.security import Passwords
from spendtrackr.core.storage import LocalStorage

PASSWORD = "demo-password-1234"  # noqa: S105 - the published password of demo logins
CATEGORIES = [
    ("Travel", "6100"),
    ("Meals", "6200"),
    ("Software", "6300"),
    ("Office supplies", "6400"),
    ("Lodging", "6110"),
    ("Training", "6500"),
    ("Gambling", "6999"),
]
VENDORS = [
    "Delta Air Lines",
    "United Airlines",
    "Marriott",
    "Hilton",
    "Uber",
    "Lyft",
    "Amazon",
    "Staples",
    "GitHub",
    "Atlassian",
    "Figma",
    "Blue Bottle Coffee",
    "Sweetgreen",
    "Coursera",
    "WeWork",
]
FIRST = [
    "Ava",
    "Ben",
    "Chloe",
    "Dan",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Isla",
    "Jon",
    "Kai",
    "Lena",
    "Mo",
    "Nia",
    "Omar",
    "Priya",
]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Novak", "Silva", "Kim", "Dubois", "Rossi", "Haddad"]
POLICIES = [
    {
        "condition": {"amount_gt": 500},
        "action": {"type": "require_approval", "approver": "manager"},
        "priority": 10,
    },
    {
        "condition": {"amount_gt": 2000},
        "action": {"type": "require_approval", "approver": "role:finance"},
        "priority": 20,
    },
    {
        "condition": {"amount_gt": 75, "receipt_missing": True},
        "action": {"type": "flag", "flag": "receipt_missing"},
        "priority": 30,
    },
]


@dataclass
class Tenant:
    company_id: uuid.UUID
    admin: User
    logins: list[tuple[str, str]] = field(default_factory=list)
    created: bool = True


def email_for(tag: str, name: str) -> str:
    return f"{name.lower().replace(' ', '.')}@{tag}.spendtrackr.example"


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def existing_admin(session: Session, admin_email: str) -> User | None:
    accounts = users_service.accounts_for_email(session, admin_email)
    return accounts[0] if accounts else None


def _people(
    session: Session,
    passwords: Passwords,
    company_id: uuid.UUID,
    admin: User,
    tag: str,
    employees: int,
) -> dict[str, list[User]]:
    password_hash = passwords.hash(
        PASSWORD, email=None
    )  # one for all: each is rehashed at its first login
    people: dict[str, list[User]] = {"admin": [admin], "finance": [], "manager": [], "employee": []}

    def add(role: Role, name: str, manager: User | None = None) -> User:
        user = users_service.create_user(
            session,
            company_id=company_id,
            actor_id=admin.id,
            email=email_for(tag, name),
            full_name=name,
            role=role,
            password_hash=password_hash,
            manager_id=manager.id if manager else None,
        )
        people[role.value].append(user)
        return user

    add(Role.finance, "Fiona Finance")
    managers = [add(Role.manager, f"{FIRST[-1 - i]} {LAST[-1 - i]}") for i in range(3)]
    for i in range(employees):
        add(
            Role.employee,
            f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]} {i}",
            manager=managers[i % 3],
        )
    session.flush()
    return people


def _catalog(
    session: Session, company_id: uuid.UUID, admin: User
) -> tuple[list[Category], list[Vendor]]:
    categories = [
        catalog_service.create_item(
            session,
            Category,
            company_id=company_id,
            actor_id=admin.id,
            fields={"name": n, "gl_code": gl},
        )
        for n, gl in CATEGORIES
    ]
    vendors = [
        catalog_service.create_item(
            session, Vendor, company_id=company_id, actor_id=admin.id, fields={"name": n}
        )
        for n in VENDORS
    ]
    return categories, vendors


def base_tenant(
    session: Session, passwords: Passwords, *, tag: str, company: str, employees: int
) -> tuple[Tenant, dict[str, list[User]], list[Category], list[Vendor]]:
    _, admin = auth_flows.create_company_with_admin(
        session,
        passwords,
        company_name=company,
        base_currency="USD",
        email=email_for(tag, "admin"),
        full_name="Avery Admin",
        password=PASSWORD,
        starter_workspace=False,  # the demo's own catalog and policies follow
    )
    tenant = Tenant(company_id=admin.company_id, admin=admin)
    people = _people(session, passwords, tenant.company_id, admin, tag, employees)
    for i, manager in enumerate(people["manager"]):
        team = team_flows.create_team(
            session,
            actor=admin,
            name=["Engineering", "Sales", "Operations"][i],
            manager_id=manager.id,
        )
        for employee in people["employee"][i::3]:
            team_flows.add_member(session, actor=admin, team_id=team.id, user_id=employee.id)
    categories, vendors = _catalog(session, tenant.company_id, admin)
    rules = [Rule.model_validate(r) for r in POLICIES]
    rules.append(
        Rule.model_validate(
            {
                "condition": {"category_in": [str(categories[-1].id)]},
                "action": {"type": "block", "reason": "Gambling is not a business expense"},
                "priority": 1,
            }
        )
    )
    policies_service.create_policy(
        session,
        company_id=tenant.company_id,
        actor_id=admin.id,
        name="Company expense policy",
        is_active=True,
        rules=rules,
    )
    tenant.logins = [
        (u.email, u.role)
        for role in ("admin", "finance", "manager", "employee")
        for u in people[role][:3]
    ]
    return tenant, people, categories, vendors


def random_amount(rng: random.Random) -> Decimal:
    roll = rng.random()
    if roll < 0.6:
        cents = rng.randint(500, 12000)
    elif roll < 0.9:
        cents = rng.randint(12000, 80000)
    else:
        cents = rng.randint(80000, 450000)
    return Decimal(cents) / 100


def receipt_pdf(vendor: str, day: date, amount: Decimal) -> bytes:
    pdf = FPDF(format=(105, 148))
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in (
        vendor,
        f"Date: {day.isoformat()}",
        f"Item 1 {amount:.2f}",
        f"TOTAL ${amount:.2f}",
        "Thank you",
    ):
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def build_demo(
    factory: sessionmaker[Session], settings: Settings, *, spends: int, seed: int, console: Console
) -> Tenant:
    """A company a person can explore: every role, teams, a policy set, cards, spends over the last
    twelve months in every status, receipts read by the local extractor."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    passwords = Passwords(settings)
    with session_scope(factory) as session:
        existing = existing_admin(session, email_for("demo", "admin"))
        if existing is not None:
            return Tenant(
                existing.company_id, existing, created=False, logins=logins_of(session, existing)
            )
        tenant, people, categories, vendors = base_tenant(
            session, passwords, tag="demo", company="Demo Co", employees=12
        )
        cardholders = people["employee"][:5]
        cards = []
        for holder in cardholders:
            issued = card_flows.issue(
                session,
                actor=tenant.admin,
                key=settings.card_key,
                now=utcnow(),
                body=CardCreate(
                    user_id=holder.id,
                    currency="USD",
                    label=f"{holder.full_name.split()[0]}'s card",
                    spending_limits=[SpendingLimit(amount=Decimal(3000), interval="monthly")],
                ),
            )
            cards.append(issued)
    company_id = tenant.company_id
    storage = LocalStorage(settings.storage_path)
    extractor = LocalExtractor()
    today = utcnow().date()
    with progress(console) as bar:
        task = bar.add_task("spends", total=spends)
        done = 0
        while done < spends:
            with session_scope(factory) as session:
                submitters = [
                    session.get(User, u.id) for u in people["employee"] + people["manager"]
                ]
                company = companies_service.get_company_or_404(session, company_id)
                network = companies_service.WebhookCaller.checked(
                    company, companies_service.SecretSource.card_network
                )
                for _ in range(min(100, spends - done)):
                    user = rng.choice(submitters)
                    assert user is not None
                    day = today - timedelta(days=rng.randint(0, 364))
                    category = (
                        rng.choice(categories[:-1]) if rng.random() < 0.97 else categories[-1]
                    )
                    vendor = rng.choice(vendors)
                    amount = random_amount(rng)
                    if rng.random() < 0.15 and cards:
                        card = rng.choice(cards)
                        card_flows.authorize(
                            session,
                            caller=network,
                            key=settings.card_key,
                            now=utcnow(),
                            body=AuthorizationRequest(
                                card_id=card.id,
                                amount=amount,
                                currency="USD",
                                merchant_name=vendor.name,
                                category_id=category.id,
                                authorization_id=f"demo_{uuid.uuid4().hex}",
                            ),
                        )
                    else:
                        spend = spend_flows.submit_spend(
                            session,
                            actor=user,
                            body=SpendCreate(
                                amount=amount,
                                currency="USD",
                                spend_date=day,
                                description=f"{vendor.name} {category.name.lower()}",
                                category_id=category.id,
                                vendor_id=vendor.id,
                            ),
                        )
                        if rng.random() < 0.05:
                            receipt_flows.upload(
                                session,
                                actor=user,
                                spend_id=spend.id,
                                storage=storage,
                                max_bytes=settings.max_upload_bytes,
                                source=io.BytesIO(
                                    receipt_pdf(
                                        vendor.name,
                                        day,
                                        amount if rng.random() < 0.9 else amount + 1,
                                    )
                                ),
                            )
                    done += 1
                    bar.advance(task)
        _decide_pending(factory, people, rng, console)
        while receipt_flows.work_once(
            factory, storage=storage, extractor=extractor, settings=settings, batch=20
        ):
            pass
    return tenant


def _decide_pending(
    factory: sessionmaker[Session],
    people: dict[str, list[User]],
    rng: random.Random,
    console: Console,
) -> None:
    """Most pending approvals get decided, some spends get reimbursed: history in every state."""
    deciders = people["manager"] + people["finance"] + people["admin"]
    for _round in range(2):
        with session_scope(factory) as session:
            for user_ref in deciders:
                user = session.get(User, user_ref.id)
                assert user is not None
                _, steps = approvals_service.list_actionable(
                    session,
                    company_id=user.company_id,
                    user_id=user.id,
                    role=user.role,
                    status=StepStatus.pending,
                    page=PageParams(limit=10_000, offset=0),
                )
                for step in steps:
                    if (
                        step.status == StepStatus.pending
                        and rng.random() < 0.8
                        and step.submitter_id != user.id
                    ):
                        approval_flows.decide(
                            session,
                            actor=user,
                            approval_id=step.id,
                            approved=rng.random() < 0.85,
                            comment=None,
                        )
    with session_scope(factory) as session:
        finance = session.get(User, people["finance"][0].id)
        assert finance is not None
        approved = session.scalars(
            select(Spend.id).where(
                Spend.company_id == finance.company_id,
                Spend.status == "approved",
                Spend.source == "manual",
            )
        ).all()
        for spend_id in approved:
            if rng.random() < 0.4:
                spend_flows.reimburse_spend(session, actor=finance, spend_id=spend_id)


def logins_of(session: Session, admin: User) -> list[tuple[str, str]]:
    users = session.scalars(
        select(User).where(User.company_id == admin.company_id).order_by(User.created_at)
    ).all()
    picked: dict[str, list[User]] = {}
    for user in users:
        picked.setdefault(user.role, []).append(user)
    return [
        (u.email, u.role)
        for role in ("admin", "finance", "manager", "employee")
        for u in picked.get(role, [])[:3]
    ]


# --- the large tenant, in bulk ----------------------------------------------------------------


# Core inserts by table: no ORM bookkeeping per row (the audit log's "metadata" column is not
# even an ORM attribute name).
def print_tenant(console: Console, tenant: Tenant, factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        count = session.scalar(
            select(func.count()).select_from(Spend).where(Spend.company_id == tenant.company_id)
        )
    state = "created" if tenant.created else "already there (nothing changed)"
    console.print(f"[bold]Company {tenant.company_id}[/bold]: {state}, {count:,} spends")
    table = RichTable("email", "role", "password")
    for email, role in tenant.logins:
        table.add_row(email, role, PASSWORD)
    console.print(table)
