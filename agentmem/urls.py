"""URL helpers shared by the backends."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


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


__all__ = ["redact"]
