"""The routes an API key may call, and the scope each one needs. A route not listed here is
refused to every key (403 `api_key_not_allowed`): approving, submitting as a person, managing
users, policies, cards or keys stay with people."""

from __future__ import annotations

from spendtrackr.apps.apikeys.models import Scope

ROUTES: dict[tuple[str, str], Scope | None] = {
    # None: any key (what the key's company is)
    ("GET", "/companies/me"): None,
    ("GET", "/spends"): Scope.spends_read,
    ("GET", "/spends/{spend_id}"): Scope.spends_read,
    ("GET", "/receipts"): Scope.spends_read,
    ("GET", "/receipts/{receipt_id}"): Scope.spends_read,
    ("GET", "/receipts/{receipt_id}/file"): Scope.spends_read,
    ("GET", "/categories"): Scope.spends_read,
    ("GET", "/categories/{category_id}"): Scope.spends_read,
    ("GET", "/vendors"): Scope.spends_read,
    ("GET", "/vendors/{vendor_id}"): Scope.spends_read,
    ("POST", "/spends/{spend_id}/reimburse"): Scope.spends_write,
    ("GET", "/cards"): Scope.cards_read,
    ("GET", "/cards/{card_id}"): Scope.cards_read,
    ("GET", "/card-authorizations"): Scope.cards_read,
    ("GET", "/card-transactions"): Scope.cards_read,
    ("GET", "/cards/{card_id}/transactions"): Scope.cards_read,
    ("GET", "/reports/spend-summary"): Scope.reports_read,
    ("GET", "/budgets"): Scope.reports_read,
    ("GET", "/budgets/{budget_id}"): Scope.reports_read,
    ("GET", "/exports/accounting.csv"): Scope.exports_read,
    ("GET", "/exports/accounting.json"): Scope.exports_read,
    ("GET", "/ledger-lines"): Scope.exports_read,
    ("GET", "/accounting/settings"): Scope.exports_read,
    ("GET", "/accounting/periods"): Scope.exports_read,
    ("POST", "/exports"): Scope.exports_read,
    ("GET", "/exports"): Scope.exports_read,
    ("GET", "/exports/{export_id}"): Scope.exports_read,
    ("GET", "/exports/{export_id}/file"): Scope.exports_read,
    ("POST", "/exports/accounting/mark-exported"): Scope.exports_write,
    ("GET", "/admin/users"): Scope.users_read,
    ("GET", "/admin/users/{user_id}"): Scope.users_read,
    ("GET", "/users/names"): Scope.users_read,
    ("GET", "/teams"): Scope.users_read,
    ("GET", "/teams/{team_id}"): Scope.users_read,
    ("GET", "/audit-logs"): Scope.audit_read,
    ("GET", "/audit-logs/verify"): Scope.audit_read,
    ("GET", "/events"): Scope.events_read,
    ("GET", "/webhook-endpoints"): Scope.webhooks_manage,
    ("POST", "/webhook-endpoints"): Scope.webhooks_manage,
    ("GET", "/webhook-endpoints/{endpoint_id}"): Scope.webhooks_manage,
    ("PATCH", "/webhook-endpoints/{endpoint_id}"): Scope.webhooks_manage,
    ("DELETE", "/webhook-endpoints/{endpoint_id}"): Scope.webhooks_manage,
    ("POST", "/webhook-endpoints/{endpoint_id}/rotate-secret"): Scope.webhooks_manage,
    ("GET", "/webhook-endpoints/{endpoint_id}/deliveries"): Scope.webhooks_manage,
    ("POST", "/webhook-deliveries/{delivery_id}/retry"): Scope.webhooks_manage,
}
