"""The REST API's description: the OpenAPI schema (stable operation ids, no Sphinx markup) and
the pages that render it, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc).

Both pages load their JavaScript and CSS from this server, read from the ``fastapi-offline``
package (Swagger UI 5 and ReDoc 2 bundles, installed with the ``server`` extra), so they work
with no internet access; FastAPI's defaults would load them from a CDN.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any, Final

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

DESCRIPTION: Final = """\
Lifelong memory for multi-agent systems, as a service.

Every `/v1` route needs an API key (`Authorization: Bearer amk_...` or `X-API-Key`; 401
without one), acts only in a scope the key allows (403), and is rate limited per key (429 with
`Retry-After`). Request bodies are capped (413). Errors are
`{"error": {"type", "message", "request_id"}}`: invalid input is a 422 whose message says what
to change, a concurrent write or a reused idempotency key a 409, a backend that does not answer
a 503 naming it, and a bug a 500 that names the request id to look up in the server's logs.
`/healthz`, `/readyz` and `/metrics` need no key.
"""

ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
"""The files the two pages load, from ``fastapi_offline/static``."""

_ASSET_PATH: Final = "/docs/assets"
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # the pages' own inline start-up script
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",  # not ReDoc's logo from its CDN
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",  # ReDoc's search index
        "frame-ancestors 'self'",
    ]
)
"""The policy of the two pages: nothing is loaded from anywhere but this server."""
_ROLE = re.compile(r":(?:py:)?[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def operation_id(route: APIRoute) -> str:
    """The operation id of a route: its function's name in camelCase (``add_memory`` ->
    ``addMemory``), which generated clients turn into method names."""
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def plain_markup(text: str) -> str:
    """``text`` with Sphinx roles (``:class:`~agentmem.Memory```) as Markdown code
    (```Memory```), the last dotted part kept where the role shortened it."""

    def code(match: re.Match[str]) -> str:
        target = match.group(1).strip()
        shortened = match.group(0).split("`", 1)[1].startswith("~")
        return f"`{target.rsplit('.', 1)[-1] if shortened else target}`"

    return _ROLE.sub(code, text)


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: plain_markup(v)
            if k in ("description", "summary") and isinstance(v, str)
            else _clean(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def install_openapi(app: FastAPI) -> None:
    """Build the app's OpenAPI schema once, with Sphinx markup turned into Markdown."""

    built = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _clean(built())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _asset(name: str) -> bytes:
    return files("fastapi_offline").joinpath("static", name).read_bytes()


def _own_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """``/docs``, ``/redoc`` and their assets, served from the installed package."""
    router = APIRouter(include_in_schema=False)
    assets = {name: _asset(name) for name in ASSETS}
    favicon = f"{_ASSET_PATH}/favicon.png"

    @router.get("/docs")
    def swagger_ui() -> HTMLResponse:
        return _own_only(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{_ASSET_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{_ASSET_PATH}/swagger-ui.css",
                swagger_favicon_url=favicon,
                oauth2_redirect_url="/docs/oauth2-redirect",
                # no validator badge: it would send the schema to an online validator
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @router.get("/docs/oauth2-redirect")
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return _own_only(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{_ASSET_PATH}/redoc.standalone.js",
                redoc_favicon_url=favicon,
                with_google_fonts=False,
            )
        )

    @router.get(_ASSET_PATH + "/{name}")
    def docs_asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(status_code=404, detail=f"no docs asset {name!r}")
        return Response(
            assets[name],
            media_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router


__all__ = [
    "ASSETS",
    "DESCRIPTION",
    "docs_router",
    "install_openapi",
    "operation_id",
    "plain_markup",
]
