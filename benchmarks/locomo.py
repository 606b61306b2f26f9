"""LoCoMo evidence recall: agentmem and peer systems on the same turns, in the same run.

LLM-free: every turn of a conversation becomes an episodic memory, every question of
categories 1-4 is searched, and the ``dia_id`` of each retrieved memory is scored against the
question's evidence (recall@k, hit@10, NDCG@10 with binary relevance). Peers (BM25, dense
numpy, LangGraph's InMemoryStore, Mem0) store the same texts with the same vectors.

    python -m benchmarks.locomo [--data PATH] [--k 5 10 20] [--peers all|none|bm25,dense,...]
                                [--conversations 0-9] [--out benchmarks/RESULTS.md]

The data (snap-research's locomo10.json, CC BY-NC 4.0) is read in place, never copied.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

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
    PROJECT_ROOT,
    RESULTS_DIR,
    RESULTS_MD,
    CachingEmbedder,
    Stopwatch,
    command_line,
    default_embedder,
    fmt,
    latency_summary,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    package_versions,
    project_path,
    quiet_logs,
    rate,
    report_console,
    rich_table,
    write_json,
    write_section,
)
from benchmarks.peers import Doc, Peer, PeerFailure, build_peer, explain_failure, parse_peers

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json"
DEFAULT_JSON = RESULTS_DIR / "locomo.json"


def require_data(data: Path | None) -> Path:
    """The LoCoMo file named by ``--data`` (relative to the project root); exits saying where
    the default was looked for when there is none."""
    if data is None:
        raise SystemExit(f"no LoCoMo data: pass --data PATH (looked for {DEFAULT_DATA})")
    return project_path(data)


#: LoCoMo's question categories as numbered in locomo10.json. Category 5 (adversarial,
#: unanswerable) has no evidence to retrieve and is left out.
CATEGORIES: dict[int, str] = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
CATEGORY_SOURCE = (
    "1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop (5 adversarial, not scored): the "
    "numbering used by LoCoMo's evaluation code and by the memory papers that report on it; "
    "checked against the data below (multi-hop questions cite several turns, temporal ones "
    "ask 'when', single-hop ones cite one turn)"
)
SESSION_TIME_FORMAT = "%I:%M %p on %d %B, %Y"  # "1:56 pm on 8 May, 2023"
CONTEXT_MAX_TOKENS = 2000
AGENTMEM = "agentmem"

_SESSION_KEY = re.compile(r"session_(\d+)")
_DIA_ID = re.compile(r"D:?(\d+):0*(\d+)")


# data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation."""

    dia_id: str
    session: int
    speaker: str
    text: str
    caption: str | None
    event_time: datetime | None

    @property
    def memory_text(self) -> str:
        """What is stored: ``"{speaker}: {text}"``, plus the image caption when there is one."""
        text = f"{self.speaker}: {self.text}"
        return f"{text} [image: {self.caption}]" if self.caption else text


@dataclass(frozen=True)
class Question:
    """A question of categories 1-4 with its evidence turns (``dia_id``s)."""

    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass
class Conversation:
    """One LoCoMo conversation: its turns, its scored questions, and what was cleaned."""

    index: int
    sample_id: str
    turns: list[Turn]
    questions: list[Question]
    skipped_questions: int = 0
    repaired_evidence: int = 0
    dropped_evidence: int = 0

    @property
    def user_id(self) -> str:
        """The scope this conversation is stored in."""
        return f"locomo-{self.index}"


def parse_session_time(value: str | None) -> datetime | None:
    """``"1:56 pm on 8 May, 2023"`` as a datetime, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), SESSION_TIME_FORMAT)
    except ValueError:
        return None


def normalise_evidence(raw: Iterable[str], known: set[str]) -> tuple[tuple[str, ...], int, int]:
    """Evidence ids as they appear in the turns, with how many were repaired and dropped.

    A few entries in locomo10.json hold several ids (``"D8:6; D9:17"``, ``"D9:1 D4:4"``) or
    typos (``"D:11:26"``, ``"D30:05"``); those are split and repaired. Ids that match no turn
    (``"D"``, or a turn number past the end of its session) are dropped.
    """
    found: list[str] = []
    repaired = dropped = 0
    for entry in raw:
        parts = [p for p in re.split(r"[;,\s]+", str(entry)) if p]
        if len(parts) > 1:
            repaired += 1
        for part in parts:
            if part in known:
                found.append(part)
                continue
            match = _DIA_ID.fullmatch(part)
            fixed = f"D{match[1]}:{match[2]}" if match else None
            if fixed in known:
                found.append(fixed)
                repaired += 1
            else:
                dropped += 1
    return tuple(dict.fromkeys(found)), repaired, dropped


def load_locomo(path: Path, indices: Sequence[int] | None = None) -> list[Conversation]:
    """Read conversations (all, or those at ``indices``) from a locomo10.json file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path} is not a LoCoMo file: expected a list of conversations")
    chosen = range(len(data)) if indices is None else indices
    conversations = []
    for index in chosen:
        if not 0 <= index < len(data):
            raise ValueError(f"conversation {index} does not exist ({len(data)} in {path})")
        sample = data[index]
        body = sample["conversation"]
        turns: list[Turn] = []
        sessions = sorted(int(m[1]) for key in body if (m := _SESSION_KEY.fullmatch(key)))
        for session in sessions:
            when = parse_session_time(body.get(f"session_{session}_date_time"))
            for turn in body[f"session_{session}"]:
                turns.append(
                    Turn(
                        dia_id=turn["dia_id"],
                        session=session,
                        speaker=turn["speaker"],
                        text=turn.get("text", ""),
                        caption=turn.get("blip_caption") or None,
                        event_time=when,
                    )
                )
        known = {t.dia_id for t in turns}
        conv = Conversation(
            index=index, sample_id=str(sample.get("sample_id", index)), turns=turns, questions=[]
        )
        for qa in sample.get("qa", []):
            if qa.get("category") not in CATEGORIES:
                continue
            evidence, repaired, dropped = normalise_evidence(qa.get("evidence") or [], known)
            conv.repaired_evidence += repaired
            conv.dropped_evidence += dropped
            if not evidence:
                conv.skipped_questions += 1
                continue
            conv.questions.append(Question(str(qa["question"]), int(qa["category"]), evidence))
        conversations.append(conv)
    return conversations


def parse_conversations(value: str) -> list[int]:
    """``"0-9"``, ``"0,3,5"`` or ``"2"`` as a list of indices."""
    indices: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            start, end = (int(x) for x in part.split("-", 1))
            indices.extend(range(start, end + 1))
        else:
            indices.append(int(part))
    return list(dict.fromkeys(indices))


# metrics -------------------------------------------------------------------------------------


def ranked_keys(keys: Iterable[str | None]) -> list[str | None]:
    """Keys best first, a repeated key blanked (it takes a rank but earns nothing twice)."""
    seen: set[str] = set()
    ranked: list[str | None] = []
    for key in keys:
        if key is None or key in seen:
            ranked.append(None)
        else:
            seen.add(key)
            ranked.append(key)
    return ranked


def recall_at(ranked: Sequence[str | None], evidence: Sequence[str], k: int) -> float:
    """Fraction of the evidence found in the top ``k``."""
    return len(set(ranked[:k]) & set(evidence)) / len(evidence)


def hit_at(ranked: Sequence[str | None], evidence: Sequence[str], k: int) -> float:
    """1.0 if any evidence is in the top ``k``."""
    return 1.0 if set(ranked[:k]) & set(evidence) else 0.0


def ndcg_at(ranked: Sequence[str | None], evidence: Sequence[str], k: int) -> float:
    """NDCG@k with binary relevance (an evidence turn is relevant, anything else is not)."""
    relevant = set(evidence)
    dcg = sum(1.0 / math.log2(i + 2) for i, key in enumerate(ranked[:k]) if key in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal


def metric_names(ks: Sequence[int]) -> list[str]:
    """The metric columns, in order."""
    return [f"recall@{k}" for k in ks] + ["hit@10", "ndcg@10"]


def score_question(
    ranked: Sequence[str | None], evidence: Sequence[str], ks: Sequence[int]
) -> dict[str, float]:
    """Every metric for one question."""
    scores = {f"recall@{k}": recall_at(ranked, evidence, k) for k in ks}
    scores["hit@10"] = hit_at(ranked, evidence, 10)
    scores["ndcg@10"] = ndcg_at(ranked, evidence, 10)
    return scores


def aggregate(rows: Sequence[tuple[int, dict[str, float]]], ks: Sequence[int]) -> dict[str, Any]:
    """Means over all questions and per category (rows are ``(category, scores)``)."""

    def mean(group: Sequence[dict[str, float]]) -> dict[str, float | int]:
        out: dict[str, float | int] = {"questions": len(group)}
        for name in metric_names(ks):
            out[name] = sum(s[name] for s in group) / len(group) if group else float("nan")
        return out

    by_category = {
        CATEGORIES[c]: mean([s for cat, s in rows if cat == c]) for c in sorted(CATEGORIES)
    }
    return {"overall": mean([s for _, s in rows]), "by_category": by_category}


# running systems ---------------------------------------------------------------------------------


@dataclass
class SystemRun:
    """What one system did: scores, timings, notes."""

    name: str
    rows: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    add_seconds: float = 0.0
    add_embedding_seconds: float = 0.0
    records: int = 0
    search_excluded: list[float] = field(default_factory=list)
    search_included: list[float] = field(default_factory=list)
    query_embedding: list[float] = field(default_factory=list)
    context_seconds: list[float] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)
    context_counter: str = ""
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self, ks: Sequence[int]) -> dict[str, Any]:
        """Everything measured, as plain data."""
        out: dict[str, Any] = {"status": "ok", "notes": self.notes, "versions": self.versions}
        if self.config:
            out["config"] = self.config
        out["metrics"] = aggregate(self.rows, ks)
        excluded_s = self.add_seconds - self.add_embedding_seconds
        out["add"] = {
            "records": self.records,
            "seconds": self.add_seconds,
            "embedding_seconds": self.add_embedding_seconds,
            "records_per_s": rate(self.records, self.add_seconds),
            "records_per_s_excluding_embedding": rate(self.records, excluded_s),
        }
        out["search"] = {
            "embedding_excluded": latency_summary(self.search_excluded),
            "embedding_included": latency_summary(self.search_included),
            "query_embedding": latency_summary(self.query_embedding),
        }
        if self.context_tokens:
            out["context"] = {
                "max_tokens": CONTEXT_MAX_TOKENS,
                "mean_tokens": sum(self.context_tokens) / len(self.context_tokens),
                "max_tokens_returned": max(self.context_tokens),
                "latency": latency_summary(self.context_seconds),
                "token_counter": self.context_counter,
            }
        return out


def _context_tokens(result: Any) -> tuple[int, str]:
    """Tokens in what ``Memory.context`` returned, and how they were counted."""
    for attribute in ("tokens", "token_count", "n_tokens"):
        value = getattr(result, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, f"reported by agentmem (Context.{attribute})"
    text = result if isinstance(result, str) else getattr(result, "text", str(result))
    from agentmem.tokens import TokenCounter

    return TokenCounter().count(text), "agentmem.tokens.TokenCounter on the returned text"


def run_agentmem(
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    ks: Sequence[int],
    home: Path,
    progress: Progress,
    *,
    with_context: bool = True,
    store_url: str | None = None,
) -> SystemRun:
    """Add every turn (``add_many`` per conversation) and search every question; ``store_url``
    (PostgreSQL + pgvector) holds the store and the vector index instead of the home."""
    from agentmem import Memory, Settings

    run = SystemRun(AGENTMEM, versions=package_versions(["agentmem"]))
    search_k = max(*ks, 10)
    # The embedded defaults (SQLite + Qdrant Edge) unless store_url, whatever AGENTMEM_* says.
    settings = Settings.load(home=home, store_url=store_url, vectors_url=store_url)
    with Memory(settings=settings, embedder=embedder) as mem:
        retrieval_settings = getattr(mem.settings, "retrieval", None)
        if retrieval_settings is not None:
            run.config = {"retrieval": retrieval_settings.model_dump(mode="json")}
        stats = mem.stats()
        run.notes.append(
            f"{'embedded defaults' if store_url is None else 'PostgreSQL + pgvector'} in a fresh "
            f"home (store {stats.store_url.split(':')[0]}, vectors "
            f"{stats.vectors_url.split(':')[0]}); one user scope per conversation, one add_many "
            "per conversation"
        )
        adding = progress.add_task("agentmem: add", total=len(conversations))
        for conv in conversations:
            items = [
                {
                    "text": t.memory_text,
                    "event_time": t.event_time,
                    "metadata": {"dia_id": t.dia_id, "session": t.session},
                }
                for t in conv.turns
            ]
            model_before = embedder.model_seconds
            with Stopwatch() as clock:
                mem.add_many(items, user_id=conv.user_id)
            run.add_seconds += clock.seconds
            run.add_embedding_seconds += embedder.model_seconds - model_before
            run.records += len(items)
            progress.advance(adding)
        _log(progress, f"agentmem: added {run.records:,} turns in {run.add_seconds:.1f} s")

        has_context = with_context and hasattr(mem, "context")
        if not has_context:
            run.notes.append("Memory.context not measured (not available or --no-context)")
        asking = progress.add_task(
            "agentmem: search", total=sum(len(c.questions) for c in conversations)
        )
        for conv in conversations:
            for number, question in enumerate(conv.questions):
                ranked = _timed_search(
                    mem, embedder, conv.user_id, question.text, search_k, run, number
                )
                run.rows.append((question.category, score_question(ranked, question.evidence, ks)))
                if has_context:
                    with Stopwatch() as clock:
                        context = mem.context(
                            question.text, user_id=conv.user_id, max_tokens=CONTEXT_MAX_TOKENS
                        )
                    run.context_seconds.append(clock.seconds)
                    tokens, run.context_counter = _context_tokens(context)
                    run.context_tokens.append(tokens)
                progress.advance(asking)
        _log(progress, f"agentmem: searched {len(run.rows):,} questions")
    run.notes.append(
        "search latency with the query embedding included: the query's vector is dropped from "
        "the embedding cache first, so mem.search runs the model; excluded: mem.search again "
        "with the vector cached (the embedder is a caching wrapper of the same model passed as "
        "Memory(embedder=...)); the two orders alternate between questions so neither gets "
        "the warmer store every time"
    )
    return run


def _log(progress: Progress, message: str) -> None:
    """A milestone line (visible in logs too, where the live bars are not redrawn)."""
    progress.console.log(message)


def _timed_search(
    mem: Any,
    embedder: CachingEmbedder,
    user_id: str,
    query: str,
    k: int,
    run: SystemRun,
    number: int,
) -> list[str | None]:
    """Search twice, with the query embedding included and excluded; the ranked dia_ids."""

    def search() -> tuple[float, list[Any]]:
        with Stopwatch() as clock:
            hits = mem.search(query, user_id=user_id, k=k)
        return clock.seconds, hits

    embedder.forget(query)
    if number % 2 == 0:
        before = embedder.model_seconds
        cold, hits = search()
        run.query_embedding.append(embedder.model_seconds - before)
        warm, _ = search()
    else:
        before = embedder.model_seconds
        embedder.embed_query(query)
        run.query_embedding.append(embedder.model_seconds - before)
        warm, hits = search()
        embedder.forget(query)
        cold, _ = search()
    run.search_included.append(cold)
    run.search_excluded.append(warm)
    return ranked_keys(hit.record.metadata.get("dia_id") for hit in hits)


def run_peer(
    name: str,
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    ks: Sequence[int],
    workdir: Path,
    progress: Progress,
) -> SystemRun | PeerFailure:
    """Build a peer, add every turn, search every question; a failure is recorded, not raised."""
    stage = "setup"
    peer: Peer | None = None
    try:
        with quiet_logs("mem0", "qdrant_client", "httpx", "sentence_transformers"):
            peer = build_peer(name, embedder, workdir)
            run = SystemRun(name, notes=list(peer.notes), versions=peer.versions())
            search_k = max(*ks, 10)
            stage = "add"
            adding = progress.add_task(f"{name}: add", total=len(conversations))
            for conv in conversations:
                docs = [Doc(t.dia_id, t.memory_text, {"session": t.session}) for t in conv.turns]
                # Vectors come from the run's cache (agentmem embedded these texts already);
                # warming it here keeps any embedding out of the timed add.
                embedder.embed_documents([d.text for d in docs])
                with Stopwatch() as clock:
                    peer.add(conv.user_id, docs)
                run.add_seconds += clock.seconds
                run.records += len(docs)
                progress.advance(adding)
            _log(progress, f"{name}: added {run.records:,} turns in {run.add_seconds:.1f} s")
            stage = "search"
            asking = progress.add_task(
                f"{name}: search", total=sum(len(c.questions) for c in conversations)
            )
            for conv in conversations:
                for question in conv.questions:
                    embedder.embed_query(question.text)
                    with Stopwatch() as clock:
                        keys = peer.search(conv.user_id, question.text, search_k)
                    run.search_excluded.append(clock.seconds)
                    ranked = ranked_keys(keys)
                    run.rows.append(
                        (question.category, score_question(ranked, question.evidence, ks))
                    )
                    progress.advance(asking)
            _log(progress, f"{name}: searched {len(run.rows):,} questions")
            llm_calls = getattr(peer, "llm_calls", None)
            if llm_calls is not None:
                run.notes.append(f"LLM calls made: {llm_calls()}")
            run.notes.append(
                "vectors shared from the run's cache: add and search timings exclude embedding"
            )
            return run
    except Exception as exc:  # a peer's failure is a result, not a crash of the benchmark
        return PeerFailure(name, stage, f"{type(exc).__name__}: {exc}"[:500], explain_failure(exc))
    finally:
        if peer is not None:
            with contextlib.suppress(Exception):
                peer.close()


# reporting ---------------------------------------------------------------------------------------


def category_check(conversations: Sequence[Conversation]) -> dict[str, dict[str, float | int]]:
    """Per category: questions, share citing several turns, share asking 'when'."""
    out: dict[str, dict[str, float | int]] = {}
    for number, name in CATEGORIES.items():
        qs = [q for c in conversations for q in c.questions if q.category == number]
        n = len(qs)
        out[name] = {
            "category": number,
            "questions": n,
            "share_multi_evidence": sum(len(q.evidence) > 1 for q in qs) / n if n else float("nan"),
            "share_when": sum(q.text.lower().startswith("when") for q in qs) / n
            if n
            else float("nan"),
        }
    return out


def quality_rows(systems: dict[str, Any], ks: Sequence[int]) -> list[list[Any]]:
    """Overall metrics, one row per system that ran."""
    rows = []
    for name, result in systems.items():
        if result["status"] != "ok":
            continue
        overall = result["metrics"]["overall"]
        rows.append([name, overall["questions"], *(overall[m] for m in metric_names(ks))])
    return rows


def category_rows(systems: dict[str, Any]) -> list[list[Any]]:
    """Recall@10 per category, one row per system that ran."""
    rows = []
    for name, result in systems.items():
        if result["status"] != "ok":
            continue
        by_cat = result["metrics"]["by_category"]
        rows.append([name, *(by_cat[c]["recall@10"] for c in CATEGORIES.values())])
    return rows


def speed_rows(systems: dict[str, Any]) -> list[list[Any]]:
    """Add throughput and search latency, one row per system that ran."""
    rows = []
    for name, result in systems.items():
        if result["status"] != "ok":
            continue
        add, search = result["add"], result["search"]
        included = search["embedding_included"]
        excluded = search["embedding_excluded"]
        with_embedding = name == AGENTMEM and included["n"]
        rows.append(
            [
                name,
                fmt(add["records_per_s"], 0) if with_embedding else "-",
                fmt(add["records_per_s_excluding_embedding"], 0),
                fmt(included["p50_ms"], 2) if with_embedding else "-",
                fmt(included["p95_ms"], 2) if with_embedding else "-",
                fmt(excluded["p50_ms"], 2),
                fmt(excluded["p95_ms"], 2),
            ]
        )
    return rows


QUALITY_HEADERS = ["system", "questions"]
CATEGORY_HEADERS = ["system", *(f"{c} ({n})" for n, c in CATEGORIES.items())]
SPEED_HEADERS = [
    "system",
    "add/s +emb",
    "add/s",
    "p50 ms +emb",
    "p95 ms +emb",
    "p50 ms",
    "p95 ms",
]
SPEED_LEGEND = (
    "add/s: records stored per second; search p50/p95: latency of one search (k=20). "
    "'+emb' includes the embedding model's time (the turn texts at add, the query at search); "
    "the other columns exclude it. Peers get their vectors from the run's cache, so only "
    "the excluded columns apply to them."
)


def render_markdown(results: dict[str, Any]) -> str:
    """The LoCoMo section of RESULTS.md."""
    ks = results["k"]
    systems = results["systems"]
    data = results["dataset"]
    agent = systems.get(AGENTMEM, {})
    lines = [
        "## LoCoMo: evidence recall, agentmem and peers in one run",
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        f"Data: {data['conversations']} conversation(s), {data['turns']:,} turns, "
        f"{data['questions']:,} questions of categories 1-4 ({data['skipped_questions']} without "
        f"any evidence turn skipped; {data['repaired_evidence']} evidence ids split or repaired, "
        f"{data['dropped_evidence']} that match no turn dropped). locomo10.json is CC BY-NC 4.0 "
        "and is read in place, not copied into this repository.",
        "",
        'Method: each turn is stored as `"{speaker}: {text}"` (plus `[image: caption]`), with '
        "its session's date as event time, one user scope per conversation. Every question is "
        f"searched with k={max(*ks, 10)}; a result counts when its `dia_id` is one of the "
        "question's evidence turns. recall@k = share of the evidence in the top k (averaged over "
        "questions), hit@10 = any evidence in the top 10, NDCG@10 with binary relevance. No LLM "
        "is called. Every system uses the same all-MiniLM-L6-v2 vectors (each text embedded "
        "once per run and shared).",
        "",
        f"Categories: {CATEGORY_SOURCE}.",
        "",
        "### Retrieval quality, all questions",
        "",
        markdown_table(QUALITY_HEADERS + metric_names(ks).copy(), quality_rows(systems, ks)),
        "",
        "### Recall@10 by category",
        "",
        markdown_table(
            [CATEGORY_HEADERS[0]]
            + [f"{c} ({results['category_check'][c]['questions']} q)" for c in CATEGORIES.values()],
            category_rows(systems),
        ),
        "",
        "### Speed",
        "",
        markdown_table(SPEED_HEADERS, speed_rows(systems)),
        "",
        SPEED_LEGEND,
        "",
    ]
    if agent.get("status") == "ok":
        add = agent["add"]
        qe = agent["search"]["query_embedding"]
        lines += [
            f"agentmem added {add['records']:,} records in {add['seconds']:.1f} s, of which "
            f"{add['embedding_seconds']:.1f} s in the embedding model. One query embedding alone "
            f"(MiniLM, CPU): p50 {fmt(qe['p50_ms'], 1)} ms, p95 {fmt(qe['p95_ms'], 1)} ms. Peers' "
            "timings exclude embedding: their vectors come from the run's cache.",
            "",
        ]
        if "context" in agent:
            ctx = agent["context"]
            lines += [
                f"`Memory.context(question, max_tokens={ctx['max_tokens']})`: mean "
                f"{ctx['mean_tokens']:.0f} tokens, max {ctx['max_tokens_returned']} "
                f"({ctx['token_counter']}); latency p50 {fmt(ctx['latency']['p50_ms'], 1)} ms, "
                f"p95 {fmt(ctx['latency']['p95_ms'], 1)} ms.",
                "",
            ]
    failures = {n: r for n, r in systems.items() if r["status"] != "ok"}
    if failures:
        lines += ["### Peers that could not run", ""]
        lines += [
            f"- **{n}** failed at {r['stage']}: `{r['error']}`; {r['why']}."
            for n, r in failures.items()
        ]
        lines.append("")
    lines += ["### How each system was run", ""]
    for name, result in systems.items():
        if result["status"] != "ok":
            continue
        versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v)
        lines.append(f"- **{name}** ({versions}): " + "; ".join(result["notes"]) + ".")
    lines += [
        "",
        "Category check (from the data): "
        + "; ".join(
            f"{name}: {c['questions']} questions, {c['share_multi_evidence']:.0%} cite several "
            f"turns, {c['share_when']:.0%} start with 'when'"
            for name, c in results["category_check"].items()
        )
        + ".",
    ]
    return "\n".join(lines)


def print_results(console: Console, results: dict[str, Any]) -> None:
    """The same tables on the console."""
    ks = results["k"]
    systems = results["systems"]
    console.print(
        rich_table(
            "LoCoMo evidence recall, all questions",
            QUALITY_HEADERS + metric_names(ks),
            quality_rows(systems, ks),
        )
    )
    console.print(rich_table("Recall@10 by category", CATEGORY_HEADERS, category_rows(systems)))
    console.print(rich_table("Speed", SPEED_HEADERS, speed_rows(systems)))
    console.print(SPEED_LEGEND)
    for name, result in systems.items():
        if result["status"] != "ok":
            console.print(f"[red]{name} could not run[/red] ({result['stage']}): {result['error']}")
    console.print(f"Categories: {CATEGORY_SOURCE}.")


# entry point -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.locomo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA if DEFAULT_DATA.exists() else None,
        help=f"locomo10.json (default {DEFAULT_DATA} when it exists)",
    )
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="recall@k cut-offs")
    parser.add_argument(
        "--peers", default="all", help="all, none, or e.g. bm25,dense,langgraph,mem0"
    )
    parser.add_argument("--conversations", default="0-9", help="indices, e.g. 0-9 or 0,3")
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--no-context", action="store_true", help="do not measure Memory.context")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run the benchmark and write its outputs; returns the results.

    ``embedder`` is the session's shared model (tests pass theirs); by default all-MiniLM-L6-v2.
    """
    offline()
    args = build_parser().parse_args(argv)
    data = require_data(args.data)
    ks = sorted(set(args.k))
    if min(ks) < 1:
        raise SystemExit("--k values must be positive")
    peer_names = parse_peers(args.peers)
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    conversations = load_locomo(data, parse_conversations(args.conversations))

    embedder = default_embedder(embedder)
    cache = CachingEmbedder(embedder)
    systems: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="agentmem-locomo-") as tmp,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        workdir = Path(tmp)
        runs: list[SystemRun | PeerFailure] = [
            run_agentmem(
                conversations,
                cache,
                ks,
                workdir / "agentmem",
                progress,
                with_context=not args.no_context,
            )
        ]
        for name in peer_names:
            runs.append(run_peer(name, conversations, cache, ks, workdir / name, progress))
        for run in runs:
            if isinstance(run, PeerFailure):
                systems[run.name] = {"status": "failed", **run.__dict__}
            else:
                systems[run.name] = run.summary(ks)

    results: dict[str, Any] = {
        "benchmark": "locomo",
        "date": now_utc(),
        "command": command_line("benchmarks.locomo", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - started,
        "k": ks,
        "categories": {str(n): c for n, c in CATEGORIES.items()},
        "category_source": CATEGORY_SOURCE,
        "category_check": category_check(conversations),
        "dataset": {
            "path": str(args.data),
            "conversations": len(conversations),
            "conversation_indices": [c.index for c in conversations],
            "turns": sum(len(c.turns) for c in conversations),
            "questions": sum(len(c.questions) for c in conversations),
            "skipped_questions": sum(c.skipped_questions for c in conversations),
            "repaired_evidence": sum(c.repaired_evidence for c in conversations),
            "dropped_evidence": sum(c.dropped_evidence for c in conversations),
        },
        "embedding": {
            "model": cache.name,
            "texts_embedded": cache.model_texts,
            "model_seconds": cache.model_seconds,
        },
        "systems": systems,
    }
    print_results(console, results)
    out = project_path(args.out)
    write_section(out, "locomo", render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {out} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
