"""Real services the tests talk to, and what happens when one is missing.

On a laptop a missing service skips its tests with a message saying what to start; in CI
(``CI=true``) it fails the run, so a missing server is never mistaken for a pass.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENTMEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

_START_HINTS = {
    "postgres": "start PostgreSQL on 127.0.0.1:5432 with a database 'test' "
    "(e.g. `pg_ctlcluster 15 main start`)",
    "redis": "start Redis on 127.0.0.1:6379 (e.g. `redis-server --daemonize yes`)",
    "rabbitmq": "start RabbitMQ on 127.0.0.1:5672 with the guest user "
    "(e.g. `rabbitmq-server -detached`)",
}


def in_ci() -> bool:
    """Whether we run in CI, where missing services fail instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (laptop) or fail (CI) the calling test when a service is not reachable."""
    if port_open(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}: {_START_HINTS.get(name, '')}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def require_textworld() -> None:
    """Skip (laptop) or fail (CI) the calling test when TextWorldExpress cannot run here: the
    ``textworld-express`` package (the ``twx`` extra) or Java 17 is missing."""
    from benchmarks.twx_world import textworld_missing

    missing = textworld_missing()
    if missing is None:
        return
    message = f"TextWorldExpress cannot run: {missing}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
