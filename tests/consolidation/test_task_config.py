"""The Celery app as Flower, the logs and the broker see it, without a broker: one task name per
stage, Celery's own retries with the policy from settings, two queues with their own routing
keys, and kombu's restore mutex from settings."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Task

import agentmem_consolidation
from agentmem import Settings
from agentmem.errors import BackendUnavailable, InvalidSettings
from agentmem_consolidation import app
from agentmem_consolidation.app import GPU_QUEUE, TRAIN_ADAPTER_TASK, create_app, task_name
from agentmem_consolidation.schedule import DISPATCH_TASK
from agentmem_consolidation.tasks import RETRIED, STAGE_TASKS


def test_every_stage_has_its_own_task_name() -> None:
    ours = {name for name in app.tasks if name.startswith("agentmem.consolidation.")}
    stages = {task_name(stage) for stage in agentmem_consolidation.STAGES}
    assert "agentmem.consolidation.extract" in stages
    assert "agentmem.consolidation.communities" in stages
    assert ours == stages | {
        task_name("start"),
        task_name("finish"),
        DISPATCH_TASK,
        TRAIN_ADAPTER_TASK,
    }
    assert set(STAGE_TASKS) == set(agentmem_consolidation.STAGES)


def test_tasks_declare_celerys_autoretry_with_the_policy_of_settings() -> None:
    config = Settings.load().consolidation
    for name in (task_name("extract"), task_name("start"), task_name("finish"), DISPATCH_TASK):
        task = app.tasks[name]
        assert task.autoretry_for == (BackendUnavailable,) and task.acks_late is True
        assert (task.max_retries, task.retry_backoff, task.retry_backoff_max) == (
            config.max_retries,
            config.retry_backoff_s,
            int(config.retry_backoff_max_s),
        )
        assert task.retry_jitter is False


def test_an_app_built_from_settings_annotates_its_tasks_before_celery_wraps_them() -> None:
    settings = Settings.load(
        consolidation={"max_retries": 7, "retry_backoff_s": 3, "retry_backoff_max_s": 40}
    )
    fresh = create_app(settings)

    @fresh.task(bind=True, name=task_name("probe"), autoretry_for=RETRIED)
    def probe(self: Task) -> None:
        raise BackendUnavailable("down")

    @fresh.task(name="elsewhere.probe")
    def other() -> None:
        return None

    task = fresh.tasks[task_name("probe")]
    assert (task.max_retries, task.retry_backoff, task.retry_backoff_max) == (7, 3, 40)
    asked: list[dict[str, Any]] = []

    def retry(**kwargs: Any) -> Exception:
        asked.append(kwargs)
        return RuntimeError("retry scheduled")

    task.retry = retry  # what Celery's autoretry wrapper calls, with the countdown it chose
    for retries, countdown in ((0, 3), (2, 12), (5, 40)):
        task.push_request(retries=retries)
        try:
            with pytest.raises(RuntimeError, match="retry scheduled"):
                task.run()
        finally:
            task.pop_request()
        assert asked[-1]["countdown"] == countdown  # 3 s doubling, capped at 40 s
        assert isinstance(asked[-1]["exc"], BackendUnavailable)
    assert fresh.tasks["elsewhere.probe"].max_retries != 7  # only our tasks


def test_the_gpu_queue_has_its_own_routing_key() -> None:
    app = create_app(Settings.load())
    queues = app.amqp.queues
    assert queues["consolidation"].routing_key == "consolidation"
    assert queues[GPU_QUEUE].routing_key == GPU_QUEUE
    assert queues[GPU_QUEUE].exchange.name == queues["consolidation"].exchange.name
    route = app.amqp.router.route({}, TRAIN_ADAPTER_TASK)
    assert (route["queue"].name, route["routing_key"]) == (GPU_QUEUE, GPU_QUEUE)
    assert app.amqp.router.route({}, task_name("extract"))["queue"].name == "consolidation"


def test_kombu_restore_mutex_expires_as_settings_say() -> None:
    options = create_app(Settings.load()).conf.broker_transport_options
    assert options["unacked_mutex_expire"] == 60  # not kombu's 300
    tuned = Settings.load(
        consolidation={
            "unacked_mutex_expire_s": 5,
            "broker_transport_options": {"global_keyprefix": "a:"},
        }
    )
    options = create_app(tuned).conf.broker_transport_options
    assert options["unacked_mutex_expire"] == 5 and options["global_keyprefix"] == "a:"


def test_a_bad_setting_fails_where_celery_reads_its_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not Celery's defaults (no broker, no schedule, no late acks) in silence: the worker,
    beat or CLI that reads the app's configuration gets the InvalidSettings."""
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__BROKER_URL", "redis://127.0.0.1:6379/14")
    assert create_app().conf.broker_url == "redis://127.0.0.1:6379/14"
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__CRON", "61 3 * * *")
    with pytest.raises(InvalidSettings, match="its minute field '61' is not valid"):
        _ = create_app().conf.broker_url
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__CRON", "0 3 * * *")
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__MAX_RETRIES", "-1")
    with pytest.raises(InvalidSettings, match="max_retries"):
        _ = create_app().conf.task_acks_late


@pytest.mark.parametrize(
    ("cron", "field"),
    [("a 3 * * *", "minute"), ("0 3 * * 9", "day-of-week"), ("0 25 * * *", "hour")],
)
def test_a_cron_error_names_its_field(cron: str, field: str) -> None:
    from agentmem_consolidation.schedule import parse_cron

    with pytest.raises(InvalidSettings, match=f"its {field} field"):
        parse_cron(cron)


def test_a_cron_date_that_never_occurs_is_a_settings_error() -> None:
    """Each field is valid alone (31, February): Celery's ValueError for the pair becomes an
    InvalidSettings naming the setting, as for any other bad cron."""
    from agentmem_consolidation.schedule import parse_cron

    with pytest.raises(InvalidSettings, match="AGENTMEM_CONSOLIDATION__CRON") as info:
        parse_cron("0 3 31 2 *")
    assert "never occur together" in str(info.value)


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("0 3 * *", "needs 5 fields"),
        ("every night", "needs 5 fields"),
        ("61 3 * * *", "its minute field '61' is not valid"),
        ("0 3 31 2 *", "never occur together"),
    ],
)
def test_a_bad_cron_is_refused_when_the_settings_load(
    monkeypatch: pytest.MonkeyPatch, cron: str, says: str
) -> None:
    """A malformed cron was accepted by Settings.load and refused only by beat, when it
    started: the settings now read it with beat's own parser."""
    with pytest.raises(InvalidSettings, match="AGENTMEM_CONSOLIDATION__CRON") as info:
        Settings.load(consolidation={"cron": cron})
    assert says in str(info.value)
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__CRON", cron)
    with pytest.raises(InvalidSettings, match=says):
        Settings.load()
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__CRON", "*/15 9-17 * * mon-fri")
    assert Settings.load().consolidation.cron == "*/15 9-17 * * mon-fri"


def test_the_cron_check_needs_no_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Celery is not installed (the core install, which schedules nothing) the fields
    are counted; and loading the default settings does not import Celery."""
    import subprocess
    import sys

    from agentmem import cron

    real = cron.importlib.util.find_spec
    monkeypatch.setattr(
        cron.importlib.util, "find_spec", lambda name: None if name == "celery" else real(name)
    )
    with pytest.raises(InvalidSettings, match="needs 5 fields"):
        Settings.load(consolidation={"cron": "0 3 * *"})
    assert Settings.load(consolidation={"cron": "0 3 * * 1"}).consolidation.cron == "0 3 * * 1"
    script = "import sys, agentmem; agentmem.Settings.load(); print('celery' in sys.modules)"
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "False"
