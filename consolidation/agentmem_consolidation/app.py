"""The Celery app: ``celery -A agentmem_consolidation worker -Q consolidation`` (and ``-Q gpu`` on a
machine with an accelerator), ``celery -A agentmem_consolidation beat``.

Configuration comes from agentmem's settings (``AGENTMEM_CONSOLIDATION__*``), read when the app
is first configured, not at import. Tuned for long, idempotent jobs: JSON only; a message is
acknowledged after its task finished (``task_acks_late``) and requeued when the worker process
dies (``task_reject_on_worker_lost``); each worker process reserves one message at a time
(``worker_prefetch_multiplier=1``); with a Redis broker an unacknowledged message is redelivered
after ``visibility_timeout`` (keep it above the longest stage), and a worker killed while it held
kombu's restore mutex holds up redelivery only for ``unacked_mutex_expire`` (our
``unacked_mutex_expire_s``, 60 s, against kombu's 300).

Each task has its own name under ``agentmem.consolidation.`` (one per stage:
``agentmem.consolidation.extract``, ``agentmem.consolidation.communities``, ...), so Flower and
the logs tell stages apart. Retries are Celery's own: every task declares
``autoretry_for=(BackendUnavailable,)``, and its ``max_retries`` / ``retry_backoff`` /
``retry_backoff_max`` come from settings through the ``task_annotations`` of the app.
Two queues on one direct exchange, each with its own routing key: ``consolidation`` (every
stage) and ``gpu`` (adapter training, for workers on a machine with an accelerator).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery, Task
from kombu import Exchange, Queue

from agentmem.settings import Settings
from agentmem_consolidation.schedule import beat_schedule

CONSOLIDATION_QUEUE = "consolidation"
GPU_QUEUE = "gpu"
EXCHANGE = Exchange("consolidation", type="direct")
"""The direct exchange both queues are bound to, each under its own routing key (its name)."""
TASK_PREFIX = "agentmem.consolidation."
"""Every consolidation task's name starts with this."""
TRAIN_ADAPTER_TASK = TASK_PREFIX + "train_adapter"


def task_name(name: str) -> str:
    """The full Celery name of a consolidation task or stage (``extract`` ->
    ``agentmem.consolidation.extract``)."""
    return TASK_PREFIX + name


class RetryAnnotations:
    """``task_annotations`` that give each consolidation task its retry policy from settings
    (Celery reads them when it binds the task, before it wraps the task for ``autoretry_for``).
    Celery's backoff doubles from ``retry_backoff`` whole seconds (at least 1)."""

    def __init__(self, max_retries: int, backoff_s: float, backoff_max_s: float) -> None:
        self.options = {
            "max_retries": max_retries,
            "retry_backoff": backoff_s,
            "retry_backoff_max": int(backoff_max_s),
            "retry_jitter": False,
        }

    def annotate(self, task: Task) -> dict[str, Any] | None:
        """The options of ``task``: ours for consolidation tasks, none for Celery's own."""
        return dict(self.options) if str(task.name).startswith(TASK_PREFIX) else None

    def annotate_any(self) -> None:
        """No options for every task (Celery asks both)."""
        return None


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for these settings."""
    config = settings.consolidation
    broker = config.broker_url or "memory://"
    backend = config.result_backend
    if backend is None and broker.startswith(("redis://", "rediss://")):
        backend = broker
    transport = {
        "visibility_timeout": config.visibility_timeout_s,
        "unacked_mutex_expire": config.unacked_mutex_expire_s,
        **config.broker_transport_options,
    }
    result_transport = {
        k: v for k, v in config.broker_transport_options.items() if k == "global_keyprefix"
    }
    return {
        "broker_url": broker,
        "result_backend": backend,
        "broker_transport_options": transport,
        "result_backend_transport_options": result_transport,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_expires": 7 * 24 * 3600,
        "task_default_queue": CONSOLIDATION_QUEUE,
        "task_default_exchange": EXCHANGE.name,
        "task_default_routing_key": CONSOLIDATION_QUEUE,
        "task_queues": (
            Queue(CONSOLIDATION_QUEUE, EXCHANGE, routing_key=CONSOLIDATION_QUEUE),
            Queue(GPU_QUEUE, EXCHANGE, routing_key=GPU_QUEUE),
        ),
        "task_routes": {TRAIN_ADAPTER_TASK: {"queue": GPU_QUEUE, "routing_key": GPU_QUEUE}},
        "task_annotations": (
            RetryAnnotations(
                config.max_retries, config.retry_backoff_s, config.retry_backoff_max_s
            ),
        ),
        "timezone": config.timezone,
        "enable_utc": True,
        "beat_schedule": beat_schedule(config),
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app configured from ``settings`` (default: read them when first configured)."""
    celery = Celery("consolidation", include=["agentmem_consolidation.tasks"])
    if settings is not None:
        celery.conf.update(celery_config(settings))
    else:
        celery.config_from_object(_SettingsConfig())
    return celery


class _SettingsConfig(Mapping[str, Any]):
    """The Celery configuration of :func:`celery_config`, read from ``Settings.load()`` when
    Celery first reads its configuration, so a bad setting raises ``InvalidSettings`` to
    whoever asked (the worker, beat, the CLI). Loaded in a receiver of Celery's
    ``on_configure`` signal instead, its error would be logged and dropped, and Celery would
    run on its defaults: no broker, no schedule, no late acks."""

    def __init__(self) -> None:
        self._config: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._config is None:
            self._config = celery_config(Settings.load())
        return self._config

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


app = create_app()
"""The app ``celery -A agentmem_consolidation`` finds."""


__all__ = [
    "CONSOLIDATION_QUEUE",
    "EXCHANGE",
    "GPU_QUEUE",
    "TASK_PREFIX",
    "TRAIN_ADAPTER_TASK",
    "RetryAnnotations",
    "app",
    "celery_config",
    "create_app",
    "task_name",
]
