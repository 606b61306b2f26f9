"""Turn validated input into write batches: add, update, delete.

Each function validates first (so bad input changes nothing), embeds what the cache lacks,
then commits one :class:`WriteBatch` (records + history + outbox + cached vectors) and lets the
indexer apply the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from agentmem.backends import Backends
from agentmem.errors import (
    LIST_IDS,
    Conflict,
    IndexUnreadable,
    InvalidText,
    MemoryDeleted,
    NotFound,
    ValidationError,
)
from agentmem.indexing import sync_outbox, vectors_for
from agentmem.models import (
    RECORD_TIMES,
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    content_hash,
    utcnow,
)
from agentmem.redaction import redact_new_text, redact_record_fields
from agentmem.representation import neighbours_to_refresh
from agentmem.settings import Settings
from agentmem.stores import ForgetJournal, IndexOp, QuarantineStore, WriteBatch
from agentmem.validation import (
    UTC_OFFSET_KEY,
    check_counters,
    check_importance,
    check_kind,
    check_metadata,
    check_reserved,
    check_text,
    check_time,
    show,
    utc_offset,
)

_ITEM_KEYS = frozenset(
    {"text", "metadata", "event_time", "kind", "importance", "valid_from", "valid_to", "provenance"}
)


def metadata_of(settings: Settings, value: Any, *, what: str = "metadata") -> dict[str, Any]:
    """:func:`~agentmem.validation.check_metadata` under the settings' depth and size limits."""
    return check_metadata(
        value,
        max_depth=settings.max_metadata_depth,
        max_bytes=settings.max_metadata_bytes,
        what=what,
    )


def new_record(
    backends: Backends,
    scope: Scope,
    text: Any,
    *,
    kind: str | MemoryKind = MemoryKind.EPISODIC,
    metadata: Any = None,
    event_time: Any = None,
    importance: Any = None,
    valid_from: Any = None,
    valid_to: Any = None,
    provenance: Any = None,
    reserved: bool = False,
) -> MemoryRecord:
    """A validated, not yet stored record. ``reserved`` lets metadata set the reserved
    ``lg_*`` keys (only the LangGraph store's own writes pass it)."""
    settings = backends.settings
    now = utcnow()
    text = check_text(text, max_chars=settings.max_text_chars)
    metadata = metadata_of(settings, metadata)
    if not reserved:
        check_reserved(metadata)
    provenance = metadata_of(settings, provenance, what="provenance")
    # Secrets and personal data leave before anything is embedded, indexed or trained on.
    text, provenance = redact_record_fields(text, provenance, settings.redaction)
    event = check_time(event_time)
    start = check_time(valid_from, what="valid_from")
    end = check_time(valid_to, what="valid_to")
    _check_span(start or event, end, start_is="valid_from" if start else _FROM_EVENT)
    kind = check_kind(kind)
    if kind is MemoryKind.EPISODIC and (offset := utc_offset(event_time)):
        metadata.setdefault(UTC_OFFSET_KEY, offset)  # the speaker's own date, for extraction
    return MemoryRecord(
        scope=scope,
        kind=kind,
        text=text,
        metadata=metadata,
        provenance=provenance,
        content_hash=content_hash(text),
        event_time=event,
        valid_from=start or event,
        valid_to=end,
        created_at=now,
        updated_at=now,
        importance=check_importance(importance),
    )


_IDEMPOTENCY = uuid.UUID("0f6c2b7e-5d1a-4e38-9b3f-7a2c9e4d1b60")
MAX_IDEMPOTENCY_KEY = 255


def idempotent_ids(records: Sequence[MemoryRecord], scope: Scope, key: Any) -> None:
    """Give ``records`` ids derived from the caller's idempotency key, the scope and each
    record's position: a retry of the same write makes the same ids, so the store's primary
    key turns a duplicate into the first write (see :func:`replay`). Keys are per scope."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"idempotency_key must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY} "
            f"characters (e.g. a UUID the client makes per write), got {show(key)}"
        )
    if "\x00" in key:
        raise ValidationError("idempotency_key contains a NUL character; remove it")
    for position, record in enumerate(records):
        name = f"{sorted(scope.fields().items())}|{key}|{position}"
        record.id = str(uuid.uuid5(_IDEMPOTENCY, name))


def replay(backends: Backends, records: Sequence[MemoryRecord]) -> list[MemoryRecord] | None:
    """What an earlier write with the same idempotency key stored for ``records`` (same ids),
    in order, from the store or the quarantine; None when it never happened. A key reused for
    different content raises :class:`Conflict`, and so does a write half there (impossible
    through this module: each write is one transaction). A write whose memory, or any of whose
    memories, was deleted or forgotten since raises :class:`MemoryDeleted` (a Conflict): a
    retry must not bring it back."""
    ids = [r.id for r in records]
    found = _stored(backends, ids)
    if not found:
        gone = removed_ids(backends, ids[:1])  # a write stores its first memory, at least
        if not gone:
            return None
        # History without the record: deleted, or the same write from another process
        # committed between the two reads (its history is written with its records). Only
        # a second read tells them apart.
        found = _stored(backends, ids)
        if not found:
            raise _deleted(gone[0])
    earlier = [found.get(i) for i in ids]
    for new, old in zip(records, earlier, strict=True):
        if old is None:
            _refuse_removed(backends, [new.id])
        if old is None or old.scope != new.scope:
            raise Conflict(
                "this idempotency_key was already used for a different write; use a new key "
                "for each distinct write"
            )
        if old.kind != new.kind or (old.version == 1 and old.content_hash != new.content_hash):
            raise Conflict(
                f"idempotency_key was already used for a different memory ({old.id}); use a "
                "new key for each distinct write"
            )
    return [r for r in earlier if r is not None]


def _stored(backends: Backends, ids: Sequence[str]) -> dict[str, MemoryRecord]:
    """The records of ``ids`` in the store or held in the quarantine, by id."""
    found = {r.id: r for r in backends.store.get_many(ids)}
    missing = [i for i in ids if i not in found]
    if missing and isinstance(backends.store, QuarantineStore):
        rows = backends.store.quarantine_rows(ids=missing, limit=len(missing))
        found.update({row.id: MemoryRecord.model_validate(row.record) for row in rows})
    return found


def removed_ids(backends: Backends, ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` that were stored once: a history remains after a delete, a tombstone
    after a forget (even a purging one)."""
    store = backends.store
    gone = [i for i in ids if store.history(i)]
    if not gone and isinstance(store, ForgetJournal):
        gone = list(store.tombstoned(ids))
    return gone


def _refuse_removed(backends: Backends, ids: Sequence[str]) -> None:
    """:class:`MemoryDeleted` when one of ``ids`` (absent from the store) was stored once."""
    gone = removed_ids(backends, ids)
    if gone:
        raise _deleted(gone[0])


def _deleted(memory_id: str) -> MemoryDeleted:
    return MemoryDeleted(
        f"this idempotency_key was already used, and the memory that write stored "
        f"({memory_id}) has since been deleted or forgotten; nothing was written. Use a new "
        "key to store it again"
    )


def records_from_items(
    backends: Backends, scope: Scope, items: Sequence[Mapping[str, Any] | str]
) -> list[MemoryRecord]:
    """Validate every item of an ``add_many`` call before anything is written."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ValidationError("items must be a list of dicts like {'text': '...'} or strings")
    limit = backends.settings.max_batch_items
    if len(items) > limit:
        raise ValidationError(
            f"{len(items):,} items in one call, over the limit of {limit:,} "
            "(AGENTMEM_MAX_BATCH_ITEMS); send them in smaller batches"
        )
    records: list[MemoryRecord] = []
    for position, item in enumerate(items):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, Mapping):
            raise ValidationError(
                f"item {position} is a {type(item).__name__}; each item is a dict with 'text'"
            )
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            raise ValidationError(
                f"item {position} has unknown keys {sorted(unknown)}; allowed: {sorted(_ITEM_KEYS)}"
            )
        if "text" not in item:
            raise InvalidText(f"item {position} has no 'text'")
        try:
            records.append(new_record(backends, scope, **item))
        except ValidationError as exc:
            raise type(exc)(f"item {position}: {exc}") from None
    # Creation order is conversation order: give each item its own instant, one microsecond
    # apart, so neighbours within a batch are well defined.
    if records:
        base = records[0].created_at
        for position, record in enumerate(records):
            stamp = base + timedelta(microseconds=position)
            record.created_at = record.updated_at = stamp
    return records


def insert(backends: Backends, records: list[MemoryRecord], actor: str = "api") -> list[str]:
    """Store new records atomically (with history, outbox and cached vectors), then index.
    Returns the ids the erasure guard undid at once (derived from a memory forgotten
    meanwhile: see :func:`agentmem.erasure.guard`), usually none."""
    if not records:
        return []
    _, fresh = vectors_for(backends, records)
    with backends.store.pinned():  # one connection for the read and the write
        _write_new(backends, records, fresh, actor)
    try:
        sync_outbox(backends)
    except IndexUnreadable as exc:  # committed: say so, or the caller adds it again
        ids = ", ".join(r.id for r in records)
        raise IndexUnreadable(f"stored {ids}; {exc}") from exc
    return _guard(backends, records)


def _write_new(
    backends: Backends,
    records: list[MemoryRecord],
    fresh: Sequence[tuple[str, Any]],
    actor: str,
) -> None:
    """Commit new records, their history, their outbox entries (and their neighbours') and
    their fresh vectors in one batch."""
    refresh = _neighbours_before(backends, records)
    batch = WriteBatch(
        inserts=records,
        history=[
            HistoryEntry(
                memory_id=r.id,
                scope=r.scope,
                event=HistoryEvent.ADD,
                version=r.version,
                new_text=r.text,
                new_metadata=r.metadata,
                actor=actor,
                at=r.created_at,
            )
            for r in records
        ],
        index=[(r.id, IndexOp.UPSERT) for r in records] + [(i, IndexOp.UPSERT) for i in refresh],
        embeddings=[(backends.embedder.name, h, v) for h, v in fresh],
    )
    backends.store.apply(batch)


def _guard(backends: Backends, records: Sequence[MemoryRecord]) -> list[str]:
    """Undo a write derived from a memory forgotten meanwhile (see agentmem.erasure)."""
    from agentmem.erasure import guard  # forgetting writes through this module

    return guard(backends, records)


def _neighbours_before(backends: Backends, records: Sequence[MemoryRecord]) -> list[str]:
    """Stored episodes whose window gains a new neighbour: for each session the batch writes
    to, the stored episodes around its first new record."""
    config = backends.settings.retrieval
    firsts: dict[tuple[object, ...], MemoryRecord] = {}
    for r in records:
        key = (
            tuple(sorted(r.scope.fields().items())),
            r.kind,
            r.metadata.get(config.window_group_key),
        )
        if key not in firsts or r.created_at < firsts[key].created_at:
            firsts[key] = r
    return neighbours_to_refresh(
        backends.store, list(firsts.values()), config, exclude={r.id for r in records}
    )


def import_records(
    backends: Backends, records: Sequence[MemoryRecord], actor: str = "import"
) -> tuple[int, int]:
    """Insert exported records, each made ready by :func:`prepare_import`, verbatim (ids,
    times, versions); ids already present are skipped, so importing the same file twice is
    harmless, even at once into a shared store: when another process inserts some of the
    ids first (the write then conflicts, and is rolled back), the batch is written again
    without them. Returns how many were inserted and kept, and how many of those inserted
    the erasure guard undid (derived from a memory forgotten meanwhile)."""
    fresh = list(records)
    while True:
        existing = {r.id for r in backends.store.get_many([r.id for r in fresh])}
        fresh = [r for r in fresh if r.id not in existing]
        try:
            undone = insert(backends, fresh, actor=actor)
        except Conflict:
            if not backends.store.get_many([r.id for r in fresh]):
                raise  # not another import's records: a conflict this cannot settle
            continue
        return len(fresh) - len(undone), len(undone)


def prepare_import(settings: Settings, record: MemoryRecord) -> MemoryRecord:
    """An exported record checked as a new memory's fields are (text, metadata, provenance,
    importance, valid time; a version and access count a write could make) and screened
    like every write: redacted where redaction is on, flagged where its text looks like a
    prompt injection. Its scope ids are normalised and checked as every write's are
    (:meth:`Scope.of`: ``"maya "`` is ``"maya"``, ``"."`` is refused), so ``forget --user``
    and every scoped read reach it, and its content hash is computed from its text. Ids,
    times, versions and the provenance it was exported with are kept (a restore, not a new
    write)."""
    scope = Scope.of(**record.scope.fields())
    check_text(record.text, max_chars=settings.max_text_chars)
    metadata_of(settings, record.metadata)
    metadata_of(settings, record.provenance, what="provenance")
    check_importance(record.importance)
    check_counters(record.version, record.access_count)
    for name in RECORD_TIMES:  # in the supported range (MemoryRecord made naive ones UTC)
        if (when := getattr(record, name)) is not None:
            check_time(when, what=name)
    start_is = "valid_from" if record.valid_from else _FROM_EVENT
    _check_span(record.valid_from or record.event_time, record.valid_to, start_is=start_is)
    text, provenance = redact_record_fields(record.text, record.provenance, settings.redaction)
    # The hash is the text's, whatever the file says: a stale one (a line edited or copied
    # by hand) would pick another text's cached vector and make context() drop the memory
    # as a duplicate of the text it names.
    update: dict[str, Any] = {"provenance": provenance, "scope": scope, "text": text}
    update["content_hash"] = content_hash(text)
    prepared = record.model_copy(update=update)
    from agentmem.trust import flag_injection  # agentmem.trust imports this module

    flag_injection(settings.trust, prepared)
    return prepared


def get_one(backends: Backends, memory_id: Any, scope: Scope | ScopeSet | None) -> MemoryRecord:
    """The record with this id, visible to ``scope`` if given, or :class:`NotFound`."""
    if not isinstance(memory_id, str) or not memory_id:
        raise NotFound(f"memory id must be a non-empty string, got {memory_id!r}")
    found = backends.store.get_many([memory_id], scope)
    if not found:
        where = f" in scope {scope}" if scope is not None else ""
        raise NotFound(f"no memory with id {memory_id!r}{where}; {LIST_IDS}")
    return found[0]


_FROM_EVENT = "its event_time (where it starts when no valid_from is given)"


def _check_span(
    start: datetime | None, end: datetime | None, *, start_is: str = "valid_from", then: str = ""
) -> None:
    """Refuse a valid time that ends before (or when) it starts."""
    if start is not None and end is not None and end <= start:
        raise ValidationError(f"valid_to ({end}) must be after {start_is} ({start}){then}")


def _checked_end(current: MemoryRecord, valid_to: Any) -> datetime | None:
    """A new ``valid_to`` for ``current``, refused when it is not after the memory's start."""
    end: datetime | None = check_time(valid_to, what="valid_to")
    start = current.valid_from or current.event_time
    _check_span(start, end, start_is="the memory's valid_from", then="; nothing changed")
    return end


def _end_of(current: MemoryRecord, now: datetime) -> datetime:
    """Where an invalidation without ``valid_to`` ends a memory: now, unless it ended before
    (a past end stays, and so does the end an earlier invalidation set)."""
    earlier = current.valid_to
    keep = earlier is not None and (current.invalidated_at is not None or earlier <= now)
    return earlier if keep and earlier is not None else now


_NOTHING_TO_UPDATE = (
    "update needs text=, metadata= or importance= (to end a fact's validity, use "
    "invalidate(id, valid_to=...))"
)


def _content_changes(
    backends: Backends,
    current: MemoryRecord,
    changes: dict[str, Any],
    text: Any,
    metadata: Any,
    provenance: Any,
    *,
    reserved: bool,
) -> Any:
    """Put a new text and metadata into ``changes``; returns the provenance to write (the
    redaction of the new text may change it). New metadata keeps the reserved ``lg_*`` keys
    as they are (or drops them) unless ``reserved``."""
    if text is not None:
        new_text = check_text(text, max_chars=backends.settings.max_text_chars)
        new_text, redacted = redact_new_text(
            new_text, dict(provenance or current.provenance), backends.settings.redaction
        )
        if redacted != (provenance or current.provenance):
            provenance = redacted
        changes["text"] = new_text
        changes["content_hash"] = content_hash(new_text)
    if metadata is not None:
        changes["metadata"] = metadata_of(backends.settings, metadata)
        if not reserved:
            check_reserved(changes["metadata"], current.metadata)
        from agentmem.experience.models import check_readable

        check_readable(current, changes["metadata"], backends.settings.experience.reward_range)
    elif text is not None and current.kind is MemoryKind.SEMANTIC:
        from agentmem.notes.restate import redescribed
        from agentmem.semantic.restate import has_structure, restated_metadata

        if has_structure(current):  # its subject, attribute and value follow the new text
            changes["metadata"] = restated_metadata(current, changes["text"])
        after = current.model_copy(update=changes)  # its description follows too (a note)
        metadata = redescribed(current, after, backends.settings.notes.max_keywords)
        if metadata != current.metadata:
            changes["metadata"] = metadata
    return provenance


def update(
    backends: Backends,
    memory_id: str,
    scope: Scope | None,
    *,
    text: Any = None,
    metadata: Any = None,
    importance: Any = None,
    valid_to: Any = None,
    invalidate: bool = False,
    provenance: Any = None,
    actor: str = "api",
    reserved: bool = False,
    by_hand: bool = False,
    expected_version: int | None = None,
) -> MemoryRecord:
    """Write a new version of a record; the old one stays in its history. New metadata keeps
    the reserved ``lg_*`` keys as they are (or drops them) unless ``reserved`` (the LangGraph
    store's own writes). A fact's new text alone (its fields read again from it), or any
    change ``by_hand`` (a caller's edit: ``Memory.update``, an agent's ``update``) to what an
    extracted fact says revises its owner's profile at once; extraction revises it itself.
    ``expected_version``: the version the caller computed its change from; :class:`Conflict`
    when the record is at another one now (the store compare-and-sets on it), so a
    read-modify-write never overwrites a change made after its read."""
    nothing = text is None and metadata is None and importance is None and valid_to is None
    if nothing and provenance is None and not invalidate:
        raise ValidationError(_NOTHING_TO_UPDATE)
    current = get_one(backends, memory_id, scope)
    if expected_version is not None and current.version != expected_version:
        raise Conflict(
            f"memory {memory_id} changed since version {expected_version} was read (it is at "
            f"version {current.version}); reload it with get() and retry"
        )
    end = _checked_end(current, valid_to)
    if invalidate and current.invalidated_at is not None and nothing:
        return current  # invalidated before (a retry, a second worker): the first end stays
    now = utcnow()
    changes: dict[str, Any] = {"version": current.version + 1, "updated_at": now}
    provenance = _content_changes(
        backends, current, changes, text, metadata, provenance, reserved=reserved
    )
    restating = text is not None and metadata is None and "metadata" in changes
    if importance is not None:
        changes["importance"] = check_importance(importance)
    if provenance is not None:
        changes["provenance"] = metadata_of(backends.settings, provenance, what="provenance")
    if end is not None or invalidate:
        changes["valid_to"] = end if end is not None else _end_of(current, now)
    if invalidate:
        # An end still ahead is scheduled, not done: the memory holds until then (search, list
        # and search(as_of=now) alike find it) and has expired after, as one added with that
        # valid_to; an end that has come invalidates it now.
        ended = changes["valid_to"] <= now
        changes["invalidated_at"] = (current.invalidated_at or now) if ended else None
    updated = current.model_copy(update=changes)
    restated = _restates_fact(current, updated) and (by_hand or restating)
    if "text" in changes:
        # New text is screened for injected instructions like a new memory's.
        from agentmem.trust import flag_injection

        flag_injection(backends.settings.trust, updated)
    event = HistoryEvent.INVALIDATE if invalidate else HistoryEvent.UPDATE
    batch = _version_batch(backends, current, updated, event, actor, now, "text" in changes)
    backends.store.apply(batch)
    sync_outbox(backends)
    _guard(backends, [updated])
    if restated:
        from agentmem.profiles.hooks import observe_restated

        observe_restated(backends, updated)
    if "text" in changes and (by_hand or metadata is None):
        from agentmem.notes.restate import relink

        relink(backends, updated)  # a note's links follow its new text
    return updated


def _restates_fact(current: MemoryRecord, updated: MemoryRecord) -> bool:
    """Whether an update changes what an extracted fact says (its text, or metadata it keeps
    its subject, attribute and value in), so the owner's profile is revised from it."""
    if current.kind is not MemoryKind.SEMANTIC:
        return False
    if (current.text, current.metadata) == (updated.text, updated.metadata):
        return False
    from agentmem.semantic.restate import has_structure

    return has_structure(current) or has_structure(updated)


def _version_batch(
    backends: Backends,
    current: MemoryRecord,
    updated: MemoryRecord,
    event: HistoryEvent,
    actor: str,
    now: datetime,
    new_text: bool,
) -> WriteBatch:
    """The write of a record's new version: the record, its history entry, its embedding, and
    (for new text) the index entries of the neighbours whose representation names it."""
    _, fresh = vectors_for(backends, [updated])
    refresh = (
        neighbours_to_refresh(
            backends.store, [current], backends.settings.retrieval, exclude={current.id}
        )
        if new_text
        else []
    )
    return WriteBatch(
        updates=[updated],
        history=[_version_entry(current, updated, event, actor, now)],
        index=[(updated.id, IndexOp.UPSERT)] + [(i, IndexOp.UPSERT) for i in refresh],
        embeddings=[(backends.embedder.name, h, v) for h, v in fresh],
    )


def invalidate(
    backends: Backends,
    memory_id: str,
    scope: Scope | None,
    *,
    valid_to: Any = None,
    actor: str = "api",
) -> MemoryRecord:
    """End a memory's validity by hand (it is kept, for ``as_of``); a profile value drawn from
    it is revised at once, as a deletion's is. A ``valid_to`` still ahead schedules the end:
    the memory holds until then, for every search, and its profile value with it."""
    updated = update(backends, memory_id, scope, valid_to=valid_to, invalidate=True, actor=actor)
    if updated.invalidated_at is not None:
        _revise_profiles(backends, [updated])
    return updated


def _revise_profiles(backends: Backends, removed: Sequence[MemoryRecord]) -> None:
    from agentmem.profiles.hooks import observe_removed

    observe_removed(backends, removed)


def _version_entry(
    current: MemoryRecord, updated: MemoryRecord, event: HistoryEvent, actor: str, at: datetime
) -> HistoryEntry:
    """The history entry of ``updated``, the version after ``current``."""
    return HistoryEntry(
        memory_id=updated.id,
        scope=updated.scope,
        event=event,
        version=updated.version,
        old_text=current.text,
        new_text=updated.text,
        old_metadata=current.metadata,
        new_metadata=updated.metadata,
        actor=actor,
        at=at,
    )


def delete(backends: Backends, records: Sequence[MemoryRecord], actor: str = "api") -> int:
    """Delete records (their history stays, with a DELETE entry holding the last text); a
    profile value drawn from a deleted fact is revised at once. Each record is deleted only
    at the version read (:class:`Conflict` if it changed or went meanwhile, as for update)."""
    now = utcnow()
    gone = {r.id for r in records}
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        refresh = neighbours_to_refresh(
            backends.store, chunk, backends.settings.retrieval, exclude=gone
        )
        batch = WriteBatch(
            deletes=[r.id for r in chunk],
            delete_versions={r.id: r.version for r in chunk},  # as update(): Conflict if stale
            history=[
                HistoryEntry(
                    memory_id=r.id,
                    scope=r.scope,
                    event=HistoryEvent.DELETE,
                    version=r.version + 1,
                    old_text=r.text,
                    old_metadata=r.metadata,
                    actor=actor,
                    at=now,
                )
                for r in chunk
            ],
            index=[(r.id, IndexOp.DELETE) for r in chunk] + [(i, IndexOp.UPSERT) for i in refresh],
        )
        backends.store.apply(batch)
    sync_outbox(backends)
    _revise_profiles(backends, records)
    return len(records)


__all__ = [
    "delete",
    "get_one",
    "idempotent_ids",
    "import_records",
    "insert",
    "invalidate",
    "metadata_of",
    "new_record",
    "prepare_import",
    "records_from_items",
    "replay",
    "update",
]
