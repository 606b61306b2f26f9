"""Consolidation throughput: episodes per second through the whole LLM-free pipeline.

    python -m benchmarks.consolidation [--synthetic 2000] [--out benchmarks/RESULTS.md]

Inputs: one LoCoMo conversation (conversation 0, every turn an episode marked for deferred
extraction; locomo10.json read in place) and synthetic episodes. Each input is consolidated
inline (one process, no broker) and by one Celery worker (a subprocess on the Redis at
``AGENTMEM_TEST_REDIS_URL``, default 127.0.0.1:6379) on an identical copy of the store; only
consolidation is timed (ingestion and worker start-up are not). Writes the
``consolidation`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agentmem import Memory, Scope, Settings
from agentmem.embedders import SentenceTransformerEmbedder
from benchmarks._common import RESULTS_MD, write_section
from benchmarks.locomo import DEFAULT_DATA, load_locomo
from consolidation import run_inline
from consolidation.app import create_app
from consolidation.tasks import consolidate

ROOT = Path(__file__).resolve().parents[1]
REDIS = os.environ.get("AGENTMEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NAMES = ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank"]
PLACES = ["Berlin", "Lisbon", "Rome", "Oslo", "Kyoto", "Lima"]
THINGS = ["a cat", "a bike", "a guitar", "a garden", "a boat", "a camera"]


def synthetic(n: int, seed: int = 0) -> list[str]:
    """``n`` short conversational episodes with extractable facts."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        who, where, what = rng.choice(NAMES), rng.choice(PLACES), rng.choice(THINGS)
        out.append(
            f"{who}: I moved to {where} last year and I bought {what}. "
            f"My friend {rng.choice(NAMES)} works as a teacher. (note {i})"
        )
    return out


def _fill(home: Path, texts: list[str], user: str, embedder: SentenceTransformerEmbedder) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        for start in range(0, len(texts), 20):
            mem.add_many(
                texts[start : start + 20],
                user_id=user,
                thread_id=f"s{start // 20}",
                infer="deferred",
            )


def _inline(home: Path, user: str, embedder: SentenceTransformerEmbedder) -> float:
    settings = Settings.load(home=home, consolidation={"adapter_min_new_episodes": None})
    with Memory(settings=settings, embedder=embedder) as mem:
        start = time.perf_counter()
        run_inline(mem, Scope.of(user_id=user))
        return time.perf_counter() - start


def _run_done(home: Path, run_id: str) -> bool:
    conn = sqlite3.connect(f"file:{home / 'agentmem.db'}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT status FROM consolidation_jobs WHERE run_id = ? AND stage = 'run'", (run_id,)
        ).fetchone()
    finally:
        conn.close()
    return row is not None and row[0] in ("done", "failed", "skipped")


def _celery(home: Path, user: str) -> float:
    prefix = f"agentmem-bench:{uuid.uuid4().hex[:8]}:"
    config = {
        "broker_url": REDIS,
        "lock_prefix": prefix,
        "broker_transport_options": {"global_keyprefix": prefix},
        "adapter_min_new_episodes": None,
    }
    env = {
        **os.environ,
        "AGENTMEM_HOME": str(home),
        "AGENTMEM_CONSOLIDATION": json.dumps(config),
        "HF_HUB_OFFLINE": "1",
    }
    celery = str(Path(sys.executable).with_name("celery"))
    args = [
        celery, "-A", "consolidation", "worker", "--pool=solo", "-Q", "consolidation",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
    ]  # fmt: skip
    client = create_app(Settings.load(home=home, consolidation=config))
    worker = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        warm, _ = consolidate(Scope.of(user_id="warm-up"), celery_app=client)
        while not _run_done(home, warm):
            time.sleep(0.05)
        start = time.perf_counter()
        run_id, _ = consolidate(Scope.of(user_id=user), celery_app=client)
        while not _run_done(home, run_id):
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    """Measure and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = SentenceTransformerEmbedder.minilm()
    conv = load_locomo(args.data, [0])[0]
    inputs = {
        f"LoCoMo conversation 0 ({len(conv.turns)} turns)": [t.memory_text for t in conv.turns],
        f"synthetic ({args.synthetic} episodes)": synthetic(args.synthetic),
    }
    rows = []
    for name, texts in inputs.items():
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp) / "base"
            _fill(base, texts, "bench", embedder)
            shutil.copytree(base, Path(tmp) / "celery")
            inline_s = _inline(base, "bench", embedder)
            celery_s = _celery(Path(tmp) / "celery", "bench")
        rows.append((name, len(texts), inline_s, celery_s))
        print(
            name, f"inline {len(texts) / inline_s:.1f}/s", f"1 worker {len(texts) / celery_s:.1f}/s"
        )
    lines = [
        "## Consolidation throughput",
        "",
        f"`python -m benchmarks.consolidation --synthetic {args.synthetic}` on "
        f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), LLM-free pipeline "
        "(flush -> rules extraction -> decay -> distil; adapter training off), embedded store, "
        "MiniLM. Episodes per second, consolidation only (ingestion and worker start-up "
        "excluded).",
        "",
        "| input | episodes | inline (1 process) | 1 Celery worker |",
        "|---|---:|---:|---:|",
    ]
    for name, n, inline_s, celery_s in rows:
        lines.append(f"| {name} | {n} | {n / inline_s:.1f}/s ({inline_s:.1f} s) | "
                     f"{n / celery_s:.1f}/s ({celery_s:.1f} s) |")  # fmt: skip
    lines += [
        "",
        "Two workers are not measured: the embedded home (SQLite + Qdrant Edge) admits one "
        "process at a time, and no Qdrant server runs here, so two workers would only take "
        "turns; scaling out needs PostgreSQL + a Qdrant server. Per-scope work is sequential "
        "(one lock per scope), so more workers help with more scopes, not with one scope.",
    ]
    write_section(args.out, "consolidation", "\n".join(lines))


if __name__ == "__main__":
    main()
