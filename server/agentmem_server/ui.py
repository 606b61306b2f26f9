"""The memory inspector: a page at ``/ui`` that shows, searches, explains, corrects and forgets
what agents remember, in the browser.

The page is three static files shipped with the package (``server/ui_static``: HTML, plain
JavaScript, CSS; no build step, no CDN). It holds no data: it asks for an API key, keeps it in
the tab's ``sessionStorage``, and calls the same ``/v1`` REST API as every client, so a key
sees in the page exactly what it may read through the API, and no key sees nothing.

Every response of ``/ui`` carries a Content-Security-Policy: scripts only from this server
(plus the hash of the knowledge-graph page's own inline script, which the graph view shows in
a sandboxed frame), no connections elsewhere, no plugins, no framing by other sites.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

from agentmem.graph.export import script_hashes

_ASSETS: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


def content_security_policy() -> str:
    """The policy of every ``/ui`` response (see the module docstring)."""
    graph = " ".join(script_hashes())
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {graph}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-src 'self'",
            "frame-ancestors 'self'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _read(name: str) -> bytes:
    return files("agentmem_server").joinpath("ui_static", name).read_bytes()


def build_router() -> APIRouter:
    """The ``/ui`` routes: the page and its two assets, read once from the package."""
    router = APIRouter(include_in_schema=False)
    headers = {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    page = _read("index.html")
    assets = {name: _read(name) for name in _ASSETS}

    @router.get("/ui")
    def ui_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @router.get("/ui/")
    def ui_slash() -> RedirectResponse:
        return RedirectResponse("/ui")

    @router.get("/ui/assets/{name}")
    def ui_asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(status_code=404, detail=f"no UI asset {name!r}")
        return Response(assets[name], media_type=_ASSETS[name], headers=headers)

    return router


__all__ = ["build_router", "content_security_policy"]
