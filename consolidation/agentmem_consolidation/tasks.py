"""Thin Celery tasks: they take scope keys and run ids, are idempotent, and retry with
Celery's exponential backoff on backend errors (``autoretry_for``; the policy comes from
settings, :class:`agentmem_consolidation.app.RetryAnnotations`). One task per stage, each
named after it (``agentmem.consolidation.extract``, ...), chained by :func:`consolidate`
between ``agentmem.consolidation.start`` and ``agentmem.consolidation.finish``; a task never
waits on another task's result.

A worker opens the Memory its settings name for each task and closes it afterwards (so an
embedded home is free between tasks); the embedding model is loaded once per process.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Celery, Task, chain
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError

from agentmem import Memory
from agentmem.embedders import Embedder, embedder_from_spec
from agentmem.errors import AgentMemError, BackendUnavailable, InvalidSettings
from agentmem.models import Scope
from agentmem.settings import Settings
from agentmem.urls import REDIS_DATABASES, redact
from agentmem_consolidation import ledger
from agentmem_consolidation.app import GPU_QUEUE, app, task_name
from agentmem_consolidation.locks import redis_owner, scope_lock
from agentmem_consolidation.pipeline import _check_run, active_scopes, execute_stage, fail, finish
from agentmem_consolidation.stages import STAGES, RunContext

log = logging.getLogger(__name__)
_EMBEDDERS: dict[str, Embedder] = {}
LOCK_POLL_S = 0.5
"""How often a run waiting for its scope's lock (``lock_wait_s``) tries again."""
RETRIED = (BackendUnavailable,)
"""What a consolidation task is retried on (with backoff): a backend that cannot be reached."""


@contextmanager
def worker_memory() -> Iterator[Memory]:
    """The Memory of this worker's settings, open for one task."""
    settings = Settings.load()
    embedder = _EMBEDDERS.get(settings.embedder)
    if embedder is None:
        embedder = _EMBEDDERS[settings.embedder] = embedder_from_spec(
            settings.embedder,
            batch_size=settings.embed_batch_size,
            precision=settings.embed_precision,
            threads=settings.embed_threads,
        )
    with Memory(settings=settings, embedder=embedder) as mem:
        yield mem


@app.task(bind=True, name=task_name("start"), acks_late=True, autoretry_for=RETRIED)
def start_run(self: Task, key: str, run_id: str, store: str | None = None) -> bool:
    """Take the scope's lock for the run (waiting up to ``lock_wait_s`` by re-scheduling
    itself, never by blocking a worker); else mark the run skipped. Returns whether it runs.

    ``store`` is the producer's :func:`~agentmem_consolidation.ledger.store_identity`: a run
    queued for another store than this worker's is refused (logged, and the task fails with
    InvalidSettings naming both stores), so the rest of its chain does nothing; None (an older
    producer, or a caller that did not say) is not checked."""
    _check_store(run_id, store)
    owner = redis_owner(Settings.load(), key)
    if owner not in (None, run_id) and _may_wait(self):
        raise _wait_for_lock(self)  # polled without opening the store
    with worker_memory() as mem:
        scope = ledger.scope_of(key)
        if ledger.stage_done(mem, run_id, ledger.RUN_STAGE):
            return False
        lock = scope_lock(mem, mem.settings, key)
        if lock.acquire(run_id):
            row = _run_row(mem, run_id)
            if row is None or row.status == ledger.QUEUED:
                ledger.record(mem, run_id, ledger.RUN_STAGE, scope, ledger.RUNNING)
            return True
        if _may_wait(self):
            raise _wait_for_lock(self)
        ledger.record(
            mem,
            run_id,
            ledger.RUN_STAGE,
            scope,
            ledger.SKIPPED,
            error=f"scope busy (run {lock.owner()})",
        )
        return False


def _check_store(run_id: str, store: str | None) -> None:
    """Refuse a run queued for another store than this worker's (see :func:`start_run`)."""
    if store is None:
        return
    mine = ledger.store_identity(Settings.load())
    if ledger.normal_store_url(store) == mine:
        return
    message = (
        f"run {run_id} was queued for the store {store}, but this worker consolidates "
        f"{mine}; the run is not started. Start workers with the producer's AGENTMEM_HOME / "
        "AGENTMEM_STORE_URL (or a broker of their own), or queue from a command configured "
        "like these workers"
    )
    log.error("%s", message)
    raise InvalidSettings(message)


def _may_wait(task: Task) -> bool:
    """Whether a run waiting for its scope's lock has waited less than ``lock_wait_s``."""
    return bool(task.request.retries * LOCK_POLL_S < Settings.load().consolidation.lock_wait_s)


def _wait_for_lock(task: Task) -> Exception:
    # One more retry each time (max_retries=None would mean Celery's default, 3).
    return task.retry(countdown=LOCK_POLL_S, max_retries=task.request.retries + 1)


def _run_row(mem: Memory, run_id: str) -> ledger.JobRow | None:
    rows = [r for r in ledger.store_of(mem).job_rows(run_id=run_id) if r.stage == ledger.RUN_STAGE]
    return rows[0] if rows else None


def run_stage(task: Task, key: str, run_id: str, stage: str) -> dict[str, int] | None:
    """Run one stage of a run (skipped when the run was skipped, failed, or this stage already
    done): the body of every stage task.

    A stage that fails for good (an error that is not retried, or its last retry, after which
    Celery gives up) closes the run ``failed`` and releases the scope's lock before the error
    ends the chain; a run that lost its lock (it expired and another run took it) is closed
    ``failed`` too, so the remaining stages of the chain do nothing and ``finish`` does not
    record it done."""
    with worker_memory() as mem:
        row = _run_row(mem, run_id)
        if row is None or row.status != ledger.RUNNING:
            return None
        scope = ledger.scope_of(key)
        lock = scope_lock(mem, mem.settings, key)
        if not lock.acquire(run_id):
            error = f"lost the scope lock to run {lock.owner()}"
            ledger.record(mem, run_id, stage, scope, ledger.SKIPPED, error=error)
            fail(mem, scope, run_id, row.started_at, f"ScopeBusy: {error}")
            return None
        run = RunContext(run_id, mem.settings.consolidation, train_adapter=send_adapter_training)
        last = task.max_retries is not None and task.request.retries >= task.max_retries
        try:
            result = execute_stage(
                mem, scope, run, stage, attempt=task.request.retries + 1, last_attempt=last
            )
        except Exception as exc:
            if isinstance(exc, RETRIED) and not last:
                raise  # Celery retries the stage; the run goes on
            # The store may be down too: then the run row stays running until the lock expires.
            with contextlib.suppress(AgentMemError):
                fail(mem, scope, run_id, row.started_at, f"{type(exc).__name__}: {exc}")
                lock.release(run_id)
            raise
        return None if result is None else {"in": result.count_in, "out": result.count_out}


def _stage_task(stage: str) -> Task:
    """The task of one stage, named ``agentmem.consolidation.<stage>``."""

    def stage_task(self: Task, key: str, run_id: str) -> dict[str, int] | None:
        return run_stage(self, key, run_id, stage)

    stage_task.__name__ = stage_task.__qualname__ = f"stage_{stage}"
    stage_task.__doc__ = f"The ``{stage}`` stage of a run (see :func:`run_stage`)."
    task: Task = app.task(bind=True, name=task_name(stage), acks_late=True, autoretry_for=RETRIED)(
        stage_task
    )
    return task


STAGE_TASKS: dict[str, Task] = {name: _stage_task(name) for name in STAGES}
"""One task per registered stage, by stage name."""


@app.task(bind=True, name=task_name("finish"), acks_late=True, autoretry_for=RETRIED)
def finish_run(self: Task, key: str, run_id: str) -> bool:
    """Close the run: its summary row, the scope's last-run watermark, the lock released."""
    with worker_memory() as mem:
        row = _run_row(mem, run_id)
        if row is None or row.status != ledger.RUNNING:
            return False
        scope = ledger.scope_of(key)
        lock = scope_lock(mem, mem.settings, key)
        if not lock.acquire(run_id):  # expired and taken: its stages may not all have run
            fail(
                mem,
                scope,
                run_id,
                row.started_at,
                f"ScopeBusy: lost the scope lock to run {lock.owner()}",
            )
            return False
        finish(mem, scope, run_id, row.started_at)
        lock.release(run_id)
        return True


@app.task(bind=True, name=task_name("train_adapter"), acks_late=True, autoretry_for=RETRIED)
def train_adapter(self: Task, key: str) -> dict[str, Any]:
    """Train (or reuse) the scope's retriever adapter and its recall adapter (on
    ``consolidation.recall_adapter_base``, SmolLM2 by default); runs on the ``gpu`` queue."""
    from agentmem_gpu.recall_adapter_pipeline import train_scope_adapters

    with worker_memory() as mem:
        return train_scope_adapters(mem, ledger.scope_of(key))


def send_adapter_training(scope: Scope) -> None:
    """Queue adapter training for ``scope`` on the ``gpu`` queue (the adapter stage's hand-off)."""
    train_adapter.apply_async((ledger.scope_key(scope),), queue=GPU_QUEUE)


def require_broker(celery_app: Celery) -> None:
    """Refuse to queue on an app with no broker (its in-process ``memory://`` transport)."""
    broker = str(celery_app.conf.broker_url or "memory://")
    if broker.startswith("memory://"):
        raise InvalidSettings(
            "no consolidation broker is configured, so a queued run would only live in this "
            "process and be lost when it exits; set AGENTMEM_CONSOLIDATION__BROKER_URL "
            "(redis://... or amqp://...) and start a worker "
            "(celery -A agentmem_consolidation worker), "
            "or run it inline: agentmem consolidate --now"
        )


def consolidate(
    scope: Scope,
    *,
    run_id: str | None = None,
    stages: Sequence[str] | None = None,
    celery_app: Celery | None = None,
    store: str | None = None,
) -> tuple[str, AsyncResult]:
    """Start the pipeline for ``scope`` on the workers: a chain of one task per stage, sent
    through ``celery_app`` (default: :data:`agentmem_consolidation.app`). Returns the run id (see
    the
    ledger) and the chain's result.

    Raises :class:`~agentmem.errors.InvalidSettings` when the app has no broker (Celery's
    in-process ``memory://`` transport): the run would live only in this process and vanish
    with it, unseen by any worker or ``agentmem jobs``, or when its broker or result backend
    cannot be used (a scheme with no transport or backend, a malformed URL, a missing client
    library, a Redis database that does not exist), naming the setting;
    :class:`~agentmem.errors.BackendUnavailable` when either cannot be reached;
    :class:`~agentmem.errors.ValidationError` when ``scope`` is not a Scope or ``stages`` names
    an unknown stage (nothing is queued).

    ``store`` (:func:`~agentmem_consolidation.ledger.store_identity` of the producer's
    settings) travels with the run: a worker on another store refuses it instead of
    consolidating its own store's scope of that name. None: the workers' store, unchecked."""
    names = _check_run(scope, stages)  # a typo would queue a task no worker knows
    sender = celery_app or app
    require_broker(sender)
    run_id = run_id or ledger.new_run_id()
    key = ledger.scope_key(scope)
    flow = chain(
        sender.signature(task_name("start"), _start_args(key, run_id, store), immutable=True),
        *(sender.signature(task_name(name), (key, run_id), immutable=True) for name in names),
        sender.signature(task_name("finish"), (key, run_id), immutable=True),
    )
    return run_id, _send(sender, flow)


_SUPPORTED_BROKERS = (
    "agentmem supports redis://, rediss:// and amqp:// (amqps://) brokers: "
    "fix AGENTMEM_CONSOLIDATION__BROKER_URL"
)


def _start_args(key: str, run_id: str, store: str | None) -> tuple[str, ...]:
    # Without a store the message is the one older workers take too.
    return (key, run_id) if store is None else (key, run_id, store)


def _send(sender: Celery, flow: Any) -> AsyncResult:
    """``flow.apply_async()``, with a broker or result backend that cannot be used as one
    agentmem error naming its URL (password hidden) and its setting instead of the transport's,
    Celery's or redis-py's own exception. Both are checked before anything is sent."""
    broker = redact(str(sender.conf.broker_url))
    # kombu re-raises a refused or dropped connection as its OperationalError, no OSError.
    failures: tuple[type[Exception], ...] = (
        *_broker_failures(sender, broker),
        KombuOperationalError,
        OSError,
    )
    _check_result_backend(sender)
    try:
        return flow.apply_async()
    except failures as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise BackendUnavailable(
            f"cannot queue the run on the consolidation broker at {broker}: {reason}; start "
            "the broker or fix AGENTMEM_CONSOLIDATION__BROKER_URL"
        ) from exc
    except RuntimeError as exc:  # Celery's result backend gave up reconnecting
        backend = redact(str(sender.conf.result_backend))
        raise BackendUnavailable(
            f"cannot queue the run: the consolidation result backend at {backend} is "
            f"unreachable ({' '.join(str(exc).split())}); start it or fix {_RESULT_BACKEND}"
        ) from exc


def _broker_failures(sender: Celery, broker: str) -> tuple[type[Exception], ...]:
    """The exceptions the broker's transport raises when it cannot be reached; a transport
    that cannot be loaded is InvalidSettings naming ``broker``."""
    try:
        with sender.connection_for_write() as connection:
            return (*connection.connection_errors, *connection.channel_errors)
    except KeyError as exc:  # kombu knows no transport of that scheme
        raise InvalidSettings(
            f"consolidation broker {broker}: {exc.args[0]}; {_SUPPORTED_BROKERS}"
        ) from None
    except Exception as exc:  # kombu knows it, but its module or client library fails to load
        scheme = broker.split("://", 1)[0]
        raise InvalidSettings(
            f"consolidation broker {broker}: kombu's {scheme}:// transport cannot be loaded "
            f"({type(exc).__name__}: {exc}); {_SUPPORTED_BROKERS}"
        ) from None


_RESULT_BACKEND = "AGENTMEM_CONSOLIDATION__RESULT_BACKEND"


def _check_result_backend(sender: Celery) -> None:
    """Build the app's result backend and, when it is a Redis other than the broker's, reach
    it. Celery builds it inside ``apply_async`` and let its ImportError (an unknown scheme),
    ValueError (a malformed URL) or ImproperlyConfigured (a missing client library) out as
    they were; a Redis database that does not exist failed there as the broker's error."""
    from celery.backends.redis import RedisBackend

    url = str(sender.conf.result_backend or "")
    where = redact(url) if url else "(none set)"
    try:
        backend = sender.backend
    except Exception as exc:
        raise InvalidSettings(
            f"consolidation result backend {where} cannot be used ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); fix {_RESULT_BACKEND} (e.g. redis://host:6379/1 "
            "or rpc://)"
        ) from None
    if not isinstance(backend, RedisBackend) or url == str(sender.conf.broker_url):
        return  # the broker's own Redis is checked by sending; others are reached on use
    _ping_result_backend(backend, where)


def _ping_result_backend(backend: Any, where: str) -> None:
    """Reach a Redis result backend (at ``where``), its failure an agentmem error naming it."""
    from redis import exceptions as rx

    try:
        backend.client.ping()
    except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
        if isinstance(exc, rx.AuthenticationError):
            raise InvalidSettings(
                f"the consolidation result backend at {where} refused the credentials ({exc}); "
                f"fix the password in {_RESULT_BACKEND}"
            ) from None
        raise BackendUnavailable(
            f"cannot reach the consolidation result backend at {where} "
            f"({type(exc).__name__}: {exc}); start it or fix {_RESULT_BACKEND}"
        ) from exc
    except rx.ResponseError as exc:
        hint = ""
        if "DB index is out of range" in str(exc):
            db = getattr(backend, "connparams", {}).get("db")
            hint = f"; this Redis has no database {db} ({REDIS_DATABASES})"
        raise InvalidSettings(
            f"the consolidation result backend at {where} refused to connect ({exc}){hint}; "
            f"fix {_RESULT_BACKEND}"
        ) from None
    except rx.RedisError as exc:
        raise BackendUnavailable(
            f"the consolidation result backend at {where} failed ({type(exc).__name__}: "
            f"{exc}); fix {_RESULT_BACKEND}"
        ) from exc


@app.task(bind=True, name=task_name("dispatch"), acks_late=True, autoretry_for=RETRIED)
def dispatch(self: Task) -> list[str]:
    """Start a pipeline for every scope with new activity since its last run and no run under
    way (the beat entry)."""
    started = time.time()
    with worker_memory() as mem:
        store = ledger.store_identity(mem.settings)
        # A scope whose run is under way is left to it (the next dispatch sees what it did
        # not cover).
        scopes = [
            s
            for s in active_scopes(mem)
            if scope_lock(mem, mem.settings, ledger.scope_key(s)).owner() is None
        ]
    runs = [consolidate(scope, store=store)[0] for scope in scopes]
    app.log.get_default_logger().info(
        "dispatched %d consolidation runs in %.2fs", len(runs), time.time() - started
    )
    return runs


__all__ = [
    "RETRIED",
    "STAGES",
    "STAGE_TASKS",
    "consolidate",
    "dispatch",
    "finish_run",
    "require_broker",
    "run_stage",
    "send_adapter_training",
    "start_run",
    "train_adapter",
    "worker_memory",
]
