"""Async twins made from the sync methods, so the two can never drift apart, and the
``with`` / ``async with`` support of the classes that have them.

``aadd = async_twin(add)`` in a class body gives ``aadd`` exactly ``add``'s signature (the
same parameters, types and defaults, for type checkers too: ``ParamSpec`` carries them), a
coroutine that runs ``add`` in a worker thread (:func:`asyncio.to_thread`, context variables
included), and a docstring pointing at ``add``. There is no second copy of any signature to
keep in step; ``tests/unit/test_async_twins.py`` checks every public method has its twin.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")


def async_twin(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The async twin of a sync method: same signature, run in a worker thread."""

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self, *args, **kwargs)

    _name(twin, method)
    return twin


def async_iter_twin(
    method: Callable[Concatenate[S, P], Iterator[T]],
) -> Callable[Concatenate[S, P], AsyncIterator[T]]:
    """The async twin of a sync method returning an iterator: same parameters, an async
    iterator whose every step (each a page read, say) runs in a worker thread."""

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        items = await asyncio.to_thread(method, self, *args, **kwargs)
        while step := await asyncio.to_thread(_step, items):
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


__all__ = ["Closeable", "async_iter_twin", "async_twin"]
