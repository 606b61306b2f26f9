"""Load test of the REST API: a real ``agentmem serve`` on 127.0.0.1, PostgreSQL + Redis.

What runs:

- a fresh PostgreSQL schema (``--postgres-url``, default ``AGENTMEM_TEST_POSTGRES_URL`` or
  postgresql://postgres@127.0.0.1:5432/test) as the store, Redis (``--redis-url``) as the
  short-term buffers, and Qdrant Edge embedded in the server process (one process owns it) in
  a temporary home; all-MiniLM-L6-v2 embeds;
- an API key made with ``agentmem keys create``, then ``agentmem serve`` started as a
  subprocess (one uvicorn worker, rate limit off), waited for on ``/readyz``;
- a seed of ``--seed`` memories per user (``--users`` users, each scope a user and one thread)
  and a few turns in each thread's Redis buffer;
- ``--clients`` concurrent asyncio httpx clients (default 50) for ``--duration`` seconds
  (default 60), each request drawn 70% search (k=10), 20% add (a unique text), 10% context
  (1,000 tokens, the thread's buffer on top);
- then the server is stopped with SIGTERM (graceful: in-flight requests finish) and every
  acknowledged add (a 201 with an id) is read back from PostgreSQL directly: its id present,
  its text identical, and the store's count equal to seeds + acknowledged adds.

Reports throughput, p50/p95/p99 latency per operation, errors (non-2xx or transport errors),
lost writes, and the load average at start and end. Writes its RESULTS.md section and
``results/load.json``.

Run: ``python -m benchmarks.load`` (``--duration 20 --clients 10`` for a quick look)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

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

DEFAULT_JSON = RESULTS_DIR / "load.json"
MIX = (("search", 0.7), ("add", 0.2), ("context", 0.1))
HEADERS = ["operation", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]
TOPICS = (
    "moved to a new flat near the river",
    "started learning the cello on Tuesdays",
    "prefers green tea to coffee in the morning",
    "is planning a trip to Kyoto in April",
    "adopted a rescue dog called Biscuit",
    "switched teams to work on the billing service",
    "runs a half marathon every autumn",
    "is allergic to peanuts and shellfish",
)


def _schema_url(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def _drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _agentmem(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agentmem", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"agentmem {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {timeout:.0f} s")


def _scopes(users: int) -> list[dict[str, str]]:
    return [{"user_id": f"user-{i:03d}", "thread_id": "main"} for i in range(users)]


async def _seed(client: httpx.AsyncClient, scopes: list[dict[str, str]], per_user: int) -> int:
    total = 0
    for i, scope in enumerate(scopes):
        items = [
            {"text": f"{scope['user_id']} {TOPICS[(i + j) % len(TOPICS)]} (note {j})"}
            for j in range(per_user)
        ]
        response = await client.post("/v1/memories/batch", json={**scope, "items": items})
        response.raise_for_status()
        total += len(response.json())
        for turn in ("what should I pack for the trip?", "the weather will be mild"):
            appended = await client.post(
                "/v1/buffers/append", json={**scope, "role": "user", "content": turn}
            )
            appended.raise_for_status()
    return total


class _Tally:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {name: [] for name, _ in MIX}
        self.errors: dict[str, int] = {name: 0 for name, _ in MIX}
        self.error_samples: list[str] = []
        self.acked: dict[str, tuple[str, str]] = {}  # id -> (user_id, text)


async def _client(
    client: httpx.AsyncClient,
    scopes: list[dict[str, str]],
    stop_at: float,
    seed: int,
    tally: _Tally,
) -> None:
    rng = random.Random(seed)
    names = [n for n, _ in MIX]
    weights = [w for _, w in MIX]
    while time.monotonic() < stop_at:
        op = rng.choices(names, weights)[0]
        scope = rng.choice(scopes)
        topic = rng.choice(TOPICS)
        if op == "search":
            request = ("/v1/memories/search", {**scope, "query": f"who {topic}?", "k": 10})
        elif op == "add":
            text = f"{scope['user_id']} {topic} [{uuid.uuid4()}]"
            request = ("/v1/memories", {**scope, "text": text})
        else:
            request = (
                "/v1/context",
                {**scope, "query": f"what about {topic}?", "max_tokens": 1000},
            )
        started = time.perf_counter()
        try:
            response = await client.post(request[0], json=request[1])
            ok = response.status_code < 300
            detail = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            ok, response, detail = False, None, f"{type(exc).__name__}: {exc}"
        tally.latency[op].append(time.perf_counter() - started)
        if not ok:
            tally.errors[op] += 1
            if len(tally.error_samples) < 10:
                tally.error_samples.append(f"{op}: {detail}")
        elif op == "add" and response is not None:
            body = response.json()
            tally.acked[body["id"]] = (scope["user_id"], body["text"])


def _verify(store_url: str, acked: dict[str, tuple[str, str]], seeded: int) -> dict[str, Any]:
    """Read every acknowledged add back from PostgreSQL, bypassing the server."""
    from agentmem.stores.postgres import PostgresStore

    with PostgresStore(store_url) as store:
        ids = list(acked)
        found = {}
        for start in range(0, len(ids), 500):
            found.update({r.id: r for r in store.get_many(ids[start : start + 500])})
        counts = store.counts()
    missing = [i for i in ids if i not in found]
    changed = [
        i
        for i in ids
        if i in found and (found[i].text, found[i].scope.user_id) != (acked[i][1], acked[i][0])
    ]
    return {
        "acknowledged_adds": len(ids),
        "missing": len(missing),
        "content_mismatch": len(changed),
        "store_records": counts.records,
        "expected_records": seeded + len(ids),
        "lost_writes": len(missing) + len(changed),
    }


def _row(name: str, samples: list[float], errors: int, seconds: float) -> list[Any]:
    ms = np.asarray(samples or [float("nan")]) * 1000
    return [
        name,
        len(samples),
        errors,
        len(samples) / seconds,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 95)),
        float(np.percentile(ms, 99)),
        float(ms.max()),
    ]


def render_markdown(results: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    v = results["verification"]
    lost = v["lost_writes"]
    embedder = results.get("embedder", "minilm (default)")
    return (
        f"## Memory service under load (REST API, PostgreSQL + Redis; embedder {embedder})\n\n"
        f"Run {results['run_at']} with `{results['command']}`.\n"
        f"Machine: {machine_line(results['machine'])}; load average at the end "
        f"{results['load_average_at_end']}. The server, PostgreSQL, Redis and the load "
        "generator share this machine.\n\n"
        f"One `agentmem serve` process (uvicorn, one worker) on 127.0.0.1 with the store in "
        f"PostgreSQL, buffers in Redis and vectors in Qdrant Edge inside the server; "
        f"{results['clients']} concurrent asyncio httpx clients for {results['duration_s']:.0f} "
        f"s after seeding {results['seeded']} memories over {results['users']} users (one "
        "thread each, two buffered turns each). Requests: 70% search (k=10), 20% add (unique "
        "text), 10% context (1,000 tokens, the thread's Redis buffer on top).\n\n"
        + markdown_table(HEADERS, results["rows"])
        + "\n\n"
        f"Acknowledged adds: {v['acknowledged_adds']}; read back from PostgreSQL after a "
        f"graceful stop: {v['missing']} missing, {v['content_mismatch']} with different text "
        f"or scope; store holds {v['store_records']} records against {v['expected_records']} "
        f"expected (seeds + acknowledged adds). **Lost acknowledged writes: {lost}.** "
        f"Server stopped cleanly on SIGTERM: {results['server_stopped_cleanly']}."
        + (
            "\n\nError samples: " + "; ".join(f"`{e}`" for e in results["error_samples"])
            if results["error_samples"]
            else ""
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20, help="memories seeded per user")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "AGENTMEM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("AGENTMEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument(
        "--embedder",
        default=None,
        help="AGENTMEM_EMBEDDER of the server (default: the settings' default, minilm); a "
        "run with another embedder writes its own section (load-<embedder>)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


async def _load(
    args: argparse.Namespace,
    base_url: str,
    token: str,
    on_seeded: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Seed, then run the clients; ``on_seeded`` is called when the measured load starts."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    scopes = _scopes(args.users)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=120, limits=limits
    ) as client:
        seeded = await _seed(client, scopes, args.seed)
        tally = _Tally()
        if on_seeded is not None:
            on_seeded()
        started = time.monotonic()
        stop_at = started + args.duration
        await asyncio.gather(
            *(_client(client, scopes, stop_at, i, tally) for i in range(args.clients))
        )
        elapsed = time.monotonic() - started
    return {"seeded": seeded, "tally": tally, "elapsed": elapsed}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the load test, print the table, write RESULTS.md's section and the JSON."""
    offline()
    args = build_parser().parse_args(argv)
    console = report_console()
    info = machine_info()
    schema, store_url = _schema_url(args.postgres_url)
    home = tempfile.mkdtemp(prefix="agentmem-load-")
    env = {
        **os.environ,
        "AGENTMEM_HOME": home,
        "AGENTMEM_STORE_URL": store_url,
        "AGENTMEM_BUFFER_URL": args.redis_url,
        "AGENTMEM_SERVER_RATE_LIMIT": "off",
        "AGENTMEM_SERVER_PORT": str(args.port),
        "AGENTMEM_POSTGRES_POOL_MAX": "16",
        "AGENTMEM_ADAPTERS": "off",
    }
    if args.embedder:
        env["AGENTMEM_EMBEDDER"] = args.embedder
    proc: subprocess.Popen[bytes] | None = None
    log_path = Path(home) / "server.log"
    try:
        token = json.loads(_agentmem("keys", "create", "--org", "bench", "--json", env=env))[
            "token"
        ]
        base_url = f"http://127.0.0.1:{args.port}"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "agentmem", "serve"], env=env, stdout=log, stderr=log
            )
            _wait_ready(base_url, proc, timeout=300)
            outcome = asyncio.run(_load(args, base_url, token))
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        tally: _Tally = outcome["tally"]
        verification = _verify(store_url, tally.acked, outcome["seeded"])
        server_log = log_path.read_text(encoding="utf-8", errors="replace")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        _drop_schema(args.postgres_url, schema)
    seconds = outcome["elapsed"]
    all_samples = [s for samples in tally.latency.values() for s in samples]
    rows = [_row(n, tally.latency[n], tally.errors[n], seconds) for n, _ in MIX]
    rows.append(_row("all", all_samples, sum(tally.errors.values()), seconds))
    results: dict[str, Any] = {
        "run_at": now_utc(),
        "command": command_line("benchmarks.load", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "clients": args.clients,
        "duration_s": seconds,
        "users": args.users,
        "seeded": outcome["seeded"],
        "rows": rows,
        "verification": verification,
        "error_samples": tally.error_samples,
        "server_exit_code": proc.returncode if proc is not None else None,
        # uvicorn re-raises SIGTERM after its graceful stop (exit code -15); the app logs this
        # line once in-flight requests are done and the memory is closed.
        "server_stopped_cleanly": "agentmem server stopped" in server_log,
        "embedder": args.embedder or "minilm (default)",
    }
    console.print(rich_table("REST API under load", HEADERS, rows))
    console.print(verification)
    section = f"load-{args.embedder}" if args.embedder else "load"
    write_section(project_path(args.out), section, render_markdown(results))
    json_path = project_path(args.json)
    if args.embedder and json_path == project_path(DEFAULT_JSON):
        json_path = json_path.with_name(f"load-{args.embedder}.json")
    write_json(json_path, results)
    console.print(f"wrote {project_path(args.out)} and {json_path}")
    return results


if __name__ == "__main__":
    main()
