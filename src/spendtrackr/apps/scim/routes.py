"""`/scim/v2`: SCIM 2.0 for identity providers, authenticated by the company's SCIM token."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Group,
    Patch,
    ResourceType,
    Schema,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    User,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from spendtrackr.apps.scim import flows
from spendtrackr.apps.scim.flows import ScimError
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.routing import JSONRoute

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimResponse(JSONResponse):
    media_type = SCIM_JSON


def scim_error_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScimError)
    body: dict[str, Any] = {
        "schemas": [ERROR_SCHEMA],
        "status": str(exc.status),
        "detail": exc.detail,
    }
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
    return ScimResponse(body, status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    """SCIM errors in SCIM's shape; so is a request FastAPI cannot parse on a SCIM path (400
    `invalidSyntax`), the app's own shape everywhere else. Call after the app's handlers."""
    app.add_exception_handler(ScimError, scim_error_response)
    for kind in (RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _scim_shaped(app.exception_handlers[kind]))


def _scim_shaped(others: Any) -> Any:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(router.prefix + "/"):
            if isinstance(exc, RequestValidationError):
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                problem = ScimError(400, f"{where}: {first.get('msg', 'invalid')}", "invalidSyntax")
            else:
                assert isinstance(exc, StarletteHTTPException)
                problem = ScimError(exc.status_code, str(exc.detail))
            return scim_error_response(request, problem)
        answer = others(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    return handle


def scim_company(request: Request, session: SessionDep) -> flows.Tenant:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ScimError(401, "A SCIM bearer token is required")
    return flows.company_for(session, token.strip())


ScimCompany = Annotated[flows.Tenant, Depends(scim_company)]
Payload = Annotated[dict[str, Any], Body()]
Attributes = Annotated[str | None, Query(description="Comma-separated attributes to return")]
Excluded = Annotated[
    str | None,
    Query(alias="excludedAttributes", description="Comma-separated attributes to leave out"),
]


class ScimErrorBody(BaseModel):
    """RFC 7644 3.12: how every SCIM error is answered."""

    schemas: list[str] = [ERROR_SCHEMA]
    status: str
    detail: str
    scimType: str | None = None


_ERRORS = {
    400: "Invalid request (`scimType`: invalidFilter, invalidValue, ...)",
    401: "No valid SCIM token (Authorization: Bearer <the company's SCIM token>)",
    404: "No such resource in the company",
    409: "userName or displayName taken (`scimType`: uniqueness)",
}

router = APIRouter(
    route_class=JSONRoute,
    prefix="/scim/v2",
    tags=["scim"],
    default_response_class=ScimResponse,
    responses={
        status: {"model": ScimErrorBody, "description": text} for status, text in _ERRORS.items()
    },
)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


# --- discovery ---------------------------------------------------------------------------------


def _service_provider_config(base: str) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=flows.MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="The company's SCIM token (POST /companies/me/scim-token)",
                primary=True,
            )
        ],
    )
    body = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["meta"] = {
        "resourceType": "ServiceProviderConfig",
        "location": f"{base}/ServiceProviderConfig",
    }
    return body


@router.get("/ServiceProviderConfig")
def service_provider_config(request: Request, company: ScimCompany) -> ScimResponse:
    return ScimResponse(_service_provider_config(_base(request)))


def _resource_types(base: str) -> list[dict[str, Any]]:
    out = []
    for model in (User, Group):
        rt = ResourceType.from_resource(model)
        body = rt.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{rt.id}"}
        out.append(body)
    return out


def _schemas(base: str) -> list[dict[str, Any]]:
    out = []
    for model in (User, Group):
        schema: Schema = model.to_schema()
        body = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema.id}"}
        out.append(body)
    return out


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


@router.get("/ResourceTypes")
def resource_types(request: Request, company: ScimCompany) -> ScimResponse:
    return ScimResponse(_listed(_resource_types(_base(request))))


@router.get("/ResourceTypes/{name}")
def resource_type(name: str, request: Request, company: ScimCompany) -> ScimResponse:
    for item in _resource_types(_base(request)):
        if item["id"] == name:
            return ScimResponse(item)
    raise ScimError(404, f"ResourceType {name} not found")


@router.get("/Schemas")
def schemas(request: Request, company: ScimCompany) -> ScimResponse:
    return ScimResponse(_listed(_schemas(_base(request))))


@router.get("/Schemas/{schema_id}")
def schema(schema_id: str, request: Request, company: ScimCompany) -> ScimResponse:
    for item in _schemas(_base(request)):
        if item["id"] == schema_id:
            return ScimResponse(item)
    raise ScimError(404, f"Schema {schema_id} not found")


# --- resources -----------------------------------------------------------------------------------


def _routes(kind: str) -> None:
    path = flows.PATHS[kind]
    create = flows.create_user if kind == "User" else flows.create_group
    replace = flows.replace_user if kind == "User" else flows.replace_group
    patch = flows.patch_user if kind == "User" else flows.patch_group
    delete = flows.delete_user if kind == "User" else flows.delete_group

    def listing(
        request: Request,
        session: SessionDep,
        company: ScimCompany,
        filter_: Annotated[str | None, Query(alias="filter", max_length=500)] = None,
        start_index: Annotated[int, Query(alias="startIndex")] = 1,
        count: Annotated[int | None, Query()] = None,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> ScimResponse:
        return ScimResponse(
            flows.search(
                session,
                company,
                kind,
                base_url=_base(request),
                filter_=filter_,
                start_index=start_index,
                count=count,
                attributes=_split(attributes),
                excluded=_split(excluded),
            )
        )

    def posting(
        request: Request, session: SessionDep, company: ScimCompany, payload: Payload
    ) -> ScimResponse:
        body = create(session, company, payload, _base(request))
        return ScimResponse(body, status_code=201, headers={"Location": body["meta"]["location"]})

    def getting(
        resource_id: str,
        request: Request,
        session: SessionDep,
        company: ScimCompany,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> ScimResponse:
        return ScimResponse(
            flows.get(
                session,
                company,
                kind,
                resource_id,
                _base(request),
                _split(attributes),
                _split(excluded),
            )
        )

    def putting(
        resource_id: str,
        request: Request,
        session: SessionDep,
        company: ScimCompany,
        payload: Payload,
    ) -> ScimResponse:
        return ScimResponse(replace(session, company, resource_id, payload, _base(request)))

    def patching(
        resource_id: str,
        request: Request,
        session: SessionDep,
        company: ScimCompany,
        payload: Payload,
    ) -> ScimResponse:
        return ScimResponse(patch(session, company, resource_id, payload, _base(request)))

    def deleting(resource_id: str, session: SessionDep, company: ScimCompany) -> Response:
        delete(session, company, resource_id)
        return Response(status_code=204)

    def searching(
        request: Request, session: SessionDep, company: ScimCompany, payload: Payload
    ) -> ScimResponse:
        return ScimResponse(_search(session, company, kind, payload, request))

    name = kind.lower()
    router.add_api_route(f"/{path}", listing, methods=["GET"], name=f"scim_list_{name}s")
    router.add_api_route(
        f"/{path}/.search", searching, methods=["POST"], name=f"scim_search_{name}s"
    )
    router.add_api_route(
        f"/{path}", posting, methods=["POST"], name=f"scim_create_{name}", status_code=201
    )
    router.add_api_route(
        f"/{path}/{{resource_id}}", getting, methods=["GET"], name=f"scim_get_{name}"
    )
    router.add_api_route(
        f"/{path}/{{resource_id}}", putting, methods=["PUT"], name=f"scim_replace_{name}"
    )
    router.add_api_route(
        f"/{path}/{{resource_id}}", patching, methods=["PATCH"], name=f"scim_patch_{name}"
    )
    router.add_api_route(
        f"/{path}/{{resource_id}}",
        deleting,
        methods=["DELETE"],
        name=f"scim_delete_{name}",
        status_code=204,
    )


def _search(
    session: SessionDep,
    company: flows.Tenant,
    kind: str | None,
    payload: dict[str, Any],
    request: Request,
) -> dict[str, Any]:
    try:
        query: Any = SearchRequest.model_validate(payload, scim_ctx=Context.SEARCH_REQUEST)
    except ValidationError as exc:
        raise ScimError(400, str(exc.errors()[0]["msg"]), "invalidValue") from None
    return flows.search(
        session,
        company,
        kind,
        base_url=_base(request),
        filter_=str(query.filter) if query.filter else None,
        start_index=query.start_index or 1,
        count=query.count,
        attributes=[str(a) for a in query.attributes] if query.attributes else None,
        excluded=[str(a) for a in query.excluded_attributes] if query.excluded_attributes else None,
    )


@router.post("/.search")
def search_all(
    request: Request, session: SessionDep, company: ScimCompany, payload: Payload
) -> ScimResponse:
    """A search across Users and Groups (RFC 7644 3.4.3)."""
    return ScimResponse(_search(session, company, None, payload, request))


_routes("User")
_routes("Group")


# --- the token (admins, with their own session) -------------------------------------------------

token_router = APIRouter(
    dependencies=SIGNED_IN, route_class=JSONRoute, tags=["scim"], responses=errors(401, 403)
)


@token_router.post("/companies/me/scim-token", status_code=201)
def rotate_scim_token(session: SessionDep, actor: AdminUser) -> dict[str, str]:
    """A new SCIM bearer token for the company's identity provider (admins), shown once; the
    previous one stops working. Give it, with `<PUBLIC_URL>/scim/v2`, to Okta, Entra ID and the
    like."""
    return {"token": flows.rotate_token(session, company_id=actor.company_id, actor_id=actor.id)}


@router.api_route(
    "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def unknown(rest: str) -> Response:
    first = rest.split("/", 1)[0]
    if first in KNOWN:
        raise ScimError(405, f"/scim/v2/{rest} does not take this method")
    raise ScimError(404, f"/scim/v2/{rest} is not a SCIM endpoint of this server")


KNOWN = frozenset(
    {"ServiceProviderConfig", "ResourceTypes", "Schemas", "Users", "Groups", ".search"}
)
