"""The load benchmark end to end, briefly: `agentmem serve` on PostgreSQL + Redis, a mixed
workload, a graceful stop, and every acknowledged add read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import load
from tests.services import POSTGRES_URL, REDIS_URL, require_service


@pytest.mark.slow
def test_load_benchmark_loses_no_acknowledged_write(tmp_path: Path) -> None:
    require_service("postgres", "127.0.0.1", 5432)
    require_service("redis", "127.0.0.1", 6379)
    out, data = tmp_path / "RESULTS.md", tmp_path / "load.json"
    results = load.main(
        [
            "--duration", "3", "--clients", "4", "--users", "2", "--seed", "2",
            "--port", "18093", "--postgres-url", POSTGRES_URL, "--redis-url", REDIS_URL,
            "--out", str(out), "--json", str(data),
        ]
    )  # fmt: skip
    verification = results["verification"]
    assert verification["acknowledged_adds"] > 0
    assert verification["lost_writes"] == 0
    assert verification["store_records"] == verification["expected_records"]
    assert results["server_stopped_cleanly"]  # SIGTERM: in-flight work done, memory closed
    assert sum(row[2] for row in results["rows"][:-1]) == 0  # no errors
    assert "Lost acknowledged writes: 0" in out.read_text()
