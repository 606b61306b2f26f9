"""Size of a fresh core install: ``pip install <project>`` (no extras) into a new virtualenv.

For each ``--python`` interpreter: make a virtualenv in a temporary directory, install this
checkout without extras, measure the virtualenv on disk, check that torch, litellm and scipy
are absent, then time a first search in a fresh process there (add three memories, search
once: the default embedder loads on that call). Writes the ``install`` section of RESULTS.md
and ``results/install_size.json``.

Run: ``python -m benchmarks.install_size --python python3.11 python3.13`` (minutes per
interpreter: pip downloads and installs every core dependency).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    PROJECT_ROOT,
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    dir_bytes,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    report_console,
    write_json,
    write_section,
)

DEFAULT_JSON = RESULTS_DIR / "install_size.json"
ABSENT = ("torch", "litellm", "scipy", "sentence_transformers", "transformers")
FIRST_SEARCH = """
import tempfile, time
started = time.perf_counter()
from agentmem import Memory
with Memory(home=tempfile.mkdtemp()) as mem:
    mem.add_many([{"text": t} for t in ("Maya adopted a greyhound called Pepper",
                  "Maya moved to Eastgate", "Tomas leads the Airflow migration")], user_id="maya")
    hit = mem.search("what is the name of Maya's dog?", user_id="maya", k=1)[0]
print(round(time.perf_counter() - started, 3), hit.record.text)
"""


def measure(python: str, source: Path) -> dict[str, Any]:
    """Install ``source`` (no extras) into a new virtualenv made by ``python``."""
    root = Path(tempfile.mkdtemp(prefix="agentmem-install-"))
    venv = root / "venv"
    work = root / "src"
    try:
        # A copy without build leftovers, so pip's in-tree build never touches the checkout.
        shutil.copytree(
            source,
            work,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", "build", "*.egg-info", "__pycache__", ".agentmem*", "results"
            ),
        )
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = venv / "bin" / "pip"
        started = time.perf_counter()
        subprocess.run([str(pip), "install", "--quiet", str(work)], check=True)
        install_s = time.perf_counter() - started
        size = dir_bytes(venv, allocated=False)
        version = subprocess.run(
            [str(venv / "bin" / "python"), "--version"], capture_output=True, text=True
        ).stdout.strip()
        check = f"import importlib.util as u; print(*[m for m in {ABSENT!r} if u.find_spec(m)])"
        present = subprocess.run(
            [str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True
        ).stdout.split()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        first = subprocess.run(
            [str(venv / "bin" / "python"), "-c", FIRST_SEARCH],
            capture_output=True,
            text=True,
            env={**env, "HOME": str(root)},
            cwd=root,
            check=True,
        ).stdout.split(maxsplit=1)
        return {
            "python": version,
            "venv_mb": size / 1e6,
            "install_s": install_s,
            "present_of_absent": present,
            "first_search_s": float(first[0]),
            "first_search_hit": first[1].strip(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def render(results: dict[str, Any]) -> str:
    """The Markdown section."""
    headers = [
        "Python",
        "virtualenv, MB",
        "torch/litellm/scipy present",
        "import + open + add 3 + first search, s",
        "load average",
    ]
    rows = [
        [
            r["python"],
            f"{r['venv_mb']:.0f}",
            ", ".join(r["present_of_absent"]) or "none",
            f"{r['first_search_s']:.2f}",
            r["load"],
        ]
        for r in results["runs"]
    ]
    return "\n".join(
        [
            "## Core install size (no extras)",
            "",
            f"`{results['command']}` on {results['date']}; {machine_line(results['machine'])}.",
            "A fresh virtualenv per interpreter, `pip install <checkout>` with no extras (pip "
            "and setuptools included in the size), then one process that imports agentmem, "
            "opens an embedded home, adds three memories and searches once (the default "
            "ONNX embedder loads on that call); being the install's first process, it also "
            "compiles every imported module to bytecode, and it ran on the loaded machine "
            "(load average beside it). Target: at most 500 MB (2.4 GB with torch as a core "
            "dependency before issue 24).",
            "",
            markdown_table(headers, rows),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure each interpreter's core install and write the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.install_size")
    parser.add_argument("--python", nargs="+", default=["python3.11"])
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    console = report_console()
    runs = []
    for python in args.python:
        console.print(f"installing the core with {python} ...")
        runs.append(measure(python, PROJECT_ROOT))
        console.print(runs[-1])
    results = {
        "benchmark": "install_size",
        "date": now_utc(),
        "command": command_line("benchmarks.install_size", argv),
        "machine": machine_info(),
        "runs": runs,
    }
    write_json(args.json, results)
    write_section(args.out, "install", render(results))
    return results


if __name__ == "__main__":
    main()
