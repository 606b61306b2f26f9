"""The docs name files and modules that exist.

Renames leave stale names behind in prose. This test reads the user docs and the examples for
``path/like.py`` references and dotted ``agentmem...`` names, and the library's docstrings for
Sphinx roles (``:mod:`agentmem.x```, ``:func:`~agentmem.x.f```), and checks each one against
the source tree: a path must be a file, a dotted name a module or a name bound at the top
level of one. It parses source with :mod:`ast` and imports nothing, so it stays fast and
deterministic.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOCS = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "RESULTS.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "examples").glob("*.py")),
]
"""User-facing text whose references are checked."""

LIBRARY = ["agentmem", "graphs", "consolidation", "gpu", "server"]
"""Folders whose Python docstrings and comments are checked for Sphinx roles."""

PATH_BASES = [
    "",
    "agentmem",
    "agentmem/graph",
    "graphs",
    "consolidation",
    "gpu",
    "server",
    "graphs/agentmem_graphs",
    "consolidation/agentmem_consolidation",
    "gpu/agentmem_gpu",
    "server/agentmem_server",
]
"""Folders a path in the docs may be relative to (``stores/base.py`` means ``agentmem/stores/``)."""

PACKAGE_DIRS = {
    "agentmem": ROOT / "agentmem",
    "agentmem_graphs": ROOT / "graphs" / "agentmem_graphs",
    "agentmem_consolidation": ROOT / "consolidation" / "agentmem_consolidation",
    "agentmem_gpu": ROOT / "gpu" / "agentmem_gpu",
    "agentmem_server": ROOT / "server" / "agentmem_server",
    "benchmarks": ROOT / "benchmarks",
}
"""Top-level import names and their folders."""

NOT_MODULES = (
    "agentmem.consolidation.",  # Celery task names
    "agentmem.query_encoders",  # entry-point groups
    "agentmem.recall_models",
    "agentmem.llm_providers",
    "agentmem.cli",  # also an entry-point group; the package exists too
    "agentmem.db",  # the SQLite file in the home folder
    "agentmem.lock",  # the home lock file
)
"""Dotted strings in the docs that are names of something else, not Python objects."""

PATH_RE = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)+[\w-]+\.py)\b")
DOTTED_RE = re.compile(
    r"(?<![\w./-])((?:agentmem|agentmem_graphs|agentmem_consolidation|agentmem_gpu|agentmem_server)"
    r"(?:\.[A-Za-z_]\w*)+)(?![\w/-])"
)
OLD_PACKAGE_RE = re.compile(r"`(graphs|server|consolidation|gpu)\.([A-Za-z_]\w*)")
OLD_PACKAGE_ALLOWED = {"consolidation.run_stage"}
"""Old bare names the docs may still mention (the Celery task name before per-stage tasks)."""
ROLE_RE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj):`~?([\w.]+)`")


@cache
def _imported_from(module_file: Path) -> dict[str, str]:
    """Names a module imports with ``from package.module import name``, and where from."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        for alias in node.names
    }


@cache
def _bound_names(module_file: Path) -> frozenset[str]:
    """Names bound anywhere in a module (defs, classes and their methods, assignments, imports)."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def _module_file(parts: list[str]) -> Path | None:
    """The file of the module named by ``parts``, if there is one."""
    base = PACKAGE_DIRS.get(parts[0])
    if base is None:
        return None
    folder = base.joinpath(*parts[1:])
    if (folder / "__init__.py").is_file():
        return folder / "__init__.py"
    single = folder.with_suffix(".py")
    return single if single.is_file() else None


def dotted_exists(name: str) -> bool:
    """Whether ``name`` is a module, or a module followed by names it (or its classes) binds."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_file = _module_file(parts[:cut])
        if module_file is None:
            continue
        rest = parts[cut:]
        if not rest:
            return True
        origin = _imported_from(module_file).get(rest[0])
        if origin is not None and len(rest) > 1 and origin.split(".")[0] in PACKAGE_DIRS:
            return dotted_exists(".".join([origin, *rest[1:]]))
        return all(part in _bound_names(module_file) for part in rest)
    return False


def path_exists(path: str) -> bool:
    """Whether ``path`` names a file relative to the root or to one of the package folders."""
    return any((ROOT / base / path).is_file() for base in PATH_BASES)


def _doc_references() -> list[tuple[str, int, str, str]]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            where = doc.relative_to(ROOT).as_posix()
            found += [(where, number, "path", p) for p in PATH_RE.findall(line)]
            found += [
                (where, number, "name", d)
                for d in DOTTED_RE.findall(line)
                if not d.startswith(NOT_MODULES) and d not in {n.rstrip(".") for n in NOT_MODULES}
            ]
    return found


def _role_references() -> list[tuple[str, int, str, str]]:
    found = []
    for folder in LIBRARY:
        for source in sorted((ROOT / folder).rglob("*.py")):
            text = source.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), 1):
                where = source.relative_to(ROOT).as_posix()
                found += [
                    (where, number, "name", ref)
                    for ref in ROLE_RE.findall(line)
                    if ref.split(".")[0] in PACKAGE_DIRS and not ref.startswith(NOT_MODULES)
                ]
    return found


def _broken(references: list[tuple[str, int, str, str]]) -> list[str]:
    return [
        f"{where}:{number}: {ref}"
        for where, number, kind, ref in references
        if not (path_exists(ref) if kind == "path" else dotted_exists(ref))
    ]


def test_docs_and_examples_name_files_and_modules_that_exist() -> None:
    references = _doc_references()
    assert len(references) > 50, "the extractor found almost nothing: check the patterns"
    assert _broken(references) == []


def test_library_docstring_roles_name_objects_that_exist() -> None:
    references = _role_references()
    assert len(references) > 50, "the extractor found almost nothing: check the patterns"
    assert _broken(references) == []


def _settings_fields(section_class: str, module: str = "settings_sections.py") -> set[str]:
    """The fields of a settings section class in ``agentmem/<module>``."""
    tree = ast.parse((ROOT / "agentmem" / module).read_text(encoding="utf-8"))
    return {
        item.target.id
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == section_class
        for item in node.body
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
    }


def test_docs_use_the_old_package_names_only_as_settings_keys() -> None:
    """``consolidation.x`` in the docs is a settings key; the packages are ``agentmem_*`` now."""
    fields = _settings_fields("ConsolidationSettings", "consolidation_settings.py")
    keys = {f"consolidation.{name}" for name in fields}
    assert keys, "no consolidation settings found: check the parser"
    stale = [
        f"{doc.relative_to(ROOT).as_posix()}:{number}: {package}.{name}"
        for doc in DOCS
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        for package, name in OLD_PACKAGE_RE.findall(line)
        if name != "py" and f"{package}.{name}" not in keys | OLD_PACKAGE_ALLOWED
    ]
    assert stale == []


MARKDOWN = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "RESULTS.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
"""The Markdown files whose links are checked."""

LINK_RE = re.compile(r"\]\(([^)#\s:]*)(?:#([^)\s]+))?\)")


def _anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    headings = re.findall(r"^#+ (.*)$", doc.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_markdown_links_point_at_files_and_headings_that_exist() -> None:
    broken = []
    for doc in MARKDOWN:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for target, anchor in LINK_RE.findall(line):
                path = (doc.parent / target).resolve() if target else doc
                if not path.exists():
                    broken.append(f"{doc.relative_to(ROOT).as_posix()}:{number}: {target}")
                elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                    broken.append(f"{doc.relative_to(ROOT).as_posix()}:{number}: {target}#{anchor}")
    assert broken == []


@pytest.mark.parametrize(
    ("name", "exists"),
    [
        ("agentmem.erasure", True),
        ("agentmem.answering.answer", True),
        ("agentmem.forgetting", False),
        ("agentmem.graph.recall", False),
        ("agentmem_gpu.recall_adapter_pipeline", True),
    ],
)
def test_the_checker_tells_present_from_missing(name: str, exists: bool) -> None:
    assert dotted_exists(name) is exists
