"""Moving memory out and in: every record in id order (backups, ``agentmem export``), and
exported records inserted verbatim (``agentmem import``).

Held (quarantined) memories travel too when asked for: an export lists them after the stored
records, each marked ``provenance["quarantine"] == "pending"`` as it was held, and an import
puts a record so marked back in quarantine instead of the store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from agentmem import trust, writing
from agentmem.backends import Backends
from agentmem.erasure import derived_from_forgotten
from agentmem.errors import AgentMemError, Conflict, ValidationError, first_message
from agentmem.models import MemoryRecord, Scope
from agentmem.stores import ForgetJournal, QuarantineStore
from agentmem.validation import check_k

# Quarantine is small (it waits for a human's review): it is read in one go.
_ALL_HELD = 10_000_000


@dataclass(frozen=True)
class ImportCounts:
    """What an import did with its records: ``stored`` as new memories, ``held`` put back in
    quarantine, ``present`` skipped (the id is already stored or held: a record held here
    stays held for review even where the file has it approved), ``forgotten`` skipped
    (a forget erased the id here: a backup does not bring back what was erased),
    ``derived`` skipped (derived from a memory a forget erased here, as a fact or summary
    of it: a forget erases those too, so an import does not store them)."""

    stored: int = 0
    held: int = 0
    present: int = 0
    forgotten: int = 0
    derived: int = 0

    @property
    def inserted(self) -> int:
        """Records written, stored or held."""
        return self.stored + self.held

    def __add__(self, other: ImportCounts) -> ImportCounts:
        return ImportCounts(
            self.stored + other.stored,
            self.held + other.held,
            self.present + other.present,
            self.forgotten + other.forgotten,
            self.derived + other.derived,
        )


def export_records(
    backends: Backends, page: int = 500, include_quarantined: bool = False
) -> Iterator[MemoryRecord]:
    """Every memory in every scope, in id order, read ``page`` ids at a time (a bad ``page``
    is refused at the call, before iterating); with ``include_quarantined`` the held memories
    follow, oldest first, marked ``provenance["quarantine"] == "pending"``."""
    return _pages(backends, check_k(page, limit=100_000, what="page"), include_quarantined)


def _pages(backends: Backends, page: int, include_quarantined: bool) -> Iterator[MemoryRecord]:
    after: str | None = None
    while True:
        ids = backends.store.all_ids(after=after, limit=page)
        if not ids:
            break
        by_id = {r.id: r for r in backends.store.get_many(ids)}
        yield from (by_id[i] for i in ids if i in by_id)
        after = ids[-1]
    if include_quarantined and isinstance(backends.store, QuarantineStore):
        for row in backends.store.quarantine_rows(limit=_ALL_HELD):
            yield MemoryRecord.model_validate(row.record)


def import_records(backends: Backends, records: Iterable[MemoryRecord | Mapping[str, Any]]) -> int:
    """Insert exported records verbatim (same ids, times, versions), in batches of
    ``Settings.max_batch_items``; ids already present, and ids a forget erased here (its
    tombstones name them), are skipped, and so are records derived from a memory a
    forget erased here; a record exported from quarantine is held again. A record given
    as a mapping without ``"id"`` is imported under an id derived from what it gives (see
    :func:`derived_id`), so importing it again skips it as present, and an identical copy
    of it in ``records`` is skipped too. Every record is parsed before
    anything is written (an id twice in ``records`` is refused with
    :class:`~agentmem.errors.ValidationError` naming both). The profiles of
    the owners of imported facts are then rebuilt from their facts (an export holds no
    profile values).
    Returns how many were inserted and kept (stored or held)."""
    return import_counted(backends, records).inserted


def import_counted(
    backends: Backends, records: Iterable[MemoryRecord | Mapping[str, Any]]
) -> ImportCounts:
    """:func:`import_records`, saying what became of each record."""
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise ValidationError(
            f"import_records takes an iterable of exported records, got {type(records).__name__}"
        )
    ready: list[MemoryRecord] = []
    first: dict[str, int] = {}  # id -> the position it first appeared at
    copies = 0  # records without an id identical to an earlier one: the same memory
    for n, raw in enumerate(records):  # all before any is written
        try:
            record = writing.prepare_import(backends.settings, as_record(raw))
        except AgentMemError as exc:
            raise type(exc)(f"{_label(n, raw)}: {exc}; nothing was imported") from None
        if (earlier := first.setdefault(record.id, n)) != n:
            if isinstance(raw, Mapping) and "id" not in raw:
                copies += 1
                continue
            raise ValidationError(
                f"record {n} ({record.id}): the same id as record {earlier}; an export holds "
                "each id once, so remove one of them; nothing was imported"
            )
        ready.append(record)
    batch = backends.settings.max_batch_items
    total = ImportCounts(present=copies)
    for start in range(0, len(ready), batch):
        total += _import_batch(backends, ready[start : start + batch])
    from agentmem.profiles.hooks import rebuild_imported

    rebuild_imported(backends, ready)
    return total


def _label(n: int, raw: object) -> str:
    """``record N (id)``, the id as the input gives it (a malformed record may have none)."""
    given = raw.id if isinstance(raw, MemoryRecord) else None
    if isinstance(raw, Mapping):
        given = raw.get("id")
    return f"record {n} ({given})" if isinstance(given, str) else f"record {n}"


def _import_batch(backends: Backends, records: Sequence[MemoryRecord]) -> ImportCounts:
    store = backends.store
    erased = store.tombstoned([r.id for r in records]) if isinstance(store, ForgetJournal) else {}
    alive = [r for r in records if r.id not in erased]
    tainted = {r.id for r in derived_from_forgotten(store, alive)}
    alive = [r for r in alive if r.id not in tainted]
    held = [r for r in alive if is_held(r)]
    # An id held here stays held: storing it too would leave one id trusted and awaiting
    # review at once (a reviewer's reject would then drop only the held copy).
    trusted = [r for r in alive if not is_held(r)]
    waiting = _held_here(backends, [r.id for r in trusted])
    # undone: derived from a memory that a forget running meanwhile erased
    stored, undone = writing.import_records(backends, [r for r in trusted if r.id not in waiting])
    rehold = _hold_missing(backends, held)
    present = len(alive) - stored - undone - rehold
    forgotten = len(records) - len(alive) - len(tainted)
    return ImportCounts(stored, rehold, present, forgotten, len(tainted) + undone)


def _hold_missing(backends: Backends, records: Sequence[MemoryRecord]) -> int:
    """Hold the records not stored or held yet; like :func:`writing.import_records`, a
    concurrent import that held some first leaves them out of a retry."""
    while True:
        missing = _not_present(backends, records)
        try:
            trust.hold(backends, missing)
        except Conflict:
            if len(_not_present(backends, missing)) == len(missing):
                raise
            records = missing
            continue
        return len(missing)


def is_held(record: MemoryRecord) -> bool:
    """Whether ``record`` was exported from quarantine (held, awaiting review)."""
    return record.provenance.get("quarantine") == trust.PENDING


def _not_present(backends: Backends, records: Sequence[MemoryRecord]) -> list[MemoryRecord]:
    """Held records whose id is neither stored nor held already."""
    if not records:
        return []
    ids = [r.id for r in records]
    present = {r.id for r in backends.store.get_many(ids)} | _held_here(backends, ids)
    return [r for r in records if r.id not in present]


def _held_here(backends: Backends, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` held in this home's quarantine."""
    store = backends.store
    if not ids or not isinstance(store, QuarantineStore):
        return set()
    return {row.id for row in store.quarantine_rows(ids=ids, limit=len(ids))}


def as_record(value: MemoryRecord | Mapping[str, Any]) -> MemoryRecord:
    """A record as exported (a :class:`MemoryRecord` or its JSON form; a mapping without
    ``"id"`` gets :func:`derived_id`), or :class:`~agentmem.errors.ValidationError` saying
    what is wrong with it."""
    if isinstance(value, MemoryRecord):
        return value
    try:
        record = MemoryRecord.model_validate(value)
    except PydanticValidationError as exc:
        raise ValidationError(f"not a memory record: {first_message(exc)}") from None
    return record if "id" in value else with_derived_id(record)


# Namespace of the ids derived for imported records that come without one.
_DERIVED_IDS = uuid.UUID("6f1c2a52-3d7e-4b0e-9a43-0c8f5e2b7d19")


def derived_id(record: MemoryRecord) -> str:
    """The id a record given without one is imported under: a UUID derived from everything
    else it gives (scope, as normalised; kind; text; metadata; provenance; times; ...), its
    stored hash and the creation and update times it was given none of (they would be now)
    left out. The same record imported again gets the same id, so it is skipped as already
    present; a record that differs in any field is another memory."""
    left_out = {"id", "content_hash"}
    left_out |= {f for f in ("created_at", "updated_at") if f not in record.model_fields_set}
    given = record.model_dump(mode="json", exclude=left_out)
    given["scope"] = Scope.of(**record.scope.fields()).fields()
    return str(uuid.uuid5(_DERIVED_IDS, json.dumps(given, sort_keys=True)))


def with_derived_id(record: MemoryRecord) -> MemoryRecord:
    """``record`` under :func:`derived_id` (its own id was made up when it was parsed)."""
    return record.model_copy(update={"id": derived_id(record)})


__all__ = [
    "ImportCounts",
    "as_record",
    "derived_id",
    "export_records",
    "import_counted",
    "import_records",
    "is_held",
    "with_derived_id",
]
