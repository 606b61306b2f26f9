"""The shared openCypher statements of the graph servers (Neo4j, FalkorDB).

Every statement that reads or writes data is written here once, parameterised; what differs
between engines (schema DDL, whether a change can run in one rolled-back transaction) is a
:class:`~agentmem.graph.cypher.dialect.CypherDialect` in its own module. Every value (names,
fact texts, ids, scope values) travels as a **parameter**, never inside the statement text: an
entity called ``x'}) DETACH DELETE n //`` is stored as that string and nothing else. Statement
text is built only from constants of this module (labels, property names, the scope field
names) and validated small integers (hop counts), never from data.

The graph as stored on a server:

- ``(:GraphPartition {key, org_id, user_id, agent_id, thread_id, version, generation,
  writer, applied, broken})``: one per scope; a change claims it with compare-and-set on the
  version and the generation (:func:`claim_partition`). ``broken`` (the id of the writer whose
  change was only partly written, on an engine without rollback) makes every read of the
  partition :class:`~agentmem.errors.GraphCorrupt` until it is dropped and rebuilt.
- ``(:Entity {id, partition, <scope fields>, name, type, aliases, names, summary, facts,
  fact_ids, data})`` and ``(:Entity)-[:RELATES {id, partition, predicate, fact, valid_from,
  valid_to, created_at, invalidated_at, data}]->(:Entity)``: what a person exploring the
  graph with Cypher sees (times as ISO-8601 strings, plus ``*_ts`` epoch seconds for range
  queries: the two engines' temporal types differ, strings and numbers do not).
- ``:EpisodeLink``, ``:FactEntry``, ``:EntityMerge``, ``:Community``, ``:GraphMeta`` nodes
  keyed by ``(partition, id)``.

Scope isolation: every node and relationship carries its partition key and scope fields, and
every statement matches on them (see docs/architecture.md, "Graph servers"). Each node and
relationship also keeps ``data``: the item's JSON as agentmem writes it, which is what is
read back, so a round trip is exact whatever the server's type system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentmem.graph.model import (
    Community,
    Entity,
    EpisodeLink,
    FactEntry,
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


_PARTITION_RETURN = (
    "RETURN p.key AS key, p.org_id AS org_id, p.user_id AS user_id, "
    "p.agent_id AS agent_id, p.thread_id AS thread_id, p.version AS version, "
    "coalesce(p.generation, '') AS generation, "
    # A writer's own mark is hidden while it holds the claim: readers on other threads can
    # see a block between two of its statements (see claim_partition).
    "p.broken IS NOT NULL AND p.broken <> coalesce(p.writer, '') AS broken"
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


CLAIM_ROW = "claim"
"""The ``kind`` of the row :func:`read_partition` adds for the partition's claim: its ``id``
is the writer holding it, ``None`` when no change is being written."""


def read_partition(key: str) -> Statement:
    """One statement returning every item of a partition as rows ``(kind, id, data)``, and a
    :data:`CLAIM_ROW` saying whether a change held the partition's claim at that moment. One
    query, so the engine reads it at one point in time (read one label at a time, a change
    written in between tore it: a relation whose entity is missing, reported as corrupt); but
    where a change is several statements that reads can come between (FalkorDB), a read that
    found the claim held is of a change half-written, and is read again (see
    :meth:`~agentmem.graph.cypher_store.CypherGraphStore.read_rows`)."""
    parts = [
        f"MATCH (p:{PARTITION} {{key: $key}}) "
        f"RETURN '{CLAIM_ROW}' AS kind, p.writer AS id, '' AS data"
    ]
    parts.extend(
        f"MATCH (n:{label} {{partition: $key}}) "
        f"RETURN '{kind.value}' AS kind, n.id AS id, n.data AS data"
        for kind, label in LABELS.items()
    )
    parts.append(
        f"MATCH ()-[n:{RELATES} {{partition: $key}}]->() "
        f"RETURN '{ItemKind.RELATION.value}' AS kind, n.id AS id, n.data AS data"
    )
    return " UNION ALL ".join(parts), {"key": key}


def claim_partition(
    key: str, scope: Scope, expected_version: int, writer: str, generation: str
) -> Statement:
    """Create the partition node if missing and claim it for ``writer`` if it is still
    ``generation`` at ``expected_version`` (at version 0 nothing is stored yet, so any
    generation claims it); returns the version and generation found and whether the claim was
    won (the caller raises :class:`~agentmem.errors.Conflict` when not). The ``SET`` takes the
    node's write lock, so two writers cannot both claim the same version.

    A won claim also starts counting the change's statements (``applied``, see
    :func:`guarded`) and marks the partition broken by this writer until :func:`set_version`
    finds the change whole: on an engine without rollback, a change that stops half-way
    (even at its last statement) leaves the partition marked, never silently half-written.
    The mark counts only once the claim is released (by :func:`set_version` or
    :func:`release`) or taken by another writer: FalkorDB runs a block's statements one by one,
    and its reads, on their own threads, can come between two of them."""
    fields = scope.fields()
    sets = ", ".join(f"p.{f} = ${f}" for f in SCOPE_FIELDS)
    params: dict[str, Any] = {
        "key": key,
        "expected": expected_version,
        "generation": generation,
        "writer": writer,
        **{f: fields.get(f) for f in SCOPE_FIELDS},
    }
    return (
        f"MERGE (p:{PARTITION} {{key: $key}}) ON CREATE SET p.version = 0, {sets} "
        "SET p.writer = CASE WHEN p.version = $expected AND "
        "(p.version = 0 OR coalesce(p.generation, '') = $generation) "
        "THEN $writer ELSE p.writer END "
        # WITH: FalkorDB runs consecutive SET clauses as one, on the values before them.
        "WITH p SET p.applied = CASE WHEN p.writer = $writer THEN 0 ELSE p.applied END, "
        "p.broken = CASE WHEN p.writer = $writer AND p.broken IS NULL THEN $writer "
        "ELSE p.broken END "
        "RETURN p.version AS version, coalesce(p.generation, '') AS generation, "
        "p.writer = $writer AS claimed",
        params,
    )


def guarded(statement: Statement, key: str, writer: str) -> Statement:
    """``statement`` made to do nothing unless ``writer`` holds partition ``key``'s claim, and
    counted in the partition's ``applied`` when it runs: for engines without multi-statement
    rollback, which queue a change's statements behind the claim (FalkorDB: one
    ``MULTI``/``EXEC``), so a lost compare-and-set writes nothing. A statement the engine
    rejects at run time (a query timeout, a memory limit) is undone whole, its count too, so
    ``applied`` says how many of the change's statements were written."""
    text, params = statement
    return (
        f"MATCH (guard:{PARTITION} {{key: $key}}) WHERE guard.writer = $writer "
        f"SET guard.applied = guard.applied + 1 WITH guard {text}",
        {**params, "key": key, "writer": writer},
    )


def set_version(
    key: str, version: int, writer: str, generation: str, statements: int | None = None
) -> Statement:
    """Move a claimed partition to ``version`` (of ``generation``: the one it was claimed at,
    or the new one when it was not stored yet), clear this writer's broken mark and release
    the claim; returns ``version``, ``whole``, ``untouched`` and ``broken``.

    With ``statements`` (the number of :func:`guarded` statements of the change, for engines
    without rollback) the change must be whole: when every statement ran, as above; when none
    did, nothing was written, so the version stays and the mark is cleared; when only some
    did, the version moves (so cached copies are read again) and the mark stays: the partition
    is broken until a rebuild."""
    params: dict[str, Any] = {
        "key": key,
        "version": version,
        "writer": writer,
        "generation": generation,
    }
    whole, untouched = "true", "false"
    if statements is not None:
        params["statements"] = statements
        whole = "coalesce(p.applied = $statements, false)"
        untouched = "coalesce(p.applied = 0, false) AND $statements > 0"
    return (
        f"MATCH (p:{PARTITION} {{key: $key}}) WHERE p.writer = $writer "
        f"WITH p, {whole} AS whole, {untouched} AS untouched "
        "SET p.version = CASE WHEN untouched THEN p.version ELSE $version END, "
        "p.generation = CASE WHEN untouched THEN p.generation ELSE $generation END, "
        "p.broken = CASE WHEN p.broken = $writer AND (whole OR untouched) THEN null "
        "ELSE p.broken END, "
        "p.writer = null, p.applied = null "
        "RETURN p.version AS version, whole, untouched, p.broken IS NOT NULL AS broken",
        params,
    )


def _time(value: datetime | None) -> tuple[str | None, float | None]:
    return (value.isoformat(), value.timestamp()) if value is not None else (None, None)


def properties(item: GraphItem, key: str) -> dict[str, Any]:
    """The properties a node or relationship of ``item`` carries (primitives and lists of
    primitives only; ``None`` values are simply not set; see :func:`_readable`)."""
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
            fact_ids=sorted(item.fact_ids),
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
    elif isinstance(item, FactEntry):
        props.update(names=item.names, episode_ids=item.episode_ids)
    return {k: v if k in _EXACT else _readable(v) for k, v in props.items() if v is not None}


_EXACT = frozenset({"id", "partition", "data"})
"""Properties kept exactly: the keys statements match on, and the item itself."""


def _readable(value: Any) -> Any:
    """A property value as engines can hold it: NUL characters (FalkorDB's query parser ends
    a string at one) become U+FFFD in the readable properties; ``data`` keeps the exact item
    (JSON escapes them), so what agentmem reads back is unchanged."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def _delete_all(key: str) -> list[Statement]:
    """Statements deleting every item of partition ``key``, entities (with their relations)
    last: a read between two of them (FalkorDB) still finds a readable graph, never an
    episode link naming an entity already deleted."""
    return [
        (f"MATCH (n:{label} {{partition: $key}}) DETACH DELETE n", {"key": key})
        for label in reversed(LABELS.values())
    ]


def write_change(key: str, change: GraphChange) -> list[Statement]:
    """The statements applying a change to partition ``key`` (after :func:`claim_partition`):
    deletes, then nodes, then relationships (whose endpoints must exist by then). In this
    order each state between two of them is a readable graph, which matters where reads can
    come between them (FalkorDB)."""
    out: list[Statement] = []
    if change.replace:
        out.extend(_delete_all(key))
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


def release(key: str, writer: str) -> Statement:
    """Release ``writer``'s claim on a partition without moving its version: its broken
    mark, if it left one, counts from now on."""
    return (
        f"MATCH (p:{PARTITION} {{key: $key}}) WHERE p.writer = $writer "
        "SET p.writer = null, p.applied = null",
        {"key": key, "writer": writer},
    )


def drop_partition(key: str, writer: str | None = None) -> list[Statement]:
    """Statements deleting one partition: its items, then its partition node.

    With ``writer`` (engines without rollback) the partition is first claimed and marked
    broken by ``writer`` (as by :func:`claim_partition`), the item deletes are
    :func:`guarded`, and the partition node goes only when every one of them ran; otherwise
    the claim is released and the mark counts: a drop that stops half-way leaves a broken
    partition (its reads say to rebuild it), never a torn one without its partition node."""
    deletes = _delete_all(key)
    if writer is None:
        return [*deletes, (f"MATCH (p:{PARTITION} {{key: $key}}) DELETE p", {"key": key})]
    return [
        (
            f"MATCH (p:{PARTITION} {{key: $key}}) SET p.writer = $writer, p.applied = 0, "
            "p.broken = coalesce(p.broken, $writer)",
            {"key": key, "writer": writer},
        ),
        *(guarded(s, key, writer) for s in deletes),
        (
            f"MATCH (p:{PARTITION} {{key: $key}}) "
            "WHERE p.writer = $writer AND p.applied = $statements DELETE p",
            {"key": key, "writer": writer, "statements": len(deletes)},
        ),
        release(key, writer),
    ]


# bounded reads: the k-hop neighbourhood of some entities -----------------------------------


def entity_count(key: str) -> Statement:
    """How many entities partition ``key`` holds."""
    return ("MATCH (e:Entity {partition: $key}) RETURN count(e) AS n", {"key": key})


def entities_named(key: str, names: list[str]) -> Statement:
    """Ids of the partition's entities known by one of these normalised names."""
    return (
        # ``x IN e.names`` per name (not ``any(...)``) lets FalkorDB use its array index.
        "UNWIND $names AS name MATCH (e:Entity) WHERE name IN e.names AND e.partition = $key "
        "RETURN DISTINCT e.id AS id ORDER BY id",
        {"key": key, "names": names},
    )


def neighbour_ids(key: str, ids: list[str], exclude: list[str], limit: int) -> Statement:
    """Ids of the entities one relation away from ``ids`` (either direction), not in
    ``exclude``, smallest first, at most ``limit``: one hop of a bounded breadth-first walk."""
    return (
        # Anchored first, then walked: with the pattern in one MATCH, FalkorDB's planner
        # scans every entity of the partition from the far side (400x slower, measured).
        "MATCH (s:Entity) WHERE s.partition = $key AND s.id IN $ids "
        "MATCH (s)-[:RELATES]-(n:Entity) WHERE n.partition = $key AND NOT n.id IN $exclude "
        "RETURN DISTINCT n.id AS id ORDER BY id LIMIT $limit",
        {"key": key, "ids": ids, "exclude": exclude, "limit": limit},
    )


def item_rows(kind: ItemKind, key: str, ids: list[str]) -> Statement:
    """Rows ``(kind, id, data)`` of the partition's items of ``kind`` with these ids (nodes;
    relations go through :func:`relation_rows_between`)."""
    return (
        f"UNWIND $ids AS id MATCH (n:{LABELS[kind]} {{partition: $key, id: id}}) "
        f"RETURN '{kind.value}' AS kind, n.id AS id, n.data AS data",
        {"key": key, "ids": ids},
    )


def relation_rows_between(key: str, ids: list[str]) -> Statement:
    """Rows ``(kind, id, data)`` of the partition's relations whose two ends are in ``ids``."""
    return (
        "MATCH (a:Entity) WHERE a.partition = $key AND a.id IN $ids "
        f"MATCH (a)-[r:{RELATES}]->(b:Entity) WHERE r.partition = $key AND b.id IN $ids "
        f"RETURN '{ItemKind.RELATION.value}' AS kind, r.id AS id, r.data AS data",
        {"key": key, "ids": ids},
    )


__all__ = [
    "CLAIM_ROW",
    "LABELS",
    "PARTITION",
    "RELATES",
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
