"""Who is calling a webhook: the company whose webhook secret was sent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from spendtrackr.apps.companies import service
from spendtrackr.apps.companies.models import Company
from spendtrackr.core.db import SessionDep
from spendtrackr.core.errors import Unauthorized


def webhook_company(
    session: SessionDep,
    x_webhook_secret: Annotated[
        str | None, Header(description="The company's webhook secret")
    ] = None,
) -> Company:
    company = service.company_for_webhook_secret(session, x_webhook_secret)
    if company is None:
        raise Unauthorized("Unauthorized webhook source", code="unauthorized_webhook", headers={})
    return company


WebhookCompany = Annotated[Company, Depends(webhook_company)]
