"""Every public sync method of ``Memory`` and ``AgentMemory``, and of the handles they return,
has an ``a``-prefixed async twin with exactly its signature (issue 27): no twin missing, none
typed ``**kwargs: Any``."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentmem import AgentMemory, Memory, Scope
from agentmem.buffers import FlushKind, ThreadBuffer
from agentmem.embedders import Embedder, normalise
from agentmem.errors import InvalidSettings
from agentmem.graph import GraphAPI
from agentmem.notes import NotesAPI
from agentmem.profiles import Profile
from agentmem.trust import Quarantine

NO_TWIN: dict[type, dict[str, str]] = {
    Memory: {
        "buffer": "returns a handle and does no I/O (the handle's methods have twins)",
        "for_agent": "returns a handle and does no I/O (the handle's methods have twins)",
        "profile": "returns a handle and does no I/O (the handle's methods have twins)",
    },
    AgentMemory: {
        "buffer": "returns a handle and does no I/O (the handle's methods have twins)",
        "readable": "computes the readable scopes; no I/O",
        "writable": "computes the writable scope; no I/O",
        "can_read": "compares scopes; no I/O",
    },
    ThreadBuffer: {},
    GraphAPI: {},
    NotesAPI: {},
    Profile: {},
    Quarantine: {},
}
"""The classes checked (the controllers and the handles they return), with the public sync
methods that need no twin and why."""


def public_methods(cls: type) -> dict[str, Any]:
    """The public plain methods of ``cls`` (properties and dunders left out)."""
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_")
        and inspect.isfunction(member)
        and not isinstance(inspect.getattr_static(cls, name), property)
    }


def is_async(member: Any) -> bool:
    return inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)


@pytest.mark.parametrize("cls", list(NO_TWIN), ids=lambda c: c.__name__)
def test_every_public_method_has_an_async_twin_with_its_signature(cls: type) -> None:
    methods = public_methods(cls)
    sync = {n: m for n, m in methods.items() if not is_async(m) and n not in NO_TWIN[cls]}
    assert sync, "no sync methods found: the test would pass vacuously"
    problems = []
    for name, method in sorted(sync.items()):
        twin = methods.get(f"a{name}")
        if twin is None or not is_async(twin):
            problems.append(f"{cls.__name__}.{name} has no async twin a{name}")
        elif inspect.signature(twin) != inspect.signature(method):
            problems.append(
                f"{cls.__name__}.a{name}{inspect.signature(twin)} differs from "
                f"{name}{inspect.signature(method)}"
            )
    for name, member in sorted(methods.items()):
        if is_async(member) and name[1:] not in sync:
            problems.append(f"{cls.__name__}.{name} is async but twins no public sync method")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("cls", [Memory, AgentMemory], ids=lambda c: c.__name__)
def test_no_method_takes_untyped_keywords(cls: type) -> None:
    """``**kwargs`` are allowed only as the typed scope keywords (``Unpack[ScopeKwargs]``),
    which a type checker checks by name: ``aadd("x", usr_id=...)`` is rejected."""
    loose = []
    for name, method in public_methods(cls).items():
        for param in inspect.signature(method).parameters.values():
            if param.kind is param.VAR_POSITIONAL:
                loose.append(f"{cls.__name__}.{name}(*{param.name})")
            if param.kind is param.VAR_KEYWORD and param.annotation != "Unpack[ScopeKwargs]":
                loose.append(f"{cls.__name__}.{name}(**{param.name}: {param.annotation})")
    assert not loose, "\n".join(loose)


def test_the_twins_run_the_sync_methods(tmp_path: Path, embedder: Embedder) -> None:
    async def session() -> None:
        async with Memory(home=tmp_path, embedder=embedder) as mem:
            stored = await mem.aadd("Maya drinks green tea", user_id="maya")
            assert (await mem.aget(stored.id, scope=Scope(user_id="maya"))).text == stored.text
            hits = await mem.asearch("tea", user_id="maya")
            assert [h.record.id for h in hits] == [stored.id]
            assert [r.id async for r in mem.aexport(page=1)] == [stored.id]
            agent = mem.for_agent("scout", user_id="maya")
            note = await agent.aadd("the shop opens at nine")
            assert [r.id for r in await agent.alist()] == [note.id]
            await mem.ainvalidate(stored.id)
            assert (await mem.ahistory(stored.id))[-1].version == 2
            buffer = mem.buffer(thread_id="t-1", user_id="maya")
            turn = await buffer.aappend("user", "I take my tea without sugar")
            assert [t.id for t in await buffer.amessages()] == [turn.id]
            assert await buffer.atokens() == turn.tokens
            assert (await buffer.acontext("tea")).turns == [turn]
            flushed = await buffer.aflush(kind=FlushKind.CLOSE)
            assert flushed is not None and flushed.kind is FlushKind.CLOSE
            # The other handles' twins: notes, profile, quarantine, graph.
            assert await mem.notes.alinks(stored.id, user_id="maya") == []
            profile = await mem.profile(user_id="maya").aset(location="Porto")
            assert profile.fields["location"].value == "Porto"
            assert await mem.quarantine.alist(user_id="maya") == []
            assert (await mem.graph.astats(user_id="maya")).entities >= 0

    asyncio.run(session())


@pytest.mark.slow
def test_a_type_checker_rejects_a_misspelt_keyword(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twins keep the sync signature for mypy too (issue 27: ``aadd("x", usr_id=...)``
    used to type-check)."""
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "uses_twins.py"
    snippet.write_text(
        "from agentmem import Memory\n\n\n"
        "async def use(mem: Memory) -> None:\n"
        '    await mem.aadd("x", user_id="alice")\n'
        '    await mem.aadd("x", usr_id="alice")\n'
        '    await mem.for_agent("scout", user_id="alice").asearch("x", k="ten")\n',
        encoding="utf-8",
    )
    root = Path(__file__).resolve().parents[2]
    # agentmem from the source tree, third-party packages left out (they are Any under the
    # project's ignore_missing_imports): the twins' signatures are all this checks, and
    # analysing torch and friends with a cold cache took 78 s of the suite.
    monkeypatch.setenv("MYPYPATH", str(root))
    out, _, status = mypy_api.run(
        [
            str(snippet),
            "--config-file",
            str(root / "pyproject.toml"),
            "--no-error-summary",
            "--no-site-packages",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1
    assert [e.split(":")[1] for e in errors] == ["6", "7"], out
    assert 'Unexpected keyword argument "usr_id"' in errors[0]


class HeldEmbedder(Embedder):
    """A 16-dim hash embedder that, while ``hold`` is clear, signals ``entered`` and blocks in
    ``embed_documents``; like the ONNX embedder, it cannot embed once closed."""

    name = "held-hash-16"

    def __init__(self) -> None:
        self.entered, self.hold = threading.Event(), threading.Event()
        self.session: object | None = object()

    @property
    def dim(self) -> int:
        return 16

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not self.hold.is_set():
            self.entered.set()
            assert self.hold.wait(10)
        if self.session is None:
            raise AttributeError("'NoneType' object has no attribute 'run'")
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], np.uint8) for t in texts]
        return normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), 16) + 1)

    def close(self) -> None:
        self.session = None


def test_close_waits_for_the_async_calls_in_flight(tmp_path: Path) -> None:
    """aclose() while an aadd embeds in its thread: the add completes and is stored, close
    waits for it (the home lock is released after it), and calls starting once close began
    are refused with "this Memory is closed" (it used to close the embedder and the store
    under the running call: a raw AttributeError, or a failure for a write that landed)."""
    embedder = HeldEmbedder()

    async def session() -> str:
        mem = Memory(home=tmp_path, embedder=embedder)
        embedder.hold.set()
        first = await mem.aadd("Maya drinks green tea", user_id="maya")
        embedder.hold.clear()
        adding = asyncio.create_task(mem.aadd("Maya is allergic to peanuts", user_id="maya"))
        await asyncio.to_thread(embedder.entered.wait, 10)
        closing = asyncio.create_task(mem.aclose())
        while True:  # until close has begun: a new call is then refused
            try:
                await mem.aget(first.id, scope=Scope(user_id="maya"))
            except InvalidSettings as exc:
                assert "this Memory is closed" in str(exc)
                break
            await asyncio.sleep(0.005)
        assert not closing.done()  # still waiting for the add
        embedder.hold.set()
        stored = await adding
        await closing
        return stored.id

    stored_id = asyncio.run(session())
    with Memory(home=tmp_path, embedder=HeldEmbedder()) as mem:
        assert mem.get(stored_id, scope=Scope(user_id="maya")).text == "Maya is allergic to peanuts"


def test_a_retry_after_a_cancel_with_the_idempotency_key_stores_one_memory(
    tmp_path: Path,
) -> None:
    """Cancelling an async call does not stop its worker thread: the cancelled aadd still
    lands (as the docs say), and a retry passing the same idempotency_key returns that memory
    instead of storing a second copy."""
    embedder = HeldEmbedder()

    async def session() -> None:
        async with Memory(home=tmp_path, embedder=embedder) as mem:
            text, key = "Maya is allergic to peanuts", "req-42"
            adding = asyncio.create_task(mem.aadd(text, user_id="maya", idempotency_key=key))
            await asyncio.to_thread(embedder.entered.wait, 10)
            adding.cancel()  # what asyncio.wait_for or a client disconnect does
            with pytest.raises(asyncio.CancelledError):
                await adding
            embedder.hold.set()  # the worker thread goes on and writes
            for _ in range(1000):
                if await mem.alist(user_id="maya"):
                    break
                await asyncio.sleep(0.01)
            retried = await mem.aadd(text, user_id="maya", idempotency_key=key)
            assert [r.id for r in await mem.alist(user_id="maya")] == [retried.id]

    asyncio.run(session())
