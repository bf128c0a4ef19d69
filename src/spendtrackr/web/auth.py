"""Sign in with a password or the company's identity provider, and sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from spendtrackr.web import session
from spendtrackr.web.api import Api, ApiError
from spendtrackr.web.core import WebRoute, form_of, render, safe_next

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)


@router.get("/login")
async def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    if session.viewer(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html.j2", next=safe_next(next), email="", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    email = str(form.get("email", "")).strip()
    target = safe_next(str(form.get("next") or ""))
    api = Api(request, None)
    try:
        body: dict[str, object] = {"email": email, "password": str(form.get("password", ""))}
        if form.get("company_id"):
            body["company_id"] = str(form["company_id"])
        pair = await api.post("/auth/login", body)
    except ApiError as exc:
        companies = exc.body.get("companies") if exc.code == "company_required" else None
        return render(
            request,
            "login.html.j2",
            status=exc.status,
            next=target,
            email=email,
            error=exc.detail,
            companies=companies or [],
        )
    finally:
        await api.aclose()
    response = RedirectResponse(target, status_code=303)
    session.start(request, response, pair["access_token"], pair["refresh_token"])
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request)
    refresh = request.cookies.get(session.REFRESH_COOKIE)
    if refresh:
        api = Api(request, None)
        try:
            await api.post("/auth/logout", {"refresh_token": refresh})
        except ApiError:
            pass  # already over: the cookies go either way
        finally:
            await api.aclose()
    response = RedirectResponse("/app/login", status_code=303)
    session.end(request, response)
    return response


@router.get("/sso/start")
async def sso_start(
    request: Request, email: Annotated[str, Query(min_length=3, max_length=320)]
) -> Response:
    """Hand the browser to the API's SSO start, which sends it to the company's provider; the
    provider comes back to `/auth/sso/callback`, which (with the company's `frontend_url` set to
    `<PUBLIC_URL>/app/sso/done`) sends it here with a one-time code."""
    api = Api(request, None)
    try:
        answer = await api.raw("GET", "/auth/sso/start", params={"company": email.strip()})
    finally:
        await api.aclose()
    if answer.status_code in (301, 302, 303, 307):
        return RedirectResponse(answer.headers["location"], status_code=303)
    try:
        detail = str(answer.json().get("detail"))
    except ValueError:
        detail = "Single sign-on is not available"
    return render(
        request,
        "login.html.j2",
        status=answer.status_code,
        next="/app",
        email=email,
        error=detail,
        sso_error=True,
    )


@router.get("/sso/done")
async def sso_done(request: Request, code: Annotated[str, Query(max_length=200)]) -> Response:
    api = Api(request, None)
    try:
        pair = await api.post("/auth/sso/exchange", {"code": code})
    except ApiError as exc:
        return render(
            request, "login.html.j2", status=exc.status, next="/app", email="", error=exc.detail
        )
    finally:
        await api.aclose()
    response = RedirectResponse("/app", status_code=303)
    session.start(request, response, pair["access_token"], pair["refresh_token"])
    return response
