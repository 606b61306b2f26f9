"""The bodies of the Celery tasks, run in this process on one home (no broker, no worker): how a
run's ledger rows and scope lock end when a stage fails or the run loses its lock."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentmem import Memory, Scope, Settings, ValidationError
from agentmem.errors import BackendUnavailable, InvalidSettings
from agentmem_consolidation import ledger, tasks
from agentmem_consolidation.app import create_app
from agentmem_consolidation.locks import scope_lock
from agentmem_consolidation.stages import STAGES, RunContext, StageResult
from tests.services import require_service

ALICE = Scope.of(user_id="alice")
KEY = ledger.scope_key(ALICE)


@pytest.fixture
def worker_mem(mem: Memory, monkeypatch: pytest.MonkeyPatch) -> Memory:
    """``mem`` as the Memory every task opens."""

    @contextmanager
    def opened() -> Iterator[Memory]:
        yield mem

    monkeypatch.setattr(tasks, "worker_memory", opened)
    return mem


def _task(retries: int = 0, max_retries: int | None = 3) -> SimpleNamespace:
    """What run_stage reads of its Celery task: the retry count of this delivery, the policy."""
    return SimpleNamespace(request=SimpleNamespace(retries=retries), max_retries=max_retries)


def _started(mem: Memory) -> str:
    run_id = ledger.new_run_id()
    assert tasks.start_run(KEY, run_id)
    return run_id


def _status(mem: Memory, run_id: str) -> dict[str, tuple[str, str | None]]:
    return {r.stage: (r.status, r.error) for r in ledger.jobs(mem, run_id=run_id)}


def _raising(exc: Exception) -> object:
    def stage(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
        raise exc

    return stage


def test_a_stage_that_fails_closes_the_run_and_frees_the_scope(
    worker_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STAGES, "decay", _raising(ValueError("bad mark")))
    run_id = _started(worker_mem)
    with pytest.raises(ValueError, match="bad mark"):
        tasks.run_stage(_task(), KEY, run_id, "decay")
    rows = _status(worker_mem, run_id)
    assert rows["decay"][0] == ledger.FAILED
    assert rows["run"] == (ledger.FAILED, "ValueError: bad mark")
    assert scope_lock(worker_mem, worker_mem.settings, KEY).owner() is None
    # the rest of the chain does nothing, and the next run of the scope runs
    assert tasks.run_stage(_task(), KEY, run_id, "utility") is None
    assert not tasks.finish_run(KEY, run_id)
    assert tasks.start_run(KEY, ledger.new_run_id())


def test_a_stage_out_of_retries_is_failed_not_retrying(
    worker_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STAGES, "distil", _raising(BackendUnavailable("llm down")))
    run_id = _started(worker_mem)
    with pytest.raises(BackendUnavailable):  # Celery retries it: the run goes on
        tasks.run_stage(_task(retries=0, max_retries=1), KEY, run_id, "distil")
    assert _status(worker_mem, run_id)["distil"][0] == ledger.RETRYING
    assert _status(worker_mem, run_id)["run"][0] == ledger.RUNNING
    with pytest.raises(BackendUnavailable):  # the last retry: Celery gives up
        tasks.run_stage(_task(retries=1, max_retries=1), KEY, run_id, "distil")
    rows = _status(worker_mem, run_id)
    assert rows["distil"][0] == ledger.FAILED
    assert rows["run"] == (ledger.FAILED, "BackendUnavailable: llm down")
    assert scope_lock(worker_mem, worker_mem.settings, KEY).owner() is None


def test_a_run_that_lost_its_lock_is_failed_not_done(worker_mem: Memory) -> None:
    run_id = _started(worker_mem)
    assert tasks.run_stage(_task(), KEY, run_id, "flush") is not None
    lock = scope_lock(worker_mem, worker_mem.settings, KEY)
    lock.release(run_id)  # its lease expired and another run took the scope
    assert lock.acquire("other-run")
    assert tasks.run_stage(_task(), KEY, run_id, "extract") is None
    rows = _status(worker_mem, run_id)
    assert rows["extract"][0] == ledger.SKIPPED
    assert rows["run"] == (ledger.FAILED, "ScopeBusy: lost the scope lock to run other-run")
    assert not tasks.finish_run(KEY, run_id)
    assert ledger.watermark(worker_mem, ALICE, ledger.RUN_STAGE) is None
    assert lock.owner() == "other-run"


def test_finish_refuses_a_run_that_lost_its_lock(worker_mem: Memory) -> None:
    run_id = _started(worker_mem)
    lock = scope_lock(worker_mem, worker_mem.settings, KEY)
    lock.release(run_id)
    assert lock.acquire("other-run")
    assert not tasks.finish_run(KEY, run_id)
    assert _status(worker_mem, run_id)["run"][0] == ledger.FAILED
    assert ledger.watermark(worker_mem, ALICE, ledger.RUN_STAGE) is None


@pytest.mark.parametrize(
    ("scope", "stages", "message"),
    [
        (ALICE, ["extrct"], "unknown stages ['extrct']"),
        (ALICE, "extract", "non-empty list of stage names"),
        ("user_id=alice", None, "scope must be a Scope"),
    ],
)
def test_queueing_refuses_bad_arguments_before_anything_is_sent(
    home: Path, scope: object, stages: object, message: str
) -> None:
    # no broker listens there: a refused run never gets as far as sending
    settings = Settings.load(home=home, consolidation={"broker_url": "redis://127.0.0.1:1/0"})
    with pytest.raises(ValidationError, match=re.escape(message)):
        tasks.consolidate(scope, stages=stages, celery_app=create_app(settings))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_stopped_broker_is_one_error_naming_it_not_kombus(home: Path) -> None:
    """kombu re-raises the refused connection as its own OperationalError (no OSError): the
    caller gets BackendUnavailable with the broker's URL, password hidden, and what to do."""
    url = f"amqp://guest:s3cret@127.0.0.1:{_free_port()}//"
    settings = Settings.load(
        home=home, consolidation={"broker_url": url, "result_backend": "rpc://"}
    )
    app = create_app(settings)
    app.conf.broker_connection_timeout = 1
    with pytest.raises(BackendUnavailable, match="start the broker") as info:
        tasks.consolidate(ALICE, celery_app=app)
    assert "guest:***@127.0.0.1" in str(info.value) and "s3cret" not in str(info.value)


def test_a_broker_whose_transport_cannot_load_is_a_settings_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheme kombu knows whose module fails to load (kafka:// without confluent_kafka
    raises a NameError): a settings error naming the scheme and the brokers supported, not
    the import's traceback. The settings refuse such a scheme when they load: here the app is
    configured by hand."""
    from kombu.transport import TRANSPORT_ALIASES

    monkeypatch.setitem(TRANSPORT_ALIASES, "brokenmq", "tests.consolidation.no_such_module:T")
    settings = Settings.load(home=home, consolidation={"result_backend": "rpc://"})
    app = create_app(settings)
    app.conf.broker_url = "brokenmq://127.0.0.1:9092"
    with pytest.raises(InvalidSettings, match="brokenmq:// transport cannot be loaded") as info:
        tasks.consolidate(ALICE, celery_app=app)
    assert "redis://, rediss:// and amqp://" in str(info.value)


@pytest.mark.parametrize(
    ("backend", "problem"),
    [
        ("foo://x", "ModuleNotFoundError: No module named 'foo'"),  # Celery imports the scheme
        ("redis://127.0.0.1:6379/abc", "ValueError: invalid literal for int()"),
    ],
)
def test_a_result_backend_that_cannot_be_built_is_a_settings_error(
    home: Path, backend: str, problem: str
) -> None:
    """Celery builds the result backend inside apply_async: its ImportError or ValueError
    escaped as a traceback (not an AgentMemError, so the CLI left the run `queued`). Now it is
    InvalidSettings naming the setting, raised before anything is sent (no broker listens)."""
    settings = Settings.load(
        home=home,
        consolidation={
            "broker_url": f"redis://127.0.0.1:{_free_port()}/0",
            "result_backend": backend,
        },
    )
    with pytest.raises(InvalidSettings, match="AGENTMEM_CONSOLIDATION__RESULT_BACKEND") as info:
        tasks.consolidate(ALICE, celery_app=create_app(settings))
    assert f"consolidation result backend {backend}" in str(info.value)
    assert problem in str(info.value)


def test_an_unreachable_result_backend_is_one_error_naming_it_not_the_broker(home: Path) -> None:
    """A Redis result backend is reached before the run is sent: one BackendUnavailable naming
    its URL (password hidden) and its setting, not the broker's."""
    url = f"redis://:s3cret@127.0.0.1:{_free_port()}/0"
    settings = Settings.load(
        home=home,
        consolidation={"broker_url": f"redis://127.0.0.1:{_free_port()}/0", "result_backend": url},
    )
    with pytest.raises(BackendUnavailable, match="AGENTMEM_CONSOLIDATION__RESULT_BACKEND") as info:
        tasks.consolidate(ALICE, celery_app=create_app(settings))
    message = str(info.value)
    assert "consolidation result backend at redis://:***@127.0.0.1" in message
    assert "s3cret" not in message and "broker" not in message


def test_a_result_backend_database_redis_lacks_is_a_settings_error(home: Path) -> None:
    """Redis answers SELECT of a database it has not got with "DB index is out of range",
    which kombu re-raised as the broker's error (naming the wrong setting); now it names the
    result backend's setting and how many databases Redis has."""
    require_service("redis", "127.0.0.1", 6379)
    settings = Settings.load(
        home=home,
        consolidation={
            "broker_url": f"redis://127.0.0.1:{_free_port()}/0",
            "result_backend": "redis://127.0.0.1:6379/99999",
        },
    )
    with pytest.raises(InvalidSettings, match="AGENTMEM_CONSOLIDATION__RESULT_BACKEND") as info:
        tasks.consolidate(ALICE, celery_app=create_app(settings))
    assert "DB index is out of range" in str(info.value) and "databases" in str(info.value)


def test_a_run_queued_for_another_store_is_refused_not_run_on_this_one(
    worker_mem: Memory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`agentmem --home A consolidate` reached workers of home B, which consolidated B's scope
    of that name and recorded it done; now the run names its store and B's worker refuses it,
    logging both stores, and records nothing in B."""
    monkeypatch.setenv("AGENTMEM_HOME", str(worker_mem.settings.home))
    mine = ledger.store_identity(worker_mem.settings)
    run_id = ledger.new_run_id()
    with pytest.raises(InvalidSettings, match="queued for the store sqlite:////elsewhere/") as info:
        tasks.start_run(KEY, run_id, "sqlite:////elsewhere/agentmem.db")
    assert mine in str(info.value) and mine in caplog.text
    assert ledger.jobs(worker_mem, run_id=run_id) == []
    assert scope_lock(worker_mem, worker_mem.settings, KEY).owner() is None
    assert tasks.start_run(KEY, run_id, mine)  # its own store's run starts


def test_a_store_is_named_alike_whatever_credentials_or_options_the_url_has() -> None:
    same = {
        ledger.normal_store_url(url)
        for url in (
            "postgres://app:s3cret@DB.example:5432/mem?sslmode=require",
            "postgresql://worker@db.example/mem",
        )
    }
    assert same == {"postgresql://db.example:5432/mem"}
    assert ledger.normal_store_url("sqlite:///rel/agentmem.db") == (
        f"sqlite:///{(Path.cwd() / 'rel' / 'agentmem.db').resolve()}"
    )


def test_a_queued_run_is_running_once_a_worker_starts_it(worker_mem: Memory) -> None:
    """The queued row the producer wrote becomes the running run, whose stages then run."""
    run_id = ledger.new_run_id()
    ledger.record(worker_mem, run_id, ledger.RUN_STAGE, ALICE, ledger.QUEUED)
    assert tasks.start_run(KEY, run_id)
    assert _status(worker_mem, run_id) == {"run": ("running", None)}
    assert tasks.run_stage(_task(), KEY, run_id, "flush") is not None
