"""Shared helpers of the benchmark scripts: timing, percentiles, memory, the machine, output.

Nothing here is specific to one benchmark. The one piece of method worth knowing is
:class:`CachingEmbedder`: every system in a run embeds through it, so each text is embedded by
the real model once per run, every system gets the same vectors, and the seconds the model
spent are counted apart, which lets a timing include or exclude embedding honestly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from agentmem.embedders import Embedder

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / "benchmarks"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_DIR = BENCH_DIR / "results"

# Sections of RESULTS.md in the order they appear; unknown names go after these.
SECTION_ORDER = ("locomo", "scale")
_RESULTS_HEADER = """# Benchmark results

Written by the benchmark scripts; do not edit by hand. Each script replaces only its own
section (between `<!-- name:start -->` and `<!-- name:end -->`):
`python -m benchmarks.locomo` and `python -m benchmarks.scale`.
"""


def offline() -> None:
    """Forbid model downloads for the rest of the process (weights come from packages)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# timing ------------------------------------------------------------------------------------


class Stopwatch:
    """Elapsed wall-clock seconds of a ``with`` block (``perf_counter``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def latency_summary(samples_s: Sequence[float]) -> dict[str, float | int]:
    """p50 / p95 / mean / max of latency samples given in seconds, reported in milliseconds."""
    if not samples_s:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan")}
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def rate(count: int, seconds: float) -> float:
    """Items per second (``nan`` when no time was measured)."""
    return count / seconds if seconds > 0 else float("nan")


# embedding -----------------------------------------------------------------------------------


class CachingEmbedder(Embedder):
    """Wraps the run's shared embedder: remembers every vector by text and times the model.

    Documents and queries are cached apart (a model may embed them differently). A cache hit
    costs a dict lookup; only misses reach the model, and ``model_seconds`` / ``model_texts``
    add up that real work (``requested_texts`` counts every document text asked for).
    :meth:`forget` drops a text so the next call embeds it again (used to time a search with
    its query embedding included). ``close`` does not close the wrapped model: the run owns it
    and shares it between memories.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.model_seconds = 0.0
        self.model_texts = 0
        self.requested_texts = 0
        self._documents: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int:
        """Vector size of the wrapped model."""
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Cached vectors of ``texts``, embedding the missing ones in one batch."""
        self.requested_texts += len(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._documents))
        if missing:
            start = time.perf_counter()
            vectors = self.inner.embed_documents(missing)
            self.model_seconds += time.perf_counter() - start
            self.model_texts += len(missing)
            self._documents.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._documents[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """Cached vector of a query."""
        vector = self._queries.get(text)
        if vector is None:
            start = time.perf_counter()
            vector = self.inner.embed_query(text)
            self.model_seconds += time.perf_counter() - start
            self.model_texts += 1
            self._queries[text] = vector
        return vector

    def cached_query(self, text: str) -> np.ndarray | None:
        """The cached query vector of ``text``, or None."""
        return self._queries.get(text)

    def preload(self, texts: Sequence[str], vectors: np.ndarray, *, queries: bool = False) -> None:
        """Put known vectors (computed by this same model earlier) into the cache."""
        target = self._queries if queries else self._documents
        target.update(zip(texts, np.asarray(vectors, dtype=np.float32), strict=True))

    def forget(self, text: str) -> None:
        """Drop ``text`` from both caches."""
        self._documents.pop(text, None)
        self._queries.pop(text, None)

    def close(self) -> None:
        """Nothing to release: the wrapped model belongs to the run."""


# process and machine ---------------------------------------------------------------------------


def _proc_status(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Resident memory of this process now."""
    value = _proc_status("VmRSS")
    if value is not None:
        return value
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # pragma: no cover


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (since start or the last :func:`reset_peak_rss`)."""
    value = _proc_status("VmHWM")
    if value is not None:
        return value
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # pragma: no cover


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs``); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def dir_bytes(path: Path, *, allocated: bool = True) -> int:
    """Disk used by the files under ``path``: blocks allocated (like ``du``; sparse and
    preallocated files count only what is written), or with ``allocated=False`` their sizes."""
    files = [p.stat() for p in path.rglob("*") if p.is_file()]
    if allocated and all(hasattr(st, "st_blocks") for st in files):
        return sum(st.st_blocks * 512 for st in files)
    return sum(st.st_size for st in files)


def report_console() -> Console:
    """The console a benchmark prints its tables on: the terminal's width, else 160 columns
    (logs and CI, where rich would otherwise wrap at 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def default_embedder(embedder: Embedder | None) -> Embedder:
    """``embedder`` (tests pass the session's shared model), else the embedder a user gets by
    default (``Settings().embedder``: all-MiniLM-L6-v2 in ONNX Runtime, no torch needed),
    loaded only then."""
    if embedder is not None:
        return embedder
    from agentmem import Settings
    from agentmem.embedders import embedder_from_spec

    return embedder_from_spec(Settings.load().embedder)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, load average: what a reader needs to compare runs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1) if ram else None,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return info


def machine_line(info: Mapping[str, Any]) -> str:
    """The machine in one Markdown line."""
    load = info.get("load_average_at_start")
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}, "
        f"Python {info['python']}, torch threads {info.get('torch_threads', '?')}, "
        f"load average at start {load}"
    )


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of distributions (None where absent)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now_utc() -> str:
    """The current time as ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run."""
    args = list(sys.argv[1:] if argv is None else argv)
    return f"python -m {module} {shlex.join(args)}".rstrip()


def project_path(value: str | Path) -> Path:
    """A path as given, relative paths taken from the project root."""
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


# output ------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: fixed decimals, thousands separators, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and np.isnan(value):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""
    rows = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    align = [
        "---:" if rows and all(_numeric(row[i]) for row in rows) else "---"
        for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"-|[-+]?[\d,]*\.?\d+(e[-+]?\d+)?", cell.strip()))


def rich_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """The same table for the console."""
    table = Table(title=title, title_justify="left")
    rows = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    for i, header in enumerate(headers):
        numeric = bool(rows) and all(_numeric(row[i]) for row in rows)
        table.add_column(header, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*row)
    return table


_SECTION = re.compile(r"<!-- (?P<name>[\w-]+):start -->\n.*?<!-- (?P=name):end -->\n?", re.S)


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or add) the section ``name`` of a results file, leaving the others alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else _RESULTS_HEADER
    sections = {m["name"]: m.group(0).rstrip("\n") for m in _SECTION.finditer(text)}
    first = _SECTION.search(text)
    header = (text[: first.start()] if first else text).rstrip("\n")
    sections[name] = f"<!-- {name}:start -->\n{body.strip()}\n<!-- {name}:end -->"
    order = [n for n in SECTION_ORDER if n in sections] + sorted(
        n for n in sections if n not in SECTION_ORDER
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        header + "\n\n" + "\n\n".join(sections[n] for n in order) + "\n", encoding="utf-8"
    )


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write results as indented JSON (NaN written as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


@contextmanager
def quiet_logs(*names: str) -> Iterator[None]:
    """Silence chatty third-party loggers (warnings and below) inside the block."""
    import logging

    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
