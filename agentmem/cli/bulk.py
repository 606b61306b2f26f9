"""``agentmem add --file``: load a file of memories, one per line, with a progress bar.

A file is plain text (one memory a line, blank lines skipped) or JSON Lines (``.jsonl``,
``.ndjson``: one object a line, ``{"text": ..., "user_id": ..., "metadata": {...}}``). The
command options are each line's defaults. The whole file is checked before anything is
written: a bad line is reported with the file, the line and the field, and nothing is added.
Each line is written with an idempotency key made from the file's content, the line number
and what the line is added as (scope, kind, metadata, times, importance, ``--infer``), so
running the same command again after an interruption adds only what is missing (not a line
whose memory an earlier run added and was deleted since), and the same file with other options
adds its lines again with those."""

from __future__ import annotations

import codecs
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from agentmem.cli._app import memory_for
from agentmem.cli._args import ScopeArgs
from agentmem.cli._output import progress
from agentmem.errors import AgentMemError, InvalidDataFile, MemoryDeleted, ValidationError
from agentmem.memory import Memory
from agentmem.models import Scope, utcnow
from agentmem.validation import show
from agentmem.writing import new_record

JSONL_SUFFIXES = (".jsonl", ".ndjson")
_SCOPE_KEYS = ("org_id", "user_id", "agent_id", "thread_id")
_RECORD_KEYS = ("text", "kind", "metadata", "event_time", "importance", "valid_from", "valid_to")


@dataclass(frozen=True)
class FileDefaults:
    """What a line does not say: the command's scope and memory options."""

    scope: ScopeArgs
    kind: str = "episodic"
    metadata: dict[str, Any] | None = None
    event_time: str | None = None
    importance: float | None = None


@dataclass
class _Line:
    number: int
    scope: dict[str, str]
    item: dict[str, Any] = field(default_factory=dict)


def add_file(ctx: typer.Context, path: Path, defaults: FileDefaults, *, infer: bool) -> None:
    """Check every line of ``path``, then add them one by one with a progress bar."""
    raw = _read(path)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    with memory_for(ctx) as mem:
        lines = _parse(mem, path, raw, defaults)
        added = skipped = deleted = 0
        started = utcnow()
        with progress() as bar:
            task = bar.add_task(f"adding {path.name}", total=len(lines))
            for line in lines:
                key = f"add-file:{digest}:{line.number}:{_options_digest(line, infer)}"
                try:
                    scope = Scope.of(**line.scope)
                    stored = mem.add_many(
                        [line.item], scope=scope, infer=infer or None, idempotency_key=key
                    )
                except MemoryDeleted:  # an earlier run added it, and it was deleted since
                    deleted += 1
                    bar.advance(task)
                    continue
                except AgentMemError as exc:
                    done = added + skipped + deleted
                    raise type(exc)(
                        f"{path} line {line.number}: {exc}; the {done} lines before it were "
                        "added; run the same command again to add the rest"
                    ) from exc
                # A line an earlier run added comes back as that run's record.
                if stored and stored[0].created_at < started:
                    skipped += 1
                else:
                    added += 1
                bar.advance(task)
    already = f", skipped {skipped} added by an earlier run" if skipped else ""
    if deleted:
        already += f", skipped {deleted} an earlier run added and were deleted since"
    typer.echo(f"added {added} memories from {path}{already}")


def _options_digest(line: _Line, infer: bool) -> str:
    """What the line is added as, hashed: a rerun with other options is another write."""
    resolved = {"scope": line.scope, "item": line.item, "infer": infer}
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read(path: Path) -> bytes:
    try:
        # A UTF-8 byte order mark (Windows editors write one) is not part of the first line.
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        return raw.removeprefix(codecs.BOM_UTF8)
    except OSError as exc:
        raise InvalidDataFile(f"cannot read {path}: {exc.strerror or exc}") from None


def _parse(mem: Memory, path: Path, raw: bytes, defaults: FileDefaults) -> list[_Line]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidDataFile(f"{path} line {line}: not UTF-8 text; nothing was added") from None
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    lines: list[_Line] = []
    # Lines end at "\n" only (JSON Lines' rule): str.splitlines would also split at U+2028,
    # U+0085, form feed and the like, which a JSON string or a line of text may hold.
    for number, content in enumerate(text.split("\n"), 1):
        content = content.removesuffix("\r")
        if not content.strip():
            continue
        data = _json_object(path, number, content) if jsonl else {"text": content.strip()}
        lines.append(_line(mem, f"{path} line {number}", number, data, defaults))
    if not lines:
        raise InvalidDataFile(f"{path} has no memories (every line is blank); nothing was added")
    return lines


def _json_object(path: Path, number: int, content: str) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidDataFile(
            f"{path} line {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
            'each line is an object like {"text": "...", "user_id": "maya"}; nothing was added'
        ) from None
    if not isinstance(data, dict):
        raise InvalidDataFile(
            f"{path} line {number}: a JSON {type(data).__name__}, not an object with "
            '"text"; nothing was added'
        )
    return data


def _line(
    mem: Memory, where: str, number: int, data: Mapping[str, Any], defaults: FileDefaults
) -> _Line:
    unknown = sorted(set(data) - set(_SCOPE_KEYS) - set(_RECORD_KEYS))
    if unknown:
        allowed = ", ".join((*_RECORD_KEYS, *_SCOPE_KEYS))
        raise InvalidDataFile(
            f"{where}: unknown field {unknown[0]!r} (fields: {allowed}); nothing was added"
        )
    if "text" not in data:
        raise InvalidDataFile(f"{where}: field 'text' is missing; nothing was added")
    if not isinstance(data["text"], str):
        raise InvalidDataFile(
            f"{where}: field 'text' must be a string, got {show(data['text'])}; nothing was added"
        )
    scope = {k: str(v) for k, v in defaults.scope.items() if v is not None}
    for key in _SCOPE_KEYS:
        if key in data:
            if not isinstance(data[key], str):
                raise InvalidDataFile(f"{where}: field {key!r} must be a string; nothing was added")
            scope[key] = data[key]
    if not scope:
        raise InvalidDataFile(
            f"{where}: field 'user_id' is missing and no scope was given: add user_id (or "
            "agent_id, thread_id, org_id) to the line, or pass --user; nothing was added"
        )
    item = {
        "kind": defaults.kind,
        "metadata": defaults.metadata,
        "event_time": defaults.event_time,
        "importance": defaults.importance,
    }
    item.update({k: data[k] for k in _RECORD_KEYS if k in data})
    item = {k: v for k, v in item.items() if v is not None}
    _check(mem, where, scope, item)
    return _Line(number=number, scope=scope, item=item)


def _check(mem: Memory, where: str, scope: dict[str, str], item: dict[str, Any]) -> None:
    """Validate a line as the write would, naming the field that fails."""
    try:
        parsed = Scope.of(**scope)
        new_record(mem.backends, parsed, **item)
    except ValidationError as exc:
        name = _failing_field(mem, scope, item)
        raise InvalidDataFile(f"{where}: field {name!r}: {exc}; nothing was added") from None


def _failing_field(mem: Memory, scope: dict[str, str], item: dict[str, Any]) -> str:
    try:
        parsed = Scope.of(**scope)
    except ValidationError:
        return next(iter(scope))
    try:
        new_record(mem.backends, parsed, item["text"])
    except ValidationError:
        return "text"
    for name, value in item.items():
        if name == "text":
            continue
        try:
            new_record(mem.backends, parsed, "x", **{name: value})
        except ValidationError:
            return name
    # Each field is fine alone: the fields disagree (the only such rule: valid time).
    return "valid_to" if "valid_to" in item else "text"
