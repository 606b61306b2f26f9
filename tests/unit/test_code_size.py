"""The library stays in small pieces: no module over 700 lines, no function over 80 lines.

The rule covers the library packages (``agentmem/`` and the four satellite folders), not tests,
benchmarks or examples. A module or function that must stay longer is listed in ``EXCEPTIONS``
with the reason; an entry is removed in the same commit that shortens what it names, and a stale
entry (one that no longer exceeds the limit, or names nothing) fails the test too, so the list
never outlives its reasons.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("agentmem", "graphs", "consolidation", "gpu", "server")
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80

# "path" (a module) or "path:qualified.name" (a function or method) -> why it may stay longer.
EXCEPTIONS: dict[str, str] = {}


def _modules() -> Iterator[Path]:
    for top in LIBRARY:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "tests" not in path.relative_to(ROOT).parts:
                yield path


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Yield (qualified name, line count) for every function, methods and nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + child.name
            yield name, (child.end_lineno or child.lineno) - child.lineno + 1
            yield from _functions(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix + child.name + ".")
        else:
            yield from _functions(child, prefix)


def _sizes() -> dict[str, tuple[int, int]]:
    """Every module and function over its limit: key -> (lines, limit)."""
    over: dict[str, tuple[int, int]] = {}
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            over[rel] = (lines, MAX_MODULE_LINES)
        for name, length in _functions(ast.parse(source, filename=rel)):
            if length > MAX_FUNCTION_LINES:
                over[f"{rel}:{name}"] = (length, MAX_FUNCTION_LINES)
    return over


def test_no_module_or_function_over_the_limit_unless_listed() -> None:
    over = _sizes()
    unlisted = {key: size for key, size in over.items() if key not in EXCEPTIONS}
    assert not unlisted, (
        "split these (lines, limit), or list them in EXCEPTIONS with a reason: "
        + ", ".join(f"{key} {size}" for key, size in sorted(unlisted.items()))
    )


def test_every_exception_is_still_needed() -> None:
    stale = sorted(set(EXCEPTIONS) - set(_sizes()))
    assert not stale, f"now within the limit or gone: remove from EXCEPTIONS: {stale}"


def test_every_exception_gives_a_reason() -> None:
    assert all(reason.strip() for reason in EXCEPTIONS.values())
