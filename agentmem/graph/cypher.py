"""The openCypher layer of the graph servers: every statement, parameterised, in one place.

Neo4j uses it today; FalkorDB (another openCypher server) is meant to share it, so what
differs between servers is isolated in a :class:`CypherDialect` (schema statements and their
syntax). Every value (names, fact texts, ids, scope values) travels as a **parameter**, never
inside the statement text: an entity called ``x'}) DETACH DELETE n //`` is stored as that
string and nothing else. Statement text is built only from constants of this module (labels,
property names, the scope field names), never from data.

The graph as stored on a server:

- ``(:GraphPartition {key, org_id, user_id, agent_id, thread_id, version})``: one per scope;
  the version is claimed under a write lock by each change (compare-and-set).
- ``(:Entity {id, partition, <scope fields>, name, type, aliases, names, summary, facts,
  data})`` and ``(:Entity)-[:RELATES {id, partition, predicate, fact, valid_from, valid_to,
  created_at, invalidated_at, data}]->(:Entity)``: what a person exploring the graph with
  Cypher sees (times as ISO-8601 strings, plus ``*_ts`` epoch seconds for range queries).
- ``:EpisodeLink``, ``:FactEntry``, ``:EntityMerge``, ``:Community``, ``:GraphMeta`` nodes
  keyed by ``(partition, id)``.

Each node and relationship also keeps ``data``: the item's JSON as agentmem writes it, which
is what is read back, so a round trip is exact whatever the server's type system.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentmem.graph.model import (
    Community,
    Entity,
    EpisodeLink,
    GraphChange,
    GraphItem,
    ItemKind,
    Relation,
    dump_item,
)
from agentmem.models import SCOPE_FIELDS, Scope, ScopeSet, scope_members

Statement = tuple[str, dict[str, Any]]
"""Cypher text and its parameters."""

PARTITION = "GraphPartition"
RELATES = "RELATES"
LABELS: dict[ItemKind, str] = {
    ItemKind.ENTITY: "Entity",
    ItemKind.LINK: "EpisodeLink",
    ItemKind.FACT: "FactEntry",
    ItemKind.MERGE: "EntityMerge",
    ItemKind.COMMUNITY: "Community",
    ItemKind.META: "GraphMeta",
}
"""Node label of each item kind (relations are ``RELATES`` relationships)."""


@dataclass(frozen=True)
class CypherDialect:
    """What differs between openCypher servers: schema statements. Statements that read and
    write data are the same for every dialect."""

    name: str
    schema: tuple[str, ...]


NEO4J = CypherDialect(
    name="neo4j",
    schema=(
        f"CREATE CONSTRAINT agentmem_partition_key IF NOT EXISTS "
        f"FOR (p:{PARTITION}) REQUIRE p.key IS UNIQUE",
        "CREATE CONSTRAINT agentmem_entity_id IF NOT EXISTS FOR (e:Entity) REQUIRE e.id IS UNIQUE",
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
)
"""Neo4j 5: uniqueness constraints and range indexes, each created only if missing."""

_PARTITION_RETURN = (
    "RETURN p.key AS key, p.org_id AS org_id, p.user_id AS user_id, "
    "p.agent_id AS agent_id, p.thread_id AS thread_id, p.version AS version"
)


def scope_where(scope: Scope | ScopeSet | None, var: str = "p") -> Statement:
    """A ``WHERE`` condition (without the keyword) on a node's scope properties, with its
    parameters: every field a member scope sets must match; members are OR-ed."""
    if scope is None:
        return "true", {}
    groups: list[str] = []
    params: dict[str, Any] = {}
    for i, member in enumerate(scope_members(scope)):
        parts = []
        for name, value in member.fields().items():
            if name not in SCOPE_FIELDS:  # field names are constants; never data
                raise ValueError(f"unknown scope field {name!r}")
            param = f"s{i}_{name}"
            parts.append(f"{var}.{name} = ${param}")
            params[param] = value
        groups.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(groups) + ")", params


def partitions(scope: Scope | ScopeSet | None) -> Statement:
    """The partitions a query scope may read."""
    where, params = scope_where(scope)
    return f"MATCH (p:{PARTITION}) WHERE {where} {_PARTITION_RETURN} ORDER BY p.key", params


def partitions_holding(kind: ItemKind, ids: list[str]) -> Statement:
    """The partitions holding items of ``kind`` with these ids."""
    if kind is ItemKind.RELATION:
        match = f"MATCH ()-[n:{RELATES}]->() WHERE n.id IN $ids"
    else:
        match = f"MATCH (n:{LABELS[kind]}) WHERE n.id IN $ids"
    return (
        f"{match} WITH DISTINCT n.partition AS key MATCH (p:{PARTITION} {{key: key}}) "
        f"{_PARTITION_RETURN} ORDER BY p.key",
        {"ids": ids},
    )


def read_partition(key: str) -> list[Statement]:
    """Statements returning every item of a partition as rows ``(kind, id, data)``."""
    out = [
        (
            f"MATCH (n:{label} {{partition: $key}}) "
            f"RETURN '{kind.value}' AS kind, n.id AS id, n.data AS data",
            {"key": key},
        )
        for kind, label in LABELS.items()
    ]
    out.append(
        (
            f"MATCH ()-[n:{RELATES} {{partition: $key}}]->() "
            f"RETURN '{ItemKind.RELATION.value}' AS kind, n.id AS id, n.data AS data",
            {"key": key},
        )
    )
    return out


def lock_partition(key: str, scope: Scope) -> Statement:
    """Create the partition node if missing and take its write lock; returns its version
    (read after the lock, so two writers cannot both see the same one)."""
    fields = scope.fields()
    sets = ", ".join(f"p.{f} = ${f}" for f in SCOPE_FIELDS)
    params: dict[str, Any] = {"key": key, **{f: fields.get(f) for f in SCOPE_FIELDS}}
    return (
        f"MERGE (p:{PARTITION} {{key: $key}}) ON CREATE SET p.version = 0, {sets} "
        "SET p.lock = coalesce(p.lock, 0) + 1 WITH p RETURN p.version AS version",
        params,
    )


def set_version(key: str, version: int) -> Statement:
    """Move a (locked) partition to ``version``."""
    return (
        f"MATCH (p:{PARTITION} {{key: $key}}) SET p.version = $version",
        {"key": key, "version": version},
    )


def _time(value: datetime | None) -> tuple[str | None, float | None]:
    return (value.isoformat(), value.timestamp()) if value is not None else (None, None)


def properties(item: GraphItem, key: str) -> dict[str, Any]:
    """The properties a node or relationship of ``item`` carries (primitives and lists of
    primitives only; ``None`` values are simply not set)."""
    props: dict[str, Any] = {
        "id": item.id,
        "partition": key,
        "kind": item.kind.value,
        "data": dump_item(item),
        **item.scope.fields(),
    }
    if isinstance(item, Entity):
        props.update(
            name=item.name,
            type=item.type,
            aliases=item.aliases,
            names=sorted(item.names),
            summary=item.summary,
            facts=len(item.fact_ids),
        )
    elif isinstance(item, Relation):
        props.update(predicate=item.predicate, fact=item.fact, fact_ids=item.fact_ids)
        for field in ("valid_from", "valid_to", "created_at", "invalidated_at"):
            text, ts = _time(getattr(item, field))
            props[field] = text
            props[f"{field}_ts"] = ts
    elif isinstance(item, Community):
        props.update(
            level=item.level, parent=item.parent, summary=item.summary, size=item.size,
            members=item.members,
        )  # fmt: skip
    elif isinstance(item, EpisodeLink):
        props.update(entity_ids=item.entity_ids, fact_ids=item.fact_ids)
    return {k: v for k, v in props.items() if v is not None}


def write_change(key: str, change: GraphChange) -> list[Statement]:
    """The statements applying a change to partition ``key`` (after :func:`lock_partition`):
    deletes, then nodes, then relationships (whose endpoints must exist by then)."""
    out: list[Statement] = []
    if change.replace:
        out.extend(
            (f"MATCH (n:{label} {{partition: $key}}) DETACH DELETE n", {"key": key})
            for label in LABELS.values()
        )
    by_kind: dict[ItemKind, list[str]] = {}
    for kind, item_id in change.deletes:
        by_kind.setdefault(kind, []).append(item_id)
    relation_ids = [i.id for i in change.upserts if isinstance(i, Relation)]
    stale = by_kind.pop(ItemKind.RELATION, []) + relation_ids
    if stale:
        out.append(
            (
                f"UNWIND $ids AS id MATCH ()-[r:{RELATES} {{partition: $key, id: id}}]->() "
                "DELETE r",
                {"key": key, "ids": stale},
            )
        )
    for kind, ids in by_kind.items():
        out.append(
            (
                f"UNWIND $ids AS id MATCH (n:{LABELS[kind]} {{partition: $key, id: id}}) "
                "DETACH DELETE n",
                {"key": key, "ids": ids},
            )
        )
    for kind, label in LABELS.items():
        rows = [{"id": i.id, "props": properties(i, key)} for i in change.upserts if i.kind is kind]
        if rows:
            out.append(
                (
                    f"UNWIND $rows AS row MERGE (n:{label} {{partition: $key, id: row.id}}) "
                    "SET n = row.props",
                    {"key": key, "rows": rows},
                )
            )
    relations = [
        {"source": i.source, "target": i.target, "props": properties(i, key)}
        for i in change.upserts
        if isinstance(i, Relation)
    ]
    if relations:
        out.append(
            (
                "UNWIND $rows AS row "
                "MATCH (a:Entity {partition: $key, id: row.source}) "
                "MATCH (b:Entity {partition: $key, id: row.target}) "
                f"CREATE (a)-[r:{RELATES}]->(b) SET r = row.props",
                {"key": key, "rows": relations},
            )
        )
    return out


def drop_partition(key: str) -> list[Statement]:
    """Statements deleting one partition: its items, then its partition node."""
    return [
        *((f"MATCH (n:{label} {{partition: $key}}) DETACH DELETE n", {"key": key})
          for label in LABELS.values()),
        (f"MATCH (p:{PARTITION} {{key: $key}}) DELETE p", {"key": key}),
    ]  # fmt: skip


__all__ = [
    "LABELS",
    "NEO4J",
    "PARTITION",
    "RELATES",
    "CypherDialect",
    "Statement",
    "drop_partition",
    "lock_partition",
    "partitions",
    "partitions_holding",
    "properties",
    "read_partition",
    "scope_where",
    "set_version",
    "write_change",
]
