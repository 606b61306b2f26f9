"""Forgetting: how long a forget takes, and how long until trained weights are clean.

1. **Forget one user with ``--memories`` memories (default 10,000), all tiers**, on the embedded
   default (SQLite + Qdrant Edge + networkx graph persisted in SQLite): 90% episodes in ten
   threads, 10% facts derived from them (provenance sources; the knowledge graph is built from
   them), ``--buffer-turns`` live buffer turns and ``--quarantined`` held memories of the user,
   and another user's memories that must stay. Timed: forgetting one episode of that user (the
   derived set is computed by scanning the user's records) and then the whole user.
   Setup vectors come from a 384-d feature-hashing embedder defined here: embedding 10k texts
   with MiniLM on 2 shared cores would dominate the run, and a forget embeds nothing (a whole
   user has no surviving neighbours whose windows must be re-embedded).
2. **Weights**: a retriever adapter (the tiny 2-layer BERT built from a config, as in the gpu
   tests, trained on CPU) is trained and promoted for a scope of 24 turns; one turn is
   forgotten. Timed: the forget call, after which the registry no longer serves the adapter (the
   next read gets none: every read checks the registry's state), and the clean retrain through
   :func:`agentmem_gpu.clean.retrain_forgotten` (train without the turn, promote, probe).

Writes its section of RESULTS.md and ``results/forget.json``.

Run: ``python -m benchmarks.forget`` (``--memories 2000`` for a quick run)
"""

from __future__ import annotations

import argparse
import hashlib
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmem import Memory, Scope, Settings
from agentmem.embedders import Embedder
from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    report_console,
    rich_table,
    write_json,
    write_section,
)

DEFAULT_JSON = RESULTS_DIR / "forget.json"
SUBJECTS = ["beagle", "cello", "marathon", "bakery", "garden", "podcast", "telescope", "kayak"]
PLACES = ["Denver", "Lisbon", "Portland", "Tahoe", "Chicago", "Rome", "Austin", "Oslo"]


class HashEmbedder(Embedder):
    """384-d feature hashing of lowercase words, L2-normalised: deterministic and fast."""

    name = "hash-384"

    @property
    def dim(self) -> int:
        return 384

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                out[row, h % self.dim] += 1.0 if h & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def _episode(i: int) -> str:
    s, p = SUBJECTS[i % len(SUBJECTS)], PLACES[(i // 8) % len(PLACES)]
    return f"Alice: day {i}, I talked about my {s} plans in {p} with friend number {i % 97}."


def fill_user(mem: Memory, n: int, buffer_turns: int, quarantined: int) -> dict[str, Any]:
    """The user's memories, all tiers; returns counts and timings of the setup."""
    started = time.perf_counter()
    episodes = n - n // 10
    ids: list[str] = []
    batch = mem.settings.max_batch_items
    for start in range(0, episodes, batch):
        items = [
            {"text": _episode(i), "metadata": {"session": i // 50}}
            for i in range(start, min(episodes, start + batch))
        ]
        ids.extend(r.id for r in mem.add_many(items, user_id="alice", thread_id="t0"))
    facts = [
        {
            "text": f"Alice has a {SUBJECTS[i % 8]} plan in {PLACES[i % 8]} number {i}.",
            "kind": "semantic",
            "provenance": {"sources": [ids[i * 9 % len(ids)]]},
        }
        for i in range(n // 10)
    ]
    for start in range(0, len(facts), batch):
        mem.add_many(facts[start : start + batch], user_id="alice")
    buffer = mem.buffer(user_id="alice", thread_id="live", max_tokens=1_000_000)
    for i in range(buffer_turns):
        buffer.append("user", f"live turn {i} about the {SUBJECTS[i % 8]}")
    for i in range(quarantined):
        mem.add(f"web page {i} says Alice likes {SUBJECTS[i % 8]}", user_id="alice", source="tool")
    mem.add_many([f"Bob note {i}" for i in range(200)], user_id="bob")
    return {"setup_s": time.perf_counter() - started, "episodes": len(ids), "facts": len(facts)}


def bench_user(n: int, buffer_turns: int, quarantined: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="forget-bench-") as tmp:
        settings = Settings.load(home=Path(tmp) / "home", adapters="off")
        with Memory(settings=settings, embedder=HashEmbedder()) as mem:
            setup = fill_user(mem, n, buffer_turns, quarantined)
            one = mem.list(user_id="alice", kinds=["episodic"], limit=1)[0]
            started = time.perf_counter()
            single = mem.forget(one.id, reason="benchmark: one", user_id="alice")
            one_s = time.perf_counter() - started
            started = time.perf_counter()
            report = mem.forget(reason="benchmark: user", user_id="alice")
            user_s = time.perf_counter() - started
            assert mem.list(user_id="alice") == []
            assert len(mem.list(user_id="bob", limit=1000)) == 200
            assert mem.quarantine.list(Scope(user_id="alice")) == []
    return {
        **setup,
        "one_forgotten": len(single.forgotten_ids),
        "one_s": one_s,
        "user_forgotten": len(report.forgotten_ids),
        "user_s": user_s,
        "removed": report.removed,
    }


def bench_adapter() -> dict[str, Any]:
    try:
        import torch

        from agentmem_gpu import AdapterRegistry, TrainSetConfig
        from agentmem_gpu.clean import CleanConfigs, retrain_forgotten
        from agentmem_gpu.pipeline import train_scope_adapter
        from tests.gpu._tiny import TURNS, TinyEmbedder, build_tiny_model, fast_config
    except ImportError as exc:  # the gpu extra is missing
        return {"skipped": f"gpu extra not installed: {exc}"}
    torch.set_num_threads(1)
    alice = Scope(user_id="alice")
    on_train = TrainSetConfig(eval_fraction=0.0)
    with tempfile.TemporaryDirectory(prefix="forget-adapter-") as tmp:
        model = build_tiny_model(Path(tmp) / "tiny-bert")
        embedder = TinyEmbedder(model)
        with Memory(settings=Settings.load(home=Path(tmp) / "home"), embedder=embedder) as mem:
            mem.add_many(
                [
                    {"text": f"{s}: {t}", "metadata": {"session": i // 8, "speaker": s}}
                    for i, (s, t) in enumerate(TURNS)
                ],
                user_id="alice",
            )
            registry = AdapterRegistry.from_settings(mem.settings)
            started = time.perf_counter()
            trained = train_scope_adapter(
                mem, alice, config=fast_config(), trainset_config=on_train, registry=registry
            )
            train_s = time.perf_counter() - started
            key = trained.key
            assert registry.current(key) is not None
            gone = mem.list(user_id="alice", limit=1)[0]
            started = time.perf_counter()
            report = mem.forget(gone.id, reason="benchmark", user_id="alice")
            forget_s = time.perf_counter() - started
            serving = registry.current(key)
            started = time.perf_counter()
            retrain_forgotten(
                mem,
                alice,
                registry=registry,
                configs=CleanConfigs(retriever=fast_config(), trainset=on_train),
            )
            clean_s = time.perf_counter() - started
            final = next(r for r in _reports(mem) if r["forget_id"] == report.forget_id)
    return {
        "initial_train_s": train_s,
        "forget_call_s": forget_s,
        "serving_after_forget": None if serving is None else serving.version,
        "tainted": report.adapters_tainted,
        "retrain_promote_probe_s": clean_s,
        "retrained": final["retrained"],
        "probe": final["probe"],
    }


def _reports(mem: Memory) -> list[dict[str, Any]]:
    from agentmem import erasure

    return [r.model_dump(mode="json") for r in erasure.reports(mem)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000, help="memories of the user")
    parser.add_argument("--buffer-turns", type=int, default=50)
    parser.add_argument("--quarantined", type=int, default=100)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    offline()
    machine = machine_info()
    user = bench_user(args.memories, args.buffer_turns, args.quarantined)
    adapter = bench_adapter()
    import os

    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    rows = [
        ["forget 1 episode of a user with " + f"{args.memories:,} memories", user["one_s"]],
        [f"forget the whole user ({user['user_forgotten']:,} items, all tiers)", user["user_s"]],
    ]
    if "skipped" not in adapter:
        rows += [
            ["forget call that taints the serving adapter (stops serving at return)",
             adapter["forget_call_s"]],
            ["clean retrain + promotion + probe (tiny BERT, CPU)",
             adapter["retrain_promote_probe_s"]],
        ]  # fmt: skip
    report_console().print(
        rich_table("forget", ["what", "seconds"], [[a, f"{b:.3f}"] for a, b in rows])
    )
    data = {
        "when": now_utc(),
        "machine": machine,
        "command": command_line("benchmarks.forget", argv),
        "user": user,
        "adapter": adapter,
    }
    write_json(args.json, data)
    if args.no_results:
        return
    removed = ", ".join(f"{k} {v:,}" for k, v in sorted(user["removed"].items()) if v)
    probe = adapter.get("probe") or {}
    retrained = adapter.get("retrained") or [{}]
    body = f"""## Forgetting

`{data["command"]}` on {now_utc()}; {machine_line(machine)}, load average at end
{machine["load_average_at_end"]}.

{markdown_table(["what", "seconds"], [[a, f"{b:.3f}"] for a, b in rows])}

- The user: {user["episodes"]:,} episodes in one thread, {user["facts"]:,} facts derived from
  them (the graph built from the facts), {args.buffer_turns} live buffer turns and
  {args.quarantined} quarantined memories (setup {user["setup_s"]:.0f} s with a feature-hashing
  embedder: a forget embeds nothing). Removed: {removed}.
- Forgetting one episode scans the user's records for what derives from it (provenance), so
  it grows with the size of the user's scope.
- Weights: the adapter serving the scope was tainted inside the forget call and no longer
  served when it returned (serving after forget: {adapter.get("serving_after_forget")}); the
  clean retrain (v{retrained[0].get("version")}, promoted {retrained[0].get("promoted")})
  was probed with {probe.get("questions")} generated questions about the forgotten turn:
  {probe.get("leaks")} leaks. A tiny 2-layer BERT built from a config, on CPU: a real
  embedding model trains for minutes (see the retriever adapter section).
"""
    write_section(RESULTS_MD, "forget", body)


if __name__ == "__main__":
    main()
