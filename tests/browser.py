"""Headless Chromium for the browser tests: Debian's ``chromium`` package (``apt-get install
chromium``; ``.ci/run`` installs it), one process for the whole run, driven by Playwright's
Python client over the Chrome DevTools Protocol. Nothing is downloaded at run time (never
``playwright install``).

Missing, it skips its tests on a laptop with a message saying what to install, and fails
them under ``CI=true``, like the services in :mod:`tests.services`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.services import in_ci

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# No network beyond the page under test, no first-run work, no GPU, no sandbox (containers).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(message: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def chromium_executable() -> str:
    """The Chromium binary (``AGENTMEM_TEST_CHROMIUM``, else ``chromium`` on the PATH);
    skips, or fails in CI, when there is none."""
    found = os.environ.get("AGENTMEM_TEST_CHROMIUM") or (
        shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        _missing("no headless Chromium: install it with `apt-get install chromium`")
    return str(found)


@contextmanager
def chromium_process(user_data: Path) -> Iterator[str]:
    """Start one headless Chromium with the DevTools protocol on a free loopback port; yields
    its WebSocket URL, and stops the process on exit."""
    executable = chromium_executable()
    log = user_data / "chromium.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [
                executable,
                *CHROMIUM_ARGS,
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={user_data / 'profile'}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"DevTools listening on (ws://\S+)", log.read_text())
            if found:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                _missing(f"Chromium did not start ({executable}): {log.read_text()[-500:]}")
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def connected(ws_url: str) -> Iterator[Browser]:
    """Playwright connected to a running Chromium. Playwright's sync client marks an event
    loop as running in this thread while it is connected, so connect per test module (not
    per session): other modules' asyncio tests must not see it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Playwright client is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(ws_url)
        try:
            yield browser
        finally:
            browser.close()  # disconnects; the Chromium process serves the next module
