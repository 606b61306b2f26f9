"""API keys in both relational stores: hashed at rest, verified, listed, revoked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem.errors import NotFound, ValidationError
from agentmem.stores import RecordStore, SQLiteStore
from agentmem_server import create_key, list_keys, revoke_key, verify_key


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    if request.param == "sqlite":
        made: RecordStore = SQLiteStore(tmp_path / "keys.db")
    else:
        from agentmem.stores.postgres import PostgresStore

        made = PostgresStore(request.getfixturevalue("pg_url"))
    with made:
        yield made


def test_keys_lifecycle(store: RecordStore) -> None:
    created = create_key(store, org_id="acme", user_ids=("alice", "alice"), name="laptop")
    # The secret is url-safe base64, which may itself hold "_": cut the known head off.
    secret = created.token.removeprefix(f"amk_{created.key.id}_")
    assert len(secret) >= 40
    row = store.key_get(created.key.id)
    assert row is not None and secret not in row.secret_hash and row.user_ids == ("alice",)
    assert verify_key(store, created.token) == created.key
    assert (
        verify_key(store, created.token[:-1] + ("A" if created.token[-1] != "A" else "B")) is None
    )
    assert verify_key(store, "not-a-key") is None
    other = create_key(store, org_id="globex", agent_ids=("bot",))
    assert [k.id for k in list_keys(store)] == [created.key.id, other.key.id]
    assert [k.id for k in list_keys(store, "globex")] == [other.key.id]
    revoked = revoke_key(store, created.key.id)
    assert revoked.revoked_at is not None
    assert verify_key(store, created.token) is None
    assert verify_key(store, other.token) is not None
    with pytest.raises(NotFound, match="no API key"):
        revoke_key(store, "0123456789abcdef")


def test_a_key_binds_the_ids_scopes_are_stored_under(store: RecordStore) -> None:
    """Ids are normalised like scopes' (" carol " is carol), or a key bound to " carol "
    could write to carol's scope and then not read what it wrote (may_read compares them)."""
    from agentmem.models import Scope
    from agentmem_server.auth import may_read

    key = create_key(store, org_id=" acme", user_ids=(" carol ",), agent_ids=("bot ",)).key
    assert (key.org_id, key.user_ids, key.agent_ids) == ("acme", ("carol",), ("bot",))
    assert may_read(key, Scope.of(org_id="acme", user_id=" carol ", agent_id="bot"))


def test_every_token_verifies_whatever_its_secret_holds(store: RecordStore) -> None:
    # url-safe secrets hold "_" and "-" about half the time: parsing must not split on them.
    tokens = [create_key(store, org_id="acme").token for _ in range(20)]
    assert all(verify_key(store, token) is not None for token in tokens)


def test_bad_bindings_are_refused(store: RecordStore) -> None:
    with pytest.raises(ValidationError, match="org_id"):
        create_key(store, org_id="")
    with pytest.raises(ValidationError, match="path separator"):
        create_key(store, org_id="acme", user_ids=("a/b",))
    # A plain string is not taken as its characters (the users a, l, i, c, e).
    with pytest.raises(ValidationError, match="user_ids must be a list or tuple of ids"):
        create_key(store, org_id="acme", user_ids="alice")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="agent_ids must be a list or tuple of ids"):
        create_key(store, org_id="acme", agent_ids="bot")  # type: ignore[arg-type]
    assert list_keys(store) == []
    assert create_key(store, org_id="acme", user_ids=["alice"]).key.user_ids == ("alice",)
