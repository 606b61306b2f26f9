"""Forgetting on the embedded default: every copy goes (store, history, vector and BM25 index,
graph, caches, buffers, quarantine), derived records follow their sources, and the faults of
the issue: twice is idempotent, a racing consolidation run does not resurrect, a crash in the
middle is finished on the next open, another scope's memory is refused."""

from __future__ import annotations

import dataclasses
import json
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agentmem import Memory, Scope, Settings, erasure, erasure_removal, extract_pending
from agentmem.buffers import thread_key
from agentmem.embedders import Embedder
from agentmem.errors import BackendUnavailable, NotFound, PermissionDenied, ValidationError
from agentmem.graph import FalkorDBGraphStore, GraphChange, Merge, MergeMethod
from agentmem.lineage import evolved_from, sources_of
from agentmem.models import HistoryEvent, new_id
from agentmem.stores import ForgetJournal
from agentmem_consolidation import run_inline
from tests.falkordb_server import FalkorDBServer
from tests.faults import free_port
from tests.security._checks import FORGOTTEN, KEPT, assert_forgotten, leaks


def journal_of(mem: Memory) -> ForgetJournal:
    """The forget journal of ``mem``'s store (both test stores keep one)."""
    store = mem.backends.store
    assert isinstance(store, ForgetJournal)
    return store


ALICE = Scope(user_id="alice")


def _fill(mem: Memory) -> tuple[str, list[str]]:
    """The forgotten episode (facts extracted inline) and the kept ones; returns ids."""
    gone = mem.add(FORGOTTEN, user_id="alice", infer=True)
    kept = [r.id for r in mem.add_many(KEPT, user_id="alice")]
    return gone.id, kept


def test_forget_one_memory_removes_every_copy_and_what_derives_only_from_it(mem: Memory) -> None:
    gone, kept = _fill(mem)
    facts = mem.list(user_id="alice", kinds=["semantic"])
    derived = [f.id for f in facts if gone in sources_of(f)]
    assert derived, "the rules extractor made a fact from the episode"
    assert any(leaks(h.record.text) for h in mem.search("beagle Rex", user_id="alice"))
    assert "rex" in mem.graph.export("json", user_id="alice").lower()

    report = mem.forget([gone], reason="user asked", user_id="alice")

    assert report.status == "done"
    assert set(report.forgotten_ids) == {gone, *derived}
    assert report.derived == len(derived)
    assert report.removed["records"] == 1 + len(derived)
    assert report.removed["index_points"] == 1 + len(derived)
    assert report.removed["history_entries"] > 0
    assert report.removed["cached_vectors"] > 0
    assert report.removed["graph_partitions"] == 1
    assert_forgotten(mem, ALICE, report.forgotten_ids)
    # what did not come from it stays, searchable, with its history
    assert {r.id for r in mem.list(user_id="alice")} >= set(kept)
    assert any("nurse" in h.record.text for h in mem.search("nurse hospital", user_id="alice"))
    assert mem.history(kept[0])[0].new_text == KEPT[0]
    # the history keeps a content-free tombstone naming the forget
    entries = mem.history(gone)
    assert entries[-1].event.value == "DELETE"
    assert entries[-1].actor == f"forget:{report.forget_id}"
    # the report is in the journal and the ledger, without the content
    stored = erasure.reports(mem, forget_id=report.forget_id)[0]
    assert stored.removed == report.removed
    rows = mem.backends.store.job_rows(run_id=report.forget_id)
    assert rows and rows[0].stage == "forget" and not leaks(rows[0].note)
    journal = journal_of(mem).forget_jobs(forget_id=report.forget_id)[0]
    assert journal.probe is None  # no adapter was tainted: the texts were never kept
    assert not leaks(str(journal.report))


def test_forget_twice_is_idempotent_and_purge_erases_history(mem: Memory) -> None:
    gone, _ = _fill(mem)
    first = mem.forget(gone, reason="erasure", purge=True, user_id="alice")
    assert first.removed["records"] >= 1
    assert mem.backends.store.history(gone) == []  # purged: no history rows at all
    again = mem.forget(gone, reason="erasure", purge=True, user_id="alice")
    assert again.already_forgotten == 1
    assert again.forgotten_ids == [] and again.status == "done"
    assert_forgotten(mem, ALICE, first.forgotten_ids)


@pytest.mark.parametrize("how", ["scope", "ids"])
def test_forget_reaches_memories_deleted_before(mem: Memory, how: str) -> None:
    # A deleted memory's history still holds its text: a later forget must reach it, by the
    # user's whole scope or by its id (which no longer names a stored record).
    deleted = mem.add(FORGOTTEN, user_id="alice")
    kept = mem.add(KEPT[0], user_id="bob")
    mem.delete(deleted.id)
    assert leaks(mem.history(deleted.id)[0].new_text or "")
    ids = [deleted.id] if how == "ids" else None
    report = mem.forget(ids, reason="erasure", user_id="alice")
    assert deleted.id in report.forgotten_ids
    assert report.removed["history_entries"] >= 2  # its ADD and DELETE
    assert all(
        e.old_text is None and e.new_text is None and e.new_metadata is None
        for e in mem.history(deleted.id)
    )
    assert mem.get(kept.id).text == KEPT[0]
    again = mem.forget([deleted.id], reason="erasure", user_id="alice")
    assert again.already_forgotten == 1 and again.forgotten_ids == []
    with pytest.raises(NotFound):  # another scope does not learn the id exists
        mem.forget([deleted.id], reason="erasure", user_id="bob")


def test_forget_of_a_scope_with_nothing_stored_still_clears_its_buffers(mem: Memory) -> None:
    buffer = mem.buffer(user_id="alice", thread_id="t1")
    buffer.append("user", "Remember that Rex the beagle needs his shots.")
    report = mem.forget(reason="account closed", user_id="alice")
    assert report.removed["buffer_turns"] == 1
    assert mem.buffer(user_id="alice", thread_id="t1").messages() == []


@pytest.mark.parametrize("which", ["turn", "segment"])
def test_forgetting_a_flushed_turn_or_its_segment_takes_the_other_copy(
    tmp_path: Path, embedder: Embedder, which: str
) -> None:
    """A flush stores the segment (every turn's words) and a record per turn: forgetting the
    turn takes the segment and the facts drawn from it; forgetting the segment takes every
    turn record. Another turn's record stays when only one turn was asked for."""
    settings = Settings.load(home=tmp_path / "home", infer="deferred")
    with Memory(settings=settings, embedder=embedder) as mem:
        _forget_a_flushed_copy(mem, which)


def _forget_a_flushed_copy(mem: Memory, which: str) -> None:
    buffer = mem.buffer(user_id="alice", thread_id="t1")
    buffer.append("user", "My passport number is X7654321", name="Alice")
    buffer.append("assistant", "Thanks, noted.")
    flush = buffer.flush()
    extract_pending(mem)
    assert flush.episode is not None
    holding = [r.id for r in mem.list(user_id="alice", limit=100) if "7654321" in r.text]
    assert len(holding) >= 3  # the segment, its turn record and the fact
    turn = next(t for t in flush.turns if "7654321" in t.text)
    reply = next(t for t in flush.turns if "noted" in t.text)
    target = turn if which == "turn" else flush.episode
    mem.forget([target.id], reason="user asked", user_id="alice")
    assert [r for r in mem.list(user_id="alice", limit=100) if "7654321" in r.text] == []
    assert [
        h for h in mem.search("passport number", user_id="alice") if "7654" in h.record.text
    ] == []
    left = {r.id for r in mem.list(user_id="alice", limit=100)}
    assert (reply.id in left) == (which == "turn")


def test_forget_a_whole_user_clears_buffers_and_quarantine(mem: Memory) -> None:
    _fill(mem)
    mem.add("Bob keeps bees on his roof.", user_id="bob")
    buffer = mem.buffer(user_id="alice", thread_id="t1")
    buffer.append("user", "Remember that Rex the beagle needs his shots.")
    held = mem.add("Rex the beagle likes the Denver shelter.", user_id="alice", source="tool")
    assert mem.quarantine.list(ALICE)

    report = mem.forget(reason="account closed", user_id="alice")

    assert report.removed["buffer_turns"] == 1
    assert report.removed["quarantine"] == 1
    assert held.id in report.forgotten_ids
    assert mem.list(user_id="alice") == []
    assert mem.quarantine.list(ALICE) == []
    assert mem.buffer(user_id="alice", thread_id="t1").messages() == []
    assert_forgotten(mem, ALICE, report.forgotten_ids)
    assert [r.text for r in mem.list(user_id="bob")] == ["Bob keeps bees on his roof."]


def test_forget_refuses_other_scopes_and_bad_input(mem: Memory) -> None:
    gone, _ = _fill(mem)
    bob = mem.add("Bob keeps bees on his roof.", user_id="bob")
    # Another scope's ids are unknown ids there (404 over REST): their existence is not told.
    with pytest.raises(NotFound, match="not visible here"):
        mem.forget([gone, bob.id], reason="mixed", user_id="alice")
    assert mem.get(gone) and mem.get(bob.id)  # nothing was forgotten
    with pytest.raises(NotFound):
        mem.forget([gone], reason="wrong scope", user_id="bob")
    with pytest.raises(ValidationError, match="reason"):
        mem.forget([gone], reason=" ", user_id="alice")
    with pytest.raises(NotFound):
        mem.forget(["1b4e28ba-2fa1-11d2-883f-0016d3cca427"], reason="x", user_id="alice")
    with pytest.raises(ValidationError):
        mem.forget([], reason="x", user_id="alice")
    assert mem.get(gone).text == FORGOTTEN


def _report_ids(mem: Memory, **scope: str) -> list[str]:
    return [r.forget_id for r in erasure.reports(mem, scope=Scope.of(**scope))]


def test_forget_reports_belong_to_their_scope_when_an_id_holds_commas(mem: Memory) -> None:
    # Ids may hold ',' and '=': the journal keeps the scope in a form that reads back exactly,
    # so the report of "smith, john" is his, not smith's, and "eve,user_id=bob"'s is not bob's.
    john = mem.add("My diagnosis is X.", user_id="smith, john")
    eve = mem.add("Eve keeps a diary.", user_id="eve,user_id=bob")
    report = mem.forget([john.id], reason="medical record of John", user_id="smith, john")
    crafted = mem.forget([eve.id], reason="crafted id", user_id="eve,user_id=bob")

    assert _report_ids(mem, user_id="smith, john") == [report.forget_id]
    assert _report_ids(mem, user_id="eve,user_id=bob") == [crafted.forget_id]
    assert _report_ids(mem, user_id="smith") == [] and _report_ids(mem, user_id="bob") == []
    assert report.scope == "user_id=smith, john"  # the display form
    (row,) = mem.backends.store.job_rows(run_id=report.forget_id)
    assert row.scope == thread_key(Scope.of(user_id="smith, john"))  # the ledger's scope key


def test_forget_reports_journaled_with_the_old_scope_text_still_read_back(mem: Memory) -> None:
    # Journals written before the scope was kept as JSON hold str(scope): read back where it
    # is unambiguous (a ',' inside an id), shown to no scope where it is not (a field twice).
    gone = mem.add("My diagnosis is X.", user_id="smith, john")
    report = mem.forget([gone.id], reason="asked", user_id="smith, john")
    journal = journal_of(mem)
    (job,) = journal.forget_jobs(forget_id=report.forget_id)
    old, crafted = (
        dataclasses.replace(job, forget_id=fid, scope=text, report={**job.report, "forget_id": fid})
        for fid, text in [(new_id(), "user_id=smith, john"), (new_id(), "user_id=eve,user_id=bob")]
    )
    journal.forget_job_write(old)
    journal.forget_job_write(crafted)

    assert old.forget_id in _report_ids(mem, user_id="smith, john")
    assert _report_ids(mem, user_id="smith") == []
    assert _report_ids(mem, user_id="bob") == [] and _report_ids(mem, user_id="eve") == []
    assert crafted.forget_id in {r.forget_id for r in erasure.reports(mem)}


def test_a_fact_with_another_live_source_is_kept_with_its_sources_pruned(mem: Memory) -> None:
    first = mem.add("Alice: I live in Portland.", user_id="alice", infer=True)
    second = mem.add("Alice: I moved to Portland last year.", user_id="alice")
    fact = mem.add(
        "Alice lives in Portland.",
        user_id="alice",
        kind="semantic",
    )
    # a fact stated by two episodes, the last of them kept
    from agentmem import writing

    writing.update(
        mem.backends, fact.id, None, provenance={"sources": [first.id, second.id]}, actor="test"
    )
    report = mem.forget(first.id, reason="x", user_id="alice")
    assert fact.id not in report.forgotten_ids
    assert report.kept_with_other_sources >= 1
    assert sources_of(mem.get(fact.id)) == [second.id]


def test_forgetting_one_fact_of_a_list_profile_field_keeps_its_other_items(mem: Memory) -> None:
    """A forgotten fact's item leaves the profile list it fed, with every version naming it;
    the items of the other facts, and those set by hand, stay (no refresh() needed)."""
    mem.profile(user_id="alice").set(dislikes=["loud music"])
    for text in ("I hate mushrooms.", "I hate olives.", "I hate cilantro."):
        mem.add(text, user_id="alice", infer=True)
    profile = mem.profile(user_id="alice")
    mushrooms, olives, cilantro = (
        "User hates mushrooms.", "User hates olives.", "User hates cilantro."
    )  # fmt: skip
    assert profile.get().model.dislikes == ["loud music", mushrooms, olives, cilantro]
    fact = next(f for f in mem.list(user_id="alice", kinds="semantic") if "olives" in f.text)

    report = mem.forget(fact.id, reason="user asked", user_id="alice")

    assert report.removed["profile_fields"] >= 1
    view = profile.get()
    assert view.model.dislikes == ["loud music", mushrooms, cilantro]
    assert fact.id not in view.fields["dislikes"].sources
    for version in profile.history():
        assert olives not in json.dumps(version.value) and fact.id not in version.sources
    assert "cilantro" in mem.context("what does alice dislike?", user_id="alice").text
    assert profile.refresh() == 0


def _graph_of(mem: Memory) -> tuple[set[tuple[str, str, str]], dict[str, list[str]]]:
    """Alice's graph: (source, predicate, target) names, and each episode's linked facts."""
    (state,) = mem.graph.store.states(ALICE)
    names = {e.id: e.name for e in state.entities.values()}
    relations = {(names[r.source], r.predicate, names[r.target]) for r in state.relations.values()}
    return relations, {k: list(v.fact_ids) for k, v in state.links.items()}


@pytest.mark.parametrize("which", [0, 1])
def test_a_fact_repeated_by_a_second_episode_survives_forgetting_either(
    mem: Memory, which: int
) -> None:
    said = [mem.add("Maya: I work at Northwind.", user_id="alice", infer=True) for _ in "ab"]
    (fact,) = mem.list(user_id="alice", kinds=["semantic"])
    # the repeat is a NOOP that still names its episode, as a source and in the graph
    assert said[1].metadata["facts"] == [fact.id]
    assert sources_of(fact) == [said[0].id, said[1].id]
    relations, links = _graph_of(mem)
    assert ("Maya", "works_at", "Northwind") in relations
    assert links[said[0].id] == links[said[1].id] == [fact.id]

    report = mem.forget([said[which].id], reason="user asked", user_id="alice")

    assert report.forgotten_ids == [said[which].id] and report.derived == 0
    assert report.kept_with_other_sources == 1
    kept = mem.get(fact.id)
    assert kept.text == "Maya works at Northwind."
    assert sources_of(kept) == [said[1 - which].id]
    relations, links = _graph_of(mem)
    assert ("Maya", "works_at", "Northwind") in relations
    assert set(links) == {said[1 - which].id}
    # the other one goes too: nothing states the fact any more
    report = mem.forget([said[1 - which].id], reason="user asked", user_id="alice")
    assert report.forgotten_ids == [said[1 - which].id, fact.id]
    assert mem.list(user_id="alice") == []


def test_a_repeat_that_says_less_keeps_the_fact_with_its_first_source(mem: Memory) -> None:
    first = mem.add("Maya: I play tennis every Sunday with Leo.", user_id="alice", infer=True)
    second = mem.add("Maya: I play tennis.", user_id="alice", infer=True)
    (fact,) = mem.list(user_id="alice", kinds=["semantic"])
    assert sources_of(fact) == [first.id, second.id]
    # the repeat does not say "every Sunday with Leo": forgetting the first takes the fact
    report = mem.forget([first.id], reason="user asked", user_id="alice")
    assert fact.id in report.forgotten_ids
    assert [r.id for r in mem.list(user_id="alice")] == [second.id]


def test_forget_takes_a_note_out_of_the_neighbours_it_evolved(
    home: Path, embedder: Embedder
) -> None:
    """Evolution copied a note's text and keywords into the note it linked to: a forget takes
    exactly those additions out of it (metadata, provenance, history, window index, the files
    after a purge) and keeps what another note's evolution added."""
    secret = "ZX99881"
    with Memory(
        settings=Settings.load(home=home, notes={"evolve": True}), embedder=embedder
    ) as mem:
        base = mem.add(
            "Alice loves hiking in the Alps with her dog.", user_id="alice", kind="semantic"
        )
        gone = mem.add(
            f"Alice loves hiking in the Alps with her dog Rex, passport {secret} every summer.",
            user_id="alice",
            kind="semantic",
        )
        kept = mem.add(
            "Alice loves hiking in the Alps with her cat Tom in spring.",
            user_id="alice",
            kind="semantic",
        )
        evolved = mem.get(base.id)
        assert secret in evolved.metadata["context"] and "passport" in evolved.metadata["keywords"]
        assert sorted(evolved_from(evolved)) == sorted([gone.id, kept.id])

        report = mem.forget([gone.id], reason="user asked", user_id="alice", purge=True)

        assert report.removed["evolved_notes"] == 1
        after = mem.get(base.id)
        for words in (after.metadata, after.provenance):
            text = json.dumps(words).lower()
            assert not [w for w in (secret.lower(), "passport", "rex") if w in text], words
        assert kept.text in after.metadata["context"] and "tom" in after.metadata["keywords"]
        assert after.metadata["context"].startswith("Note about alice")
        assert evolved_from(after) == [kept.id]
        for entry in mem.history(base.id):
            assert secret not in json.dumps([entry.old_metadata, entry.new_metadata])
        for hit in mem.search(f"{secret} passport", user_id="alice"):
            assert not {"bm25", "window", "window_bm25"} & set(hit.channels), hit.channels
    held = [p for p in home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert held == []


def test_forget_takes_the_forgotten_names_out_of_merge_records(mem: Memory) -> None:
    """An automatic (fuzzy) and a manual merge whose names came only from forgotten facts do
    not keep those names, in the API or in the stored graph rows."""
    mem.add("Caroline lives in Porto.", user_id="alice", kind="semantic")
    fuzzy = mem.add("Carolinne Secretname works at Globex.", user_id="alice", kind="semantic")
    also = mem.add("Carolinne Secretnam lives in Porto.", user_id="alice", kind="semantic")
    mem.add("Ines Ferreira works at Acme.", user_id="alice", kind="semantic")
    alias = mem.add("Nessie lives in Lisbon.", user_id="alice", kind="semantic")
    mem.graph.merge("Ines Ferreira", "Nessie", user_id="alice")
    names = [n for m in mem.graph.merges(user_id="alice") for n in m.names]
    assert "nessie" in names and "carolinne secretnam" in names

    mem.forget([fuzzy.id, also.id, alias.id], reason="erasure", purge=True, user_id="alice")

    assert mem.graph.merges(user_id="alice") == []
    rows = [
        data
        for partition in mem.backends.graph.partitions(ALICE)
        for _, _, data in mem.backends.graph.read_rows(partition)
    ]
    assert rows and not any("essie" in r or "ecretnam" in r.lower() for r in rows)
    # a merge record left stale by an older version loses the unused name on a rebuild
    graph = mem.backends.graph
    state = graph.state_of(ALICE)
    keep = state.names()["ines ferreira"]
    stale = Merge(
        id="stale",
        scope=ALICE,
        entity_id=keep,
        names=["nessie"],
        method=MergeMethod.MANUAL,
        absorbed_id="gone",
        absorbed_name="Nessie",
    )
    graph.write(state, GraphChange(upserts=[stale]))
    mem.graph.rebuild(user_id="alice")
    assert mem.graph.merges(user_id="alice") == []


def _graph_rows(home: Path) -> list[str]:
    """Every graph row the home's SQLite store holds (the networkx backend's tables)."""
    import sqlite3

    (db,) = home.glob("*.db")
    with sqlite3.connect(db) as con:
        return [data for (data,) in con.execute("SELECT data FROM graph_items")]


def _left_on_networkx(home: Path, embedder: Embedder) -> list[tuple[str, str]]:
    """What the networkx graph shows for Maya after switching back to it."""
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        assert mem.list(user_id="maya") == []
        try:
            found = mem.graph.neighbors("Maya", user_id="maya")
        except NotFound:
            return []
        return [(n.relation.predicate, n.entity.name) for n in found]


@pytest.mark.parametrize("rebuild", [False, True])
def test_forget_reaches_the_graph_a_previous_backend_left_in_the_store(
    home: Path, embedder: Embedder, falkordb_server: FalkorDBServer, rebuild: bool
) -> None:
    """After a switch to a graph server (rebuilt there or not), the networkx graph in the
    store's tables is a stale copy: a forget reaches it, and a switch back brings nothing back."""
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        mem.add("Maya lives in Zanzibar.", user_id="maya", kind="semantic")
    assert any("Zanzibar" in row for row in _graph_rows(home))
    url = falkordb_server.url(f"switch-{rebuild}")
    with Memory(settings=Settings.load(home=home, graph_url=url), embedder=embedder) as mem:
        if rebuild:
            mem.graph.rebuild()
        mem.forget(reason="erasure", user_id="maya", purge=True)
    assert not any("Zanzibar" in row for row in _graph_rows(home))
    assert _left_on_networkx(home, embedder) == []


def test_forget_with_the_graph_switched_off_reaches_the_graph_left_in_the_store(
    home: Path, embedder: Embedder
) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        fact = mem.add("Maya lives in Zanzibar.", user_id="maya", kind="semantic")
    off = Settings.load(home=home, graph={"enabled": False})
    with Memory(settings=off, embedder=embedder) as mem:
        report = mem.forget([fact.id], reason="erasure", user_id="maya", purge=True)
    assert report.removed["graph_partitions"] >= 1
    assert not any("Zanzibar" in row for row in _graph_rows(home))
    assert _left_on_networkx(home, embedder) == []


def _server_rows(url: str) -> list[str]:
    """Every graph row the FalkorDB graph at ``url`` holds."""
    graph = FalkorDBGraphStore.from_url(url)
    graph.setup()
    try:
        return [d for p in graph.partitions(None) for _, _, d in graph.read_rows(p)]
    finally:
        graph.close()


def test_forget_with_the_graph_switched_off_reaches_the_graph_server_still_configured(
    home: Path, embedder: Embedder, falkordb_server: FalkorDBServer
) -> None:
    """With the graph off and AGENTMEM_GRAPH_URL still naming a server, a forget reported done
    and left the forgotten fact and its text on the server, readable once the graph was on
    again: only the store's own networkx tables were reached."""
    url = falkordb_server.url("switched-off")
    on = Settings.load(home=home, graph_url=url)
    with Memory(settings=on, embedder=embedder) as mem:
        mem.add("Maya works at Northwind.", user_id="b", kind="semantic")
        fact = mem.add("Bob works at Zanzibar Freight.", user_id="b", kind="semantic")
    assert any("Zanzibar" in row for row in _server_rows(url))
    off = Settings.load(home=home, graph_url=url, graph={"enabled": False})
    with Memory(settings=off, embedder=embedder) as mem:
        report = mem.forget([fact.id], reason="erasure", user_id="b")
    assert report.status == "done" and report.removed["graph_partitions"] >= 1
    assert not any("Zanzibar" in row for row in _server_rows(url))  # nor its entities


def test_forget_with_the_graph_switched_off_refuses_when_the_graph_server_is_down(
    home: Path, embedder: Embedder
) -> None:
    """A forget that cannot reach the configured graph server refuses before it changes
    anything, saying what to do, rather than report done with the fact left there."""
    url = f"falkordb://127.0.0.1:{free_port()}/gone"
    off = Settings.load(home=home, graph_url=url, graph={"enabled": False}, connect_timeout_s=1)
    with Memory(settings=off, embedder=embedder) as mem:
        fact = mem.add("Bob works at Zanzibar Freight.", user_id="b", kind="semantic")
        with pytest.raises(BackendUnavailable) as refused:
            mem.forget([fact.id], reason="erasure", user_id="b")
        message = str(refused.value)
        assert "graph.enabled" in message and "nothing was forgotten" in message, message
        assert mem.get(fact.id, user_id="b").text == fact.text
        assert journal_of(mem).forget_jobs() == []


_READ_STEPS = [
    {"action": "read", "args": {"path": "a.txt"}, "error": "E_CLOSED: file not open"},
    {"action": "open", "args": {"path": "a.txt"}, "observation": "opened"},
    {"action": "read", "args": {"path": "a.txt"}, "observation": "hello"},
]


def test_forgetting_the_experience_a_procedure_quotes_takes_the_procedure(mem: Memory) -> None:
    secret = "read the medical file of patient John Doe HIV positive.txt"
    meta = {"task_family": "read"}
    first = mem.record_experience(secret, _READ_STEPS, "success", user_id="u1", metadata=meta)
    second = mem.record_experience(
        "read the file b.txt", _READ_STEPS, "success", user_id="u1", metadata=meta
    )
    quoting = {p.id for p in mem.procedures(user_id="u1")}
    assert quoting and all(secret in p.text for p in mem.procedures(user_id="u1"))
    report = mem.forget(first.experience.id, reason="x", user_id="u1")
    assert quoting <= set(report.forgotten_ids)
    assert mem.procedures(user_id="u1") == []
    assert not [h for h in mem.search("John Doe patient", user_id="u1") if "John" in h.record.text]
    # distilled again, the surviving experience teaches the rules in its own words
    third = mem.record_experience(
        "read the file c.txt", _READ_STEPS, "success", user_id="u1", metadata=meta
    )
    assert all("John" not in p.text for p in third.learned)
    # forgetting a later experience keeps the procedure, pruned of it (evidence and support)
    fourth = mem.record_experience(
        "read the file d.txt", _READ_STEPS, "success", user_id="u1", metadata=meta
    )
    mem.forget(fourth.experience.id, reason="x", user_id="u1")
    kept = mem.procedures(user_id="u1")
    assert {p.id for p in kept} == {p.id for p in third.learned}
    assert all(p.evidence == [third.experience.id] and p.support == 1 for p in kept)
    assert second.experience.id not in report.forgotten_ids


def _ledger_rows(mem: Memory) -> list[tuple[object, ...]]:
    with mem.backends.store._cursor() as cur:  # type: ignore[attr-defined]
        rows: list[tuple[object, ...]] = []
        for table in ("feedback", "memory_utility", "retrievals"):
            cur.execute(f"SELECT * FROM {table}")
            rows += [(table, *row) for row in cur.fetchall()]
        return rows


def test_forget_erases_the_feedback_ledger_of_what_it_forgets(mem: Memory) -> None:
    pin = mem.add("Alice's bank PIN is 4921", user_id="alice")
    hits = mem.search("bank PIN", user_id="alice")
    mem.feedback(hits[0].retrieval_id, 1.0, task="pay rent with PIN 4921", user_id="alice")
    mem.add("Bob likes tea", user_id="bob")
    bob = mem.search("tea", user_id="bob")
    mem.feedback(bob[0].retrieval_id, 1.0, task="make Bob a drink", user_id="bob")
    mem.forget(pin.id, reason="x", user_id="alice")
    rows = _ledger_rows(mem)
    assert not [r for r in rows if "4921" in str(r) or pin.id in str(r)]
    assert mem.backends.store.utilities([bob[0].record.id])  # another user's stays
    # a whole-user erasure leaves nothing of the user in the ledger either
    mem.add("Alice's locker code is 7788", user_id="alice")
    mem.feedback(mem.search("locker", user_id="alice")[0].retrieval_id, 1.0, user_id="alice")
    mem.forget(reason="erasure request", purge=True, user_id="alice")
    assert [r[0] for r in _ledger_rows(mem)] == ["feedback", "memory_utility", "retrievals"]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_forget_blanks_the_feedback_task_in_the_history_of_co_credited_memories(
    request: pytest.FixtureRequest, home: Path, embedder: Embedder, store: str
) -> None:
    url = {} if store == "sqlite" else {"store_url": request.getfixturevalue("pg_url")}
    with Memory(settings=Settings.load(home=home, **url), embedder=embedder) as mem:
        _forget_a_co_credited_feedback(mem)


def _forget_a_co_credited_feedback(mem: Memory) -> None:
    secret = mem.add("Maya's passport number is X1234567", user_id="maya")
    other = mem.add("Deploy with make release", user_id="maya")
    mem.feedback(
        [secret.id, other.id],
        1.0,
        task="renew passport X1234567",
        feedback_id="run-1",
        user_id="maya",
    )
    hits = mem.search("passport or deploy", k=2, user_id="maya")
    assert {h.record.id for h in hits} == {secret.id, other.id}
    mem.feedback(hits[0].retrieval_id, 1.0, task="passport X1234567 again", user_id="maya")
    mem.feedback([other.id], 1.0, task="ship the release", user_id="maya")  # not about it
    mem.forget(secret.id, reason="x", user_id="maya")
    tasks = [
        (h.new_metadata or {}).get("task")
        for h in mem.history(other.id, user_id="maya")
        if h.event is HistoryEvent.FEEDBACK
    ]
    assert len(tasks) == 3 and not [t for t in tasks if "X1234567" in str(t)]
    assert "ship the release" in tasks
    assert not [r for r in _ledger_rows(mem) if "X1234567" in str(r)]
    # the blanked feedback is still a repeat
    again = mem.feedback([other.id], 1.0, feedback_id="run-1", user_id="maya")
    assert not again.applied


def test_forget_racing_a_consolidation_run_does_not_resurrect(mem: Memory, monkeypatch) -> None:
    episode = mem.add(FORGOTTEN, user_id="alice", infer="deferred")
    read_done, forgot = threading.Event(), threading.Event()
    from agentmem.semantic import extractor

    real = extractor.apply_decisions

    def paused(*args, **kwargs):  # the run has read the episode and decided; now it waits
        read_done.set()
        assert forgot.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(extractor, "apply_decisions", paused)
    errors: list[BaseException] = []

    def consolidate() -> None:
        try:
            run_inline(mem, ALICE, stages=["extract"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=consolidate)
    worker.start()
    assert read_done.wait(30)
    report = mem.forget(episode.id, reason="race", user_id="alice")
    forgot.set()
    worker.join(60)
    assert not errors, errors
    assert report.forgotten_ids == [episode.id]
    # the facts the run wrote after the forget were undone by the writer's guard
    assert mem.list(user_id="alice", kinds=["semantic"]) == []
    assert_forgotten(mem, ALICE, [episode.id])


def test_a_crash_mid_forget_is_finished_on_the_next_open(
    home: Path, embedder: Embedder, monkeypatch
) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        gone, _ = _fill(mem)

        def crash(*args, **kwargs):
            raise RuntimeError("power cut")

        monkeypatch.setattr(erasure_removal, "remove", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            mem.forget(gone, reason="crash test", user_id="alice")
        monkeypatch.undo()
        # journaled and tombstoned, nothing removed yet
        pending = journal_of(mem).forget_jobs(statuses=["started"])
        assert len(pending) == 1
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        report = erasure.reports(mem)[0]
        assert report.status == "done" and report.resumed
        assert_forgotten(mem, ALICE, report.forgotten_ids)
        with pytest.raises(NotFound):
            mem.get(gone)


def test_a_handoff_copy_in_another_agents_scope_is_derived_and_needs_the_users_scope(
    mem: Memory,
) -> None:
    from agentmem import handoff

    researcher = mem.for_agent("researcher", user_id="alice", team="lab")
    writer = mem.for_agent("writer", user_id="alice", team="lab")
    secret = researcher.add(FORGOTTEN)
    copy = handoff(researcher, writer, ids=[secret.id])[0]
    with pytest.raises(PermissionDenied, match="derived"):
        mem.forget(secret.id, reason="x", user_id="alice", agent_id="researcher")
    report = mem.forget(secret.id, reason="x", user_id="alice")
    assert set(report.forgotten_ids) == {secret.id, copy.id}
    assert_forgotten(mem, ALICE, report.forgotten_ids)


class _WordHash(Embedder):
    """A model-free embedder: each word adds to one of 32 dimensions (for tests of cost)."""

    name = "word-hash-32"

    @property
    def dim(self) -> int:
        return 32

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % 32] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_forgetting_a_whole_user_groups_its_conversations_once(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The windows of a whole-scope removal come from one grouping of the scope, not one per
    batch of forget.batch_size records (that was quadratic in the user's size), and drop the
    same cached window vectors as one batch does."""
    turns = [
        {"text": f"Alice: turn {i} about topic {i % 7}", "metadata": {"session": i // 30}}
        for i in range(120)
    ]
    removed = []
    for batch_size in (120, 10):
        settings = Settings.load(home=home / str(batch_size), forget={"batch_size": batch_size})
        with Memory(settings=settings, embedder=_WordHash()) as m:
            m.add_many(turns, user_id="alice")
            checked = [0]
            real = erasure_removal.in_conversation

            def counting(*args: object, _real=real, _n=checked, **kwargs: object) -> bool:
                _n[0] += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(erasure_removal, "in_conversation", counting)
            report = m.forget(reason="erasure request", user_id="alice")
            monkeypatch.setattr(erasure_removal, "in_conversation", real)
            assert report.removed["records"] == 120
            removed.append(report.removed["cached_vectors"])
            # Once to group each record, once to window it: 12 batches regrouped 12 x 120.
            assert checked[0] <= 2 * 120, (batch_size, checked[0])
    assert removed[0] == removed[1] > 0
