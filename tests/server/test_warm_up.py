"""The server loads the embedding model and the date parser before it opens its port, so a
burst of first searches does not queue on those loads (benchmarks/RESULTS.md, `load`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from agentmem import Memory, Settings
    from agentmem_server import ServerSettings, create_app

    with Memory(settings=Settings.load(home=sys.argv[1])) as mem:
        app = create_app(mem, ServerSettings(rate_limit="off"))
        assert "dateparser.search" not in sys.modules, "imported before the server started"
        with TestClient(app) as client:  # runs the app's startup
            assert "dateparser.search" in sys.modules, "the startup did not warm the parser"
            assert client.get("/readyz").status_code == 200
    print("warm")
    """
)


def test_startup_warms_the_query_path_before_the_port_opens(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("warm")
