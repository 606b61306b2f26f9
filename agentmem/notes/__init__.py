"""Linked notes that evolve (A-MEM's Zettelkasten idea, on semantic memories).

Every semantic memory is a *note* with keywords, tags and a one-line context (in its metadata).
On add it is linked to its most related notes of the same scope by typed links
(``related``, ``elaborates``, ``contradicts``, ``follows``) that record who made them and why,
and it may update the context and tags of the notes it links to: each such change is a new
version in their history (``history(id)``), undone by ``mem.notes.undo(id)``.

- :mod:`~agentmem.notes.describe`: keywords, tags and context, LLM-free.
- :mod:`~agentmem.notes.linker`: candidates, link rules, evolution, and applying them.
- :mod:`~agentmem.notes.llm`: the same decisions by one structured LLM call per note.
- :mod:`~agentmem.notes.api`: listing and making links, undo, and search expansion.
- :mod:`~agentmem.notes.restate`: a note's description and links after its text is rewritten.
"""

from __future__ import annotations

from agentmem.notes.api import NotesAPI, expand, insert, links_of, make_link, undo_evolution
from agentmem.notes.linker import commit, prepare
from agentmem.notes.model import Link, LinkReport, LinkType

__all__ = [
    "Link",
    "LinkReport",
    "LinkType",
    "NotesAPI",
    "commit",
    "expand",
    "insert",
    "links_of",
    "make_link",
    "prepare",
    "undo_evolution",
]
