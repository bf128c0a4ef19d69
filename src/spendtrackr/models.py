"""Every table, imported in one place for Alembic and the test schema checks."""

from spendtrackr.apps.apikeys.models import ApiKey
from spendtrackr.apps.approvals.models import ApprovalStep, Delegation
from spendtrackr.apps.audit.models import AuditChainHead, AuditLog
from spendtrackr.apps.auth.models import RefreshToken, SsoConfig, SsoLogin
from spendtrackr.apps.budgets.models import Budget
from spendtrackr.apps.cards.models import Card, CardAuthorization, CardTransaction, CardUsage
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.events.models import ProcessedEvent
from spendtrackr.apps.ledger.models import Export, LedgerLine
from spendtrackr.apps.notifications.models import (
    DigestSent,
    EmailAttempt,
    Notification,
    NotificationDefault,
    NotificationPreference,
)
from spendtrackr.apps.payouts.models import BankAccount, Payout, PayoutLine
from spendtrackr.apps.policies.models import Policy
from spendtrackr.apps.rates.models import ExchangeRate
from spendtrackr.apps.receipts.models import Receipt
from spendtrackr.apps.scim.models import ScimResource, ScimToken
from spendtrackr.apps.spends.models import Spend, SpendTotal
from spendtrackr.apps.teams.models import Team
from spendtrackr.apps.users.models import AuthSession, TeamMember, User, UserInvite
from spendtrackr.apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from spendtrackr.core.db import Base
from spendtrackr.core.idempotency import IdempotencyRecord
from spendtrackr.core.leases import JobLease
from spendtrackr.core.replica import ReplicaHeartbeat

__all__ = [
    "ApiKey",
    "ApprovalStep",
    "AuditChainHead",
    "AuditLog",
    "AuthSession",
    "BankAccount",
    "Base",
    "Budget",
    "Card",
    "CardAuthorization",
    "CardTransaction",
    "CardUsage",
    "Category",
    "Company",
    "Delegation",
    "DigestSent",
    "EmailAttempt",
    "ExchangeRate",
    "Export",
    "IdempotencyRecord",
    "JobLease",
    "LedgerLine",
    "Notification",
    "NotificationDefault",
    "NotificationPreference",
    "Payout",
    "PayoutLine",
    "Policy",
    "ProcessedEvent",
    "Receipt",
    "RefreshToken",
    "ReplicaHeartbeat",
    "ScimResource",
    "ScimToken",
    "Spend",
    "SpendTotal",
    "SsoConfig",
    "SsoLogin",
    "Team",
    "TeamMember",
    "User",
    "UserInvite",
    "Vendor",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
