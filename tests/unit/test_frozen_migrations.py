"""Shipped schema migrations never change: each one's text is pinned by its hash.

A store records which migrations it applied by number, so an edited migration would never
reach a database that already applied it, and fresh and old databases would differ in silence.
Migrations are literal SQL in :mod:`agentmem.stores._migrations`; to change the schema, append
a migration and pin its hash here.
"""

from __future__ import annotations

import hashlib

import pytest

from agentmem.stores import _migrations
from agentmem.stores.sqlite import MIGRATIONS as SQLITE_MIGRATIONS

SQLITE = (
    "d8a31d256b4ba43d53e5273a416869a836e57763174e247491d55053a78e36a4",
    "a8be0b658d850765215f0e21be31efeaafeca211dfa5d67bcb7b3c2496668576",
    "161990ca4087d8b107aee641761e2eb92db05ad7dc6ee4e5c1e76a364ec73e54",
    "ba31a09721c550a8c21b7f28fb74539a7128201cf99c8d46131f30fe6a0c3787",
    "dc61bf866b60ffa1594954f10bfc1861d3f3a11b59179a9dfb50a0d425653345",
    "732d994d87b57945b998e75dd0075d6812ab1d5906096a5375e8ce119991199c",
    "1a3a8f9e3c8b2cdd21fe3a287670419493c1d9f188dafe074ce16ae75a3646aa",
    "40e3d5973a60240794c3212c864be03a952aa75c66aaa7f1d17301585284d0b5",
    "12b460817eee767833974b320f0daad8886466519cdf12c98d6fce6088143ceb",
)
POSTGRES = (
    "2c34dc7ab50b9bef3bfc677d26e8c503dd3a42e87c0b7eb1e4cd3e26f8252a00",
    "e731d38c2442efb418bc206e137c57da3e3c35125613a13be6647163b54d50f8",
    "1103783d72035d363ddc9b0395555ec334992a289aee9950e114b6c937cd5dd1",
    "9a70ec700abe8983295e1825d874f70979f19360cda81faf749f4a0289525a99",
    "9507a144265c66233fbdeab002d0041a830531573120cb6ace094fa40765c671",
    "caace03979d04dd2bb741e7ef1431fed7128b0b4bea045fe662a38303998885c",
    "9e9e9c138438cb16fc948d0c6a003c5463bc36945b413401de4fa541ec29e232",
    "eb8edbc9a28345301fe14d0cb864805e6d110003b39003d9b557bfe7e962c9b1",
    "32bac76e6ed573897a61d3938b73dad64f9aa290d4109b401d649c16274a3a26",
)


def _hashes(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts)


@pytest.mark.parametrize(
    ("engine", "texts", "pinned"),
    [("sqlite", _migrations.SQLITE, SQLITE), ("postgres", _migrations.POSTGRES, POSTGRES)],
)
def test_shipped_migrations_are_unchanged(
    engine: str, texts: tuple[str, ...], pinned: tuple[str, ...]
) -> None:
    got = _hashes(texts)
    changed = [n for n, (a, b) in enumerate(zip(got, pinned, strict=False), start=1) if a != b]
    assert not changed, (
        f"{engine} migrations {changed} were edited after shipping; restore them and append a "
        "new migration instead"
    )
    assert len(got) == len(pinned), (
        f"{engine} has {len(got)} migrations and {len(pinned)} pinned hashes: pin the hash of "
        "a new migration here when you add it (never remove a shipped one)"
    )


def test_stores_apply_the_frozen_migrations() -> None:
    assert SQLITE_MIGRATIONS is _migrations.SQLITE
    pytest.importorskip("psycopg")
    from agentmem.stores.postgres import MIGRATIONS as POSTGRES_MIGRATIONS

    assert POSTGRES_MIGRATIONS is _migrations.POSTGRES
