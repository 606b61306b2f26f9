"""Benchmarks: LoCoMo evidence recall with peer systems measured in the same run, and scale.

Run them as modules from the project root::

    python -m benchmarks.locomo            # recall, latency, throughput vs. peers
    python -m benchmarks.scale             # 1k / 10k / 100k memories across 100 users

Each script writes its own section of ``benchmarks/RESULTS.md`` (between HTML comment
markers, so one never erases the other) and a JSON file under ``benchmarks/results/``.
"""
