"""The Neo4j 5 dialect: uniqueness constraints and range indexes, each ``IF NOT EXISTS``;
a change runs in one write transaction (rolled back on error)."""

from __future__ import annotations

from agentmem.graph.cypher.dialect import CypherDialect
from agentmem.graph.cypher.statements import LABELS, PARTITION, RELATES

NEO4J = CypherDialect(
    name="neo4j",
    schema=(
        f"CREATE CONSTRAINT agentmem_partition_key IF NOT EXISTS "
        f"FOR (p:{PARTITION}) REQUIRE p.key IS UNIQUE",
        *(
            f"CREATE INDEX agentmem_{label.lower()}_partition_id IF NOT EXISTS "
            f"FOR (n:{label}) ON (n.partition, n.id)"
            for label in LABELS.values()
        ),
        "CREATE INDEX agentmem_entity_name IF NOT EXISTS FOR (e:Entity) ON (e.partition, e.name)",
        f"CREATE INDEX agentmem_partition_user IF NOT EXISTS FOR (p:{PARTITION}) ON (p.user_id)",
        f"CREATE INDEX agentmem_partition_org IF NOT EXISTS FOR (p:{PARTITION}) ON (p.org_id)",
        f"CREATE INDEX agentmem_relates_partition_id IF NOT EXISTS "
        f"FOR ()-[r:{RELATES}]-() ON (r.partition, r.id)",
        f"CREATE INDEX agentmem_relates_predicate IF NOT EXISTS "
        f"FOR ()-[r:{RELATES}]-() ON (r.predicate)",
    ),
    rollback=True,
)
"""Neo4j 5. Entity ids are unique per partition, not globally (two scopes may hold the same
id), so the constraint is on the partition key only."""

__all__ = ["NEO4J"]
