"""What differs between openCypher engines, as data: one :class:`CypherDialect` per engine.

Adding an engine is one small module that builds a dialect (its schema DDL and how it runs a
change) and a store class that sends :mod:`~agentmem.graph.cypher.statements` through its
driver.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CypherDialect:
    """An openCypher engine's differences from the shared statements."""

    name: str
    schema: tuple[str, ...]
    """Index and constraint statements ``setup()`` runs (idempotent on their own, or made so
    by ``schema_exists``)."""
    schema_exists: tuple[str, ...] = ()
    """Error texts meaning "this index already exists", for engines whose DDL has no
    ``IF NOT EXISTS``; such errors are ignored by ``setup()``."""
    rollback: bool = True
    """Whether a change's statements run in one transaction that rolls back on error. Without
    it (FalkorDB) the statements are queued atomically behind the claim and each is
    :func:`~agentmem.graph.cypher.statements.guarded`, so a lost compare-and-set writes
    nothing."""


__all__ = ["CypherDialect"]
