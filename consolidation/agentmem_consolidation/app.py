"""The Celery app: ``celery -A agentmem_consolidation worker -Q consolidation`` (and ``-Q gpu`` on a
machine with an accelerator), ``celery -A agentmem_consolidation beat``.

Configuration comes from agentmem's settings (``AGENTMEM_CONSOLIDATION__*``), read when the app
is first configured, not at import. Tuned for long, idempotent jobs: JSON only; a message is
acknowledged after its task finished (``task_acks_late``) and requeued when the worker process
dies (``task_reject_on_worker_lost``); each worker process reserves one message at a time
(``worker_prefetch_multiplier=1``); with a Redis broker an unacknowledged message is redelivered
after ``visibility_timeout`` (keep it above the longest stage).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from agentmem.settings import Settings
from agentmem_consolidation.schedule import beat_schedule

CONSOLIDATION_QUEUE = "consolidation"
GPU_QUEUE = "gpu"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for these settings."""
    config = settings.consolidation
    broker = config.broker_url or "memory://"
    backend = config.result_backend
    if backend is None and broker.startswith(("redis://", "rediss://")):
        backend = broker
    transport = {
        "visibility_timeout": config.visibility_timeout_s,
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
        "task_queues": (Queue(CONSOLIDATION_QUEUE), Queue(GPU_QUEUE)),
        "task_routes": {"consolidation.train_adapter": {"queue": GPU_QUEUE}},
        "timezone": config.timezone,
        "enable_utc": True,
        "beat_schedule": beat_schedule(config),
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app configured from ``settings`` (default: read them when first configured)."""
    celery = Celery("consolidation", include=["agentmem_consolidation.tasks"])

    def configure(sender: Any = None, **_: Any) -> None:
        celery.conf.update(celery_config(settings or Settings.load()))

    if settings is not None:
        celery.conf.update(celery_config(settings))
    else:
        celery.on_configure.connect(configure, weak=False)
    return celery


app = create_app()
"""The app ``celery -A agentmem_consolidation`` finds."""


__all__ = ["CONSOLIDATION_QUEUE", "GPU_QUEUE", "app", "celery_config", "create_app"]
