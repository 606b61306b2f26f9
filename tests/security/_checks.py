"""What every forget test asserts: no read path returns the forgotten text."""

from __future__ import annotations

import json

from agentmem import Memory, Scope

FORGOTTEN = "Alice adopted a beagle named Rex from the animal shelter in Denver."
NEEDLES = ("beagle", "rex", "shelter", "denver")
KEPT = [
    "Alice works as a nurse at Saint Mary hospital.",
    "Alice lives in Portland with her husband Tom.",
    "Alice plays the cello in a community orchestra.",
]
QUESTIONS = ["What dog did Alice adopt?", "beagle named Rex", "Denver animal shelter"]


def leaks(text: str) -> list[str]:
    """The forgotten words found in ``text``."""
    lowered = text.lower()
    return [n for n in NEEDLES if n in lowered]


def assert_forgotten(mem: Memory, scope: Scope, forgotten_ids: list[str]) -> None:
    """No search, context, graph query, export or history returns the forgotten text."""
    fields = scope.fields()
    for question in QUESTIONS:
        for hit in mem.search(question, k=20, **fields):
            assert not leaks(hit.record.text), (question, hit.record.text)
            assert hit.record.id not in forgotten_ids
        context = mem.context(question, max_tokens=2000, **fields)
        assert not leaks(context.text), (question, context.text)
    for record in mem.export():
        assert not leaks(record.text), record.text
        assert not leaks(json.dumps(record.provenance)), record.provenance
    graph_json = mem.graph.export("json", **fields)
    assert not leaks(graph_json), [n for n in NEEDLES if n in graph_json.lower()]
    for entity in mem.graph.entities(**fields):
        assert not leaks(entity.name), entity.name
    for memory_id in forgotten_ids:
        for entry in mem.backends.store.history(memory_id):
            assert entry.old_text is None and entry.new_text is None
            assert entry.old_metadata is None and entry.new_metadata is None
