"""The openCypher layer of the graph servers: the shared statements
(:mod:`~agentmem.graph.cypher.statements`) and one dialect module per engine
(:mod:`~agentmem.graph.cypher.neo4j`, :mod:`~agentmem.graph.cypher.falkordb`)."""

from __future__ import annotations

from agentmem.graph.cypher.dialect import CypherDialect
from agentmem.graph.cypher.falkordb import FALKORDB
from agentmem.graph.cypher.neo4j import NEO4J
from agentmem.graph.cypher.statements import (
    CLAIM_ROW,
    LABELS,
    PARTITION,
    RELATES,
    Statement,
    claim_partition,
    drop_partition,
    entities_named,
    entity_count,
    guarded,
    item_rows,
    neighbour_ids,
    partitions,
    partitions_holding,
    properties,
    read_partition,
    relation_rows_between,
    release,
    scope_where,
    set_version,
    write_change,
)

__all__ = [
    "CLAIM_ROW",
    "FALKORDB",
    "LABELS",
    "NEO4J",
    "PARTITION",
    "RELATES",
    "CypherDialect",
    "Statement",
    "claim_partition",
    "drop_partition",
    "entities_named",
    "entity_count",
    "guarded",
    "item_rows",
    "neighbour_ids",
    "partitions",
    "partitions_holding",
    "properties",
    "read_partition",
    "relation_rows_between",
    "release",
    "scope_where",
    "set_version",
    "write_change",
]
