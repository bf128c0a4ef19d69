"""What every page shares: the signed-in person (`WebDep`), templates, locale formatting, and
`WebRoute`, which turns a missing sign-in into the sign-in page and an API refusal into a page
that says why."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from spendtrackr.core.errors import AppError
from spendtrackr.web import session
from spendtrackr.web.api import Api, ApiError, readable

HERE = Path(__file__).parent
STATIC = HERE / "static"


class SignInRequired(Exception):
    pass


@cache
def asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def asset(name: str) -> str:
    """A static file's URL, with its content hash: cached for a year, new when it changes."""
    return f"/app/static/{name}?v={asset_version(name)}"


def pick_locale(request: Request, preferred: str | None = None) -> Locale:
    """The person's chosen locale (their notification preferences), else the first one their
    browser asks for that Babel knows, else the deployment's (`EMAIL_LOCALE`)."""
    candidates = [preferred] if preferred else []
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag and tag != "*":
            candidates.append(tag)
    candidates.append(request.app.state.settings.email_locale)
    for tag in candidates:
        try:
            return Locale.parse(tag)
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return Locale.parse("en_US")


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset
    return env


TEMPLATES = _templates()


@dataclass
class Formats:
    locale: Locale

    def money(self, amount: object, currency: str | None) -> str:
        try:
            value = Decimal(str(amount))
        except (InvalidOperation, ValueError):
            return str(amount)
        if not currency:
            return format_decimal(value, locale=self.locale)
        return format_currency(value, currency, locale=self.locale)

    def day(self, value: object) -> str:
        if not value:
            return ""
        when = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return format_date(when, format="medium", locale=self.locale)

    def moment(self, value: object) -> str:
        if not value:
            return ""
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return format_datetime(when, format="medium", locale=self.locale)

    def number(self, value: object) -> str:
        return format_decimal(Decimal(str(value)), locale=self.locale)

    def month(self, value: str) -> str:
        """`2026-12` -> "Dec 2026" in the locale."""
        try:
            return format_date(
                date.fromisoformat(f"{value}-01"), format="MMM y", locale=self.locale
            )
        except ValueError:
            return value


@dataclass
class Web:
    """One page request: the API as the signed-in person, who they are, and how to answer."""

    request: Request
    api: Api
    me: dict[str, Any]
    prefs: dict[str, Any]  # the person's notification preferences, their locale among them
    fmt: Formats
    unread: int
    token: str
    new_token: bool
    viewer: session.Viewer

    @property
    def role(self) -> str:
        return str(self.me["role"])

    def can(self, *roles: str) -> bool:
        return self.role in roles

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return self.finish(
            render(self.request, template, status=status, web=self, fmt=self.fmt, **context)
        )

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))

    def finish(self, response: Response) -> Response:
        if self.new_token:
            session.keep_access(self.request, response, self.token, self.viewer)
        return response

    async def gather(self, *calls: Coroutine[Any, Any, Any]) -> list[Any]:
        return await gather(*calls)


async def gather(*calls: Coroutine[Any, Any, Any]) -> list[Any]:
    """The calls' answers, made concurrently. When one fails, its error is raised once every
    other call has finished too: a call cancelled halfway would leave its request's database
    transaction open after the page has answered."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    response = HTMLResponse("", status_code=status)
    context.setdefault("fmt", Formats(pick_locale(request)))
    context["csrf"] = session.csrf_token(request)
    context["request"] = request
    context["path"] = request.url.path
    response.body = TEMPLATES.get_template(template).render(**context).encode()
    response.headers["content-length"] = str(len(response.body))
    session.keep_nonce(request, response)
    return response


async def web_page(request: Request) -> AsyncIterator[Web]:
    who = session.viewer(request)
    if who is None:
        raise SignInRequired
    token, new = session.access_token(request, who)
    api = Api(request, token)
    try:
        try:
            me, prefs, unread = await gather(
                api.get("/users/me"),
                api.get("/users/me/notification-preferences"),
                api.get("/notifications", unread_only="true", limit=1),
            )
        except ApiError as exc:
            if exc.status == 401:
                raise SignInRequired from exc
            raise
        yield Web(
            request=request,
            api=api,
            me=me,
            prefs=prefs,
            fmt=Formats(pick_locale(request, prefs.get("locale"))),
            unread=int(unread.get("total") or 0),
            token=token,
            new_token=new,
            viewer=who,
        )
    finally:
        await api.aclose()


WebDep = Annotated[Web, Depends(web_page)]


async def form_of(request: Request) -> FormData:
    """The posted form, once its CSRF token checks out."""
    form = await request.form()
    session.check_csrf(request, str(form.get(session.CSRF_FIELD) or "") or None)
    return form


_NEXT = re.compile(r"^/app(/[A-Za-z0-9._~%/-]*)?(\?[A-Za-z0-9._~%&=+-]*)?$")


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a page of this app only (never another site, never up out of
    `/app`)."""
    if not target or not _NEXT.fullmatch(target) or ".." in target:
        return "/app"
    return target


def error_page(request: Request, status: int, message: str) -> Response:
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 429: "Slow down"}
    title = titles.get(status, "Something went wrong" if status >= 500 else "Cannot do that")
    return render(request, "error.html.j2", status=status, title=title, message=message)


class WebRoute(APIRoute):
    """A page: no sign-in goes to the sign-in page (then back); an API refusal is a page with
    the API's reason, at the API's status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                url = f"/app/login?next={quote(target)}"
                response = RedirectResponse(url, status_code=303)
                session.end(request, response)
                return response
            except ApiError as exc:
                return error_page(request, exc.status, exc.detail)
            except AppError as exc:
                return error_page(request, exc.status_code, exc.detail)
            except RequestValidationError as exc:  # a mangled link or form
                return error_page(request, 422, readable(exc.errors()) or "Not understood")

        return run
