"""Who is calling a webhook: the company whose secret for that source was sent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from spendtrackr.apps.companies import service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.companies.service import SecretSource
from spendtrackr.core.db import SessionDep
from spendtrackr.core.errors import Unauthorized

SecretHeader = Annotated[
    str | None, Header(description="The company's secret for this webhook source")
]


def _company(session: SessionDep, source: SecretSource, secret: str | None) -> Company:
    company = service.company_for_secret(session, source, secret)
    if company is None:
        raise Unauthorized("Unauthorized webhook source", code="unauthorized_webhook", headers={})
    return company


def card_network_company(session: SessionDep, x_webhook_secret: SecretHeader = None) -> Company:
    return _company(session, SecretSource.card_network, x_webhook_secret)


def directory_company(session: SessionDep, x_webhook_secret: SecretHeader = None) -> Company:
    return _company(session, SecretSource.directory, x_webhook_secret)


CardNetworkCompany = Annotated[Company, Depends(card_network_company)]
DirectoryCompany = Annotated[Company, Depends(directory_company)]
