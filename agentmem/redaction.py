"""Redaction of secrets and personal data before anything is embedded, indexed or trained on.

::

    result = redact("mail bob@example.com or call +1 415 555 0100", RedactionSettings(enabled=True))
    result.text    # 'mail [REDACTED_EMAIL] or call [REDACTED_PHONE]'
    result.counts  # {'email': 1, 'phone': 1}

Phone numbers are found by ``phonenumbers`` (Google's libphonenumber: numbers valid for their
region, in any common format; the ``redaction`` extra). API keys, card numbers and e-mail
addresses are small regular expressions: the well-known key formats (OpenAI, Anthropic, AWS,
GitHub, Slack, Google, Stripe, private-key blocks (one cut off before its END line, to the
end of its base64 body), JWTs, ``api_key=...`` assignments, JSON's
``"api_key": "..."`` too, and ``OPENAI_API_KEY=...``; the label stays, the value goes), card
numbers checked with the Luhn sum, and e-mail addresses (with non-ASCII letters too:
``josé@münchen.de``). Larger PII libraries were weighed
(presidio needs a spaCy model downloaded at run time; scrubadub pulls scikit-learn and has not
been released since 2023), see docs/security.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import regex

from agentmem.errors import InvalidSettings
from agentmem.security_settings import RedactionKind, RedactionSettings

# A private-key block: to its END line (not past another BEGIN, so a text of many cut-off
# blocks is read in linear time); with none (the paste was cut off), to the end of its base64
# body: tokens of 16+ base64 characters on the BEGIN line (a key flattened onto one line), the
# RFC 1421 headers of an encrypted key and the blank line after them, then every line that is
# base64 only.
_PEM = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"(?:(?:[^-]|-(?!----BEGIN ))*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|(?:[ \t]+[A-Za-z0-9+/=]{16,})*"
    r"(?:(?:\r?\n[ \t]*(?:Proc-Type|DEK-Info):[^\n]*)+(?:\r?\n[ \t]*(?=\r?\n))?)?"
    r"(?:\r?\n[ \t]*[A-Za-z0-9+/=]+[ \t]*(?=\r?\n|$))*)"
)
_API_KEY = re.compile(
    _PEM + r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}\b"
    r"|\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    # An assignment: the label stays, its value goes. The label may be one word of a name joined
    # by "_", "-" or "." (OPENAI_API_KEY, aws_secret_access_key, db.password): "_" is a word
    # character, so \b finds no edge inside such a name. A quoted value may hold spaces.
    r"|(?i:(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_.-])*(?:api[_-]?key|secret|token|password|passwd)"
    r"(?:[_-](?:access|key|secret|token|value|id))*['\"]?\s*[:=]\s*)"
    r"(?:['\"](?P<quoted>[^'\"\n]{8,})|(?P<bare>[^\s'\"]{8,}))",
    re.DOTALL,
)
# A card's separators: one space or hyphen, or a line break (a number wrapped in a message).
_CARD_SEP = r"(?:[ -]|[ \t]*-?[ \t]*\r?\n[ \t]*)"
# A card: 13 to 19 digits with single spaces or hyphens; or in its groups (4-4-4-4, Amex's
# 4-6-5) split across a line, or dotted. Not part of a longer number, nor after "<digit>-" or
# "<digit>." (a date, version, IP or id going on), but after "CARD-" it is.
_CARD = re.compile(
    r"(?<!\d)(?<!\d[-.])(?:(?:\d[ -]?){12,18}\d"
    rf"|\d{{4}}(?:{_CARD_SEP}\d{{4}}){{3}}|\d{{4}}{_CARD_SEP}\d{{6}}{_CARD_SEP}\d{{5}}"
    r"|(?:\d{4}(?:\.\d{4}){3}|\d{4}\.\d{6}\.\d{5})(?!\.\d))(?![\d-])"
)
# A line break inside a number (digit, break, digit): read as a space when phone numbers are
# looked for, so a number wrapped across two lines is found. One break in a number at most (a
# column of numbers, one a line, is no phone number), and a blank line ends it.
_WRAPPED = re.compile(r"(?<=[\d-])[ \t]*\r?\n[ \t]*(?=[\d(])")
# \w, not [A-Za-z0-9]: addresses with non-ASCII letters (josé@, @münchen.de) are addresses too.
# Chinese, Japanese and Korean are written without spaces, so no \b separates an address from
# the words around it ("我的邮箱是bob@example.com谢谢"): the local part and a top-level domain in
# other letters stop at a letter of those scripts, and a top-level domain in them ("例子.广告")
# must be followed by a non-word character.
_NO_SPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
_EMAIL = regex.compile(
    rf"(?<![^\W{_NO_SPACE}])[^\W{_NO_SPACE}](?:[^\W{_NO_SPACE}]|[.%+'-])*@[\w-]+(?:\.[\w-]+)*\."
    rf"(?:[^\W\d_{_NO_SPACE}]{{2,}}(?![^\W{_NO_SPACE}])|[{_NO_SPACE}]{{2,}}(?!\w))"
)
_PLACEHOLDER = re.compile(r"\[REDACTED_[A-Z_]+\]")
# The provenance keys a record's redaction writes: they describe its current text only.
_REDACTION_KEYS = frozenset({"redacted", "raw_text"})


@dataclass(frozen=True)
class Redaction:
    """Redacted text and how many items of each kind were taken out."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether anything was redacted."""
        return bool(self.counts)


def placeholder(kind: RedactionKind) -> str:
    """What replaces a redacted item of ``kind`` (``[REDACTED_EMAIL]``)."""
    return f"[REDACTED_{kind.value.upper()}]"


def mask_placeholders(text: str) -> str:
    """``text`` with each placeholder emptied to ``[]``, for the readers that take words or
    names from a text (entities, note keywords): a placeholder stands for an item that is
    gone, so two people whose e-mails were redacted share no entity or keyword through it."""
    return _PLACEHOLDER.sub("[]", text)


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn check card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = int(char)
        if position % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str, settings: RedactionSettings) -> Redaction:
    """``text`` with the configured kinds redacted (unchanged when redaction is off)."""
    if not settings.enabled or not text:
        return Redaction(text)
    counts: dict[str, int] = {}
    kinds = set(settings.kinds)

    def sub(pattern: Any, kind: RedactionKind, value: str, check: Any = None) -> str:
        def replace(match: Any) -> str:
            if check is not None and not check(match.group(0)):
                return match.group(0)
            counts[kind.value] = counts.get(kind.value, 0) + 1
            value = _assigned_value(match)
            if value is None:
                return placeholder(kind)
            # an assignment keeps its label (and quotes): only the value is the secret
            start, end = match.span(value)
            whole = match.group(0)
            offset = match.start()
            return whole[: start - offset] + placeholder(kind) + whole[end - offset :]

        return pattern.sub(replace, value)

    if RedactionKind.API_KEY in kinds:
        text = sub(_API_KEY, RedactionKind.API_KEY, text)
    if RedactionKind.CARD in kinds:
        text = sub(_CARD, RedactionKind.CARD, text, _card_ok)
    if RedactionKind.EMAIL in kinds:
        text = sub(_EMAIL, RedactionKind.EMAIL, text)
    if RedactionKind.PHONE in kinds:
        text = _redact_phones(text, settings.phone_region, counts)
    return Redaction(text, counts)


def _card_ok(found: str) -> bool:
    """A card match is one when it passes the Luhn check and is wrapped on at most one line
    break (a column of numbers, one a line, is no card)."""
    return found.count("\n") <= 1 and luhn_ok(re.sub(r"\D", "", found))


def _assigned_value(match: Any) -> str | None:
    """The group holding an assignment's value in a ``_API_KEY`` match, None for other matches."""
    for name in ("quoted", "bare"):
        if name in match.re.groupindex and match.group(name) is not None:
            return name
    return None


def _redact_phones(text: str, region: str, counts: dict[str, int]) -> str:
    try:
        import phonenumbers
    except ImportError as exc:
        raise InvalidSettings(
            "redacting phone numbers needs the redaction extra: pip install 'agentmem[redaction]' "
            "(or leave 'phone' out of AGENTMEM_REDACTION__KINDS)"
        ) from exc
    # the same length, so the spans found in it are the text's
    unwrapped = _WRAPPED.sub(lambda m: " " * len(m.group(0)), text)
    matcher = phonenumbers.PhoneNumberMatcher(
        unwrapped, region, leniency=phonenumbers.Leniency.VALID
    )
    spans = [(m.start, m.end) for m in matcher if text.count("\n", m.start, m.end) <= 1]
    for start, end in reversed(spans):
        text = text[:start] + placeholder(RedactionKind.PHONE) + text[end:]
    if spans:
        counts[RedactionKind.PHONE.value] = counts.get(RedactionKind.PHONE.value, 0) + len(spans)
    return text


def redact_record_fields(
    text: str, provenance: dict[str, Any], settings: RedactionSettings
) -> tuple[str, dict[str, Any]]:
    """Redact a record's text on write; the counts (and, where ``keep_raw`` allows, the raw
    text) go into its provenance. Returns the text and provenance to store."""
    result = redact(text, settings)
    if not result.changed:
        return text, provenance
    provenance = {**provenance, "redacted": result.counts}
    if settings.keep_raw:
        provenance["raw_text"] = text
    return result.text, provenance


def redact_new_text(
    text: str, provenance: dict[str, Any], settings: RedactionSettings
) -> tuple[str, dict[str, Any]]:
    """``redact_record_fields`` for a record's new version: the counts and raw text of the text
    it replaces are dropped first (they describe the old text, and the raw one holds what was
    redacted from it); the new text's own redaction sets them again."""
    current = {k: v for k, v in provenance.items() if k not in _REDACTION_KEYS}
    return redact_record_fields(text, current, settings)


def redact_json(value: Any, settings: RedactionSettings) -> Any:
    """``value`` with every string in it redacted (as a memory's text is), dict keys included;
    unchanged when redaction is off.

    A number (not a bool) is redacted by its string form (an integral float as an integer:
    ``4111111111111111.0`` reads ``4111111111111111``): one that holds an item (a card or phone
    number) becomes that redacted string (``"[REDACTED_CARD]"``), any other stays the number
    it was. Two keys of one dict that redact alike get `` #2``, `` #3``... after the second
    and later ones (in key order), so no entry is lost."""
    if not settings.enabled:
        return value
    if isinstance(value, str):
        return redact(value, settings).text
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = redact_json(k, settings)
            n = 1
            while name in out:
                n += 1
                name = f"{redact_json(k, settings)} #{n}"
            out[name] = redact_json(v, settings)
        return out
    if isinstance(value, list | tuple):
        return [redact_json(v, settings) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        integral = isinstance(value, float) and value.is_integer()
        form = str(int(value)) if integral else str(value)
        result = redact(form, settings)
        return result.text if result.changed else value
    return value


__all__ = [
    "Redaction",
    "luhn_ok",
    "mask_placeholders",
    "placeholder",
    "redact",
    "redact_json",
    "redact_new_text",
    "redact_record_fields",
]
