"""ProcessLocalPool: a forked child gets a working pool of its own, not the parent's dead one."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from agentmem.thread_pool import ProcessLocalPool


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_a_forked_child_gets_a_working_pool() -> None:
    pool = ProcessLocalPool(2, "test-pool")
    assert pool.get().submit(lambda: 41 + 1).result(timeout=5) == 42  # threads in the parent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: exit 0 only if work submitted here runs
        code = 1
        try:
            code = 0 if pool.get().submit(lambda: 7).result(timeout=5) == 7 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pool.shutdown()
    assert pool.get().submit(lambda: 1).result(timeout=5) == 1  # made again after shutdown
