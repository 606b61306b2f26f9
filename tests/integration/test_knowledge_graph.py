"""The knowledge graph through Memory: built from facts as they are written, recalled by the
graph channel inside ``mem.search``, read through ``mem.graph``, persisted in the store,
repaired by ``agentmem reindex --graph``, exported, isolated by scope."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import pytest
from typer.testing import CliRunner

from agentmem import GraphCorrupt, Memory, NotFound, Settings, cli
from agentmem.embedders import Embedder
from agentmem.graph.pagerank import graph_channel
from agentmem.models import Scope, utcnow
from agentmem.retrieval import build_request

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ONLY_GRAPH = {
    "dense": 0.0,
    "window": 0.0,
    "bm25": 0.0,
    "window_bm25": 0.0,
    "time": 0.0,
    "graph": 1.0,
}


def facts(
    mem: Memory, user_id: str, rows: list[tuple[str, dict[str, Any]]], **kw: Any
) -> list[str]:
    """Store facts as extraction would (semantic records with entities metadata)."""
    records = mem.add_many(
        [{"text": text, "kind": "semantic", "metadata": meta, **kw} for text, meta in rows],
        user_id=user_id,
    )
    return [r.id for r in records]


WORLD = [
    (
        "Ines works at Northwind.",
        {
            "subject": "Ines",
            "entities": ["Ines", "Northwind"],
            "attribute": "works_at",
            "value": "Northwind",
        },
    ),
    ("Northwind is based in Porto.", {"subject": "Northwind", "entities": ["Northwind", "Porto"]}),
    ("Tomas plays chess with Ines.", {"subject": "Tomas", "entities": ["Tomas", "Ines"]}),
    ("Rita likes sailing.", {"subject": "Rita", "entities": ["Rita"]}),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One Memory for the tests that only read and write their own user ids (opening a
    Memory costs more than most of these tests)."""
    home = tmp_path_factory.mktemp("graph-home")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        yield mem


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A user id of this test's own."""
    return request.node.name[:60]


@pytest.fixture
def graph_mem(home: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory whose search uses the graph channel alone."""
    settings = Settings.load(home=home, retrieval={"weights": ONLY_GRAPH})
    with Memory(settings=settings, embedder=embedder) as mem:
        yield mem


def test_inline_facts_build_the_graph_with_time(shared: Memory, user: str) -> None:
    mem = shared
    mem.add(
        "Maya: I moved to Berlin last month.",
        user_id=user,
        event_time="2023-07-01T10:00:00+00:00",
        infer=True,
    )
    mem.add(
        "Maya: I moved to Lisbon last week. I work at Acme Corp now.",
        user_id=user,
        event_time="2023-09-01T10:00:00+00:00",
        infer=True,
    )
    names = {e.name for e in mem.graph.entities(user_id=user)}
    assert {"Maya", "Berlin", "Lisbon", "Acme Corp"} <= names
    now = {(n.relation.predicate, n.entity.name) for n in mem.graph.neighbors("maya", user_id=user)}
    assert ("lives_in", "Lisbon") in now and ("lives_in", "Berlin") not in now
    then = mem.graph.neighbors("Maya", user_id=user, as_of="2023-07-15")
    assert [n.entity.name for n in then] == ["Berlin"]
    timeline = mem.graph.timeline("Maya", user_id=user)
    berlin = next(t for t in timeline if "Berlin" in t.record.text)
    lisbon = next(t for t in timeline if "Lisbon" in t.record.text)
    assert timeline.index(berlin) < timeline.index(lisbon)
    assert not berlin.current and berlin.valid_to is not None and lisbon.current
    assert berlin.relations and berlin.relations[0].predicate == "lives_in"
    path = mem.graph.path("Lisbon", "Acme Corp", user_id=user)
    assert [(s.source.name, s.target.name) for s in path] == [
        ("Lisbon", "Maya"),
        ("Maya", "Acme Corp"),
    ]
    with pytest.raises(NotFound, match="did you mean 'Maya'"):
        mem.graph.neighbors("Mayya", user_id=user)


def test_a_relation_starting_in_the_future_does_not_hold_now(shared: Memory, user: str) -> None:
    """Without ``as_of`` the graph answers as of now: a fact valid from a future date is not
    a neighbour, not on a path and not current in the timeline until that date."""
    mem = shared
    facts(
        mem,
        user,
        [("Maya works at Globex.", {"subject": "Maya", "entities": ["Maya", "Globex"]})],
        valid_from="2999-01-01T00:00:00+00:00",
    )
    assert mem.graph.neighbors("Maya", user_id=user) == []
    assert mem.graph.neighbors("Maya", user_id=user, as_of=utcnow()) == []
    assert mem.graph.path("Maya", "Globex", user_id=user) == []
    assert [t.current for t in mem.graph.timeline("Maya", user_id=user)] == [False]
    later = mem.graph.neighbors("Maya", user_id=user, as_of="2999-06-01")
    assert [n.entity.name for n in later] == ["Globex"]


def test_third_person_facts_build_the_graph(shared: Memory, user: str) -> None:
    """A dated third-person statement, as applications write facts, gives its entities and
    relations (no speaker prefix, no LLM); so does a fact stored as it is."""
    mem = shared
    mem.add(
        "Caroline went to the LGBTQ support group with Melanie.",
        user_id=user,
        event_time="2023-05-07T10:00:00+00:00",
        infer=True,
    )
    around = {
        (n.relation.predicate, n.direction, n.entity.name)
        for n in mem.graph.neighbors("Caroline", user_id=user)
    }
    assert around == {
        ("went_to", "out", "LGBTQ support group"),
        ("went_with", "out", "Melanie"),
    }
    (went,) = [n for n in mem.graph.neighbors("Melanie", user_id=user)]
    assert went.relation.valid_from is not None
    assert went.relation.valid_from.date().isoformat() == "2023-05-07"
    mem.add("Ines, Maya's sister, lives in Porto.", user_id=user, kind="semantic")
    ines = {
        (n.relation.predicate, n.entity.name) for n in mem.graph.neighbors("Ines", user_id=user)
    }
    assert ines == {("sister_of", "Maya"), ("lives_in", "Porto")}


def test_names_with_non_ascii_capitals_are_their_own_entities(shared: Memory, user: str) -> None:
    """Åsa and Émile are two speakers (they were both "User", and Émile's home superseded
    Åsa's); José's move supersedes his old home as Jose's does."""
    mem = shared
    mem.add("Åsa: I live in Oslo.", user_id=user, infer=True, event_time="2024-01-01")
    mem.add("Émile: I live in Paris.", user_id=user, infer=True, event_time="2024-02-01")
    mem.add("José lives in Lyon.", user_id=user, infer=True, event_time="2024-03-01")
    mem.add("José moved to Rome.", user_id=user, infer=True, event_time="2024-04-01")
    current = {r.text for r in mem.list(user_id=user, kinds="semantic")}
    assert current == {"Åsa lives in Oslo.", "Émile lives in Paris.", "José moved to Rome."}
    for name, place in (("Åsa", "Oslo"), ("Émile", "Paris"), ("José", "Rome")):
        around = [
            (n.relation.predicate, n.entity.name) for n in mem.graph.neighbors(name, user_id=user)
        ]
        assert around == [("lives_in", place)]


def test_neighbours_list_every_relation_to_an_entity(shared: Memory, user: str) -> None:
    """Two relations between the same two entities are both neighbours (not one of them,
    picked by a random id); a name longer than names are stored is found by the name given."""
    mem = shared
    mem.add(
        "Tom's manager Anna asked Tom to lead the Kafka project.", user_id=user, kind="semantic"
    )
    around = {
        (n.relation.predicate, n.entity.name) for n in mem.graph.neighbors("Anna", user_id=user)
    }
    assert {("manager_of", "Tom"), ("asked", "Tom")} <= around
    long = "A" + "b" * 299 + "X"  # stored cut to 300 characters
    mem.add(
        "Tom met someone.",
        user_id=user,
        kind="semantic",
        metadata={"entities": ["Tom", long], "subject": "Tom", "attribute": "met", "value": long},
    )
    assert [n.entity.name for n in mem.graph.neighbors(long, user_id=user)] == ["Tom"]


def test_demo_relations_read_the_right_way_round(shared: Memory, user: str) -> None:
    """The quickstart's sentence: Tomas is Maya's manager and asked her to lead the project
    (it used to read "Maya -manager_to-> Kafka")."""
    mem = shared
    mem.add(
        "Maya: My manager Tomas asked me to lead the Kafka project at Northwind Logistics.",
        user_id=user,
        event_time="2024-06-20T07:10:00+00:00",
        infer=True,
    )
    (entry,) = mem.graph.timeline("Maya", user_id=user)
    edges = {(r.source_name, r.predicate, r.target_name) for r in entry.relations}
    assert edges == {
        ("tomas", "manager_of", "maya"),
        ("tomas", "asked", "maya"),
        ("maya", "lead", "kafka project"),
        ("maya", "lead_at", "northwind logistics"),
    }


def test_the_graph_channel_answers_a_two_hop_question(graph_mem: Memory) -> None:
    ids = facts(graph_mem, "u", WORLD, valid_from="2023-01-01T00:00:00+00:00")
    hits = graph_mem.search("Which city is Ines's employer in?", user_id="u", k=3)
    found = [h.record.id for h in hits]
    assert ids[1] in found  # Northwind's city: two hops from Ines, named nowhere in the query
    assert all("graph" in h.channels for h in hits)
    assert ids[3] not in found  # Rita is not connected
    # two entities named: the facts on the path between them come first
    hits = graph_mem.search("Does Ines have anything to do with Porto?", user_id="u", k=3)
    assert {h.record.id for h in hits[:2]} == {ids[0], ids[1]}
    # kinds, filters and validity hold in the graph channel as in every channel
    assert graph_mem.search("Ines", user_id="u", kinds=["episodic"]) == []
    only = graph_mem.search("Ines", user_id="u", filters={"attribute": "works_at"})
    assert [h.record.id for h in only] == [ids[0]]
    graph_mem.invalidate(ids[0], valid_to="2024-01-01T00:00:00+00:00")
    assert ids[0] not in {h.record.id for h in graph_mem.search("Ines", user_id="u")}
    past = graph_mem.search("Ines", user_id="u", as_of="2023-06-01T00:00:00+00:00")
    assert ids[0] in {h.record.id for h in past}


def test_default_fusion_includes_the_graph_channel(shared: Memory, user: str) -> None:
    mem = shared
    facts(mem, user, WORLD)
    hits = mem.search("Where is Northwind based?", user_id=user, k=3)
    assert hits[0].record.text == "Northwind is based in Porto."
    assert "graph" in hits[0].channels and "dense" in hits[0].channels


def test_a_scope_without_a_graph_costs_nothing(mem: Memory) -> None:
    mem.add("Just an episode about nothing in particular.", user_id="empty")
    request = build_request(mem.backends, "Where is Ines?", Scope(user_id="empty"), limit=100)
    started = time.perf_counter()
    for _ in range(50):
        assert graph_channel(mem.backends, request) == []
    assert (time.perf_counter() - started) / 50 < 0.01
    hit = mem.search("nothing in particular", user_id="empty")[0]
    assert "graph" not in hit.channels


def test_graphs_are_isolated_by_scope(graph_mem: Memory) -> None:
    facts(graph_mem, "a", WORLD)
    facts(graph_mem, "b", [("Zoe visits Porto.", {"subject": "Zoe", "entities": ["Zoe", "Porto"]})])
    assert {e.name for e in graph_mem.graph.entities(user_id="b")} == {"Zoe", "Porto"}
    with pytest.raises(NotFound):
        graph_mem.graph.neighbors("Ines", user_id="b")
    assert graph_mem.search("Ines and Northwind", user_id="b") == []
    # agents: a private entity of one agent never reaches another agent's search
    researcher = graph_mem.for_agent("researcher", user_id="t", team="x")
    writer = graph_mem.for_agent("writer", user_id="t", team="x")
    researcher.add(
        "Quentin founded Blue Lab.",
        kind="semantic",
        metadata={"subject": "Quentin", "entities": ["Quentin", "Blue Lab"]},
    )
    researcher.add(
        "Quentin joined the team.",
        kind="semantic",
        shared=True,
        metadata={"subject": "Quentin", "entities": ["Quentin"]},
    )
    seen = {h.record.text for h in writer.search("Quentin Blue Lab")}
    assert seen == {"Quentin joined the team."}
    assert len(researcher.search("Quentin Blue Lab")) == 2


def test_the_graph_persists_and_is_read_back(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as mem:
        facts(mem, "u", WORLD)
        before = mem.graph.stats(user_id="u")
        (partition,) = mem.backends.graph.partitions(Scope(user_id="u"))  # type: ignore[union-attr]
    with Memory(settings=settings, embedder=embedder) as mem:
        assert mem.graph.stats(user_id="u") == before
        (again,) = mem.backends.graph.partitions(Scope(user_id="u"))  # type: ignore[union-attr]
        assert again.version == partition.version  # read back, not rebuilt
        assert [n.entity.name for n in mem.graph.neighbors("Northwind", user_id="u")] == [
            "Porto",
            "Ines",
        ]


def _corrupt(home: Path) -> None:
    with sqlite3.connect(home / "agentmem.db") as conn:
        conn.execute(
            "UPDATE graph_items SET data = '{\"id\": broken' WHERE rowid = "
            "(SELECT MIN(rowid) FROM graph_items WHERE kind = 'entity')"
        )


def test_a_corrupt_graph_says_so_and_reindex_graph_repairs_it(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as mem:
        facts(mem, "u", WORLD)
    _corrupt(home)
    with Memory(settings=settings, embedder=embedder) as mem:
        with pytest.raises(GraphCorrupt, match="reindex --graph"):
            mem.graph.entities(user_id="u")
        with pytest.raises(GraphCorrupt):
            mem.search("Ines", user_id="u")
        with caplog.at_level(logging.WARNING):  # writes go on; the graph waits for a rebuild
            facts(mem, "u", [("Ines adopted a cat.", {"subject": "Ines", "entities": ["Ines"]})])
        assert "knowledge graph not updated (kept queued" in caplog.text
        assert mem.stats().pending_index == 1  # the skipped graph update is not acknowledged
        facts(mem, "v", [("Zoe likes tea.", {"subject": "Zoe", "entities": ["Zoe"]})])
        assert mem.stats().pending_index == 1  # other scopes' entries are
        assert [e.name for e in mem.graph.entities(user_id="v")] == ["Zoe"]
    monkeypatch.setattr(cli, "open_memory", lambda s: Memory(settings=s, embedder=embedder))
    result = CliRunner().invoke(cli.app, ["--home", str(home), "reindex", "--graph"])
    assert result.exit_code == 0, result.output
    assert re.search(r"2 scope\(s\) from 6 facts: 6 entities", result.output)
    with Memory(settings=settings, embedder=embedder) as mem:
        assert mem.stats().pending_index == 0  # applied after the rebuild
        timeline = [t.record.text for t in mem.graph.timeline("Ines", user_id="u")]
        assert "Ines adopted a cat." in timeline
        assert mem.search("Ines", user_id="u")


def test_entries_kept_for_a_corrupt_graph_never_hold_up_the_outbox(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More entries kept queued (for a corrupt partition) than a sync reads at once: the sync
    still reaches the entries behind them, and returns."""
    from agentmem import indexing, writing

    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as mem:
        facts(mem, "u", WORLD)
    _corrupt(home)
    with Memory(settings=settings, embedder=embedder) as mem:
        facts(mem, "u", [(f"Ines met Person{i}.", {"subject": "Ines", "entities": ["Ines"]})
                         for i in range(3)])  # fmt: skip
        assert mem.stats().pending_index == 3
        with monkeypatch.context() as patch:
            patch.setattr(writing, "sync_outbox", lambda backends: 0)
            facts(mem, "v", [("Zoe likes tea.", {"subject": "Zoe", "entities": ["Zoe"]})])
        assert mem.stats().pending_index == 4
        sync = threading.Thread(
            target=indexing.sync_outbox, args=(mem.backends,), kwargs={"batch_size": 2},
            daemon=True,
        )  # fmt: skip
        sync.start()
        sync.join(timeout=60)
        assert not sync.is_alive(), "the sync went round the kept entries forever"
        assert mem.stats().pending_index == 3
        assert [e.name for e in mem.graph.entities(user_id="v")] == ["Zoe"]


def test_communities_form_a_hierarchy(shared: Memory, user: str) -> None:
    mem = shared
    rows = []
    for group in (["Ann", "Bea", "Cid", "Dan"], ["Eve", "Fay", "Gus", "Hal"]):
        for i, a in enumerate(group):
            rows += [(f"{a} met {b}.", {"subject": a, "entities": [a, b]}) for b in group[i + 1 :]]
    rows.append(("Dan met Eve.", {"subject": "Dan", "entities": ["Dan", "Eve"]}))
    facts(mem, user, rows)
    chain = mem.graph.community("Ann", user_id=user)
    assert [c.level for c in chain] == [0, 1]
    assert chain[0].size == 4 and chain[1].size == 8 and chain[0].parent == chain[1].id
    assert "Ann" in chain[0].summary or "Ann" in chain[0].top_entities
    assert len(mem.graph.communities(user_id=user, level=0)) == 2


def test_merge_undo_and_rebuild_keep_user_decisions(shared: Memory, user: str) -> None:
    mem = shared
    facts(
        mem,
        user,
        [
            ("Jon plays chess with Sam.", {"subject": "Jon", "entities": ["Jon", "Sam"]}),
            ("Jonathan visited Rome.", {"subject": "Jonathan", "entities": ["Jonathan", "Rome"]}),
        ],
    )
    merge = mem.graph.merge("Jon", "Jonathan", user_id=user)
    assert mem.graph.entity("Jonathan", user_id=user).name == "Jon"
    assert {n.entity.name for n in mem.graph.neighbors("Jon", user_id=user)} == {"Sam", "Rome"}
    mem.graph.rebuild(user_id=user)
    assert mem.graph.entity("jonathan", user_id=user).aliases == ["Jonathan"]  # kept
    restored = mem.graph.undo_merge(merge.id, user_id=user)
    assert restored.name == "Jonathan"
    assert {n.entity.name for n in mem.graph.neighbors("Jon", user_id=user)} == {"Sam"}


def test_deleting_facts_takes_them_out_of_the_graph(shared: Memory, user: str) -> None:
    mem = shared
    ids = facts(mem, user, WORLD)
    mem.delete(ids[1])
    assert "Porto" not in {e.name for e in mem.graph.entities(user_id=user)}
    assert mem.delete_all(user_id=user) == 3
    assert mem.graph.entities(user_id=user) == []


INJECTED = ["Robert'); MATCH (n) DETACH DELETE n; //", '"; DROP TABLE graph_items; --']


def test_injection_looking_names_stay_data_end_to_end(mem: Memory) -> None:
    facts(mem, "other", WORLD)
    facts(
        mem,
        "u",
        [(f"Ann met {name}.", {"subject": "Ann", "entities": ["Ann", name]}) for name in INJECTED],
    )
    assert {n.entity.name for n in mem.graph.neighbors("Ann", user_id="u")} == set(INJECTED)
    assert mem.graph.entity(INJECTED[0], user_id="u").name == INJECTED[0]
    assert mem.search(INJECTED[1], user_id="u")
    assert mem.graph.stats(user_id="other").entities == 5  # nothing else touched


def test_exports_and_the_html_page_shows_the_nodes(
    shared: Memory, user: str, tmp_path: Path, browser: Browser
) -> None:
    mem = shared
    facts(mem, user, WORLD)
    doc = json.loads(mem.graph.export("json", user_id=user))
    names = {e["name"] for e in doc["entities"]}
    assert names == {"Ines", "Northwind", "Porto", "Tomas", "Rita"}
    graphml = (
        nx.read_graphml(tmp_path / "g.graphml")
        if mem.graph.export("graphml", user_id=user, path=tmp_path / "g.graphml")
        else None
    )
    assert graphml is not None and {d["name"] for _, d in graphml.nodes(data=True)} == names
    page = tmp_path / "graph.html"
    mem.graph.export("html", user_id=user, path=page)
    island = page.read_text().split('id="graph-data">', 1)[1].split("</script>", 1)[0]
    assert {n["name"] for n in json.loads(island)["nodes"]} == names
    # rendered by a real browser: a circle and a label per entity, and an edge opens its fact
    tab = browser.new_page()
    try:
        tab.goto(page.as_uri())
        tab.wait_for_selector("body[data-rendered]")
        assert tab.get_attribute("body", "data-rendered") == "5"
        assert tab.locator("circle").count() == 5
        assert set(tab.locator(".node text").all_text_contents()) == names
        edge = tab.locator(f"line.edge-hit[data-id='{doc['relations'][0]['id']}']")
        edge.click(force=True)
        details = tab.locator("#details").inner_text()
        relation = doc["relations"][0]
        assert relation["predicate"] in details and relation["fact"] in details
        assert tab.locator("line.edge.picked").count() == 1
    finally:
        tab.close()


def test_cli_graph_commands(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        facts(mem, "u", WORLD)
    monkeypatch.setattr(cli, "open_memory", lambda s: Memory(settings=s, embedder=embedder))
    runner = CliRunner(env={"COLUMNS": "200"})
    out = home.parent / "u.html"
    result = runner.invoke(
        cli.app,
        [
            "--home",
            str(home),
            "graph",
            "export",
            "--format",
            "html",
            "--user",
            "u",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "5 entities" in result.output and "Northwind" in out.read_text()
    result = runner.invoke(
        cli.app, ["--home", str(home), "graph", "neighbors", "Ines", "-u", "u", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert {n["entity"] for n in json.loads(result.output)} == {"Northwind", "Tomas"}
    result = runner.invoke(cli.app, ["--home", str(home), "graph", "timeline", "Nobody", "-u", "u"])
    assert result.exit_code == 1 and "no entity named 'Nobody'" in result.output
