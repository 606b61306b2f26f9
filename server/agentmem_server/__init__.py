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
    from agentmem_server.app import create_app
    from agentmem_server.auth import authorise, may_read
    from agentmem_server.config import ServerSettings
    from agentmem_server.keys import (
        ApiKey,
        CreatedKey,
        create_key,
        list_keys,
        revoke_key,
        verify_key,
    )
    from agentmem_server.mcp_tools import build_mcp, http_app

_WHERE = {
    "create_app": "agentmem_server.app",
    "authorise": "agentmem_server.auth",
    "may_read": "agentmem_server.auth",
    "ServerSettings": "agentmem_server.config",
    "ApiKey": "agentmem_server.keys",
    "CreatedKey": "agentmem_server.keys",
    "create_key": "agentmem_server.keys",
    "list_keys": "agentmem_server.keys",
    "revoke_key": "agentmem_server.keys",
    "verify_key": "agentmem_server.keys",
    "build_mcp": "agentmem_server.mcp_tools",
    "http_app": "agentmem_server.mcp_tools",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'agentmem_server' has no attribute {name!r}")
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
