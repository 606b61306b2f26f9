"""Evaluation data sets: memories to replay into scopes, and questions with their answers.

Four loaders, one shape (:class:`EvalSet`):

- ``locomo``: LoCoMo conversations (``locomo10.json``), every turn an episode with its session
  (``metadata={"session": n}``) and the session's date; one ``add_many`` per conversation.
- ``locomo-observations``: the ``observation`` field of the same file, one independent fact
  per ``add`` (no session: the Mem0-style use), dated by its session; a hit is an observation
  whose ``dia_id`` is an evidence turn of the question.
- ``longmemeval``: LongMemEval's JSON (``longmemeval_s`` shape: per question a haystack of
  sessions of turns, ``answer_session_ids``); each question is its own scope, every turn an
  episode of its session; a hit is a turn of an answer session (session-level recall).
- ``small``: the small-scope set shipped with agentmem (``agentmem/evaluation/data``): scopes of
  2-50 independent memories added one by one, like a personal assistant's memory.

A file that does not match its format raises :class:`~agentmem.errors.InvalidDataFile` naming
the file, the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from agentmem.errors import InvalidDataFile, InvalidMetadata, InvalidScope, InvalidText
from agentmem.evaluation.datafile import DataFile, Where, field_name
from agentmem.models import Scope
from agentmem.validation import check_text, check_time

AddMode = Literal["batch", "one_by_one"]

KINDS = ("locomo", "locomo-observations", "longmemeval", "small")
"""The data set kinds :func:`load_dataset` reads."""

LOCOMO_CATEGORIES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
}
"""LoCoMo's question categories (5, adversarial, has no evidence and is left out)."""

_SESSION_KEY = re.compile(r"session_(\d+)")
_OBSERVATION_KEY = re.compile(r"session_(\d+)_observation")
_DIA_ID = re.compile(r"D:?(\d+):0*(\d+)")
_LOCOMO_TIME = "%I:%M %p on %d %B, %Y"
_LOCOMO_EXAMPLE = "1:56 pm on 8 May, 2023"
_LME_TIME = "%Y/%m/%d (%a) %H:%M"
_LME_EXAMPLE = "2023/05/20 (Sat) 02:21"


@dataclass(frozen=True)
class EvalMemory:
    """One memory to add: ``key`` is what a question's answers name; ``where`` is the field
    its text is in, in the data file (``("scopes", 0, "memories", 1)``), for errors."""

    key: str
    text: str
    event_time: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    where: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class EvalQuestion:
    """A question, its category, and the keys of the memories that answer it; ``where`` is
    the field its text is in, in the data file, for errors."""

    text: str
    category: str
    answers: tuple[str, ...]
    reference_time: datetime | None = None
    where: tuple[str | int, ...] = ()


@dataclass
class EvalScope:
    """The memories of one scope, in the order they are added, and the questions about them."""

    name: str
    memories: list[EvalMemory]
    questions: list[EvalQuestion]


@dataclass
class EvalSet:
    """A data set ready to replay: its scopes, and how their memories are added."""

    kind: str
    source: str
    scopes: list[EvalScope]
    add_mode: AddMode
    notes: list[str] = field(default_factory=list)

    @property
    def questions(self) -> int:
        """How many questions the set asks."""
        return sum(len(s.questions) for s in self.scopes)

    @property
    def memories(self) -> int:
        """How many memories the set adds."""
        return sum(len(s.memories) for s in self.scopes)


# the users scopes replay into --------------------------------------------------------------------


def replay_user(scope_name: str) -> str:
    """The user id the scope named ``scope_name`` (an :class:`EvalScope`'s name) is replayed
    into, in the canonical form every scope id gets (Unicode NFC, surrounding whitespace
    stripped; see :meth:`~agentmem.Scope.of`), so two names that differ only there are one
    user. Raises :class:`~agentmem.errors.InvalidScope` for a name no scope id can hold."""
    return str(Scope.of(user_id=f"eval-{scope_name}").user_id)


def _replay_user_at(f: DataFile, at: Where, scope_name: str) -> str:
    """:func:`replay_user`, a name no scope id can hold being an error naming its field."""
    try:
        return replay_user(scope_name)
    except InvalidScope as exc:
        raise f.error(at, f"cannot name a scope: {exc}") from None


def _same_user(earlier: str, name: str, user: str) -> str:
    """Said after "X repeats Y" when the two names differ as written, not as scope ids."""
    return "" if earlier == name else f" ({earlier!r}): both would replay into user_id {user!r}"


# LoCoMo ----------------------------------------------------------------------------------------


def _parse_time(f: DataFile, value: Any, where: Where, fmt: str, example: str) -> datetime | None:
    """The date of a session or question: the data set's own format or ISO 8601; ``None``
    when the field is absent or empty. Anything else is an error: read as undated, the
    memories would silently lose their time channel and the questions their window."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise f.error(where, f"expected a date string, got {type(value).__name__}")
    text = value.strip()
    try:
        parsed = datetime.strptime(text, fmt)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise f.error(
                where, f"{text!r} is not a date: write it like {example!r} or in ISO 8601"
            ) from None
    # The store's own range, checked here: found by add or search mid-replay, the error would
    # name neither file nor field, after earlier scopes were added.
    try:
        when = check_time(parsed, what="date")
    except InvalidMetadata as exc:
        raise f.error(where, str(exc)) from None
    assert when is not None
    return when.replace(tzinfo=None)  # the data sets' own dates are naive UTC


def _locomo_time(f: DataFile, index: int, body: dict[str, Any], session: int) -> datetime | None:
    key = f"session_{session}_date_time"
    return _parse_time(
        f, body.get(key), (index, "conversation", key), _LOCOMO_TIME, _LOCOMO_EXAMPLE
    )


def _evidence(raw: Any, known: set[str], unknown: list[str] | None = None) -> tuple[str, ...]:
    """Evidence ids as they appear in the turns ("D8:6; D9:17" split, "D30:05" repaired);
    the ids that name none of ``known`` are appended to ``unknown`` when it is given."""
    found: list[str] = []
    for entry in raw if isinstance(raw, list) else [raw]:
        for part in re.split(r"[;,\s]+", str(entry)):
            if part in known:
                found.append(part)
            elif (m := _DIA_ID.fullmatch(part)) and f"D{m[1]}:{m[2]}" in known:
                found.append(f"D{m[1]}:{m[2]}")
            elif part and unknown is not None:
                unknown.append(part)
    return tuple(dict.fromkeys(found))


@dataclass
class _UnknownEvidence:
    """Evidence ids that name no turn, so the user hears what was dropped: real LoCoMo has a
    few ("D10:19" in a conversation without it, a bare "D"), too few to refuse the file for."""

    ids: list[tuple[str, str]] = field(default_factory=list)  # (field, id)
    questions: int = 0  # questions left out: none of their evidence names a turn

    def notes(self) -> list[str]:
        """The note for the set's report (none when every id named a turn)."""
        if not self.ids:
            return []
        shown = ", ".join(f"{dia!r} at {where}" for where, dia in self.ids[:5])
        more = f" and {len(self.ids) - 5} more" if len(self.ids) > 5 else ""
        ids = "evidence id names" if len(self.ids) == 1 else "evidence ids name"
        left = "question" if self.questions == 1 else "questions"
        return [
            f"{len(self.ids)} {ids} no turn and {'is' if len(self.ids) == 1 else 'are'} not "
            f"scored: {shown}{more}; {self.questions} {left} with no other evidence left out"
        ]


def _locomo_samples(f: DataFile) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    f.expect(f.data, (), list)
    for index, sample in enumerate(f.data):
        f.expect(sample, (index,), dict)
        body = f.get(sample, (index,), "conversation", dict)
        yield index, sample, body


def _numbered(
    f: DataFile, where: Where, keys: Iterable[str], pattern: re.Pattern[str]
) -> list[tuple[int, str]]:
    """The ``keys`` that ``pattern`` matches (``session_N``), with their N, in order of N."""
    found = []
    for key in keys:
        if m := pattern.fullmatch(key):
            try:
                found.append((int(m[1]), key))
            except ValueError:  # over the 4,300 digits int() converts
                raise f.error(where, f"{key[:20]}...: its session number is too long") from None
    return sorted(found)


def _locomo_sessions(f: DataFile, index: int, body: dict[str, Any]) -> list[int]:
    sessions = [n for n, _ in _numbered(f, (index, "conversation"), body, _SESSION_KEY)]
    if not sessions:
        raise f.error((index, "conversation"), "no session_N lists of turns")
    return sessions


def _locomo_questions(
    f: DataFile,
    index: int,
    sample: dict[str, Any],
    known: set[str],
    last: datetime | None,
    unknown: _UnknownEvidence | None = None,
) -> list[EvalQuestion]:
    """The scorable questions of one conversation: categories 1-4 whose evidence names some
    of ``known``; the ids naming no turn at all are told to ``unknown``."""
    questions = []
    qa = f.get(sample, (index,), "qa", list)
    for n, item in enumerate(qa):
        where = (index, "qa", n)
        f.expect(item, where, dict)
        category = item.get("category")
        if isinstance(category, str) and category.strip().isdigit():
            category = int(category)  # "4" as written by hand or another exporter
        if category not in LOCOMO_CATEGORIES:
            continue
        missing: list[str] | None = [] if unknown is not None else None
        evidence = _evidence(item.get("evidence") or [], known, missing)
        if unknown is not None and missing:
            unknown.ids += [(field_name((*where, "evidence")), dia) for dia in missing]
            unknown.questions += not evidence
        if not evidence:
            continue
        text = f.words(item, where, "question")
        questions.append(
            EvalQuestion(text, LOCOMO_CATEGORIES[category], evidence, last, (*where, "question"))
        )
    return questions


def _locomo_turns(f: DataFile, index: int, body: dict[str, Any]) -> list[EvalMemory]:
    """Every turn of one conversation, an episode of its session, checked."""
    memories: list[EvalMemory] = []
    for session in _locomo_sessions(f, index, body):
        when = _locomo_time(f, index, body, session)
        turns = f.get(body, (index, "conversation"), f"session_{session}", list)
        for n, turn in enumerate(turns):
            where = (index, "conversation", f"session_{session}", n)
            f.expect(turn, where, dict)
            dia = f.get(turn, where, "dia_id", str)
            speaker = f.get(turn, where, "speaker", str)
            said = f.expect(turn.get("text", ""), (*where, "text"), str)
            text = f"{speaker}: {said}"
            if turn.get("blip_caption"):
                text += f" [image: {turn['blip_caption']}]"
            memories.append(EvalMemory(dia, text, when, {"session": session, "dia_id": dia}, where))
    return memories


def load_locomo(path: Path, conversations: Sequence[int] | None = None) -> EvalSet:
    """LoCoMo turns: one scope per conversation, every turn an episode of its session."""
    f = DataFile(path)
    scopes = []
    unknown = _UnknownEvidence()
    for index, sample, body in _locomo_samples(f):
        if conversations is not None and index not in conversations:
            continue
        memories = _locomo_turns(f, index, body)
        last = max((m.event_time for m in memories if m.event_time), default=None)
        known = {m.key for m in memories}
        questions = _locomo_questions(f, index, sample, known, last, unknown)
        scopes.append(EvalScope(f"locomo-{index}", memories, questions))
    return EvalSet("locomo", str(path), scopes, "batch", unknown.notes())


def load_locomo_observations(path: Path, conversations: Sequence[int] | None = None) -> EvalSet:
    """LoCoMo observations: one independent fact per ``add``, no session, dated by its session;
    a hit is an observation drawn from an evidence turn. Questions are scored on the evidence
    turns that some observation was drawn from (the others cannot be retrieved); a question
    with none is left out, and the set's notes say how many."""
    f = DataFile(path)
    scopes = []
    evidence, counted = [0, 0], [0, 0]  # (all, reachable) evidence turns and questions
    unknown = _UnknownEvidence()
    for index, sample, body in _locomo_samples(f):
        if conversations is not None and index not in conversations:
            continue
        observations = f.get(sample, (index,), "observation", dict)
        known = {m.key for m in _locomo_turns(f, index, body)}  # the turns checked as locomo's
        memories: list[EvalMemory] = []
        keyed = _numbered(f, (index, "observation"), observations, _OBSERVATION_KEY)
        for session, key in keyed:
            when = _locomo_time(f, index, body, session)
            by_speaker = f.get(observations, (index, "observation"), key, dict)
            for speaker, facts in by_speaker.items():
                where: Where = (index, "observation", key, speaker)
                f.expect(facts, where, list)
                for n, fact in enumerate(facts):
                    if not isinstance(fact, list) or len(fact) < 2 or not isinstance(fact[0], str):
                        raise f.error((*where, n), "expected [text, dia_id]")
                    f.words(fact[0], (*where, n, 0))
                    for dia in _evidence(fact[1], known) or ("",):
                        number = len(memories)
                        memories.append(
                            EvalMemory(
                                dia or f"obs-{number}",
                                fact[0],
                                when,
                                {"dia_id": dia},
                                (*where, n, 0),
                            )
                        )
                        break  # one memory per observation; its first evidence turn keys it
        last = max((m.event_time for m in memories if m.event_time), default=None)
        # Only evidence turns some observation was drawn from can be retrieved at all: about a
        # fifth of LoCoMo's evidence turns have none, which would cap every system's recall
        # at ~0.80. A question keeps the evidence it can reach; one with none is left out.
        reachable = {m.key for m in memories}
        everything = _locomo_questions(f, index, sample, known, last, unknown)
        questions = _locomo_questions(f, index, sample, reachable, last)
        evidence[0] += sum(len(q.answers) for q in everything)
        evidence[1] += sum(len(q.answers) for q in questions)
        counted[0] += len(everything)
        counted[1] += len(questions)
        scopes.append(EvalScope(f"locomo-obs-{index}", memories, questions))
    return EvalSet(
        "locomo-observations",
        str(path),
        scopes,
        "one_by_one",
        [
            "a hit is an observation whose dia_id is an evidence turn of the question",
            f"scored on the evidence turns some observation was drawn from: {evidence[1]:,} of "
            f"{evidence[0]:,}; {counted[0] - counted[1]:,} of {counted[0]:,} questions have none "
            "and are left out",
            *unknown.notes(),
        ],
    )


# LongMemEval -------------------------------------------------------------------------------------


def _lme_memories(
    f: DataFile, where: Where, session_ids: list[Any], sessions: list[Any], dates: list[Any]
) -> list[EvalMemory]:
    """One question's haystack: every non-empty turn an episode of its session."""
    memories: list[EvalMemory] = []
    for s, (sid, turns) in enumerate(zip(session_ids, sessions, strict=True)):
        f.expect(turns, (*where, "haystack_sessions", s), list)
        when = _parse_time(f, dates[s], (*where, "haystack_dates", s), _LME_TIME, _LME_EXAMPLE)
        for n, turn in enumerate(turns):
            at: Where = (*where, "haystack_sessions", s, n)
            f.expect(turn, at, dict)
            role = f.get(turn, at, "role", str)
            content = f.get(turn, at, "content", str)
            if not content.strip():
                continue
            memories.append(
                EvalMemory(
                    str(sid), f"{role}: {content}", when, {"session": str(sid)}, (*at, "content")
                )
            )
    return memories


def _lme_answers(
    f: DataFile, where: Where, item: dict[str, Any], ids: list[Any], memories: list[EvalMemory]
) -> tuple[str, ...]:
    """A question's answer sessions, each one of its haystack holding some turn with text:
    any other could never be found, and the question would score 0 for every system."""
    answers = f.get(item, where, "answer_session_ids", list)
    if not answers:
        raise f.error((*where, "answer_session_ids"), "is empty: nothing could be scored")
    haystack = {str(sid) for sid in ids}
    found = {m.key for m in memories}
    for a, answer in enumerate(answers):
        at = (*where, "answer_session_ids", a)
        f.expect(answer, at, (str, int))
        if str(answer) not in haystack:
            raise f.error(
                at,
                f"{answer!r} is not one of haystack_session_ids; name a session of this "
                "question's haystack",
            )
        if str(answer) not in found:  # its turns are empty or blank (skipped)
            raise f.error(
                at, f"{answer!r} has no turn with text: the question could never be answered"
            )
    return tuple(str(a) for a in answers)


def load_longmemeval(path: Path, limit: int | None = None) -> EvalSet:
    """LongMemEval (``longmemeval_s`` JSON): one scope per question holding its haystack
    sessions, every turn an episode of its session; answers are the answer sessions."""
    f = DataFile(path)
    f.expect(f.data, (), list)
    scopes = []
    first_of: dict[str, tuple[int, str]] = {}  # replay user -> (index, question_id)
    for index, item in enumerate(f.data[:limit] if limit else f.data):
        where: Where = (index,)
        f.expect(item, where, dict)
        qid = str(f.get(item, where, "question_id", (str, int)))
        user = _replay_user_at(f, (*where, "question_id"), f"lme-{qid}")
        if user in first_of:  # its scope would hold two questions' haystacks
            seen, earlier = first_of[user]
            raise f.error(
                (*where, "question_id"),
                f"{qid!r} repeats the question at [{seen}]{_same_user(earlier, qid, user)}",
            )
        first_of[user] = (index, qid)
        question = f.words(item, where, "question")
        category = str(item.get("question_type") or "all")
        session_ids = f.get(item, where, "haystack_session_ids", list)
        sessions = f.get(item, where, "haystack_sessions", list)
        dates = item.get("haystack_dates") or [None] * len(sessions)
        f.expect(dates, (*where, "haystack_dates"), list)
        for s, date in enumerate(dates):
            f.expect(date, (*where, "haystack_dates", s), (str, type(None)))
        if len(session_ids) != len(sessions):
            raise f.error(
                (*where, "haystack_session_ids"),
                f"{len(session_ids)} ids for {len(sessions)} haystack_sessions",
            )
        if len(dates) != len(sessions):  # a session past the end would be silently undated
            raise f.error(
                (*where, "haystack_dates"),
                f"{len(dates)} dates for {len(sessions)} haystack_sessions; give each session "
                "its date (null for none)",
            )
        memories = _lme_memories(f, where, session_ids, sessions, dates)
        answers = _lme_answers(f, where, item, session_ids, memories)
        asked = _parse_time(
            f, item.get("question_date"), (*where, "question_date"), _LME_TIME, _LME_EXAMPLE
        )
        scopes.append(
            EvalScope(
                f"lme-{qid}",
                memories,
                [
                    EvalQuestion(
                        question,
                        category,
                        answers,
                        asked,
                        (*where, "question"),
                    )
                ],
            )
        )
    return EvalSet(
        "longmemeval",
        str(path),
        scopes,
        "batch",
        ["one scope per question; a hit is a turn of an answer session (session-level recall)"],
    )


# the small-scope set ---------------------------------------------------------------------------

SMALL_SCOPE_DATA = "small_scope.json"


def small_scope_path() -> Path:
    """The small-scope set shipped with agentmem."""
    return Path(str(resources.files("agentmem.evaluation") / "data" / SMALL_SCOPE_DATA))


def load_small(path: Path | None = None) -> EvalSet:
    """Scopes of independent memories (added one by one, no session) and questions whose
    answers name memories by their position in the scope (0-based)."""
    path = path or small_scope_path()
    f = DataFile(path)
    scopes_raw = f.get(f.data, (), "scopes", list)
    scopes = []
    first_of: dict[str, tuple[int, str]] = {}  # replay user -> (index, name)
    for index, raw in enumerate(scopes_raw):
        where: Where = ("scopes", index)
        f.expect(raw, where, dict)
        name = str(f.get(raw, where, "name", str))
        user = _replay_user_at(f, (*where, "name"), f"small-{name}")
        if user in first_of:  # both would replay into one user, their answer keys colliding
            seen, earlier = first_of[user]
            raise f.error(
                (*where, "name"),
                f"{name!r} repeats scopes[{seen}]{_same_user(earlier, name, user)}; give each "
                "a name",
            )
        first_of[user] = (index, name)
        texts = f.get(raw, where, "memories", list)
        memories = []
        for n, text in enumerate(texts):
            at_text: Where = (*where, "memories", n)
            memories.append(EvalMemory(str(n), f.words(text, at_text), where=at_text))
        asked = f.get(raw, where, "questions", list)
        if asked and not memories:  # else "0 is not a memory index (0--1)"
            raise f.error((*where, "memories"), "is empty: the questions have no memory to name")
        questions = []
        for n, q in enumerate(asked):
            at: Where = (*where, "questions", n)
            f.expect(q, at, dict)
            text = f.words(q, at, "question")
            answer = f.get(q, at, "answer", (int, list))
            answers = answer if isinstance(answer, list) else [answer]
            if not answers:  # recall would divide by zero, after the whole replay
                raise f.error((*at, "answer"), "is empty: nothing could be scored")
            for a in answers:  # true is an int to Python: keyed "True", it would never score
                if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < len(memories):
                    raise f.error(
                        (*at, "answer"), f"{a!r} is not a memory index (0-{len(memories) - 1})"
                    )
            category = str(f.get(q, at, "category", str))
            answered = tuple(str(a) for a in answers)
            questions.append(EvalQuestion(text, category, answered, where=(*at, "question")))
        scopes.append(EvalScope(f"small-{name}", memories, questions))
    return EvalSet("small", str(path), scopes, "one_by_one")


def check_texts(data: EvalSet, max_chars: int) -> None:
    """Refuse, before anything is added, a memory or question text that ``add`` or ``search``
    would refuse (over ``max_chars``, a NUL, invalid Unicode), naming the file, line and field:
    found mid-replay, the error would name neither."""
    for scope in data.scopes:
        texts = [(m.text, m.where, "memory") for m in scope.memories]
        texts += [(q.text, q.where, "question") for q in scope.questions]
        for text, where, what in texts:
            try:
                check_text(text, max_chars=max_chars, what=what)
            except InvalidText as exc:
                raise _error_at(data.source, where, f"{exc}; nothing was added") from None


def _error_at(source: str, where: Where, problem: str) -> InvalidDataFile:
    """An error naming the field ``where`` of the data file ``source``, and its line when the
    file can still be read."""
    try:
        return DataFile(Path(source)).error(where, problem)
    except InvalidDataFile:
        return InvalidDataFile(f"{source}, field {field_name(where)}: {problem}")


def load_dataset(
    kind: str, path: str | PathLike[str] | None = None, *, limit: int | None = None
) -> EvalSet:
    """Read a data set of ``kind`` (one of :data:`KINDS`) from ``path`` (a ``str`` or a
    path); ``limit`` keeps the first scopes."""
    if kind not in KINDS:
        raise InvalidDataFile(f"unknown data set kind {kind!r}; one of {', '.join(KINDS)}")
    if path is not None and not isinstance(path, str | PathLike):
        raise InvalidDataFile(f"path must be a str or a pathlib.Path, got {type(path).__name__}")
    file = None if path is None else Path(path)
    # The loaders skip the conversations past the limit: the notes describe those run only.
    kept = range(limit) if limit is not None else None
    if kind == "small":
        loaded = load_small(file)
    elif file is None:
        raise InvalidDataFile(f"the {kind} data set needs the path of its file")
    elif kind == "locomo":
        loaded = load_locomo(file, kept)
    elif kind == "locomo-observations":
        loaded = load_locomo_observations(file, kept)
    else:
        loaded = load_longmemeval(file, limit)
    if limit is not None:
        loaded.scopes = loaded.scopes[:limit]
    return loaded


__all__ = [
    "KINDS",
    "LOCOMO_CATEGORIES",
    "EvalMemory",
    "EvalQuestion",
    "EvalScope",
    "EvalSet",
    "check_texts",
    "load_dataset",
    "load_locomo",
    "load_locomo_observations",
    "load_longmemeval",
    "load_small",
    "replay_user",
    "small_scope_path",
]
