"""Async twins made from the sync methods, so the two can never drift apart, and the
``with`` / ``async with`` support of the classes that have them.

``aadd = async_twin(add)`` in a class body gives ``aadd`` exactly ``add``'s signature (the
same parameters, types and defaults, for type checkers too: ``ParamSpec`` carries them), a
coroutine that runs ``add`` in a worker thread (:func:`asyncio.to_thread`, context variables
included), and a docstring pointing at ``add``. There is no second copy of any signature to
keep in step; ``tests/unit/test_async_twins.py`` checks every public method has its twin.
Cancelling a twin's task does not stop its thread: the sync method runs to completion (a
cancelled write lands; a retry should pass ``idempotency_key``).

A class whose twins share something closeable (a :class:`~agentmem.Memory`'s backends) sets
``_call_gate`` to that thing's :class:`CallGate`: each twin call is counted while it runs in its
thread, ``close()`` waits for the running ones (:meth:`CallGate.drain`) and the ones starting
after it are refused.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from agentmem.errors import MemoryClosed

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")

logger = logging.getLogger(__name__)

CLOSE_WAIT_S = 30.0
"""How long :meth:`CallGate.drain` (``Memory.close()``) waits for async calls still running."""

CLOSED_MESSAGE = "this Memory is closed; open a new one"


class CallGate:
    """Counts the async-twin calls running in worker threads on one resource, so that its
    close can wait for them to finish, and refuses the calls that start once closing began
    (:class:`~agentmem.errors.MemoryClosed`, "this Memory is closed")."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._closing = False
        self._here = threading.local()  # calls running in this thread (a close from inside one)

    def enter(self) -> None:
        """Count one call starting in this thread; refuse it once :meth:`drain` began."""
        with self._cond:
            if self._closing:
                raise MemoryClosed(CLOSED_MESSAGE)
            self._running += 1
        self._here.calls = getattr(self._here, "calls", 0) + 1

    def exit(self) -> None:
        """Count one call (started with :meth:`enter` in this thread) finished."""
        self._here.calls -= 1
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def drain(self, timeout: float = CLOSE_WAIT_S) -> bool:
        """Refuse new calls and wait up to ``timeout`` seconds for the running ones (other
        than the caller's own) to finish; False (logged) when some still run after that."""
        own = getattr(self._here, "calls", 0)
        with self._cond:
            self._closing = True
            done = self._cond.wait_for(lambda: self._running <= own, timeout)
            if not done:
                logger.warning(
                    "closing with %d async call(s) still running after %.0f s; they may fail",
                    self._running - own,
                    timeout,
                )
            return done


def _gated(obj: object, call: Callable[[], R]) -> R:
    """``call()`` (a method of ``obj``) counted on ``obj``'s :class:`CallGate`, if it has one."""
    gate = getattr(obj, "_call_gate", None)
    if not isinstance(gate, CallGate):
        return call()
    gate.enter()
    try:
        return call()
    finally:
        gate.exit()


def async_twin(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The async twin of a sync method: same signature, run in a worker thread (counted on
    the object's :class:`CallGate`, if it has one)."""

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        call = functools.partial(method, self, *args, **kwargs)
        return await asyncio.to_thread(_gated, self, call)

    _name(twin, method)
    return twin


def async_iter_twin(
    method: Callable[Concatenate[S, P], Iterator[T]],
) -> Callable[Concatenate[S, P], AsyncIterator[T]]:
    """The async twin of a sync method returning an iterator: same parameters, an async
    iterator whose every step (each a page read, say) runs in a worker thread."""

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        items = await asyncio.to_thread(
            _gated, self, functools.partial(method, self, *args, **kwargs)
        )
        while step := await asyncio.to_thread(_gated, self, functools.partial(_step, items)):
            yield step[0]

    _name(twin, method)
    return twin


class Closeable:
    """``with`` and ``async with`` for a class with a ``close()`` method, and ``aclose()``,
    its async twin."""

    def close(self) -> None:
        """Release what the object holds (subclasses define it)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Async twin of :meth:`close` (run in a worker thread)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _step(items: Iterator[T]) -> tuple[T] | tuple[()]:
    """The next item (in a 1-tuple), or ``()`` at the end."""
    for item in items:
        return (item,)
    return ()


def _name(twin: Callable[..., Any], method: Callable[..., Any]) -> None:
    twin.__name__ = f"a{method.__name__}"
    twin.__qualname__ = f"{method.__qualname__.rpartition('.')[0]}.a{method.__name__}".lstrip(".")
    twin.__doc__ = f"Async twin of :meth:`{method.__name__}` (run in a worker thread)."
    # The signature stays the sync method's; only the return differs (awaited / async-iterated).
    twin.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]


__all__ = ["CLOSE_WAIT_S", "CallGate", "Closeable", "async_iter_twin", "async_twin"]
