"""Linked notes that evolve, user/agent profiles and the context strategy (issue 15).

LLM-free by default; the LLM paths run through litellm with ``mock_response``."""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, model_validator

from agentmem import Memory, Settings, extract_pending, writing
from agentmem.embedders import Embedder
from agentmem.errors import (
    Conflict,
    InvalidLink,
    InvalidProfile,
    NotFound,
    ProfileSchemaChanged,
    ValidationError,
)
from agentmem.lineage import evolved_from
from agentmem.models import MemoryKind, MemoryRecord, Scope, utcnow
from agentmem.notes import LinkType
from agentmem.notes import api as notes_api
from agentmem.notes.describe import keywords_of, tags_of
from agentmem.notes.linker import merged, shared_terms
from agentmem.semantic.llm import LLMClient, load_litellm
from agentmem.stores import WriteBatch

USER = "alice"
MODEL = "ollama/llama3"


def open_mem(home: Path, embedder: Embedder, **settings: Any) -> Memory:
    """A memory with evolution on (off by default, see docs/configuration.md)."""
    notes = {"evolve": True, **settings.pop("notes", {})}
    return Memory(
        settings=Settings.load(home=home, adapters="off", notes=notes, **settings),
        embedder=embedder,
    )


@pytest.fixture
def mem(home: Path, embedder: Embedder) -> Iterator[Memory]:
    with open_mem(home, embedder) as m:
        yield m


def note(mem: Memory, text: str, user_id: str = USER) -> Any:
    return mem.add(text, kind="semantic", user_id=user_id)


# links and evolution ---------------------------------------------------------------------


def test_new_note_is_linked_typed_and_evolves_its_neighbour(mem: Memory) -> None:
    a = note(mem, "Alice loves hiking in the Alps with her dog.")
    b = note(mem, "Alice loves hiking in the Alps with her dog Rex every summer.")
    assert {"keywords", "tags", "context"} <= set(b.metadata)
    (link,) = mem.links(b.id, user_id=USER)
    assert (link.source_id, link.target_id, link.type) == (b.id, a.id, LinkType.ELABORATES)
    assert link.made_by == "rules" and "cosine" in link.reason
    (back,) = mem.links(a.id)
    assert back.direction == "in" and back.other_id == b.id
    # The neighbour's context and keywords changed, as a new version in its history.
    evolved = mem.get(a.id)
    assert evolved.version == 2 and b.text in evolved.metadata["context"]
    assert "rex" in evolved.metadata["keywords"]
    entry = mem.history(a.id)[-1]
    assert entry.old_metadata is not None and entry.new_metadata is not None
    assert entry.actor == "notes:rules"
    assert entry.old_metadata["context"] != entry.new_metadata["context"]
    # ... and can be undone.
    assert evolved_from(evolved) == [b.id]  # credited with what it added
    undone = mem.notes.undo(a.id, user_id=USER)
    assert undone.metadata["context"] == entry.old_metadata["context"]
    assert evolved_from(undone) == []
    assert mem.history(a.id)[-1].actor == "notes:undo"
    with pytest.raises(NotFound, match="no evolution left"):
        mem.notes.undo(a.id)


def test_keywords_and_context_of_non_ascii_notes_are_whole_words(mem: Memory) -> None:
    """Keywords are the note's words in any script, never fragments cut at a non-ASCII
    letter ('rgen', 'nchen'), and the context line names them."""
    a = note(mem, "Jürgen wohnt in München und liebt Käse.")
    assert {"jürgen", "münchen", "käse"} <= set(a.metadata["keywords"])
    assert a.metadata["context"] == "Note about jürgen, wohnt, münchen."
    b = note(mem, "José vive en Málaga.")
    assert b.metadata["keywords"] == ["josé", "vive", "málaga"]


def test_keywords_entities_and_subjects_match_whatever_their_case_and_form() -> None:
    """ "İstanbul".lower() is "i̇stanbul" (an i and a combining dot): notes about Istanbul,
    İstanbul and ISTANBUL shared no keyword, and a decomposed "café" none with a composed one.
    Keywords, tags and the terms compared are folded as entity names are (NFKC, case-folded,
    the Turkish dot dropped), and a keyword stored lower-cased before matches too."""
    assert keywords_of("Trip to İstanbul and İZMİR", 5) == ["trip", "istanbul", "izmir"]
    assert keywords_of("Cafe\u0301 in ISTANBUL", 5) == ["café", "istanbul"]
    assert tags_of({"fact_type": "event", "subject": "İrem"}) == ["event", "about:irem"]

    def record(n: int, **metadata: Any) -> MemoryRecord:
        return MemoryRecord(
            id=f"00000000-0000-4000-8000-{n:012d}",
            scope=Scope(user_id=USER),
            kind=MemoryKind.SEMANTIC,
            text="a note",
            metadata=metadata,
        )

    old = record(1, keywords=["i\u0307stanbul", "trip"], entities=["İzmir"], subject="İrem")
    new = record(2, keywords=["istanbul"], entities=["izmir"], subject="irem")
    assert shared_terms(old, new) == ["istanbul", "izmir"]
    assert merged(["i\u0307stanbul"], ["istanbul", "izmir"], 10) == ["i\u0307stanbul", "izmir"]


def test_undo_keeps_a_hand_edit_made_after_the_evolution(mem: Memory) -> None:
    """Undo puts back what an evolution replaced, never over a change made since."""
    a = note(mem, "Alice loves hiking in the Alps with her dog.")
    note(mem, "Alice loves hiking in the Alps with her dog Rex every summer.")
    evolved = mem.get(a.id)
    mine = {**evolved.metadata, "context": "my own words", "source": "crm"}
    mem.update(a.id, metadata=mine)
    with pytest.raises(Conflict, match="context changed after the evolution"):
        mem.notes.undo(a.id, user_id=USER)
    kept = mem.get(a.id)
    assert kept.metadata["context"] == "my own words" and kept.version == evolved.version + 1
    # A change to a field the evolution did not set does not stand in the way.
    mem.update(a.id, metadata={**evolved.metadata, "source": "crm"})
    undone = mem.notes.undo(a.id, user_id=USER)
    assert (
        undone.metadata["source"] == "crm"
        and undone.metadata["context"] != evolved.metadata["context"]
    )


def test_undo_after_an_undo_and_a_new_evolution_undoes_the_new_one(mem: Memory) -> None:
    """Each undo is paired with the evolution it undid: evolve, evolve, undo, evolve, undo
    undoes the last evolution, then the first; nothing is left after that."""
    base = note(mem, "Maya is training for a marathon in October.", user_id="maya")
    start = base.metadata["context"]
    note(mem, "Maya runs 40 km a week to train for the marathon.", user_id="maya")
    first = mem.get(base.id).metadata["context"]
    note(mem, "Maya's marathon training includes interval runs on Tuesdays.", user_id="maya")
    assert mem.notes.undo(base.id).metadata["context"] == first
    note(mem, "Maya plans a long run of 30 km before the October marathon.", user_id="maya")
    assert mem.get(base.id).metadata["context"] != first  # a third evolution
    assert mem.notes.undo(base.id).metadata["context"] == first
    assert mem.notes.undo(base.id).metadata["context"] == start
    with pytest.raises(NotFound, match="no evolution left"):
        mem.notes.undo(base.id)


def test_undo_passes_over_an_evolution_a_forget_took_back(mem: Memory) -> None:
    """The latest evolver forgotten (its additions withdrawn), undo takes back the evolution
    before it at once; an undo made before a forget still counts against the one it undid."""
    texts = (
        "{} trains for the Berlin marathon every Sunday morning.",
        "{} runs the Berlin marathon in September with her running club.",
        "The Berlin marathon running club of {} meets Sunday morning for marathon training.",
    )
    a, b, c = (note(mem, t.format("Maya"), user_id="maya") for t in texts)
    assert "September" in mem.get(a.id).metadata["context"]
    assert "club" in mem.get(a.id).metadata["context"].split(" | ")[-1]
    mem.forget(c.id, reason="test", user_id="maya")
    undone = mem.notes.undo(a.id, user_id="maya")
    assert (undone.metadata["context"], undone.metadata["keywords"]) == (
        a.metadata["context"], a.metadata["keywords"]
    )  # fmt: skip
    with pytest.raises(NotFound, match="no evolution left"):
        mem.notes.undo(a.id, user_id="maya")
    a, b, c = (note(mem, t.format("Ines"), user_id="ines") for t in texts)
    context = mem.notes.undo(a.id, user_id="ines").metadata["context"]  # c's evolution undone
    assert "September" in context and "meets" not in context
    mem.forget(c.id, reason="test", user_id="ines")  # c's additions were already gone
    mem.forget(b.id, reason="test", user_id="ines")  # b's are withdrawn: nothing left
    with pytest.raises(NotFound, match="no evolution left"):
        mem.notes.undo(a.id, user_id="ines")


def test_a_note_rewritten_by_hand_is_described_and_linked_by_its_new_text(
    home: Path, embedder: Embedder
) -> None:
    """update(id, text=...) of a note makes the keywords, tags and context describe() gave the
    old text again from the new one, and chooses the rules' links again: one the old text
    earned goes, the notes the new text relates to are linked. A description the caller set
    stays, and so does what evolution added (notes.undo takes that back)."""
    with open_mem(home / "plain", embedder, notes={"evolve": False}) as mem:
        tea = note(mem, "Maya loves green tea in the morning.", user_id="maya")
        other = note(mem, "Maya drinks green tea with her breakfast every morning.", user_id="maya")
        violin = note(mem, "Maya plays the violin in the city orchestra.", user_id="maya")
        assert [link.other_id for link in mem.links(tea.id, user_id="maya")] == [other.id]
        text = "Maya plays the violin in an orchestra on Fridays."
        updated = mem.update(tea.id, text=text, user_id="maya")
        assert updated.metadata["keywords"] == ["maya", "plays", "violin", "orchestra", "fridays"]
        assert updated.metadata["context"] == "Note about maya, plays, violin."
        assert mem.get(tea.id).metadata == updated.metadata
        links = mem.links(tea.id, user_id="maya")
        assert [(link.other_id, link.direction) for link in links] == [(violin.id, "out")]
        assert links[0].made_by == "rules" and "violin" in links[0].reason
        mine = mem.add("Maya bakes bread.", user_id="maya", kind="semantic",
                       metadata={"keywords": ["baking"], "context": "My words."})  # fmt: skip
        kept = mem.update(mine.id, text="Maya bakes rye bread.", user_id="maya").metadata
        assert (kept["keywords"], kept["context"]) == (["baking"], "My words.")
    with open_mem(home / "evolving", embedder) as mem:
        tea = note(mem, "Maya loves green tea in the morning.", user_id="maya")
        note(mem, "Maya drinks green tea with her breakfast every morning.", user_id="maya")
        meta = mem.update(tea.id, text=text, user_id="maya").metadata
        assert "tea" not in meta["keywords"] and {"violin", "breakfast"} <= set(meta["keywords"])
        assert meta["context"] == (
            "Note about maya, plays, violin. | Maya drinks green tea with her breakfast every "
            "morning."
        )


def test_contradicting_fact_links_to_what_it_supersedes(mem: Memory) -> None:
    mem.add("Alice: I live in Paris.", user_id=USER, infer=True, event_time="2023-01-01")
    mem.add("Alice: I moved to Berlin.", user_id=USER, infer=True, event_time="2023-06-01")
    facts = mem.list(user_id=USER, kinds="semantic", include_invalidated=True)
    new = next(f for f in facts if "Berlin" in f.text)
    links = mem.links(new.id)
    (contradicts,) = [link for link in links if link.type is LinkType.CONTRADICTS]
    assert "supersedes" in contradicts.reason and contradicts.score > 0.3  # its own cosine


def test_bad_links_are_refused(mem: Memory) -> None:
    a = note(mem, "Alice plays the violin.")
    other = note(mem, "Bob plays the violin.", user_id="bob")
    with pytest.raises(InvalidLink, match="itself"):
        mem.notes.link(a.id, a.id)
    with pytest.raises(InvalidLink, match="different scopes"):
        mem.notes.link(a.id, other.id)
    with pytest.raises(InvalidLink, match="unknown link type"):
        mem.notes.link(a.id, other.id, type="loves")
    with pytest.raises(NotFound):  # the other scope's note is invisible from Alice's scope
        mem.notes.link(a.id, other.id, user_id=USER)
    assert mem.links(other.id, user_id="bob") == []
    with pytest.raises(NotFound):
        mem.links(other.id, user_id=USER)
    for reason in (5, "\ud800"):  # a raw TypeError / UnicodeEncodeError before
        with pytest.raises(ValidationError, match="reason"):
            mem.notes.link(a.id, note(mem, "Alice tunes it daily.").id, reason=reason)  # type: ignore[arg-type]


def test_link_cycles_expand_once_and_search_fuses_the_links_channel(mem: Memory) -> None:
    a = note(mem, "Rex is Alice's golden retriever.")
    b = note(mem, "The quarterly tax filing is due in April.")
    c = note(mem, "Grandma's apple pie recipe needs cinnamon.")
    for src, dst in ((a, b), (b, c), (c, a), (b, a)):  # a cycle, and both directions
        mem.notes.link(src.id, dst.id, reason="test", user_id=USER)
    scope = mem.backends.store
    reached = notes_api.expand(mem.backends, [a.id], mem.get(a.id).scope, depth=3)
    assert sorted(i for i, _ in reached) == sorted([b.id, c.id])  # each once, seed excluded
    assert scope.link_rows([a.id])  # stored
    plain = [h.record.id for h in mem.search("golden retriever dog", user_id=USER, k=3)]
    expanded = mem.search("golden retriever dog", user_id=USER, k=3, expand_links=1)
    by_id = {h.record.id: h for h in expanded}
    assert "links" in by_id[b.id].channels
    assert [h.record.id for h in expanded].index(b.id) <= plain.index(b.id)
    with pytest.raises(ValueError, match="expand_links"):
        mem.search("dog", user_id=USER, expand_links=9)


def test_a_linked_note_no_channel_ranked_is_found_by_expansion(mem: Memory) -> None:
    rex = note(mem, "Rex is Alice's golden retriever.")
    for text in (
        "Rex chews tennis balls in the garden.",
        "The golden retriever puppy class meets on Saturdays.",
        "Dogs need a walk before the vet appointment.",
    ):
        note(mem, text)
    pie = note(mem, "Grandma's apple pie recipe needs cinnamon.")
    mem.notes.link(rex.id, pie.id, reason="test", user_id=USER)
    mem.settings.retrieval.candidates = 1  # each channel ranks max(1, k) = 2 notes: not the pie
    mem.settings.retrieval.weights = {**mem.settings.retrieval.weights, "links": 10.0}
    plain = mem.search("golden retriever dog", user_id=USER, k=2)
    assert pie.id not in {h.record.id for h in plain}
    expanded = mem.search("golden retriever dog", user_id=USER, k=2, expand_links=1)
    by_id = {h.record.id: h for h in expanded}
    assert pie.id in by_id and "links" in by_id[pie.id].channels
    assert by_id[pie.id].record.text == pie.text


def test_expansion_does_not_walk_through_a_deleted_note(mem: Memory) -> None:
    """A - B - C with B deleted: links of C list nothing, and expansion from A reaches
    neither B nor C (the link rows stay until a forget)."""
    rex = note(mem, "Rex is Alice's golden retriever.")
    gone = note(mem, "The quarterly tax filing is due in April.")
    pie = note(mem, "Grandma's apple pie recipe needs cinnamon.")
    mem.notes.link(rex.id, gone.id, reason="test", user_id=USER)
    mem.notes.link(gone.id, pie.id, reason="test", user_id=USER)
    mem.delete(gone.id)
    assert mem.links(pie.id) == [] and mem.backends.store.link_rows([gone.id])
    assert notes_api.expand(mem.backends, [rex.id], mem.get(rex.id).scope, depth=3) == []
    hits = mem.search("golden retriever dog", user_id=USER, expand_links=2)
    assert not [h for h in hits if "links" in h.channels]


def test_runaway_evolution_is_bounded_on_1000_near_duplicates(
    home: Path, embedder: Embedder
) -> None:
    scope = Scope.of(user_id=USER)
    with open_mem(home, embedder, notes={"max_evolve_per_add": 1, "max_links": 3}) as mem:
        drinks = ("green tea", "black tea", "oolong", "mint tea")
        reports = []
        for start in range(0, 1000, 250):
            records = [
                writing.new_record(
                    mem.backends, scope, f"Alice likes {drinks[i % 4]} {i}.", kind="semantic"
                )
                for i in range(start, start + 250)
            ]
            reports.append(notes_api.insert(mem.backends, records))
        total = sum(r.notes for r in reports)
        evolved = sum(r.evolved for r in reports)
        links = sum(r.links for r in reports)
        candidates = sum(r.candidates for r in reports)
        settings = mem.settings.notes
        assert total == 1000
        assert 0 < evolved <= settings.max_evolve_per_add * total
        assert links <= settings.max_links * total
        # Candidates per note: the index's nearest plus at most as many from its own batch.
        assert candidates <= 2 * settings.candidates * total
        # Work is linear: each write's evolutions are one version per neighbour it changed,
        # never a cascade, and every context stays within its cap.
        notes_versions = 0
        for r in mem.list(user_id=USER, kinds="semantic", limit=2000):
            assert len(r.metadata["context"]) <= settings.max_context_chars
            assert len(r.metadata["keywords"]) <= settings.max_keywords
            notes_versions += r.version - 1
        assert notes_versions == evolved


# profiles ----------------------------------------------------------------------------------


def test_profile_set_get_types_and_history(mem: Memory) -> None:
    profile = mem.profile(user_id=USER)
    view = profile.set(location="Paris", preferences=["jazz"], age="31")
    assert view.model.location == "Paris" and view.model.age == 31
    assert view.fields["location"].actor == "api"
    with pytest.raises(InvalidProfile, match="unknown profile field 'hobby'"):
        profile.set(hobby="chess")
    with pytest.raises(InvalidProfile, match="'age' expects"):
        profile.set(age="old", location="Rome")
    assert profile.get().model.location == "Paris"  # nothing written on error
    for bad in (
        lambda: profile.set("abc"),  # type: ignore[arg-type]
        lambda: profile.set(location="x", reason=5),  # type: ignore[arg-type]
        lambda: profile.set(location="a\x00b"),
        lambda: profile.history(["location"]),  # type: ignore[arg-type]
        lambda: profile.migrate(rename=[("location", "name")]),  # type: ignore[arg-type]
        lambda: profile.migrate(drop="location"),
    ):
        with pytest.raises(InvalidProfile):
            bad()
    assert profile.get().model.location == "Paris"
    profile.set(location="Berlin", reason="moved")
    assert [v.value for v in profile.history("location")] == ["Paris", "Berlin"]
    assert profile.history("location")[0].superseded_at is not None
    assert mem.profile(user_id="bob").get().fields == {}  # isolated per user
    agent = mem.profile(agent_id="planner")  # an agent's own profile
    agent.set(goals=["keep plans short"])
    assert agent.key.startswith("agent:") and agent.get().model.goals == ["keep plans short"]
    assert profile.get().model.goals == []


class Numbers(BaseModel):
    score: float | None = None
    counts: list[int] = []
    flag: bool | None = None


def test_profile_refuses_a_bool_for_a_number_and_nan_or_inf(mem: Memory) -> None:
    """Lax validation stored ``age=True`` as 1 and kept NaN and infinities, although a wrong
    type is an error: now InvalidProfile naming the field, and nothing written."""
    profile = mem.profile(user_id=USER)
    profile.set(age=30)
    with pytest.raises(InvalidProfile, match=r"'age' expects int \| None, got True.*bool"):
        profile.set(age=True, location="Rome")
    assert profile.get().model.age == 30 and profile.get().model.location is None
    numbers = mem.profile(user_id="nina", model=Numbers)
    for bad in ({"score": float("nan")}, {"score": "inf"}, {"score": False},
                {"counts": [1, True]}):  # fmt: skip
        with pytest.raises(InvalidProfile, match=r"'(score|counts)' expects"):
            numbers.set(bad)
    assert numbers.get().fields == {}
    view = numbers.set(score="2.5", counts=["3"], flag=True)  # lax where nothing is lost
    assert view.model == Numbers(score=2.5, counts=[3], flag=True)


def test_profile_is_built_from_facts_and_revised_by_a_newer_fact(mem: Memory) -> None:
    mem.add("Alice: I live in Paris and I love jazz.", user_id=USER, infer=True,
            event_time="2023-01-01")  # fmt: skip
    view = mem.profile(user_id=USER).get()
    assert view.model.location == "Paris"
    assert view.fields["location"].sources and "jazz" in view.model.preferences[0]
    # Deferred to consolidation: the profile follows when the pending episode is extracted.
    mem.add("Alice: I moved to Berlin.", user_id=USER, infer="deferred", event_time="2023-06-01")
    assert mem.profile(user_id=USER).get().model.location == "Paris"
    extract_pending(mem, {"user_id": USER})
    profile = mem.profile(user_id=USER)
    assert profile.get().model.location == "Berlin"
    old, new = profile.history("location")
    assert old.value == "Paris" and old.valid_to is not None and new.actor == "facts:rules"
    assert profile.refresh() == 0  # idempotent


@pytest.mark.parametrize(
    "ending", ["Maya no longer works at Initech.", "Maya: I no longer work at Initech."]
)
def test_a_fact_that_stops_holding_clears_the_profile_value_drawn_from_it(
    mem: Memory, ending: str
) -> None:
    """Third person or first: the employer goes, and the graph's relation has ended."""
    mem.add("Maya works at Initech as a nurse.", user_id="maya", infer=True)
    assert mem.profile(user_id="maya").get().model.employer == "Initech"
    mem.add(ending, user_id="maya", infer=True)
    assert mem.profile(user_id="maya").get().model.employer is None
    relations = {n.relation.predicate for n in mem.graph.neighbors("Maya", user_id="maya")}
    assert "works_at" not in relations and "ended_works_at" in relations


def test_refresh_clears_values_whose_facts_were_invalidated_or_deleted(mem: Memory) -> None:
    mem.add("Maya: I moved to Eastgate.", user_id="maya", infer=True)
    mem.add("Maya: I love hiking.", user_id="maya", infer=True)
    mem.profile(user_id="maya").set(name="Maya")  # set by hand: never cleared by facts
    facts = mem.list(kinds="semantic", user_id="maya")
    moved = next(f for f in facts if "Eastgate" in f.text)
    hiking = next(f for f in facts if "hiking" in f.text)
    profile = mem.profile(user_id="maya")
    assert profile.get().model.location == "Eastgate" and profile.get().model.preferences
    # Written below the API (as another process or an old version might have), so the
    # profile has not followed yet; invalidate() and delete() revise it at once.
    writing.update(mem.backends, moved.id, None, invalidate=True)
    mem.backends.store.apply(WriteBatch(deletes=[hiking.id]))
    assert profile.refresh() == 2
    model = profile.get().model
    assert (model.location, model.preferences, model.name) == (None, [], "Maya")
    assert profile.refresh() == 0  # idempotent


def test_a_list_item_follows_its_fact_when_the_fact_is_rewritten(mem: Memory) -> None:
    """update(id, text=...) of a fact that fed a list field replaces its item there (once, the
    other items kept); a routine rewritten into a preference leaves routines; refresh() finds
    an item a rewrite below the API left stale, and then nothing to do."""
    for text in ("I love green tea.", "I love jazz.", "I go running every morning."):
        mem.add(text, user_id="maya", infer=True)
    facts = mem.list(kinds="semantic", user_id="maya")
    tea, jazz, run = (next(f for f in facts if w in f.text) for w in ("tea", "jazz", "running"))
    profile = mem.profile(user_id="maya")
    mem.update(tea.id, text="I love black coffee.", user_id="maya")
    view = profile.get()
    assert view.model.preferences == ["User loves jazz.", "I love black coffee."]
    assert view.fields["preferences"].sources == [jazz.id, tea.id]
    mem.update(run.id, text="I love running.", user_id="maya")
    model = profile.get().model
    assert model.routines == [] and model.preferences[-1] == "I love running."
    assert profile.refresh() == 0
    stored = mem.get(jazz.id)
    below = stored.model_copy(update={"text": "User loves blues.", "version": stored.version + 1})
    mem.backends.store.apply(WriteBatch(updates=[below]))  # not through update(): no revision
    assert "User loves jazz." in profile.get().model.preferences
    assert profile.refresh() == 1
    assert profile.get().model.preferences == [
        "I love black coffee.", "I love running.", "User loves blues."
    ]  # fmt: skip
    assert profile.refresh() == 0


def test_a_fact_edited_with_its_metadata_revises_the_profile_at_once(mem: Memory) -> None:
    """update(id, text=..., metadata=...), and metadata= alone, changing the value an extracted
    fact gives moves the owner's profile at once, as update(text=...) does."""
    mem.add("Maya: I live in Lisbon.", user_id="maya", infer=True)
    fact = next(f for f in mem.list(kinds="semantic", user_id="maya") if "Lisbon" in f.text)
    profile = mem.profile(user_id="maya")
    assert profile.get().model.location == "Lisbon"
    mem.update(fact.id, text="Maya lives in Madrid.", user_id="maya",
               metadata={**fact.metadata, "value": "Madrid"})  # fmt: skip
    assert profile.get().model.location == "Madrid"
    mem.update(fact.id, metadata={**fact.metadata, "value": "Porto"}, user_id="maya")
    assert profile.get().model.location == "Porto"
    assert profile.refresh() == 0


def test_invalidate_and_delete_revise_the_profile_at_once(mem: Memory) -> None:
    """A value drawn from a fact removed by hand goes with it, without refresh()."""
    mem.add("Ines: I live in Lyon.", user_id="ines", infer=True, event_time="2022-01-01")
    mem.add("Ines: I love hiking.", user_id="ines", infer=True)
    facts = mem.list(kinds="semantic", user_id="ines")
    lyon = next(f for f in facts if "Lyon" in f.text)
    hiking = next(f for f in facts if "hiking" in f.text)
    profile = mem.profile(user_id="ines")
    assert profile.get().model.location == "Lyon" and profile.get().model.preferences
    # an end still ahead is scheduled: the fact holds until then, and so does the value
    mem.invalidate(lyon.id, valid_to=utcnow() + timedelta(days=30), user_id="ines")
    assert profile.get().model.location == "Lyon"
    mem.invalidate(lyon.id, valid_to="2023-01-01", user_id="ines")
    assert profile.get().model.location is None
    assert profile.get(as_of="2022-06-01").model.location == "Lyon"  # held until its end
    assert profile.get(as_of="2023-06-01").model.location is None
    mem.delete(hiking.id, user_id="ines")
    assert profile.get().model.preferences == []
    assert "## Profile" not in mem.context("where does Ines live?", user_id="ines").text
    assert profile.refresh() == 0  # nothing left for refresh() to do


def test_profile_first_in_context_within_budget(mem: Memory) -> None:
    mem.profile(user_id=USER).set(location="Berlin", goals=["learn German"])
    note(mem, "Alice plays chess on Sundays.")
    ctx = mem.context("what does alice do", user_id=USER, max_tokens=200)
    assert ctx.text.startswith("## Profile\n- location: Berlin") and ctx.tokens <= 200
    tiny = mem.context("what does alice do", user_id=USER, max_tokens=12)
    assert tiny.tokens <= 12


def test_context_as_of_shows_the_profile_as_it_stood_then(mem: Memory) -> None:
    """A past ``as_of`` never puts today's profile above the facts of that time."""
    for text, when in [
        ("I live in Paris.", "2022-01-01"),
        ("I work at Acme.", "2022-01-01"),
        ("I moved to Berlin.", "2023-01-01"),
        ("I started a new job at Globex.", "2023-02-01"),
    ]:
        mem.add(f"Maya: {text}", user_id="maya", infer=True, event_time=when)
    past = mem.context("where did Maya live?", user_id="maya", max_tokens=300,
                       as_of="2022-06-01")  # fmt: skip
    assert past.profile == "## Profile\n- location: Paris\n- employer: Acme"
    profile = mem.profile(user_id="maya")
    assert profile.get(as_of="2023-01-15").model.employer == "Acme"
    assert profile.get(as_of="2021-01-01").fields == {}
    now = mem.context("where does Maya live?", user_id="maya", max_tokens=300)
    assert now.profile == "## Profile\n- location: Berlin\n- employer: Globex"


class Travel(BaseModel):
    city: str | None = None
    favourite_food: str | None = None
    visited: list[str] = []


def test_context_shows_a_profile_kept_with_a_custom_model(
    mem: Memory, caplog: pytest.LogCaptureFixture
) -> None:
    """context() read every profile with UserProfile, so one kept with the user's own model
    was left out, with a warning advising a migrate that would drop its fields: now it is
    shown as stored (now and as of a past time), and nothing is migrated or logged."""
    profile = mem.profile(user_id="maya", model=Travel)
    profile.set(city="Porto", favourite_food="bacalhau", visited=["Lisbon", "Braga"])
    between = utcnow()
    profile.set(city="Coimbra")
    note(mem, "Maya likes trains.", user_id="maya")
    with caplog.at_level(logging.WARNING):
        now = mem.context("what should I know?", user_id="maya", max_tokens=2000)
        past = mem.context("what should I know?", user_id="maya", max_tokens=2000,
                           as_of=between)  # fmt: skip
    shown = "- favourite food: bacalhau\n- visited: Lisbon; Braga"
    assert now.profile == f"## Profile\n- city: Coimbra\n{shown}"
    assert past.profile == f"## Profile\n- city: Porto\n{shown}"
    assert "profile" not in caplog.text.lower()
    assert {v.actor for v in profile.history()} == {"api"}


def test_a_value_reported_late_for_an_earlier_period_is_in_the_past_profile(mem: Memory) -> None:
    """Paris (2020), Berlin (2023), then a move to Rome dated June 2021: search says Rome for
    July 2021, and so do the profile and the context's profile block; the current value and
    the earlier years stay, and observing the fact again adds no second version."""
    for text, when in [
        ("I live in Paris.", "2020-01-10"),
        ("I live in Berlin.", "2023-02-01"),
        ("I moved to Rome in June 2021.", "2024-05-01"),
    ]:
        mem.add(f"Maya: {text}", user_id="maya", infer=True, event_time=when)
    profile = mem.profile(user_id="maya")
    then = {when: profile.get(as_of=when).model.location for when in ("2020-06-01", "2021-07-01")}
    assert then == {"2020-06-01": "Paris", "2021-07-01": "Rome"}
    assert profile.get().model.location == "Berlin"
    past = mem.context("where did Maya live?", user_id="maya", max_tokens=300,
                       as_of="2021-07-01")  # fmt: skip
    assert past.profile == "## Profile\n- location: Rome"
    versions = len(profile.history("location"))
    rome = [f for f in mem.list(user_id="maya", kinds="semantic", include_invalidated=True)
            if "Rome" in f.text]  # fmt: skip
    assert profile.observe(rome) == 0 and len(profile.history("location")) == versions


class ProfileV1(BaseModel):
    city: str | None = None
    age: int | None = None


class ProfileV2(BaseModel):
    age: float | None = None


class ProfileV3(BaseModel):
    age: list[int] = []


def test_changed_profile_model_migrates_or_fails_clearly(mem: Memory) -> None:
    mem.profile(user_id=USER, model=ProfileV1).set(city="Oslo", age=40)
    with pytest.raises(ProfileSchemaChanged, match="'city' is not a field of ProfileV2"):
        mem.profile(user_id=USER, model=ProfileV2).get()
    with pytest.raises(ProfileSchemaChanged, match="age=40"):
        mem.profile(user_id=USER, model=ProfileV3).get()
    profile = mem.profile(user_id=USER, model=ProfileV2)
    with pytest.raises(InvalidProfile, match="no stored field 'town'"):
        profile.migrate(drop=["town"])
    view = profile.migrate(drop=["city"])  # retired, kept in history
    assert view.model.age == 40.0 and view.fields["age"].actor == "migrate"
    assert [v.value for v in profile.history("age")] == [40, 40.0]
    assert mem.profile(user_id=USER, model=ProfileV1).history("city")[0].value == "Oslo"


class RenamedV1(BaseModel):
    city: str | None = None


class RenamedV2(BaseModel):
    city: str | None = None


def test_a_renamed_profile_model_with_the_same_fields_migrates_nothing(mem: Memory) -> None:
    """The stored type named the model's class, so a class renamed with the same fields and
    types wrote a ``migrate`` version of every field on the next read."""
    mem.profile(user_id=USER, model=RenamedV1).set(city="Porto")
    assert mem.profile(user_id=USER, model=RenamedV2).get().model.city == "Porto"
    history = mem.profile(user_id=USER, model=RenamedV2).history("city")
    assert [(v.value, v.actor) for v in history] == [("Porto", "api")]


class WithRequired(BaseModel):
    city: str  # no default: an empty profile could never be built


class Checked(BaseModel):
    low: int | None = None
    high: int | None = None

    @model_validator(mode="after")
    def ordered(self) -> Checked:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low above high")
        return self


class Unchecked(BaseModel):
    low: int | None = None
    high: int | None = None


def test_a_profile_model_that_cannot_be_built_is_refused_clearly(mem: Memory) -> None:
    """A field without a default is refused when the profile is opened (InvalidProfile naming
    it), not by pydantic on the first get(); a model validator refusing stored values
    together is an InvalidProfile too."""
    with pytest.raises(InvalidProfile, match=r"required fields \(city\).*give every field"):
        mem.profile(user_id=USER, model=WithRequired)
    profile = mem.profile(user_id=USER, model=Checked)
    profile.set(low=5)
    with pytest.raises(InvalidProfile, match="refuses its stored values together"):
        profile.set(high=1)  # each value is an int; the model refuses the pair
    assert profile.get().model == Checked(low=5)  # nothing written
    mem.profile(user_id=USER, model=Unchecked).set(high=1)  # stored under a laxer model
    for read in (profile.get, lambda: profile.get(as_of="2999-01-01")):
        with pytest.raises(InvalidProfile, match="refuses its stored values together"):
            read()


def test_a_profile_builds_its_field_validators_once_per_model(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile's validators are built once per model (and anew for a model whose fields
    changed), not per read; context() reads the profile as stored and builds none."""
    from agentmem.profiles import values as profile_values

    built: list[Any] = []
    real = profile_values.TypeAdapter

    def counting(annotation: Any) -> Any:
        built.append(annotation)
        return real(annotation)

    monkeypatch.setattr(profile_values, "TypeAdapter", counting)
    monkeypatch.setattr(profile_values, "_ADAPTERS", weakref.WeakKeyDictionary())  # none built

    class Once(BaseModel):
        city: str | None = None
        age: int | None = None

    mem.profile(user_id=USER, model=Once).set(city="Oslo", age=40)
    for _ in range(3):
        assert mem.profile(user_id=USER, model=Once).get().model.city == "Oslo"
        mem.context("where does she live?", user_id=USER, max_tokens=300)
    assert len(built) == 2
    Once.model_fields["age"].annotation = float | None  # a changed field: built again
    Once.model_rebuild(force=True)
    assert mem.profile(user_id=USER, model=Once).get().model.age == 40.0
    assert len(built) == 4


# context strategy ------------------------------------------------------------------------------


def test_context_strategy_auto_forced_and_reasoned(home: Path, embedder: Embedder) -> None:
    things = ["walked the dog", "baked bread", "fixed my bike", "painted the fence", "read Dune",
              "called my sister", "planted tomatoes", "went swimming"]  # fmt: skip
    turns = [f"Alice: on day {i} I {things[i % 8]} with {i} friends." for i in range(40)]
    with open_mem(home, embedder) as mem:
        mem.add_many(turns[:5], user_id=USER)
        small = mem.context("what did alice do", user_id=USER, max_tokens=2000)
        assert small.strategy == "full_history" and "fits" in small.strategy_reason
        assert len(small.records) == 5
        mem.add_many(turns[5:], user_id=USER)
        big = mem.context("what did alice do", user_id=USER, max_tokens=150)
        assert big.strategy == "retrieval" and "over the" in big.strategy_reason
    with open_mem(home, embedder, context={"strategy": "retrieval"}) as mem:
        forced = mem.context("what did alice do", user_id=USER, max_tokens=2000)
        assert forced.strategy == "retrieval" and "forced" in forced.strategy_reason
    with open_mem(home, embedder, context={"strategy": "full_history"}) as mem:
        newest = mem.context("what did alice do", user_id=USER, max_tokens=150)
        assert newest.strategy == "full_history" and newest.tokens <= 150
        assert "day 39" in newest.text and "day 0 " not in newest.text


def test_forced_full_history_over_the_record_cap_shows_the_newest(
    home: Path, embedder: Embedder
) -> None:
    """A history longer than max_history_records is read newest first, so forced
    full_history keeps the newest memories (not the oldest ones the store returns first)."""
    context = {"strategy": "full_history", "max_history_records": 3}
    with open_mem(home, embedder, context=context) as mem:
        for i in range(6):
            mem.add(f"Garden note {i}", user_id=USER, event_time=f"2024-01-0{i + 1}")
        shown = [r.text for r in mem.context("garden", user_id=USER).records]
    assert shown == ["Garden note 5", "Garden note 4", "Garden note 3"]


def test_full_history_shows_a_fact_corrected_after_extraction(mem: Memory) -> None:
    """A fact whose episodes are shown is a repeat of them, until someone corrects its text:
    then the episodes no longer say what it says, and the block shows it."""
    mem.add("Maya: I run 40 km a week.", user_id="maya", infer=True)
    (fact,) = mem.list(user_id="maya", kinds=["semantic"])
    before = mem.context("how much does maya run", user_id="maya")
    assert before.strategy == "full_history" and fact.id not in {r.id for r in before.records}
    mem.update(fact.id, text="Maya runs 55 km a week.")
    after = mem.context("how much does maya run", user_id="maya")
    assert after.strategy == "full_history" and "55 km" in after.text


# the LLM path ----------------------------------------------------------------------------------


def test_llm_links_and_evolution_with_mock_response(home: Path, embedder: Embedder) -> None:
    with open_mem(home, embedder) as mem:
        a = note(mem, "Alice adopted a dog named Rex.")
    answer = {
        "keywords": ["rex", "vet"],
        "tags": ["pets"],
        "context": "Rex's health",
        "links": [{"target": "1", "type": "follows", "reason": "after the adoption"}],
        "updates": [{"target": "1", "context": "Alice's dog Rex and his care", "tags": ["pets"]}],
    }
    kwargs = {"mock_response": json.dumps(answer)}
    with open_mem(home, embedder, llm_model=MODEL, llm_kwargs=kwargs, llm_backoff_s=0.001) as mem:
        b = note(mem, "Rex went to the vet for his vaccines.")
        assert b.metadata["context"] == "Rex's health" and b.metadata["tags"] == ["pets"]
        (link,) = mem.links(b.id)
        assert link.type is LinkType.FOLLOWS and link.made_by == f"llm:{MODEL}"
        evolved = mem.get(a.id)
        assert evolved.metadata["context"] == "Alice's dog Rex and his care"
        assert mem.history(a.id)[-1].actor == f"notes:llm:{MODEL}"
        assert evolved_from(evolved) == [b.id]
    with open_mem(home, embedder) as mem:  # the context the LLM wrote goes with its note
        mem.forget([b.id], reason="test", user_id=USER)
        restored = mem.get(a.id)
        assert restored.metadata["context"] == a.metadata["context"]
        assert restored.metadata["tags"] == a.metadata["tags"] and evolved_from(restored) == []
        assert "care" not in json.dumps([h.new_metadata for h in mem.history(a.id)])
    bad = {"mock_response": json.dumps({"links": [{"target": "7"}]})}
    with open_mem(home, embedder, llm_model=MODEL, llm_kwargs=bad, llm_backoff_s=0.001) as mem:
        c = note(mem, "Rex loves his new vet, Dr. Lee.")  # unusable answer: the rules link it
        assert all(link.made_by == "rules" for link in mem.links(c.id))


class Routed:
    """A litellm.completion answering each prompt (a repair request by its first prompt's
    script) from its own script, through litellm's mock_response, ``{}`` when the script is
    spent; records the prompts asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {pid: list(a) for pid, a in answers.items()}
        self.prompts: list[str] = []
        self.litellm = load_litellm()
        self.completion = self.litellm.completion  # the real one, before it is patched

    def __call__(self, **kwargs: Any) -> Any:
        pid = kwargs["metadata"]["agentmem_prompt"]
        self.prompts.append(pid)
        script = self.answers.get(pid.split("+")[0])
        answer = script.pop(0) if script else "{}"
        return self.completion(**kwargs, mock_response=answer)


@pytest.mark.parametrize(
    "bad",
    [
        {"context": "\ud800 golf"},
        {"keywords": ["golf\x00"]},
        {"tags": ["g" * 2001]},
        {"links": [{"target": "1", "reason": "same day \udcff"}]},
        {"links": [{"target": "1"}], "updates": [{"target": "1", "context": "x\x00"}]},
    ],
)
def test_llm_notes_text_a_store_refuses_gets_the_repair_request_then_the_rules(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, bad: dict[str, Any]
) -> None:
    """A notes answer with a lone surrogate or a NUL was copied into the note: the index
    refused it with a raw TypeError after the store commit, and every later write in the home,
    and every open, failed on it. It is refused as malformed: one repair, then the rules."""
    with open_mem(home, embedder) as mem:
        hiking = note(mem, "Alice loves hiking in the Alps with her dog.")
    routed = Routed({"notes-v1": [json.dumps(bad)] * 2})
    monkeypatch.setattr(routed.litellm, "completion", routed)
    with open_mem(home, embedder, llm_model=MODEL, llm_retries=0) as mem:
        rex = note(mem, "Alice loves hiking in the Alps with her dog Rex every summer.")
        assert routed.prompts[:2] == ["notes-v1", "notes-v1+repair-v1"]
        (link,) = mem.links(rex.id)
        assert (link.target_id, link.made_by) == (hiking.id, "rules")
        stored = json.dumps(mem.get(rex.id).metadata, ensure_ascii=False)
        assert "\x00" not in stored and stored.encode("utf-8")
        assert rex.id in {h.record.id for h in mem.search("dog Rex", user_id=USER)}
        mem.add("Bob likes chess.", user_id="bob")
    with open_mem(home, embedder) as mem:
        assert mem.stats().pending_index == 0
        mem.add("Carol likes jazz.", user_id="carol")


def test_wrong_shape_profile_and_notes_answers_get_the_repair_request_then_the_rules(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """{"location": ...} (profile-v1) and {"related_notes": ...} (notes-v1) validated as
    empty answers: no repair, no log, no rules; the profile stayed empty, the note unlinked."""
    fact = {"text": "Alice lives in Paris.", "subject": "Alice", "attribute": "lives_in",
            "value": "Paris"}  # fmt: skip
    routed = Routed(
        {
            "extract-v1": [json.dumps({"facts": [fact]})],
            "decide-v1": [json.dumps({"decisions": [{"fact": 0, "op": "ADD"}]})],
            "profile-v1": [json.dumps({"location": "Paris"})] * 2,
            "notes-v1": [json.dumps({"related_notes": [1]})] * 4,
        }
    )
    monkeypatch.setattr(routed.litellm, "completion", routed)
    with open_mem(home, embedder, llm_model=MODEL, llm_retries=0) as mem:
        mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
        assert "profile-v1+repair-v1" in routed.prompts
        assert mem.profile(user_id=USER).get().fields["location"].actor == "facts:rules"
        hiking = note(mem, "Alice loves hiking in the Alps with her dog.")
        rex = note(mem, "Alice loves hiking in the Alps with her dog Rex every summer.")
        assert routed.prompts.count("notes-v1+repair-v1") >= 1
        assert [(x.target_id, x.made_by) for x in mem.links(rex.id)] == [(hiking.id, "rules")]
    assert "LLM profile update unusable" in caplog.text and "rules used" in caplog.text


def test_llm_fallback_logs_say_the_rules_were_used_not_that_an_episode_was_kept(
    home: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    """The client's errors ended in "the episode is kept, marked pending": a notes or
    profile answer that was not JSON logged that, where no episode exists and the rules ran."""
    with open_mem(home, embedder) as mem:
        note(mem, "Alice loves hiking in the Alps with her dog.")
    kwargs = {"mock_response": "sorry, I cannot do that"}
    with (
        caplog.at_level(logging.WARNING, logger="agentmem"),
        open_mem(home, embedder, llm_model=MODEL, llm_kwargs=kwargs, llm_retries=0) as mem,
    ):
        rex = note(mem, "Alice loves hiking in the Alps with her dog Rex every summer.")
        client = LLMClient(MODEL, retries=0, kwargs=kwargs)
        mem.profile(user_id=USER).observe([rex], llm=client)
    used = [r.getMessage() for r in caplog.records if "rules used" in r.getMessage()]
    assert len(used) == 2 and "no usable notes-v1 answer" in used[0]
    assert not any("episode" in line or "pending" in line for line in used)


def test_llm_keeps_what_the_caller_set_and_never_evolves_a_contradicted_note(
    home: Path, embedder: Embedder
) -> None:
    """The model describes a note only where its caller did not, and its update of a note
    the new one contradicts (or nearly duplicates) is not applied, as with the rules."""
    with open_mem(home, embedder) as mem:
        paris = note(mem, "Alice lives in Paris.")
    answer = {
        "keywords": ["x"],
        "tags": ["llm-tag"],
        "context": "LLM context",
        "links": [{"target": "1", "type": "contradicts", "reason": "moved"}],
        "updates": [{"target": "1", "context": "Alice used to live here", "tags": ["moved"]}],
    }
    kwargs = {"mock_response": json.dumps(answer)}
    with open_mem(home, embedder, llm_model=MODEL, llm_kwargs=kwargs, llm_backoff_s=0.001) as mem:
        mine = {"context": "my own context", "tags": ["mine"]}
        rome = mem.add("Alice lives in Rome.", kind="semantic", user_id=USER, metadata=mine)
        assert rome.metadata["context"] == "my own context" and rome.metadata["tags"] == ["mine"]
        assert rome.metadata["keywords"] == ["x"]  # not set by the caller: the model's
        (link,) = mem.links(rome.id)
        assert link.type is LinkType.CONTRADICTS
        assert mem.get(paris.id).metadata == paris.metadata and mem.get(paris.id).version == 1
    related = {**answer, "links": [{"target": "1", "type": "related"}]}
    kwargs = {"mock_response": json.dumps(related)}
    with open_mem(home, embedder, llm_model=MODEL, llm_kwargs=kwargs, llm_backoff_s=0.001) as mem:
        twin = note(mem, "Alice lives in Paris.")  # the same note again: says nothing new
        (link,) = mem.links(twin.id)
        assert link.type is LinkType.RELATED and link.target_id == paris.id
        assert mem.get(paris.id).version == 1


def test_llm_profile_update_with_mock_response(mem: Memory) -> None:
    fact = note(mem, "Alice has worked as a nurse since 2020.")
    answer = {"updates": [{"field": "occupation", "value": "nurse", "sources": ["1"]},
                          {"field": "age", "value": "unknown"},
                          {"field": "hobby", "value": "chess"}]}  # fmt: skip
    litellm = load_litellm()

    def completion(**kwargs: Any) -> Any:
        return litellm.completion(**kwargs, mock_response=json.dumps(answer))

    client = LLMClient(MODEL, backoff_s=0.001, retries=0, completion=completion)
    profile = mem.profile(user_id=USER)
    assert profile.observe([fact], llm=client) == 1  # wrong type and unknown field skipped
    value = profile.get().fields["occupation"]
    assert value.value == "nurse" and value.sources == [fact.id]
    assert value.actor == f"facts:llm:{MODEL}"


def test_llm_profile_answer_naming_a_field_twice_keeps_one_current_version(
    mem: Memory,
) -> None:
    """Each update was written as an open version: two current locations, and the next
    revision closed only one of them, so a stale "current" value stayed for good."""
    fact = note(mem, "Alice lives in Paris, or maybe Lyon.")
    litellm = load_litellm()
    answers = [
        {"updates": [{"field": "location", "value": "Paris", "sources": ["1"]},
                     {"field": "location", "value": "Lyon", "sources": ["1"]}]},
        {"updates": [{"field": "location", "value": "Berlin", "sources": ["1"]},
                     {"field": "location", "value": "Lyon", "sources": ["1"]}]},
    ]  # fmt: skip

    def completion(**kwargs: Any) -> Any:
        return litellm.completion(**kwargs, mock_response=json.dumps(answers.pop(0)))

    client = LLMClient(MODEL, backoff_s=0.001, retries=0, completion=completion)
    profile = mem.profile(user_id=USER)

    def current() -> list[str]:
        history = profile.history("location")
        return [v.value for v in history if v.valid_to is None and v.superseded_at is None]

    assert profile.observe([fact], llm=client) == 1
    assert current() == ["Lyon"] and profile.get().model.location == "Lyon"
    moved = note(mem, "Alice moved to Berlin.")
    assert profile.observe([moved], llm=client) == 0  # the last update keeps Lyon
    assert current() == ["Lyon"] and len(profile.history("location")) == 1


def test_llm_profile_update_keeps_to_the_revision_rules(mem: Memory) -> None:
    """The LLM's value was written whatever its facts' dates: a fact from 2019 replaced a
    value set by hand today, and an older fact a newer value, where the rules keep them."""
    profile = mem.profile(user_id=USER)
    profile.set(location="Tokyo")
    past = mem.add("Back in 2019 I lived in Paris.", kind="semantic", user_id=USER,
                   event_time="2019-01-01")  # fmt: skip
    litellm = load_litellm()
    answers = ["Paris", "Lyon", "Paris"]

    def completion(**kwargs: Any) -> Any:
        update = {"field": "location", "value": answers.pop(0), "sources": ["1"]}
        return litellm.completion(**kwargs, mock_response=json.dumps({"updates": [update]}))

    client = LLMClient(MODEL, backoff_s=0.001, retries=0, completion=completion)
    assert profile.observe([past], llm=client) == 0
    assert profile.get().model.location == "Tokyo"
    moved = note(mem, "Alice moved to Lyon.")  # started after the value was set: revises it
    assert profile.observe([moved], llm=client) == 1
    assert profile.get().fields["location"].actor == f"facts:llm:{MODEL}"
    assert profile.observe([past], llm=client) == 0  # older than Lyon
    assert profile.get().model.location == "Lyon"


def test_llm_profile_values_get_the_checks_of_set(mem: Memory) -> None:
    """They were stored as given: a lone surrogate then broke context() for good."""
    fact = note(mem, "Alice lives in Paris and likes tea.")
    answer = {"updates": [{"field": "location", "value": "Pa\udcffris", "sources": ["1"]},
                          {"field": "occupation", "value": "nurse\x00", "sources": ["1"]},
                          {"field": "employer", "value": "A" * 100_000, "sources": ["1"]},
                          {"field": "goals", "value": [f"goal {i}" for i in range(50)]},
                          {"field": "name", "value": "Alice", "sources": ["1"]}]}  # fmt: skip
    litellm = load_litellm()

    def completion(**kwargs: Any) -> Any:
        return litellm.completion(**kwargs, mock_response=json.dumps(answer))

    client = LLMClient(MODEL, backoff_s=0.001, retries=0, completion=completion)
    profile = mem.profile(user_id=USER)
    assert profile.observe([fact], llm=client) == 2
    fields = profile.get().fields
    assert sorted(fields) == ["goals", "name"]
    assert fields["goals"].value == [f"goal {i}" for i in range(30, 50)]  # the newest max_items
    with pytest.raises(InvalidProfile):
        profile.set(location="Pa\udcffris")
    str(mem.context("where does Alice live?", user_id=USER)).encode("utf-8")


# PostgreSQL ----------------------------------------------------------------------------------


def test_links_and_profiles_on_postgres(pg_url: str, tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=tmp_path / "home", store_url=pg_url, adapters="off")
    with Memory(settings=settings, embedder=embedder) as mem:
        a = note(mem, "Alice loves hiking in the Alps with her dog.")
        b = note(mem, "Alice loves hiking in the Alps with her dog Rex every summer.")
        assert [link.target_id for link in mem.links(b.id)] == [a.id]
        profile = mem.profile(user_id=USER)
        profile.set(location="Paris")
        profile.set(location="Berlin")
        assert [v.value for v in profile.history("location")] == ["Paris", "Berlin"]


def test_linked_notes_keep_to_the_event_window_with_as_of(mem: Memory) -> None:
    """A note reached by a link passes the same filters as a hit: with as_of too, the event
    window still applies to it."""
    for said, when in [
        ("Maya: I run 40 km a week.", "2022-01-01"),
        ("Maya: I bought new running shoes for the marathon.", "2023-07-01"),
        ("Maya: I am training for a marathon.", "2022-03-01"),
    ]:
        mem.add(said, user_id="maya", infer=True, event_time=when)
    for as_of in (None, "2025-01-01"):
        hits = mem.search(
            "marathon shoes",
            user_id="maya",
            kinds="semantic",
            event_after="2023-01-01",
            expand_links=1,
            as_of=as_of,
        )
        assert hits and all(h.record.event_time.year >= 2023 for h in hits), as_of
