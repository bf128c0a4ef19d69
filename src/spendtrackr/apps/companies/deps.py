"""Who is calling a webhook: the company whose secret for that source was sent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from starlette.concurrency import run_in_threadpool

from spendtrackr.apps.companies import service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.companies.service import SecretSource, WebhookCaller
from spendtrackr.core.db import SessionDep
from spendtrackr.core.security import token_digest

SecretHeader = Annotated[
    str | None, Header(description="The company's secret for this webhook source")
]


def _company(session: SessionDep, source: SecretSource, secret: str | None) -> Company:
    company = service.company_for_secret(session, source, secret)
    if company is None:
        raise service.webhook_unauthorized()
    return company


def card_network_company(session: SessionDep, x_webhook_secret: SecretHeader = None) -> Company:
    return _company(session, SecretSource.card_network, x_webhook_secret)


def directory_company(session: SessionDep, x_webhook_secret: SecretHeader = None) -> Company:
    return _company(session, SecretSource.directory, x_webhook_secret)


CardNetworkCompany = Annotated[Company, Depends(card_network_company)]
DirectoryCompany = Annotated[Company, Depends(directory_company)]


async def card_network_caller(
    session: SessionDep, x_webhook_secret: SecretHeader = None
) -> WebhookCaller:
    """The caller of a card network webhook, for a route that checks the secret itself when
    this process knew it (`WebhookCaller`). Async, so that a known secret costs neither a query
    nor a trip to the thread pool; an unknown one is looked up there, and refused (401) before
    the body is validated, as `card_network_company` does."""
    if not x_webhook_secret:
        raise service.webhook_unauthorized()
    source = SecretSource.card_network
    digest = token_digest(x_webhook_secret)
    known = service.known_caller(source, digest)
    if known is not None:
        return WebhookCaller(source, digest, known, None)
    company = await run_in_threadpool(service.company_for_digest, session, source, digest)
    if company is None:
        raise service.webhook_unauthorized()
    return WebhookCaller(source, digest, company.id, company)


CardNetworkCaller = Annotated[WebhookCaller, Depends(card_network_caller)]
