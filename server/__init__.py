"""agentmem as a service: a REST API (FastAPI) and an MCP server over one memory, with API
keys bound to scopes, rate limits, metrics and structured logs.

Install with ``pip install 'agentmem[server]'``; run with ``agentmem serve`` and
``agentmem mcp``. The core ``agentmem`` package never imports this one. Names load on first
use, so the ``agentmem`` CLI (which lists these commands) does not import FastAPI or the MCP
SDK until a server command runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.app import create_app
    from server.auth import authorise, may_read
    from server.config import ServerSettings
    from server.keys import ApiKey, CreatedKey, create_key, list_keys, revoke_key, verify_key
    from server.mcp_tools import build_mcp, http_app

_WHERE = {
    "create_app": "server.app",
    "authorise": "server.auth",
    "may_read": "server.auth",
    "ServerSettings": "server.config",
    "ApiKey": "server.keys",
    "CreatedKey": "server.keys",
    "create_key": "server.keys",
    "list_keys": "server.keys",
    "revoke_key": "server.keys",
    "verify_key": "server.keys",
    "build_mcp": "server.mcp_tools",
    "http_app": "server.mcp_tools",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'server' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


__all__ = [
    "ApiKey",
    "CreatedKey",
    "ServerSettings",
    "authorise",
    "build_mcp",
    "create_app",
    "create_key",
    "http_app",
    "list_keys",
    "may_read",
    "revoke_key",
    "verify_key",
]
