"""The pipeline through a real worker with RabbitMQ as the broker
(``amqp://guest:guest@127.0.0.1:5672//``) and the ``rpc://`` result backend: scope locks then
live in the store, and the store ends as the inline path leaves it."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentmem_consolidation
from agentmem import Scope, Settings
from agentmem.embedders import Embedder
from agentmem.errors import BackendUnavailable, InvalidSettings
from agentmem_consolidation import run_inline
from agentmem_consolidation.app import GPU_QUEUE, create_app
from agentmem_consolidation.locks import StoreScopeLock, scope_lock
from agentmem_consolidation.tasks import consolidate
from tests.consolidation import workers


def test_pipeline_on_a_rabbitmq_worker(
    rabbitmq_url: str, embedder: Embedder, tmp_path: Path
) -> None:
    home, reference = tmp_path / "celery", tmp_path / "inline"
    for h in (home, reference):
        workers.fill(h, embedder, "rabbit", 4)
    env = workers.env_for(home, rabbitmq_url, AGENTMEM_CONSOLIDATION__RESULT_BACKEND="rpc://")
    settings = Settings.load(home=home, consolidation=workers.client_settings(env))
    client = create_app(settings)
    assert client.conf.broker_url.startswith("amqp://")
    log = tmp_path / "worker.log"
    with workers.running(workers.worker_args(), env, log):
        run_id, _ = consolidate(Scope.of(user_id="rabbit"), celery_app=client)
        workers.wait(
            lambda: any(
                r == run_id and s == "run" and st == "done"
                for r, s, st, _, _ in workers.jobs(home, "user_id=rabbit")
            ),
            120,
            log,
            "the run to finish on the RabbitMQ worker",
        )
    rows = workers.jobs(home, "user_id=rabbit")
    assert sorted((s, st) for r, s, st, _, _ in rows if r == run_id) == sorted(
        (s, "done") for s in ("run", *agentmem_consolidation.STAGES)
    )
    # The gpu queue has its own routing key: no stage message was copied into it.
    with client.connection_for_write() as conn:
        gpu = client.amqp.queues[GPU_QUEUE](conn.default_channel)
        _, waiting, _ = gpu.queue_declare(passive=True)
    assert waiting == 0
    with workers.open_home(home, embedder) as mem:
        lock = scope_lock(
            mem,
            mem.settings.model_copy(update={"consolidation": settings.consolidation}),
            "user_id=rabbit",
        )
        assert isinstance(lock, StoreScopeLock) and lock.owner() is None  # released
    with workers.open_home(reference, embedder) as mem:
        run_inline(mem, Scope.of(user_id="rabbit"))
    got = workers.contents(home, embedder, "rabbit")
    assert got == workers.contents(reference, embedder, "rabbit")
    assert any(kind == "semantic" for kind, _, _, _ in got)


def test_a_broker_that_refuses_the_login_is_one_error_naming_it(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    """Not the transport's traceback: one BackendUnavailable with the URL, password hidden;
    a scheme kombu has no transport for is a settings error (the settings refuse it when
    they load; an app configured by hand meets it when a run is queued)."""
    wrong = rabbitmq_url.replace("guest:guest@", "guest:s3cret@")
    settings = Settings.load(home=tmp_path, consolidation={"broker_url": wrong})
    with pytest.raises(BackendUnavailable, match="ACCESS_REFUSED") as info:
        consolidate(Scope.of(user_id="rabbit"), celery_app=create_app(settings))
    assert "guest:***@" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(InvalidSettings, match="broker_url 'foo://x' is not a broker"):
        Settings.load(home=tmp_path, consolidation={"broker_url": "foo://x"})
    by_hand = create_app(settings)
    by_hand.conf.broker_url = "foo://x"
    with pytest.raises(InvalidSettings, match="No such transport: foo"):
        consolidate(Scope.of(user_id="rabbit"), celery_app=by_hand)
