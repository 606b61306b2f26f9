"""Make the knowledge-graph screenshot shown in docs/: LoCoMo conversation 0, LLM-free.

Stores the conversation's turns, extracts facts with the rules (the graph is built as they are
written), exports the graph as the self-contained HTML page and photographs it with headless
Chromium (``apt-get install chromium``), with one entity's panel open.

    python -m benchmarks.graph_screenshot [--data PATH] [--conversation 0] [--max-nodes 70]
                                          [--select NAME] [--out docs/img/knowledge-graph.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from benchmarks._common import offline, project_path
from benchmarks.locomo import DEFAULT_DATA, load_locomo


def main(argv: Sequence[str] | None = None) -> Path:
    """Build the graph, export it and take the screenshot; returns the image path."""
    offline()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.graph_screenshot")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversation", type=int, default=0)
    parser.add_argument("--max-nodes", type=int, default=70)
    parser.add_argument("--select", default="", help="entity whose panel is open")
    parser.add_argument("--out", type=Path, default=Path("docs/img/knowledge-graph.png"))
    parser.add_argument("--html", type=Path, default=None, help="also keep the HTML page here")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("needs headless Chromium: apt-get install chromium")

    from agentmem import Memory, Settings, consolidate_episode
    from agentmem.embedders import SentenceTransformerEmbedder

    (conv,) = load_locomo(project_path(args.data), [args.conversation])
    with tempfile.TemporaryDirectory(prefix="agentmem-graph-shot-") as tmp:
        settings = Settings.load(home=Path(tmp) / "home")
        with Memory(settings=settings, embedder=SentenceTransformerEmbedder.minilm()) as mem:
            records = mem.add_many(
                [{"text": t.memory_text, "event_time": t.event_time} for t in conv.turns],
                user_id=conv.user_id,
            )
            for record in records:
                consolidate_episode(mem, record)
            select = args.select or mem.graph.entities(user_id=conv.user_id, limit=1)[0].name
            page = Path(tmp) / "graph.html"
            mem.graph.export("html", user_id=conv.user_id, path=page, max_nodes=args.max_nodes)
        if args.html is not None:
            shutil.copyfile(page, project_path(args.html))
        out = project_path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1400,860",
                f"--screenshot={out}",
                f"{page.as_uri()}#select={quote(select)}",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
