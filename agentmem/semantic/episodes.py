"""What extraction reads: an episode as turns of who said what, and when.

An episode may be a stored record (a conversation turn ``"Caroline: I went ..."``), plain
text, a list of chat messages (``[{"role": "user", "content": "..."}]``) or a flushed buffer
segment (several ``"speaker: text"`` lines). All become one :class:`Episode`: its turns with
their speakers, the time it was said (relative dates are resolved against it), its scope and
the id of the stored record facts point back to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import regex

from agentmem.errors import InvalidText, ValidationError
from agentmem.models import MemoryRecord, Scope, as_utc, utcnow
from agentmem.validation import UTC_OFFSET_KEY, check_text, zone_of

NON_PERSON_SPEAKERS = frozenset({"assistant", "system", "tool", "function", "developer", "ai"})
"""Speakers whose first-person statements are not facts about a person (chat roles)."""

_NAME_START = r"[\p{Lu}\p{Lt}\p{Lo}]"
"""A name's first letter: a capital in any script (Åsa, Émile, Ольга), or a letter of a script
without case (李)."""
_SPEAKER_LINE = regex.compile(
    r"^\s*(?:(?P<role>user|assistant|system|tool|function|developer|ai)/(?P<named>[^:\n/]{1,60}?)"
    rf"|(?P<speaker>(?:{_NAME_START}[\w.'\-]*|user|assistant|system|tool)"
    rf"(?: {_NAME_START}[\w.'\-]*){{0,3}}))"
    r"\s*:\s+(?P<body>\S.*)$"
)
"""A transcript line: ``Name: words``, or a buffer turn's ``role/name: words``
(:meth:`agentmem.buffers.Turn.line`)."""
_NOT_SPEAKERS = frozenset(
    {"note", "nb", "ps", "re", "update", "edit", "todo", "tip", "warning", "step", "http", "https"}
)


@dataclass(frozen=True, slots=True)
class Turn:
    """One speaker's words (``speaker`` is None when the text names nobody)."""

    speaker: str | None
    text: str

    @property
    def is_person(self) -> bool:
        """Whether the speaker is a person (not an assistant, system or tool role)."""
        return self.speaker is None or self.speaker.lower() not in NON_PERSON_SPEAKERS


@dataclass(frozen=True, slots=True)
class Episode:
    """An episode ready for extraction."""

    text: str
    turns: tuple[Turn, ...]
    said_at: datetime
    """When it was said: the record's event time, else its creation time, else now; in the
    zone it was given in (a record's ``metadata["utc_offset"]``), so relative dates are read
    in the speaker's own date, else UTC."""
    id: str | None = None
    scope: Scope | None = None
    default_speaker: str = "User"
    """Who "I" is in lines that name no speaker."""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def speakers(self) -> list[str]:
        """The speakers named in the episode, in order of appearance."""
        return list(dict.fromkeys(t.speaker for t in self.turns if t.speaker))


def render_messages(messages: Any, *, max_chars: int = 32_000) -> str:
    """Chat messages as episode text, one ``"speaker: content"`` line per message.

    The speaker is the message's ``name`` if it has one, else its ``role``. ``content`` may be
    a string or a list of parts (``{"type": "text", "text": ...}``; other parts are skipped).
    Empty messages are skipped; a list with no text at all, a message that is not a dict or
    has no ``content``, and text that is not valid Unicode raise :class:`ValidationError`.
    """
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ValidationError(
            "messages must be a list of dicts like {'role': 'user', 'content': '...'}, got "
            f"{type(messages).__name__}"
        )
    if not messages:
        raise InvalidText("no messages to add; pass at least one message with content")
    lines: list[str] = []
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValidationError(
                f"message {position} is a {type(message).__name__}; each message is a dict "
                "like {'role': 'user', 'content': '...'}"
            )
        if "content" not in message:
            raise InvalidText(f"message {position} has no 'content'")
        content = _content_text(message["content"], position)
        if content is None or not content.strip():
            continue
        check_text(content, max_chars=max_chars, what=f"message {position} content")
        label = message.get("name") or message.get("role")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise ValidationError(f"message {position}: role and name must be non-empty strings")
        label = " ".join(label.replace(":", " ").split()) if label else None
        lines.append(f"{label}: {content.strip()}" if label else content.strip())
    if not lines:
        raise InvalidText("every message is empty; pass at least one message with content")
    return "\n".join(lines)


def _content_text(content: Any, position: int) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, bytes):
        raise InvalidText(
            f"message {position} content is bytes; decode it to str first (e.g. .decode('utf-8'))"
        )
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidText(f"message {position} has a text part without a string")
                parts.append(text)
        return "\n".join(parts)
    raise InvalidText(
        f"message {position} content must be a string or a list of parts, got "
        f"{type(content).__name__}"
    )


def parse_turns(text: str, default_speaker: str | None = None) -> list[Turn]:
    """Split episode text into turns: a line ``"Name: words"`` starts a turn of Name; other
    lines continue the current turn (or form one of ``default_speaker``)."""
    turns: list[Turn] = []
    speaker = default_speaker
    body: list[str] = []
    for line in text.splitlines():
        m = _SPEAKER_LINE.match(line)
        if m and (m["role"] or m["speaker"].split()[0].lower() not in _NOT_SPEAKERS):
            if body:
                turns.append(Turn(speaker, " ".join(body)))
            speaker, body = _speaker(m), [m["body"].strip()]
        elif line.strip():
            body.append(line.strip())
    if body:
        turns.append(Turn(speaker, " ".join(body)))
    return turns


def _speaker(m: regex.Match[str]) -> str:
    """Who a transcript line names: the name of a buffer turn ``role/name`` said by a person
    (``user/Maya`` is Maya), the role of one said by an assistant, system or tool."""
    role = m["role"]
    if role is None:
        return m["speaker"]
    return role if role in NON_PERSON_SPEAKERS else m["named"].strip()


def episode_from(
    value: MemoryRecord | str | Sequence[Mapping[str, Any]],
    *,
    said_at: datetime | None = None,
    speaker: str | None = None,
    scope: Scope | None = None,
) -> Episode:
    """An :class:`Episode` from a stored record, plain text, or chat messages.

    ``speaker`` names who "I" is in lines without a ``"Name:"`` prefix (default: the record's
    ``metadata["speaker"]``, else "User").
    """
    metadata: dict[str, Any] = {}
    record_id: str | None = None
    if isinstance(value, MemoryRecord):
        text = value.text
        metadata = dict(value.metadata)
        record_id = value.id
        scope = scope or value.scope
        said_at = said_at or value.event_time or value.created_at
        zone = zone_of(metadata.get(UTC_OFFSET_KEY))
        if zone is not None:  # the speaker's own date: "yesterday" at 20:00 -07:00
            said_at = as_utc(said_at).astimezone(zone)
    elif isinstance(value, str):
        text = check_text(value, max_chars=1_000_000)
    else:
        text = render_messages(value, max_chars=1_000_000)
    default = speaker or default_speaker(metadata)
    turns = parse_turns(text)
    # A chat message's "user" role is the person the memory is about: give it their name.
    resolved = tuple(
        Turn(default if t.speaker in (None, "user") else t.speaker, t.text) for t in turns
    )
    return Episode(
        text=text,
        turns=resolved,
        said_at=_aware(said_at) if said_at is not None else utcnow(),
        id=record_id,
        scope=scope,
        default_speaker=default,
        metadata=metadata,
    )


def _aware(when: datetime) -> datetime:
    """``when`` with its own UTC offset kept (the speaker's date); naive is UTC."""
    return when if when.tzinfo is not None else as_utc(when)


def default_speaker(metadata: Mapping[str, Any]) -> str:
    """Who "I" is in a memory's lines that name no speaker: its ``metadata["speaker"]`` (or
    ``user_name``, ``name``), else "User"."""
    for key in ("speaker", "user_name", "name"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip() and len(value) <= 60:
            return value.strip()
    return "User"


__all__ = [
    "NON_PERSON_SPEAKERS",
    "Episode",
    "Turn",
    "default_speaker",
    "episode_from",
    "parse_turns",
    "render_messages",
]
