"""Several server processes on one memory: ``agentmem serve --workers N``.

The parent process opens the memory once (so migrations, the vector tables and a bad setting
are dealt with before any worker starts), closes it, and hands the listening socket to N
uvicorn worker processes. Each worker builds its own :class:`~agentmem.Memory` and app from
the same settings: the environment, plus the CLI's ``--home/--store-url/--vectors-url``
passed down in :data:`OVERRIDES_ENV`. The memory must be one that several processes may share
(PostgreSQL store + pgvector or a Qdrant server); an embedded home is refused up front.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from agentmem.errors import InvalidSettings
from agentmem.settings import Settings

OVERRIDES_ENV = "AGENTMEM_SERVE_OVERRIDES"
"""JSON object of the settings the parent's command line set, for the worker processes."""


def check_shareable(settings: Settings, workers: int) -> None:
    """Refuse ``--workers`` above 1 on a memory one process owns (SQLite or Qdrant Edge)."""
    if workers > 1 and settings.uses_embedded_home():
        raise InvalidSettings(
            f"--workers {workers} needs a memory several processes may share, but "
            f"{settings.resolved_store_url()} / {settings.resolved_vectors_url()} is an embedded "
            "home (one process at a time); set AGENTMEM_STORE_URL=postgresql://... and "
            "AGENTMEM_VECTORS_URL=postgresql://... (pgvector), or serve with --workers 1"
        )


def overrides_for_workers(settings: Settings) -> dict[str, Any]:
    """The backend settings a worker needs beyond its environment."""
    return {
        "home": str(settings.home),
        "store_url": settings.resolved_store_url(),
        "vectors_url": settings.resolved_vectors_url(),
    }


def create_worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's ``factory``): its own Memory, closed on
    shutdown."""
    from agentmem.memory import Memory
    from agentmem_server import logs
    from agentmem_server.app import create_app
    from agentmem_server.config import ServerSettings

    overrides = json.loads(os.environ.get(OVERRIDES_ENV, "{}"))
    settings = Settings.load(**overrides)
    server_settings = ServerSettings.load()
    logs.configure(json_logs=server_settings.log_json, level=server_settings.log_level)
    memory = Memory(settings=settings)
    return create_app(memory, server_settings, close_memory=True)


__all__ = ["OVERRIDES_ENV", "check_shareable", "create_worker_app", "overrides_for_workers"]
