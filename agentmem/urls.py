"""URL helpers shared by the backends."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

REDIS_DATABASES = (
    "a Redis server has 16 databases, numbered 0-15, unless its `databases` setting says otherwise"
)
"""Said when Redis answers "DB index is out of range"."""

_REDIS_DB_PATH = re.compile(r"/?|/\d+/?")


def redact(url: str) -> str:
    """The URL with any password (in the authority or a ``password`` parameter) hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        if ":" in creds:
            netloc = f"{creds.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k == "password" for k, _ in pairs):
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs])
    if netloc == parts.netloc and query == parts.query:
        # Nothing to hide; urlunsplit would also turn sqlite:////abs/path into sqlite://abs/path.
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redis_db_problem(url: str) -> str | None:
    """What is wrong with the database of a ``redis://`` or ``rediss://`` URL, or None: its
    path must be empty or ``/`` and a number (``redis://host:6379/2``). redis-py reads a path it
    cannot parse as database 0, so a typo would silently share another database."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    path = unquote(parts.path)
    if parts.scheme not in ("redis", "rediss") or _REDIS_DB_PATH.fullmatch(path):
        return None
    return (
        f"names database {path[1:]!r}, which is not a database number (redis-py would use "
        "database 0 instead); write the number after the port, e.g. redis://host:6379/0"
    )


def redis_db(url: str) -> str:
    """The database a Redis URL names (its ``db`` parameter, else its path; ``0`` if none)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "0"
    query = dict(parse_qsl(parts.query))
    return query.get("db") or unquote(parts.path).strip("/") or "0"


__all__ = ["REDIS_DATABASES", "redact", "redis_db", "redis_db_problem"]
