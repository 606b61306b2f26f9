"""The import graph keeps its layers (issue 23): the controller (``agentmem.memory``) sits above
every subsystem it delegates to, and the core ``agentmem`` package imports none of the
satellite packages.

Built with grimp from the source, counting every import statement: module level, inside
functions and under ``TYPE_CHECKING`` (a cycle held together by either is still a cycle).
"""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

import agentmem

CONTROLLER = "agentmem.memory"
SATELLITES = ("agentmem_graphs", "agentmem_consolidation", "agentmem_gpu", "agentmem_server")
OLD_NAMES = ("graphs", "consolidation", "gpu", "server")
"""The satellites' import names before they got their ``agentmem_`` prefix."""


def build(package: str) -> grimp.ImportGraph:
    """The import graph of ``package``, with the external packages it imports as leaves."""
    return grimp.build_graph(
        package,
        include_external_packages=True,
        exclude_type_checking_imports=False,
        cache_dir=None,
    )


def cycles_through(graph: grimp.ImportGraph, module: str) -> list[tuple[str, ...]]:
    """For each module that ``module`` imports (directly or not) and that imports ``module``
    back, the shortest chain from it to ``module``."""
    upstream = graph.find_upstream_modules(module)
    downstream = graph.find_downstream_modules(module)
    chains = []
    for other in sorted(upstream & downstream):
        chain = graph.find_shortest_chain(importer=other, imported=module)
        assert chain is not None
        chains.append(tuple(chain))
    return chains


def forbidden_imports(graph: grimp.ImportGraph, names: tuple[str, ...]) -> list[str]:
    """``importer -> imported (line)`` for every import of one of ``names`` in the graph."""
    found = []
    for name in names:
        if name not in graph.modules:
            continue
        for importer in sorted(graph.find_modules_that_directly_import(name)):
            for detail in graph.get_import_details(importer=importer, imported=name):
                found.append(f"{importer} -> {name} (line {detail['line_number']})")
    return found


def dynamic_imports(root: Path, names: tuple[str, ...]) -> list[str]:
    """``importlib.import_module("x")`` / ``__import__("x")`` of one of ``names`` (which
    grimp does not see)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                called in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value.split(".")[0] in names
            ):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} {first.value}")
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return build("agentmem")


def test_the_graph_is_built_from_the_code_under_test(graph: grimp.ImportGraph) -> None:
    assert CONTROLLER in graph.modules
    # An import made inside a function body is in the graph (retrieval imports the notes
    # API only when a search expands links).
    assert graph.direct_import_exists(importer="agentmem.retrieval", imported="agentmem.notes.api")


def test_the_controller_is_above_the_subsystems(graph: grimp.ImportGraph) -> None:
    chains = cycles_through(graph, CONTROLLER)
    assert not chains, (
        "these modules are imported by the controller and import it back (pass them the "
        "Backends bundle, or Buffers, instead of the Memory):\n"
        + "\n".join(" -> ".join(chain) for chain in chains)
    )


def test_the_core_imports_no_satellite_package(graph: grimp.ImportGraph) -> None:
    found = forbidden_imports(graph, SATELLITES + OLD_NAMES)
    found += dynamic_imports(Path(agentmem.__file__).parent, SATELLITES + OLD_NAMES)
    assert not found, (
        "the core `agentmem` package must not import the satellites (they import it; reach "
        "them through a protocol and an entry point, as agentmem.parametric does):\n"
        + "\n".join(found)
    )


def test_the_checks_see_function_level_and_type_checking_cycles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks above would fail on the cycles they exist to catch."""
    package = tmp_path / "layered"
    package.mkdir()
    files = {
        "__init__.py": "",
        "memory.py": "from layered import sub, other\n",
        "sub.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from layered.memory import Memory
        """,
        "other.py": """
            def later():
                from layered import memory
                import agentmem_gpu
                return memory, agentmem_gpu
        """,
    }
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "layered", raising=False)
    layered = build("layered")
    chains = cycles_through(layered, "layered.memory")
    assert {chain[0] for chain in chains} == {"layered.sub", "layered.other"}
    assert forbidden_imports(layered, SATELLITES) == ["layered.other -> agentmem_gpu (line 4)"]
