"""A LangGraph ``BaseStore`` whose items are agentmem memories.

Each ``(namespace, key)`` item is one :class:`~agentmem.models.MemoryRecord`:

- **scope**: the store's scope (``org_id="langgraph"`` unless ``org_id`` / ``user_id`` /
  ``agent_id`` are given), plus ``user_id=namespace[user_level]`` when ``user_level`` is set,
  so that ``("memories", "alice")`` lands in Alice's scope and ``mem.search(...,
  user_id="alice")`` / ``mem.context(...)`` recall it;
- **id**: a UUID derived from the store's name and scope, the namespace and the key, so a
  ``get`` is one primary-key read;
- **text**: what is embedded and BM25-indexed: the fields named by the ``index`` config (the
  whole JSON document by default), one per line;
- **metadata**: the value itself (``lg_value``, a JSON document) and the namespace, one key per
  level (``lg_ns0``, ``lg_ns1``, ...), so a namespace prefix is an equality filter applied
  inside the store's and the vector index's query.

A query search orders items by agentmem's hybrid retrieval (the fused rank) and gives each
ranked item two scores: ``score``, the similarity of the query to the item (the cosine of the
query and its closest indexed field, as ``InMemoryStore`` computes it), and ``fused_score``,
the reciprocal-rank-fusion score that ordered it (:class:`AgentMemSearchItem`).

Reads see the state before the batch's writes; writes to the same item in one batch collapse
to the last one; a put of an existing item keeps ``created_at`` and moves ``updated_at``
(a new version, with history); a ``None`` value deletes. Differences from LangGraph's
``InMemoryStore`` are listed in ``docs/langgraph.md``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
    validate_op_namespace,
)

from agentmem import retrieval, trust, writing
from agentmem.embedders.base import normalise
from agentmem.errors import Conflict, InvalidSettings, ValidationError
from agentmem.filters import Condition, FilterOp
from agentmem.models import MemoryKind, MemoryRecord, Scope, utcnow
from agentmem.redaction import redact_json
from agentmem.stores import RecordQuery
from agentmem.validation import check_kind, visible

if TYPE_CHECKING:
    from agentmem.memory import Memory

ACTOR = "langgraph-store"
"""The actor recorded in the history of every write the store makes."""

DEFAULT_ORG = "langgraph"
"""The scope (``org_id``) of a store built without any scope field."""

# Metadata keys of a store item (all start with "lg_"; filters reach the flat ones).
STORE_KEY = "lg_store"
NAMESPACE_KEY = "lg_ns"
LEVEL_KEY = "lg_ns{}"
DEPTH_KEY = "lg_depth"
ITEM_KEY = "lg_key"
VALUE_KEY = "lg_value"
INDEXED_KEY = retrieval.STORE_INDEXED_KEY  # "lg_indexed": search leaves out False
FIELDS_KEY = "lg_fields"

_ID_NAMESPACE = uuid.UUID("6f1c8a4e-3b0d-5c62-9a7e-2f4d1b8c0e51")
_PAGE = 1000
_MAX_RANKED = 1000  # the most candidates one hybrid search ranks (agentmem's k limit)
_PUT_ATTEMPTS = 10  # tries of a batch's writes that race other writers of the same items


class AgentMemStore(BaseStore):
    """LangGraph's long-term memory store, kept by agentmem.

    ``AgentMemStore(mem)`` keeps every item in the scope ``org_id="langgraph"``; pass
    ``org_id`` / ``user_id`` / ``agent_id`` to choose another, and ``user_level=i`` to put each
    item in the scope of the user named by its namespace's ``i``-th label (e.g.
    ``user_level=1`` for LangGraph's usual ``("memories", user_id)``). ``name`` separates
    several stores sharing one scope. ``index={"fields": [...]}`` names the fields embedded
    for a query search (default: the whole document); ``dims`` and ``embed`` are not used:
    agentmem embeds with its own embedder. ``kind`` is the memory kind items are stored as
    (``episodic`` by default, which no fact or experience pipeline rewrites).

    Attach it once with ``graph.compile(store=AgentMemStore(mem))``; nodes and tools read it
    from their runtime, and :attr:`memory` gives them the controller.
    """

    supports_ttl = False

    def __init__(
        self,
        memory: Memory,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        user_level: int | None = None,
        name: str = "default",
        kind: str | MemoryKind = MemoryKind.EPISODIC,
        index: IndexConfig | None = None,
    ) -> None:
        if org_id is None and user_id is None and agent_id is None:
            org_id = DEFAULT_ORG
        self.memory = memory
        self.scope = Scope.of(org_id=org_id, user_id=user_id, agent_id=agent_id)
        if user_level is not None:
            if isinstance(user_level, bool) or not isinstance(user_level, int) or user_level < 0:
                raise InvalidSettings(
                    f"user_level must be a namespace position (0, 1, ...), got {user_level!r}"
                )
            if user_id is not None:
                raise InvalidSettings(
                    "pass user_id= (one user for every item) or user_level= (the user named by "
                    "each item's namespace), not both"
                )
        if not isinstance(name, str) or not name.strip():
            raise InvalidSettings(f"name must be a non-empty string, got {name!r}")
        self.user_level = user_level
        self.name = name
        self.kind = check_kind(kind)
        self.index_config: IndexConfig | None = index
        fields = (index or {}).get("fields") or ["$"]
        self._fields: list[str] = list(fields)
        self._lock = threading.RLock()
        self._last_created: datetime | None = None

    def __repr__(self) -> str:
        level = f", user_level={self.user_level}" if self.user_level is not None else ""
        return f"AgentMemStore({self.scope}, name={self.name!r}{level})"

    # BaseStore -----------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order of results; reads see the state before the batch's writes,
        which are then applied (the last write to an item wins)."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
        with self._lock:
            results: list[Result] = []
            puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
            for op in ops:
                if isinstance(op, GetOp):
                    results.append(self._get(op))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op))
                elif isinstance(op, PutOp):
                    puts[(tuple(op.namespace), op.key)] = op
                    results.append(None)
                else:
                    raise ValueError(f"Unknown operation type: {type(op)}")
            if puts:
                self._apply_puts(puts)
            return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of :meth:`batch` (the same work, in a worker thread)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # reads ---------------------------------------------------------------------------------

    def _get(self, op: GetOp) -> Item | None:
        found = self.memory.backends.store.get_many([self.record_id(op.namespace, op.key)])
        record = found[0] if found else None
        if record is None or not self._owns(record) or not _live(record):
            return None
        return _item(record)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        scope = self._query_scope(prefix)
        records = list(self._scan(scope, _prefix_conditions(prefix)))
        matched = [
            r
            for r in _namespace_order(records)
            if not op.filter or _matches(r.metadata[VALUE_KEY], op.filter)
        ]
        window = slice(op.offset, op.offset + op.limit)
        query = op.query
        if isinstance(query, str):  # blank: no query, as ""; overlong: its beginning ranks
            query = query[: self.memory.settings.max_text_chars] if visible(query) else ""
        if not query:
            return [_search_item(r, None) for r in matched[window]]
        # A query ranks the indexed items by agentmem's hybrid search within the prefix;
        # items that are not indexed follow, unscored, in the order above.
        indexed = sum(1 for r in records if r.metadata.get(INDEXED_KEY))
        wanted = {r.id for r in matched}
        ranked: list[tuple[float | None, MemoryRecord]] = []
        if indexed and wanted:
            conditions = {
                c.key: c.value for c in (*self._store_conditions(), *_prefix_conditions(prefix))
            }
            hits = retrieval.search(
                self.memory.backends,
                query,
                scope,
                k=min(indexed, _MAX_RANKED),
                filters={**conditions, INDEXED_KEY: True},
            )
            ranked = [(h.score, h.record) for h in hits if h.record.id in wanted]
        seen = {r.id for _, r in ranked}
        ranked += [(None, r) for r in matched if r.metadata.get(INDEXED_KEY) and r.id not in seen]
        ranked += [(None, r) for r in matched if not r.metadata.get(INDEXED_KEY)]
        page = ranked[window]
        similarity = self._similarities(query, [r for _, r in page])
        return [_search_item(r, similarity.get(r.id), fused) for fused, r in page]

    def _similarities(self, query: str, records: list[MemoryRecord]) -> dict[str, float]:
        """The query's cosine to each indexed record's closest field (InMemoryStore's score)."""
        fields = {r.id: _field_texts(r) for r in records if r.metadata.get(INDEXED_KEY)}
        texts = sorted({t for ts in fields.values() for t in ts})
        if not texts:
            return {}
        embedder = self.memory.backends.embedder
        query_vector = normalise(np.asarray(embedder.embed_query(query))[None, :])[0]
        vectors = normalise(np.asarray(embedder.embed_documents(texts)))
        cosine = dict(zip(texts, (vectors @ query_vector).tolist(), strict=True))
        return {i: max(cosine[t] for t in ts) for i, ts in fields.items() if ts}

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = op.match_conditions or ()
        # Prefix labels without wildcards narrow the scan inside the store's query.
        pinned: list[Condition] = []
        for c in conditions:
            if c.match_type == "prefix":
                pinned.extend(
                    Condition(LEVEL_KEY.format(i), FilterOp.EQ, label)
                    for i, label in enumerate(c.path)
                    if label != "*"
                )
        user_prefix = _pinned_prefix(conditions, self.user_level)
        scope = self._query_scope(user_prefix)
        seen = {_namespace(r) for r in self._scan(scope, tuple(pinned))}
        namespaces = [ns for ns in seen if all(_does_match(c, ns) for c in conditions)]
        if op.max_depth is not None:
            namespaces = sorted({ns[: op.max_depth] for ns in namespaces})
        else:
            namespaces = sorted(namespaces)
        return namespaces[op.offset : op.offset + op.limit]

    def _scan(self, scope: Scope, conditions: tuple[Condition, ...]) -> Iterator[MemoryRecord]:
        """Every live item of this store in ``scope`` matching ``conditions``, oldest first."""
        store = self.memory.backends.store
        where = (*self._store_conditions(), *conditions)
        offset = 0
        while True:
            page = store.query(
                RecordQuery(scope=scope, conditions=where, limit=_PAGE, offset=offset)
            )
            yield from (r for r in page if self._owns(r))
            if len(page) < _PAGE:
                return
            offset += _PAGE

    # writes --------------------------------------------------------------------------------

    def _apply_puts(self, puts: dict[tuple[tuple[str, ...], str], PutOp]) -> None:
        """Write ``puts``; a write that lost a race with another writer of the same item
        (another store object, another process) reads the items again and retries, so the
        last put wins, as in InMemoryStore."""
        for attempt in range(_PUT_ATTEMPTS):
            try:
                self._write_puts(puts)
                return
            except Conflict:
                if attempt == _PUT_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.002 * 2**attempt))  # apart from the rival

    def _write_puts(self, puts: dict[tuple[tuple[str, ...], str], PutOp]) -> None:
        backends = self.memory.backends
        ids = {path: self.record_id(*path) for path in puts}
        # Every record with an item's id is that item's (the id is derived from this store,
        # scope, namespace and key), even one whose metadata a mem.update replaced: the put
        # takes it over instead of colliding with it for ever.
        existing = {r.id: r for r in backends.store.get_many(list(ids.values()))}
        # Validate and prepare every write first: bad input changes nothing.
        inserts: list[MemoryRecord] = []
        updates: list[tuple[MemoryRecord, str, dict[str, Any]]] = []
        deletes: list[MemoryRecord] = []
        for (namespace, key), op in puts.items():
            current = existing.get(ids[(namespace, key)])
            if op.value is None:
                if current is not None:
                    deletes.append(current)
                continue
            text, metadata = self._document(namespace, key, op)
            in_scope = current is not None and current.scope == self.item_scope(namespace)
            if current is not None and in_scope and _live(current):
                updates.append((current, text, metadata))
                continue
            # Invalidated or expired by someone else, or in another scope (the same store
            # written with another user_level): start afresh.
            if current is not None:
                deletes.append(current)
            record = writing.new_record(
                backends,
                self.item_scope(namespace),
                text,
                kind=self.kind,
                metadata=metadata,
                reserved=True,
            )
            record.id = ids[(namespace, key)]
            record.created_at = record.updated_at = self._tick(record.created_at)
            inserts.append(record)
        # A put or delete of an item supersedes a write of it still held in quarantine (the
        # same id): a later approve must not bring back what was deleted or overwritten.
        trust.drop_held(backends, list(ids.values()))
        if deletes:
            writing.delete(backends, deletes, actor=ACTOR)
        for current, text, metadata in updates:
            writing.update(
                backends,
                current.id,
                current.scope,
                text=text,
                metadata=metadata,
                actor=ACTOR,
                reserved=True,
            )
        if inserts:
            # Screened like every write (source, injection flags, quarantine by setting).
            trust.admit(backends, inserts, None, actor=ACTOR, link=False)

    def _document(
        self, namespace: tuple[str, ...], key: str, op: PutOp
    ) -> tuple[str, dict[str, Any]]:
        """The text to index and the metadata of one item (validated)."""
        assert op.value is not None
        if not isinstance(op.value, Mapping):
            raise ValidationError(
                f"a store value is a dict (a JSON object), got {type(op.value).__name__}; "
                'wrap it, e.g. {"text": ...}'
            )
        settings = self.memory.settings
        value = writing.metadata_of(settings, dict(op.value), what="value")
        value = redact_json(value, settings.redaction)  # secrets never reach the store or model
        if op.index is False:
            fields: list[str] = []
        elif op.index is None:
            fields = list(self._fields)
        elif isinstance(op.index, list | tuple) and all(isinstance(f, str) for f in op.index):
            fields = list(op.index)
        else:
            raise ValidationError(
                f"index must be False, None or a list of field paths, got {op.index!r}; "
                'e.g. index=["text"]'
            )
        texts = _texts_at(value, fields)
        text = "\n".join(texts)
        indexed = bool(text)
        if not indexed:  # agentmem needs text: name the item (it is kept out of query ranking)
            text = "/".join((*namespace, key))
        limit = self.memory.settings.max_text_chars
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        record_id = self.record_id(namespace, key)
        metadata: dict[str, Any] = {
            STORE_KEY: self.name,
            NAMESPACE_KEY: ".".join(namespace),
            DEPTH_KEY: len(namespace),
            ITEM_KEY: key,
            INDEXED_KEY: indexed,
            FIELDS_KEY: fields,
            VALUE_KEY: value,
            # A session of its own: no neighbouring memory leaks into this item's window.
            self.memory.settings.retrieval.window_group_key: f"lg:{record_id}",
        }
        for level, label in enumerate(namespace):
            metadata[LEVEL_KEY.format(level)] = label
        return text, metadata

    def _tick(self, now: datetime) -> datetime:
        """A creation time after every one this store gave out, so insertion order is kept
        even for puts within the same microsecond."""
        if self._last_created is not None and now <= self._last_created:
            now = self._last_created + timedelta(microseconds=1)
        self._last_created = now
        return now

    # scopes and ids ------------------------------------------------------------------------

    def record_id(self, namespace: tuple[str, ...], key: str) -> str:
        """The id of the memory holding ``(namespace, key)``."""
        name = "\x00".join((self.name, str(self.scope), ".".join(namespace), key))
        return str(uuid.uuid5(_ID_NAMESPACE, name))

    def item_scope(self, namespace: tuple[str, ...]) -> Scope:
        """The scope an item of ``namespace`` is stored in."""
        if self.user_level is None or len(namespace) <= self.user_level:
            return self.scope
        return Scope.of(**self.scope.fields(), user_id=namespace[self.user_level])

    def _query_scope(self, prefix: tuple[str, ...]) -> Scope:
        """The narrowest scope holding every item under ``prefix``."""
        if self.user_level is None or len(prefix) <= self.user_level:
            return self.scope
        return self.item_scope(prefix)

    def _store_conditions(self) -> tuple[Condition, ...]:
        return (Condition(STORE_KEY, FilterOp.EQ, self.name),)

    def _owns(self, record: MemoryRecord) -> bool:
        """Whether ``record`` is a well-formed item of this store (one whose metadata was
        replaced or cut short elsewhere is skipped, never read): the record this store's
        ``get`` and ``put`` of its namespace and key address, in the scope it puts it in. A
        store whose scope holds another's (or the same store with another ``user_level``)
        does not see that store's items, so get, search and put agree on one record."""
        metadata = record.metadata
        if not (
            metadata.get(STORE_KEY) == self.name
            and isinstance(metadata.get(VALUE_KEY), dict)
            and isinstance(metadata.get(NAMESPACE_KEY), str)
            and isinstance(metadata.get(ITEM_KEY), str)
        ):
            return False
        namespace = _namespace(record)
        return record.id == self.record_id(
            namespace, metadata[ITEM_KEY]
        ) and record.scope == self.item_scope(namespace)


# records <-> items -------------------------------------------------------------------------


def _live(record: MemoryRecord) -> bool:
    return record.invalidated_at is None and (record.valid_to is None or record.valid_to > utcnow())


def _namespace(record: MemoryRecord) -> tuple[str, ...]:
    return tuple(record.metadata[NAMESPACE_KEY].split("."))


def _item(record: MemoryRecord) -> Item:
    return Item(
        value=record.metadata[VALUE_KEY],
        key=record.metadata[ITEM_KEY],
        namespace=_namespace(record),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


class AgentMemSearchItem(SearchItem):
    """A search result of :class:`AgentMemStore`.

    ``score`` is what LangGraph users read as similarity: the cosine of the query and the
    item's closest indexed field, as ``InMemoryStore`` scores (``None`` for an item with nothing
    indexed, or in a search without a query). ``fused_score`` is agentmem's hybrid score (dense,
    BM25 and windows fused by reciprocal rank fusion) that decides the order of the results;
    ``None`` where the item was not ranked by it.
    """

    __slots__ = ("fused_score",)

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
        score: float | None = None,
        fused_score: float | None = None,
    ) -> None:
        super().__init__(namespace, key, value, created_at, updated_at, score)
        self.fused_score = fused_score

    def dict(self) -> dict[str, Any]:
        """The item as a dict, ``fused_score`` included."""
        result = super().dict()
        result["fused_score"] = self.fused_score
        return result


def _search_item(
    record: MemoryRecord, score: float | None, fused_score: float | None = None
) -> AgentMemSearchItem:
    return AgentMemSearchItem(
        namespace=_namespace(record),
        key=record.metadata[ITEM_KEY],
        value=record.metadata[VALUE_KEY],
        created_at=record.created_at,
        updated_at=record.updated_at,
        score=score,
        fused_score=fused_score,
    )


def _texts_at(value: Mapping[str, Any], fields: Iterable[str]) -> list[str]:
    """The texts of ``value`` at each field path (``$``: the whole document) that show: blank
    or invisible ones (zero-width spaces, a BOM) are not text agentmem can index."""
    return [t for field in fields for t in get_text_at_path(value, field) if visible(t)]


def _field_texts(record: MemoryRecord) -> list[str]:
    """The texts a record's item was indexed by, one per field (older items: per line)."""
    fields = record.metadata.get(FIELDS_KEY)
    if fields is None:
        return [t for t in record.text.split("\n") if t.strip()]
    return _texts_at(record.metadata[VALUE_KEY], fields)


def _namespace_order(records: Iterable[MemoryRecord]) -> list[MemoryRecord]:
    """InMemoryStore's order: namespaces by their first item, then items by creation."""
    groups: dict[str, list[MemoryRecord]] = {}
    for r in records:  # oldest first
        groups.setdefault(r.metadata[NAMESPACE_KEY], []).append(r)
    return [r for group in groups.values() for r in group]


def _prefix_conditions(prefix: tuple[str, ...]) -> tuple[Condition, ...]:
    return tuple(
        Condition(LEVEL_KEY.format(i), FilterOp.EQ, label) for i, label in enumerate(prefix)
    )


def _pinned_prefix(conditions: Iterable[MatchCondition], upto: int | None) -> tuple[str, ...]:
    """The labels a prefix condition fixes, up to and including position ``upto``."""
    if upto is None:
        return ()
    for c in conditions:
        if c.match_type == "prefix" and len(c.path) > upto and c.path[upto] != "*":
            return tuple(str(label) for label in c.path[: upto + 1])
    return ()


# LangGraph's matching semantics -----------------------------------------------------------


def _does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether ``namespace`` matches a prefix or suffix condition (``*`` matches any label)."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type}")
    return all(p == "*" or k == p for k, p in pairs)


def _matches(value: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    return all(_compare(value.get(key), wanted) for key, wanted in filter.items())


def _compare(actual: Any, wanted: Any) -> bool:
    """LangGraph's JSONB-like comparison: operators, nested objects, lists element-wise."""
    if isinstance(wanted, dict):
        if any(k.startswith("$") for k in wanted):
            return all(_apply_operator(actual, op, v) for op, v in wanted.items())
        if not isinstance(actual, dict):
            return False
        return all(_compare(actual.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(wanted)
            and all(_compare(a, w) for a, w in zip(actual, wanted, strict=False))
        )
    return bool(actual == wanted)


def _apply_operator(actual: Any, operator: str, wanted: Any) -> bool:
    if operator == "$eq":
        return bool(actual == wanted)
    if operator == "$ne":
        return bool(actual != wanted)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        try:
            a, w = float(actual), float(wanted)
        except (TypeError, ValueError):
            return False  # a missing or non-numeric field is not in range (as in PostgreSQL)
        return {"$gt": a > w, "$gte": a >= w, "$lt": a < w, "$lte": a <= w}[operator]
    raise ValueError(f"Unsupported operator: {operator}")


__all__ = ["ACTOR", "DEFAULT_ORG", "AgentMemSearchItem", "AgentMemStore"]
