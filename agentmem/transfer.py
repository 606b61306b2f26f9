"""Moving memory out and in: every record in id order (backups, ``agentmem export``), and
exported records inserted verbatim (``agentmem import``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from agentmem import writing
from agentmem.backends import Backends
from agentmem.errors import AgentMemError, ValidationError, first_message
from agentmem.models import MemoryRecord
from agentmem.validation import check_k


def export_records(backends: Backends, *, page: int = 500) -> Iterator[MemoryRecord]:
    """Every memory in every scope, in id order, read ``page`` ids at a time (a bad ``page``
    is refused at the call, before iterating)."""
    return _pages(backends, check_k(page, limit=100_000, what="page"))


def _pages(backends: Backends, page: int) -> Iterator[MemoryRecord]:
    after: str | None = None
    while True:
        ids = backends.store.all_ids(after=after, limit=page)
        if not ids:
            return
        by_id = {r.id: r for r in backends.store.get_many(ids)}
        yield from (by_id[i] for i in ids if i in by_id)
        after = ids[-1]


def import_records(backends: Backends, records: Iterable[MemoryRecord | Mapping[str, Any]]) -> int:
    """Insert exported records verbatim (same ids, times, versions), in batches of
    ``Settings.max_batch_items``; ids already present are skipped. Every record is parsed
    before anything is written. The profiles of the owners of imported facts are then rebuilt
    from their facts (an export holds no profile values). Returns how many were inserted."""
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise ValidationError(
            f"import_records takes an iterable of exported records, got {type(records).__name__}"
        )
    ready: list[MemoryRecord] = []
    for n, record in enumerate(as_record(r) for r in records):  # all before any is written
        try:
            ready.append(writing.prepare_import(backends.settings, record))
        except AgentMemError as exc:
            raise type(exc)(f"record {n} ({record.id}): {exc}; nothing was imported") from None
    batch = backends.settings.max_batch_items
    inserted = sum(
        writing.import_records(backends, ready[start : start + batch])
        for start in range(0, len(ready), batch)
    )
    from agentmem.profiles.api import rebuild_imported

    rebuild_imported(backends, ready)
    return inserted


def as_record(value: MemoryRecord | Mapping[str, Any]) -> MemoryRecord:
    """A record as exported (a :class:`MemoryRecord` or its JSON form), or
    :class:`~agentmem.errors.ValidationError` saying what is wrong with it."""
    if isinstance(value, MemoryRecord):
        return value
    try:
        return MemoryRecord.model_validate(value)
    except PydanticValidationError as exc:
        raise ValidationError(f"not a memory record: {first_message(exc)}") from None


__all__ = ["as_record", "export_records", "import_records"]
