"""The speaker prior: a question that names a participant of a conversation ranks up what that
participant said.

"What did Caroline research?" is answered by Caroline's own turns far more often than by the
turns of the others she talks with: in LoCoMo, of the 1,371 questions naming one of the two
speakers, 96% of the evidence turns are that speaker's. Each candidate's speaker is its
``metadata["speaker"]``, else, for a turn of a conversation (an episode of a session or of a
thread scope, as the windows read conversations), the ``"Name:"`` its text opens with
(:func:`agentmem.stores.base.speaker_of`, read with the candidates' rank fields). A note added
on its own that opens with "Mom: call me when you land" or "Lisbon: flight TP 441" is a pasted
message or a topic label: ranking it up for every question naming Mom or Lisbon put it above
the note that answers ("Mom is allergic to shellfish"), so it has no speaker. Where the
query names some of the candidates' speakers but not all, each candidate of a named speaker has
its fused score multiplied by ``1 + retrieval.speaker_prior``. Memories without a speaker (facts,
notes, a memory added on its own) and questions that name no speaker, or every speaker, are left
as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from agentmem.fusion import Candidate
from agentmem.stores.base import RankFields


def named_speakers(query: str, speakers: set[str]) -> set[str]:
    """The ``speakers`` the query names: the whole name, or its first word ("Caroline" for
    "Caroline Smith"), as a word of its own with the same capitals."""
    named = set()
    for speaker in speakers:
        for name in {speaker, speaker.split()[0]}:
            if len(name) > 1 and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", query):
                named.add(speaker)
    return named


def apply_speaker_prior(
    weight: float, query: str, candidates: Sequence[Candidate], fields: Mapping[str, RankFields]
) -> list[Candidate]:
    """``candidates`` with the turns of the speakers ``query`` names ranked up (see the
    module), best first; the same list where the prior does not apply."""
    speakers = {f.speaker for f in fields.values() if f.speaker is not None}
    if weight <= 0 or len(speakers) < 2:
        return list(candidates)
    named = named_speakers(query, speakers)
    if not named or named == speakers:
        return list(candidates)
    out: list[Candidate] = []
    for memory_id, score, explain in candidates:
        found = fields.get(memory_id)
        if found is not None and found.speaker in named:
            score *= 1 + weight
        out.append((memory_id, score, explain))
    out.sort(key=lambda c: -c[1])  # stable: equal scores keep their order
    return out


__all__ = ["apply_speaker_prior", "named_speakers"]
