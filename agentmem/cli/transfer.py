"""``agentmem export``, ``import`` and ``reindex``: move memory between homes and rebuild the
derived indexes from the store (the store is the truth)."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Annotated, Any, TextIO

import typer
from pydantic import ValidationError as PydanticValidationError

from agentmem import writing
from agentmem.cli._app import app, memory_for, open_configured, settings_for
from agentmem.cli._output import fail, progress
from agentmem.errors import AgentMemError, ValidationError, first_message
from agentmem.memory import Memory
from agentmem.models import MemoryRecord
from agentmem.settings import Settings
from agentmem.stores import QuarantineStore
from agentmem.transfer import ImportCounts, import_counted, with_derived_id

# Measured: 300 records imported as fast in batches of 16 as of 500, twice as fast as one by
# one; 16 keeps the progress bar moving.
_IMPORT_BATCH = 16


@app.command(name="export")
def export_(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH.jsonl",
            help="File to write (replaced if it exists; through a link, its target), a FIFO "
            "or device (written as it is), or - for stdout.",
            dir_okay=False,
            show_default=False,
        ),
    ],
) -> None:
    """Write every memory, in every scope, to a JSON Lines file (one record per line).

    Ids, times and versions are kept, so `agentmem import` restores them exactly. Held
    (quarantined) memories follow the stored ones, and an import holds them again.

    Example:

        agentmem export backup.jsonl
        agentmem export - | gzip > backup.jsonl.gz   # agentmem import backup.jsonl.gz
    """
    to_stdout = str(path) == "-" or _is_stdout(path)
    with memory_for(ctx) as mem:
        held = len(_held_ids(mem))
        total = mem.stats().records + held
        try:
            written = _export_to(mem, None if to_stdout else path, total)
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror or exc}")
    where = "stdout" if to_stdout else str(path)
    typer.echo(f"exported {written} records to {where}{_held_note(held)}", err=to_stdout)


def _export_to(mem: Memory, path: Path | None, total: int) -> int:
    """Write the export to ``path`` (stdout for None) and return how many records.

    A regular file is replaced atomically (written beside it, then renamed over it; through
    a symlink, the link's target is, and the link stays). A FIFO or device is written
    through: renaming over it would put a regular file in its place."""
    if path is None:
        return _write_records(mem, sys.stdout, total)
    if _is_stream(path):
        with path.open("w", encoding="utf-8") as out:
            return _write_records(mem, out, total)
    target = Path(os.path.realpath(path))
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            written = _write_records(mem, out, total)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _write_records(mem: Memory, out: TextIO, total: int) -> int:
    written = 0
    with progress() as bar:
        task = bar.add_task("exporting", total=total)
        for record in mem.export(include_quarantined=True):
            out.write(_json_line(record.model_dump(mode="json")))
            written += 1
            bar.advance(task)
    out.flush()
    return written


def _is_stream(path: Path) -> bool:
    """Whether ``path`` exists (after its links) and is not a regular file."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return False


def _is_stdout(path: Path) -> bool:
    """Whether ``path`` names this process's stdout (``/dev/stdout``, ``/proc/self/fd/1``)."""
    try:
        return os.path.samestat(path.stat(), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _held_note(held: int) -> str:
    return f" ({held} of them held in quarantine)" if held else ""


def _held_ids(mem: Memory) -> list[str]:
    store = mem.backends.store
    if not isinstance(store, QuarantineStore):
        return []
    return [row.id for row in store.quarantine_rows(limit=10_000_000)]


# Characters str.splitlines() breaks on that json.dumps leaves raw: escape them so every
# JSON Lines reader sees one record per line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


def _read_records(path: Path, settings: Settings) -> tuple[list[MemoryRecord], int]:
    """Every record of an export file (stdin for ``-``; gzip-compressed or not; a leading
    UTF-8 byte order mark dropped, as ``add --file`` drops it), validated,
    and how many lines without an id repeated an earlier one (the same memory: left out);
    the first bad line raises, naming it."""
    name = _source_name(path)
    records: list[MemoryRecord] = []
    first_line: dict[str, int] = {}
    copies = 0
    try:
        with _open_export(path) as src:
            for number, raw in enumerate(src, 1):
                if number == 1:  # a byte order mark (Windows editors write one) is no record
                    raw = raw.removeprefix(codecs.BOM_UTF8)
                parsed = _parse_line(raw, settings, f"{name} line {number}")
                if parsed is None:
                    continue
                record, given_id = parsed
                if record.id in first_line:
                    if not given_id:  # the same content as an earlier line: one memory
                        copies += 1
                        continue
                    raise ValidationError(
                        f"{name} line {number}: record id {record.id!r} already appears on line "
                        f"{first_line[record.id]}; nothing was imported"
                    )
                first_line[record.id] = number
                records.append(record)
    except (OSError, EOFError, zlib.error) as exc:  # EOFError, zlib.error: a damaged .gz
        fail(f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}")
    return records, copies


def _source_name(path: Path) -> str:
    return "stdin" if str(path) == "-" else str(path)


@contextmanager
def _open_export(path: Path) -> Iterator[Iterable[bytes]]:
    """The export's bytes, from ``path`` or stdin (``-``), decompressed when they start with
    the gzip magic (``agentmem export - | gzip > backup.jsonl.gz`` restores as it is)."""
    with ExitStack() as stack:
        src: IO[bytes] = (
            sys.stdin.buffer if str(path) == "-" else stack.enter_context(path.open("rb"))
        )
        if isinstance(src, io.BufferedReader):  # a file, a pipe or a FIFO: look without reading
            head = src.peek(2)[:2]
        else:  # a stdin without a buffer to look into (tests): read it whole
            src = io.BytesIO(src.read())
            head = src.getvalue()[:2]
        if head == _GZIP_MAGIC:
            yield stack.enter_context(gzip.GzipFile(fileobj=src, mode="rb"))
        else:
            yield src


_GZIP_MAGIC = b"\x1f\x8b"


def _parse_line(raw: bytes, settings: Settings, where: str) -> tuple[MemoryRecord, bool] | None:
    """The line's record and whether the line gave its id (one without an id gets
    :func:`~agentmem.transfer.derived_id`), or None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{where}: not UTF-8 text; nothing was imported") from None
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); nothing was imported"
        ) from None
    given_id = isinstance(data, dict) and "id" in data
    try:
        record = MemoryRecord.model_validate(data)
        if not given_id:
            record = with_derived_id(record)
        writing.prepare_import(settings, record)  # every field checked as the import will
    except PydanticValidationError as exc:
        raise ValidationError(
            f"{where}: not a memory record ({first_message(exc)}); nothing was imported"
        ) from None
    except AgentMemError as exc:
        raise ValidationError(f"{where}: {exc}; nothing was imported") from None
    return record, given_id


@app.command(name="import")
def import_(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH.jsonl",
            help="A file written by `agentmem export` (gzip-compressed or not), or - for stdin.",
            # "-" is stdin: typer passes no allow_dash to click, so a missing file is
            # reported by the read (`cannot read PATH: No such file or directory`).
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            metavar="N",
            help="Records stored per transaction; the progress bar moves after each (1: per "
            "record, a little slower).",
        ),
    ] = _IMPORT_BATCH,
) -> None:
    """Restore memories from `agentmem export` (same ids, times and versions).

    The whole file is checked first: a malformed line is reported with its number and nothing
    is imported. Records whose id is already present are skipped, so importing twice is safe
    (and an interrupted import is finished by running it again); so are records a forget
    erased from this home (an old backup does not bring them back), and records derived from
    one (its facts, summaries). A line without an "id" gets one derived from everything
    else it gives, so it too is skipped the second time (a line that differs in any field
    is another memory).

    Example:

        agentmem --home ./restored import backup.jsonl
        agentmem --home ./restored import backup.jsonl.gz
        gunzip -c backup.jsonl.gz | agentmem --home ./restored import -
    """
    settings = settings_for(ctx)
    records, copies = _read_records(path, settings)
    counts = ImportCounts(present=copies)
    with open_configured(settings) as mem, progress() as bar:
        task = bar.add_task(f"importing {_source_name(Path(path.name))}", total=len(records))
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            counts += import_counted(mem.backends, batch)
            bar.advance(task, len(batch))
    held = f" ({counts.held} held in quarantine again)" if counts.held else ""
    erased = f" and {counts.forgotten} erased by forget" if counts.forgotten else ""
    if counts.derived:
        erased += f" and {counts.derived} derived from a memory a forget erased"
    typer.echo(
        f"imported {counts.inserted} records{held}, skipped {counts.present} already present"
        f"{erased} (from {_source_name(path)})"
    )


@app.command()
def reindex(
    ctx: typer.Context,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Drop every indexed vector first (an unreadable index directory is moved "
            "aside and a new one made), then index everything. With --graph the "
            "graph is always rebuilt whole, so --rebuild adds nothing there.",
        ),
    ] = False,
    graph: Annotated[
        bool,
        typer.Option(
            "--graph",
            help="Rebuild the knowledge graph from the stored facts instead (e.g. after "
            "'the stored knowledge graph ... is corrupt').",
        ),
    ] = False,
) -> None:
    """Rebuild the vector index from the store (the store is the truth).

    Use it after losing or moving the vectors directory, or after changing the vector backend.
    With --graph, rebuild the knowledge graph of every scope from the facts instead (always
    from scratch).

    Example:

        agentmem reindex --rebuild
        agentmem reindex --graph
    """
    if graph:
        _rebuild_graph(ctx, rebuild)
        return
    with memory_for(ctx) as mem:
        before = mem.stats()
        with progress() as bar:
            bar.add_task("reindexing", total=None)
            indexed = mem.reindex(rebuild=rebuild)
        after = mem.stats()
        aside = mem.backends.index.damaged_copy
    was = "unreadable" if before.index_error else before.indexed_vectors
    typer.echo(
        f"reindexed {indexed} of {after.records} records; vectors {was} -> {after.indexed_vectors}"
    )
    if aside is not None:
        typer.echo(
            f"the unreadable index was moved aside to {aside} (kept for inspection; delete it "
            "once search works)"
        )


def _rebuild_graph(ctx: typer.Context, rebuild: bool) -> None:
    with memory_for(ctx) as mem, progress() as bar:
        bar.add_task("rebuilding the knowledge graph", total=None)
        report = mem.graph.rebuild()
    note = " (always from scratch with --graph; vectors left alone)" if rebuild else ""
    typer.echo(
        f"rebuilt the knowledge graph of {report.partitions} scope(s) from "
        f"{report.facts} facts: {report.entities} entities, {report.relations} relations "
        f"in {report.seconds:.1f} s{note}"
    )
