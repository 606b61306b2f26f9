"""A JSON data file read with its text, so an error can name the file, the line and the field
of any value in it (:class:`~agentmem.errors.InvalidDataFile`)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from agentmem.errors import InvalidDataFile
from agentmem.validation import visible

Where = tuple[str | int, ...]


class DataFile:
    """A JSON document and its text, so an error can name the line of any field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidDataFile(f"{path}: no such file; pass the path of the data file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidDataFile(f"{path}: cannot be read as UTF-8 text ({exc})") from None
        try:
            self.data = json.loads(self.text, object_pairs_hook=_unrepeated)
        except json.JSONDecodeError as exc:
            raise InvalidDataFile(
                f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
            ) from None
        except RecursionError:
            raise InvalidDataFile(
                f"{path}: its lists or objects are nested too deeply to read; no data set "
                "nests more than a few levels"
            ) from None
        except _Repeated:
            raise self._repeated() from None
        except ValueError:  # an integer over the digits int() converts (sys.int_info)
            raise self._too_long() from None

    def _repeated(self) -> InvalidDataFile:
        """The error for a key repeated in one object (JSON would keep the last silently),
        naming the field and the line of the repeat: the file is read again, each object
        with a repeat marked, to find where (only when there is one: it is slower)."""
        where, key = _first_repeat(json.loads(self.text, object_pairs_hook=_marked))
        return self.error(
            (*where, key),
            f"{key!r} appears more than once in one object, and all but the last would be "
            "ignored; keep one",
        )

    def _too_long(self) -> InvalidDataFile:
        """The error for an integer too long to read, naming its line."""
        limit = sys.get_int_max_str_digits()
        found = re.search(rf"\d{{{limit + 1},}}", self.text) if limit else None
        line = self.text.count("\n", 0, found.start()) + 1 if found else None
        at = f", line {line}" if line else ""
        return InvalidDataFile(
            f"{self.path}{at}: holds an integer of more than {limit:,} digits, too long to "
            "read; write it as a string, or shorten it"
        )

    def error(self, where: Where, problem: str) -> InvalidDataFile:
        """An error naming the file, the line where ``where`` is and the field."""
        line = _line_of(self.text, where)
        at = f", line {line}" if line is not None else ""
        name = field_name(where) or "(the top level)"
        return InvalidDataFile(f"{self.path}{at}, field {name}: {problem}")

    def get(self, value: Any, where: Where, key: str | int, kind: type | tuple[type, ...]) -> Any:
        """``value[key]``, checked to be of ``kind``; else an error naming the field."""
        inner = (*where, key)
        try:
            found = value[key]
        except (KeyError, IndexError, TypeError):
            raise self.error(where, f"missing {key!r}") from None
        if not isinstance(found, kind) or (isinstance(found, bool) and bool not in _kinds(kind)):
            raise self.error(inner, f"expected {_kind_name(kind)}, got {type(found).__name__}")
        return found

    def words(self, value: Any, where: Where, key: str | int | None = None) -> str:
        """``value[key]`` (``value`` itself when ``key`` is None) as a string with visible
        text, since a memory or a question must have some; else an error naming the field."""
        found = value if key is None else self.get(value, where, key, (str, int))
        at = where if key is None else (*where, key)
        if key is None:
            self.expect(found, at, str)
        if not visible(str(found)):
            raise self.error(at, "is empty (or only whitespace): a memory or question needs text")
        return str(found)

    def expect(self, value: Any, where: Where, kind: type | tuple[type, ...]) -> Any:
        """``value`` itself, checked to be of ``kind``."""
        if not isinstance(value, kind):
            raise self.error(where, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value


class _Repeated(Exception):
    """Raised while parsing: an object holds a key twice."""


class _Repeats(dict[str, Any]):
    """An object holding a key twice (``repeated``), found on the second reading."""

    repeated = ""


def _unrepeated(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        raise _Repeated
    return found


def _marked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = _Repeats(pairs)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            found.repeated = key
            break
        seen.add(key)
    return found


def _first_repeat(data: Any) -> tuple[Where, str]:
    """The field of the first object (in the file's order) marked by :func:`_marked`, and its
    repeated key."""
    todo: list[tuple[Where, Any]] = [((), data)]
    while todo:
        where, value = todo.pop()
        if isinstance(value, _Repeats) and value.repeated:
            return where, value.repeated
        if isinstance(value, dict):
            todo += reversed([((*where, k), v) for k, v in value.items()])
        elif isinstance(value, list):
            todo += reversed([((*where, n), v) for n, v in enumerate(value)])
    raise AssertionError("no object repeats a key")  # _Repeated said one does


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {list: "a list", dict: "an object", str: "a string", int: "an integer"}
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))


def field_name(where: Where) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _line_of(text: str, where: Where) -> int | None:
    """The line where the value at ``where`` starts, found by walking the raw text (only the
    path is walked; siblings are skipped with the JSON decoder)."""
    decoder = json.JSONDecoder()
    try:
        i = _skip(text, 0)
        for key in where:
            if text[i] == "[" and isinstance(key, int):
                i = _skip(text, i + 1)
                for _ in range(key):
                    _, i = decoder.raw_decode(text, i)
                    i = _skip(text, _skip(text, i) + 1)  # past the comma
            elif text[i] == "{" and isinstance(key, str):
                i, found = _skip(text, i + 1), None
                while text[i] != "}":  # to the last ``key``: JSON keeps the last one
                    name, i = decoder.raw_decode(text, i)
                    i = _skip(text, _skip(text, i) + 1)  # past the colon
                    found = i if name == key else found
                    _, i = decoder.raw_decode(text, i)
                    i = _skip(text, i)
                    i = _skip(text, i + 1) if text[i] == "," else i
                if found is None:
                    return None
                i = found
            else:
                break
        return text.count("\n", 0, i) + 1
    except (ValueError, IndexError):
        return None


__all__ = ["DataFile", "Where", "field_name"]
