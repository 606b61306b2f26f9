"""The docs say which parts are English-only and what a non-English user sets, with real names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentmem import Settings

ROOT = Path(__file__).resolve().parents[2]


def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    match = re.search(rf"^(#+) {heading}\n(.*?)(?=^#{{1,3}} )", text, re.MULTILINE | re.DOTALL)
    assert match, f"{path.name} has no {heading!r} section"
    return match.group(2)


@pytest.mark.parametrize("doc", ["README.md", "docs/configuration.md"])
def test_a_languages_section_names_the_english_only_parts_and_the_settings(doc: str) -> None:
    section = _section(ROOT / doc, "Languages")
    for part in ("English", "MiniLM", "BM25" if doc == "README.md" else "bm25", "time"):
        assert part in section, part
    for setting in ("AGENTMEM_EMBEDDER=onnx:<dir>", "AGENTMEM_LLM_MODEL", "agentmem reindex"):
        assert setting in section, setting
    assert re.search(r"keyword", section) and re.search(r"extraction", section)


def test_every_setting_the_languages_section_names_exists() -> None:
    section = _section(ROOT / "docs" / "configuration.md", "Languages")
    settings = Settings()
    for var in set(re.findall(r"AGENTMEM_[A-Z_]+", section)):
        path = var.removeprefix("AGENTMEM_").lower().split("__")
        value: object = settings
        for name in path:
            assert hasattr(value, name), var
            value = getattr(value, name)
    sections = [getattr(settings, f) for f in type(settings).model_fields]
    for name in re.findall(r"`([a-z]+(?:_[a-z]+)+)`", section):
        assert any(hasattr(s, name) for s in sections), name
    for dotted in re.findall(r"`([a-z]+\.[a-z_]+)`", section):
        head, tail = dotted.split(".")
        assert hasattr(getattr(settings, head), tail), dotted
