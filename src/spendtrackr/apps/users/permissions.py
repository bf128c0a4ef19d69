"""Role -> capability map, in one place (API.md, Roles). Roles are not a strict hierarchy."""

from __future__ import annotations

from enum import StrEnum

from spendtrackr.apps.users.models import Role


class Capability(StrEnum):
    read_team_spends = "read_team_spends"
    read_company_spends = "read_company_spends"  # and reports, exports, the audit log
    manage_cards = "manage_cards"  # issue/freeze/cancel cards, mark spends reimbursed
    administer = "administer"  # users, teams, vendors, categories, policies, company settings


_GRANTS: dict[Capability, frozenset[Role]] = {
    Capability.read_team_spends: frozenset({Role.manager, Role.finance, Role.admin}),
    Capability.read_company_spends: frozenset({Role.finance, Role.admin}),
    Capability.manage_cards: frozenset({Role.finance, Role.admin}),
    Capability.administer: frozenset({Role.admin}),
}


def can(role: str, capability: Capability) -> bool:
    return role in _GRANTS[capability]
