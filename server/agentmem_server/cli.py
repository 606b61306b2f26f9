"""``agentmem serve``, ``agentmem mcp`` and ``agentmem keys``, added through the
``agentmem.cli`` entry point (the core never imports this package).

::

    agentmem keys create --org acme --user alice --name "alice's laptop"
    agentmem serve --host 0.0.0.0 --port 8080
    agentmem mcp --user alice                       # stdio, for editors and desktop clients
    agentmem mcp --transport http --port 8081       # streamable HTTP, API key per request
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentmem.cli.options import sub_app
from agentmem.settings import Settings
from agentmem.stores import RecordStore, store_from_url
from agentmem_server.config import ServerSettings
from agentmem_server.keys import create_key, list_keys, revoke_key

if TYPE_CHECKING:
    from agentmem.memory import Memory

serve_app = sub_app(
    "serve",
    "Serve the REST API (FastAPI on uvicorn) over this memory.",
)
mcp_app = sub_app(
    "mcp",
    "Serve agentmem as an MCP server (stdio or streamable HTTP).",
)
keys_app = sub_app(
    "keys",
    "API keys of the REST and MCP servers: create, list, revoke.",
    no_args_is_help=True,
)

HostOpt = Annotated[str | None, typer.Option("--host", help="Interface (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option("--port", help="TCP port (default 8080).")]


WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Server processes sharing the port (default 1). Above 1 the memory must be one "
        "several processes share (PostgreSQL store + pgvector or a Qdrant server).",
    ),
]


@serve_app.callback()
def serve(
    ctx: typer.Context, host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = 1
) -> None:
    """Serve the REST API until SIGINT/SIGTERM; in-flight requests finish before it stops.

    Example:

        agentmem keys create --org acme && agentmem serve --port 8080
    """
    import uvicorn

    from agentmem.cli import fail, memory_for, settings_for
    from agentmem.errors import AgentMemError
    from agentmem_server import logs
    from agentmem_server.app import create_app

    try:
        settings = ServerSettings.load(
            **{k: v for k, v in (("host", host), ("port", port)) if v is not None}
        )
        logs.configure(json_logs=settings.log_json, level=settings.log_level)
        if workers > 1:
            _serve_workers(settings, settings_for(ctx), workers)
            return
        with memory_for(ctx) as mem:
            # The app closes the memory in its shutdown: uvicorn re-raises SIGTERM once it
            # has stopped, so code after uvicorn.run would not run.
            app = create_app(mem, settings, close_memory=True)
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                timeout_graceful_shutdown=int(settings.graceful_timeout_s),
            )
    except AgentMemError as exc:
        fail(str(exc))


def _serve_workers(server: ServerSettings, settings: Settings, workers: int) -> None:
    """N uvicorn worker processes, each with its own Memory on the shared store."""
    import logging
    import os

    import uvicorn

    from agentmem.memory import Memory
    from agentmem_server.app import rate_limit_storage
    from agentmem_server.workers import OVERRIDES_ENV, check_shareable, overrides_for_workers

    check_shareable(settings, workers)
    rate_limit_storage(server)  # an unreachable Redis fails here, not in N workers
    # Open once here: migrations and index tables are made before the workers race for them
    # (they would be safe anyway: both are serialised by advisory locks).
    Memory(settings=settings).close()
    if server.rate_limit != "off" and server.rate_limit_storage_url.startswith("memory://"):
        logging.getLogger("agentmem_server").warning(
            "rate limits are counted in each of the %d worker processes (a key may make up to "
            "%d x %s); set AGENTMEM_SERVER_RATE_LIMIT_STORAGE_URL=redis://... to share them",
            workers,
            workers,
            server.rate_limit,
        )
    os.environ[OVERRIDES_ENV] = json.dumps(overrides_for_workers(settings))
    uvicorn.run(
        "agentmem_server.workers:create_worker_app",
        factory=True,
        workers=workers,
        host=server.host,
        port=server.port,
        log_config=None,
        timeout_graceful_shutdown=int(server.graceful_timeout_s),
    )


PinOpt = Annotated[
    bool,
    typer.Option(
        "--pin-scope/--no-pin-scope",
        help="With --user/--agent/--org, pin every tool call to that scope: the tools take no "
        "scope arguments (default). --no-pin-scope lets the model pass user_id, agent_id, "
        "thread_id and org_id, the options giving the defaults.",
    ),
]


@mcp_app.callback()
def mcp(
    ctx: typer.Context,
    transport: Annotated[
        str, typer.Option("--transport", help="stdio (default) or http (streamable HTTP).")
    ] = "stdio",
    host: HostOpt = None,
    port: PortOpt = None,
    user: Annotated[str | None, typer.Option("--user", help="The user_id of tools.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="The agent_id of tools.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="The org_id of tools.")] = None,
    pin_scope: PinOpt = True,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="AGENTMEM_API_KEY",
            help="stdio: hold every call to this key's scope.",
        ),
    ] = None,
) -> None:
    """Serve the MCP tools add_memory, search_memory, list_memories, get_context,
    update_memory, delete_memory, record_experience and recall_experience.

    Example (an MCP client's config): command "agentmem", args ["mcp", "--user", "alice"]
    """
    import uvicorn

    from agentmem.cli import fail, memory_for
    from agentmem.errors import AgentMemError
    from agentmem_server import logs
    from agentmem_server.mcp_tools import http_app

    if transport not in ("stdio", "http"):
        fail(f"--transport must be stdio or http, got {transport!r}")
    defaults = {"user_id": user, "agent_id": agent, "org_id": org}
    pin = pin_scope and any(defaults.values())
    try:
        settings = ServerSettings.load(
            **{k: v for k, v in (("host", host), ("port", port)) if v is not None}
        )
        # stdout carries the stdio protocol: logs go to stderr only.
        logs.configure(json_logs=settings.log_json, level=settings.log_level)
        with memory_for(ctx) as mem:
            if transport == "stdio":
                _serve_stdio(mem, defaults, pin, api_key)
            else:
                uvicorn.run(
                    http_app(mem, defaults=defaults, pin_scope=pin, close_memory=True),
                    host=settings.host,
                    port=settings.port,
                    log_config=None,
                    timeout_graceful_shutdown=int(settings.graceful_timeout_s),
                )
    except AgentMemError as exc:
        if transport == "stdio":
            _refuse_initialize(f"{type(exc).__name__}: {exc}")
        fail(str(exc))


def _serve_stdio(
    mem: Memory, defaults: dict[str, str | None], pin: bool, api_key: str | None
) -> None:
    """The MCP server on stdin/stdout until the client closes it."""
    import anyio

    from agentmem.errors import PermissionDenied
    from agentmem_server.keys import verify_key
    from agentmem_server.mcp_tools import build_mcp

    key = None
    if api_key is not None:
        key = verify_key(mem.backends.store, api_key)
        if key is None:
            raise PermissionDenied("--api-key is unknown, malformed or revoked")
    server = build_mcp(mem, defaults=defaults, pin_scope=pin, key=key)
    anyio.run(server.run_stdio_async)


def _refuse_initialize(message: str) -> None:
    """Answer an MCP client's ``initialize`` request with ``message`` as a JSON-RPC error, so
    the client shows why the server cannot start (a held home, an unknown key) instead of a
    bare closed connection. Nothing is read from a terminal."""
    if sys.stdin.isatty():
        return
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if isinstance(request, dict) and "id" in request:
            error = {"code": -32000, "message": message}
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}))
            sys.stdout.write("\n")
            sys.stdout.flush()
            return


@contextmanager
def _store(ctx: typer.Context) -> Iterator[RecordStore]:
    """The record store alone: keys can be managed while a server holds the memory open."""
    from agentmem.cli import settings_for

    settings = settings_for(ctx)
    store = store_from_url(settings.resolved_store_url(), timeout=settings.connect_timeout_s)
    with store:
        yield store


@keys_app.command()
def create(
    ctx: typer.Context,
    org: Annotated[str, typer.Option("--org", help="The org the key is bound to.")],
    users: Annotated[
        list[str] | None, typer.Option("--user", help="Limit to this user; repeatable.")
    ] = None,
    agents: Annotated[
        list[str] | None, typer.Option("--agent", help="Limit to this agent; repeatable.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an API key and print it once (only its hash is stored).

    Example:

        agentmem keys create --org acme --agent researcher --name "researcher bot"
    """
    from agentmem.cli import fail
    from agentmem.errors import AgentMemError

    try:
        with _store(ctx) as store:
            created = create_key(
                store,
                org_id=org,
                name=name,
                user_ids=tuple(users or ()),
                agent_ids=tuple(agents or ()),
            )
    except AgentMemError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"id": created.key.id, "token": created.token}))
        return
    Console(highlight=False, soft_wrap=True).print(
        f"created key {created.key.id} for org {org!r}; store this token now, it is not "
        f"shown again:\n{created.token}"
    )


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option("--org", help="Only this org's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every API key with its bindings (never the secret), revoked ones marked. Ids are never
    shortened: `keys revoke` takes them (or any unique prefix)."""
    from agentmem.cli import console, dump, fail, id_column
    from agentmem.errors import AgentMemError

    try:
        with _store(ctx) as store:
            keys = list_keys(store, org)
    except AgentMemError as exc:
        fail(str(exc))
    if as_json:
        dump([k.model_dump(mode="json") for k in keys])
        return
    table = Table()
    id_column(table)
    for name in ("name", "org", "users", "agents", "created", "revoked"):
        table.add_column(name)
    for k in keys:
        table.add_row(
            k.id,
            k.name,
            k.org_id,
            ",".join(k.user_ids) or "*",
            ",".join(k.agent_ids) or "*",
            k.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if k.revoked_at else "",
        )
    console().print(table)


@keys_app.command()
def revoke(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id or a unique prefix (keys list).")
    ],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from agentmem.cli import fail, unique_prefix
    from agentmem.errors import AgentMemError

    try:
        with _store(ctx) as store:
            known = {k.id: k for k in list_keys(store, None)}
            full = unique_prefix(key_id, known, what="key")
            before = known.get(full or key_id)
            key = revoke_key(store, full or key_id)
    except AgentMemError as exc:
        fail(str(exc))
    name = key.name or "no name"
    if before is not None and before.revoked_at is not None:  # revoking twice changes nothing
        when = f"{before.revoked_at:%Y-%m-%d %H:%M} UTC"
        Console(highlight=False).print(f"key {key.id} ({name}) was already revoked on {when}")
        return
    Console(highlight=False).print(f"revoked key {key.id} ({name})")


__all__ = ["keys_app", "mcp_app", "serve_app"]
