"""The semantic benchmarks run end to end on small inputs, and the labelled set is well formed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentmem.embedders import Embedder
from benchmarks import locomo_facts, semantic_decisions
from benchmarks._common import write_section

CASES = semantic_decisions.DEFAULT_CASES


def test_the_labelled_set_covers_every_category() -> None:
    cases = semantic_decisions.load_cases(CASES)
    assert len(cases) >= 60
    by_category = {c: sum(x.category == c for x in cases) for c in semantic_decisions.CATEGORIES}
    assert all(n >= 10 for n in by_category.values()), by_category
    for case in cases:  # every case can be replayed on the LLM path
        assert case.llm["extract"], case.id
        assert bool(case.llm["decide"]) == any('"text"' in a for a in case.llm["extract"])


def test_a_malformed_case_names_its_line(tmp_path: Path) -> None:
    good = CASES.read_text(encoding="utf-8").splitlines()[0]
    bad = json.loads(good)
    bad["expected"] = [{"op": "MERGE", "target": None}]
    path = tmp_path / "cases.jsonl"
    path.write_text(good + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cases.jsonl:2"):
        semantic_decisions.load_cases(path)


def test_decisions_benchmark_end_to_end(tmp_path: Path, embedder: Embedder) -> None:
    # One straightforward case per category: both paths must get every one right.
    wanted = {"add-01", "upd-01", "con-01", "dup-01", "nof-01", "upd-12"}
    lines = [
        line
        for line in CASES.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["id"] in wanted
    ]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, js = tmp_path / "RESULTS.md", tmp_path / "semantic.json"
    write_section(out, "locomo", "kept as it was")
    results = semantic_decisions.main(
        ["--cases", str(cases), "--out", str(out), "--json", str(js)], embedder=embedder
    )
    text = out.read_text()
    assert "<!-- semantic:start -->" in text and "kept as it was" in text
    rules, llm = results["metrics"]["rules"], results["metrics"]["llm"]
    # upd-12's first LLM answer is malformed: the path gets it right through the repair.
    assert llm["exact"] == 1.0, results["cases"]["llm"]
    assert rules["exact"] == 1.0, results["cases"]["rules"]
    assert rules["by_op"]["INVALIDATE"]["recall"] == 1.0
    assert 0.0 <= rules["overall"]["precision"] <= 1.0
    assert json.loads(js.read_text())["dataset"]["llm_repairs"] == 1


def _turn(session: int, n: int, speaker: str, text: str) -> dict[str, Any]:
    return {"speaker": speaker, "dia_id": f"D{session}:{n}", "text": text}


def test_locomo_facts_end_to_end(tmp_path: Path, embedder: Embedder) -> None:
    conversation = {
        "sample_id": "tiny",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                _turn(1, 1, "Ana", "Hi Ben! I adopted a puppy yesterday."),
                _turn(1, 2, "Ben", "Wow, congrats! What is it called?"),
                _turn(1, 3, "Ana", "We called her Biscuit. I love long walks with her."),
                _turn(1, 4, "Ben", "I started pottery classes last week."),
            ],
            "session_2_date_time": "10:04 am on 19 June, 2023",
            "session_2": [
                _turn(2, 1, "Ana", "I moved to Porto last month for a new job."),
                _turn(2, 2, "Ben", "Big news! Do you like it there?"),
                _turn(2, 3, "Ana", "I love Porto, the river is beautiful."),
            ],
        },
        "qa": [
            {"question": "When did Ana adopt a puppy?", "evidence": ["D1:1"], "category": 2},
            {"question": "Where did Ana move?", "evidence": ["D2:1"], "category": 4},
            {"question": "What classes did Ben start?", "evidence": ["D1:4"], "category": 4},
        ],
    }
    data = tmp_path / "locomo-tiny.json"
    data.write_text(json.dumps([conversation]), encoding="utf-8")
    out, js = tmp_path / "RESULTS.md", tmp_path / "facts.json"
    write_section(out, "locomo", "kept as it was")
    results = locomo_facts.main(
        ["--data", str(data), "--conversations", "0", "--out", str(out), "--json", str(js)],
        embedder=embedder,
    )
    text = out.read_text()
    assert "<!-- locomo-facts:start -->" in text and "kept as it was" in text
    facts = results["facts"]
    assert facts["turns"] == 7 and facts["semantic_records"] >= 4
    assert facts["decisions"].get("ADD", 0) >= 4
    assert set(results["systems"]) == set(locomo_facts.SYSTEMS)
    for system in results["systems"].values():
        for name, value in system["overall"].items():
            if name != "questions":
                assert 0.0 <= value <= 1.0
