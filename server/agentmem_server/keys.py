"""API keys: created, listed, verified and revoked against the memory's record store.

A key is ``amk_<id>_<secret>``: the id finds the row, the secret proves possession. Only the
SHA-256 of the secret is stored (the secret is 256 random bits, so a plain hash is enough: a
slow password hash protects guessable secrets, which these are not). The full key is shown
once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from agentmem.errors import InvalidScope, NotFound, ValidationError
from agentmem.models import Scope
from agentmem.stores import KeyStore, RecordStore, require
from agentmem.stores._keys_sql import KeyRow

PREFIX = "amk_"
_TOKEN = re.compile(r"^amk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


class ApiKey(BaseModel):
    """An API key as the service and ``agentmem keys list`` show it (never its secret).

    A key is bound to one org; ``user_ids`` / ``agent_ids``, when not empty, limit it further to
    those users / agents (an agent key reads and writes only its agents' scopes)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    org_id: str
    user_ids: tuple[str, ...] = ()
    agent_ids: tuple[str, ...] = ()
    created_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def from_row(cls, row: KeyRow) -> ApiKey:
        """The public view of a stored key."""
        return cls(
            id=row.id,
            name=row.name,
            org_id=row.org_id,
            user_ids=row.user_ids,
            agent_ids=row.agent_ids,
            created_at=datetime.fromtimestamp(row.created_at, UTC),
            revoked_at=None
            if row.revoked_at is None
            else datetime.fromtimestamp(row.revoked_at, UTC),
        )


class CreatedKey(BaseModel):
    """A new key and its token: the only time the token is available."""

    key: ApiKey
    token: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_store(store: RecordStore) -> KeyStore:
    return require(store, KeyStore, "API keys")


def create_key(
    store: RecordStore,
    *,
    org_id: str,
    name: str = "",
    user_ids: Sequence[str] = (),
    agent_ids: Sequence[str] = (),
) -> CreatedKey:
    """Create a key bound to ``org_id`` (and, if given, only these users / agents)."""
    for field, ids in (("user_ids", user_ids), ("agent_ids", agent_ids)):
        # A plain string iterates as its characters: "alice" would bind the users a, l, i, c, e.
        if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
            raise ValidationError(
                f"{field} must be a list or tuple of ids, got {type(ids).__name__} {ids!r}; "
                f"e.g. {field}=('alice',)"
            )
    _refuse_empty_ids(org_id, user_ids, agent_ids)
    # Scope.of validates and normalises every id the way stored scopes are ("  carol " is
    # carol), so the key's ids compare equal to the scopes it is checked against.
    org_id = str(Scope.of(org_id=org_id).org_id)
    user_ids = tuple(str(Scope.of(user_id=u).user_id) for u in user_ids)
    agent_ids = tuple(str(Scope.of(agent_id=a).agent_id) for a in agent_ids)
    if len(name) > 200:
        raise ValidationError(f"key name is {len(name)} characters; keep it under 200")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    row = KeyRow(
        id=key_id,
        name=name,
        org_id=org_id,
        user_ids=tuple(dict.fromkeys(user_ids)),
        agent_ids=tuple(dict.fromkeys(agent_ids)),
        secret_hash=_hash(secret),
        created_at=time.time(),
    )
    _check_store(store).key_write(row)
    return CreatedKey(key=ApiKey.from_row(row), token=f"{PREFIX}{key_id}_{secret}")


def _refuse_empty_ids(org_id: str, user_ids: Sequence[str], agent_ids: Sequence[str]) -> None:
    """An empty id, with advice that fits a key: Scope's own message ('leave it out') does not,
    as a key's org is required."""
    if isinstance(org_id, str) and not org_id.strip():
        raise InvalidScope(
            "org_id is empty; a key is always bound to one org: pass its id, e.g. "
            "`agentmem keys create --org acme` (org_id='acme')"
        )
    for noun, ids in (("user", user_ids), ("agent", agent_ids)):
        if any(isinstance(i, str) and not i.strip() for i in ids):
            raise InvalidScope(
                f"{noun}_ids holds an empty id; drop the empty --{noun} (without --{noun} the key "
                f"acts for every {noun} of its org)"
            )


def verify_key(store: RecordStore, token: str) -> ApiKey | None:
    """The unrevoked key ``token`` proves, or None (malformed, unknown, wrong or revoked)."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    row = _check_store(store).key_get(match.group(1))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(match.group(2))):
        return None
    return ApiKey.from_row(row)


def list_keys(store: RecordStore, org_id: str | None = None) -> list[ApiKey]:
    """Every key (of one org), oldest first, revoked ones included."""
    return [ApiKey.from_row(r) for r in _check_store(store).key_rows(org_id)]


def revoke_key(store: RecordStore, key_id: str) -> ApiKey:
    """Revoke a key by id (the token stops working at once); returns it."""
    keys = _check_store(store)
    if not keys.key_revoke(key_id, time.time()):
        row = keys.key_get(key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}; list them with `agentmem keys list`")
    row = keys.key_get(key_id)
    assert row is not None
    return ApiKey.from_row(row)


__all__ = ["PREFIX", "ApiKey", "CreatedKey", "create_key", "list_keys", "revoke_key", "verify_key"]
