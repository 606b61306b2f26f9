"""``agentmem eval``: loaders, scoring, the command end to end, and bad data files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agentmem import InvalidDataFile, Memory, Settings, ValidationError, cli
from agentmem.embedders import Embedder
from agentmem.evaluation import (
    EvalMemory,
    EvalQuestion,
    EvalScope,
    EvalSet,
    load_dataset,
    load_small,
    run_eval,
    small_scope_path,
)
from agentmem.evaluation.runner import ranked_keys, score

# A LoCoMo-format file: one conversation of two sessions, with observations and questions
# of categories 1-5 (5, adversarial, has no evidence and is left out).
LOCOMO: list[dict[str, Any]] = [
    {
        "sample_id": "tiny-0",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a puppy called Rolo!"},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "What breed is he?"},
                {"speaker": "Ana", "dia_id": "D1:3", "text": "A beagle, very noisy."},
            ],
            "session_2_date_time": "10:00 am on 20 June, 2023",
            "session_2": [
                {"speaker": "Ben", "dia_id": "D2:1", "text": "I started a pottery class."},
                {"speaker": "Ana", "dia_id": "D2:2", "text": "Nice, I ran my first half marathon."},
            ],
        },
        "observation": {
            "session_1_observation": {
                "Ana": [["Ana adopted a beagle puppy named Rolo.", "D1:1"]],
                "Ben": [["Ben asked about the breed of Ana's dog.", "D1:2"]],
            },
            "session_2_observation": {
                "Ben": [["Ben started a pottery class.", "D2:1"]],
                "Ana": [["Ana ran her first half marathon.", "D2:2"]],
            },
        },
        "qa": [
            {"question": "What breed is Ana's dog?", "evidence": ["D1:3"], "category": 4},
            {"question": "When did Ana run a half marathon?", "evidence": ["D2:2"], "category": 2},
            {"question": "What hobby did Ben take up?", "evidence": ["D2:1"], "category": 4},
            {"question": "What is Ben's cat called?", "category": 5, "adversarial_answer": "x"},
        ],
    }
]

# A LongMemEval-format file (the longmemeval_s shape): two questions, each with its haystack.
LONGMEMEVAL: list[dict[str, Any]] = [
    {
        "question_id": "q1",
        "question_type": "single-session-user",
        "question": "Where did I go hiking last month?",
        "answer": "the Lake District",
        "question_date": "2023/05/30 (Tue) 10:00",
        "haystack_session_ids": ["s1", "s2", "s3"],
        "haystack_dates": [
            "2023/04/01 (Sat) 09:00",
            "2023/04/20 (Thu) 18:00",
            "2023/05/02 (Tue) 08:00",
        ],
        "haystack_sessions": [
            [
                {"role": "user", "content": "Can you suggest a pasta recipe?"},
                {"role": "assistant", "content": "Try a simple cacio e pepe."},
            ],
            [
                {"role": "user", "content": "I went hiking in the Lake District, it was muddy."},
                {"role": "assistant", "content": "Sounds like an adventure!", "has_answer": False},
            ],
            [{"role": "user", "content": "What is a good laptop for coding?"}],
        ],
        "answer_session_ids": ["s2"],
    },
    {
        "question_id": "q2",
        "question_type": "knowledge-update",
        "question": "What is my current job?",
        "answer": "nurse",
        "question_date": "2023/06/01 (Thu) 10:00",
        "haystack_session_ids": ["a", "b"],
        "haystack_dates": ["2023/01/01 (Sun) 09:00", "2023/03/01 (Wed) 09:00"],
        "haystack_sessions": [
            [{"role": "user", "content": "I work as a barista in a small cafe."}],
            [{"role": "user", "content": "I just started my new job as a nurse at the clinic."}],
        ],
        "answer_session_ids": ["b"],
    },
]


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    """Every command opens its Memory with the session's embedder (loaded once)."""

    def open_memory(settings: Settings) -> Memory:
        return Memory(settings=settings, embedder=embedder)

    monkeypatch.setattr(cli, "open_memory", open_memory)


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def run(home: Path, *args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "250"})
    return runner.invoke(cli.app, ["--home", str(home), "eval", *args])


def test_loaders_read_each_shape(tmp_path: Path) -> None:
    turns = load_dataset("locomo", write(tmp_path / "l.json", LOCOMO))
    assert turns.add_mode == "batch" and turns.memories == 5 and turns.questions == 3
    assert turns.scopes[0].memories[0].metadata == {"session": 1, "dia_id": "D1:1"}
    assert turns.scopes[0].questions[0].category == "single-hop"
    facts = load_dataset("locomo-observations", tmp_path / "l.json")
    assert facts.add_mode == "one_by_one" and facts.memories == 4
    assert all("session" not in m.metadata for m in facts.scopes[0].memories)
    assert facts.scopes[0].memories[0].key == "D1:1"
    # Only evidence some observation was drawn from can be found: D1:3 has none, so its
    # question is left out and the notes say so.
    assert facts.questions == 2 and [q.answers for q in facts.scopes[0].questions] == [
        ("D2:2",),
        ("D2:1",),
    ]
    assert any("2 of 3" in n and "1 of 3 questions" in n for n in facts.notes)
    lme = load_dataset("longmemeval", write(tmp_path / "m.json", LONGMEMEVAL))
    assert [len(s.memories) for s in lme.scopes] == [5, 2] and lme.questions == 2
    assert lme.scopes[0].questions[0].answers == ("s2",)
    small = load_small()
    assert small.questions >= 100
    assert {len(s.memories) for s in small.scopes} >= {2, 50}
    assert max(len(s.memories) for s in small.scopes) <= 50


def test_scores_blank_repeated_keys() -> None:
    ranked = ranked_keys(["s2", "s2", "s1"])
    assert ranked == ["s2", None, "s1"]
    s = score(ranked, ["s1"], [1, 5])
    assert s["hit@1"] == 0 and s["recall@5"] == 1 and 0 < s["ndcg@10"] < 1


def test_eval_runs_end_to_end_on_locomo_and_longmemeval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    locomo = write(tmp_path / "locomo.json", LOCOMO)
    result = run(home, "locomo", str(locomo), "--out", str(tmp_path / "out.json"))
    assert result.exit_code == 0, result.output
    assert "single-hop" in result.output and "agentmem" in result.output
    report = json.loads((tmp_path / "out.json").read_text())
    assert set(report["systems"]) == {"agentmem", "dense", "bm25", "bm25+dense"}
    assert report["dataset"]["questions"] == 3
    assert report["systems"]["agentmem"]["overall"]["recall@10"] == 1.0
    assert not home.exists(), "nothing is written to the home unless asked"

    result = run(home, "locomo-observations", str(locomo), "--json")
    assert result.exit_code == 0, result.output
    observed = json.loads(result.output)
    # "What breed is Ana's dog?" has its evidence in D1:3, which no observation was drawn from.
    assert observed["dataset"]["memories"] == 4 and observed["dataset"]["questions"] == 2

    lme = write(tmp_path / "lme.json", LONGMEMEVAL)
    result = run(home, "longmemeval", str(lme), "--json", "--k", "1,3")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["systems"]["agentmem"]) == {
        "overall",
        "single-session-user",
        "knowledge-update",
    }
    assert report["systems"]["agentmem"]["overall"]["hit@3"] == 1.0
    assert not home.exists()

    result = run(home, "longmemeval", str(lme), "--use-home", "--no-baselines", "--json")
    assert result.exit_code == 0, result.output
    assert home.exists() and set(json.loads(result.output)["systems"]) == {"agentmem"}
    with Memory(settings=Settings.load(home=home)) as mem:
        stored = mem.stats().records
    # A second run into the same home would store every memory twice: refused, nothing added.
    again = run(home, "longmemeval", str(lme), "--use-home", "--no-baselines", "--json")
    assert again.exit_code == 1 and "already holds" in again.output, again.output
    assert "agentmem forget --user eval-lme-q1" in again.output
    with Memory(settings=Settings.load(home=home)) as mem:
        assert mem.stats().records == stored


# Settings that, carried into the eval's temporary home, would write outside it, call an LLM
# or keep replayed memories out of search. The URLs name closed ports: a connection fails.
OUTSIDE = {
    "AGENTMEM_INFER": "true",
    "AGENTMEM_LLM_MODEL": "openai/gpt-4o-mini",
    "AGENTMEM_LLM_KWARGS": '{"api_base": "http://127.0.0.1:9"}',
    "AGENTMEM_LLM_RETRIES": "0",
    "AGENTMEM_GRAPH_URL": "falkordb://127.0.0.1:9/graph",
    "AGENTMEM_BUFFER_URL": "redis://127.0.0.1:9/0",
    "AGENTMEM_CONSOLIDATION__BROKER_URL": "redis://127.0.0.1:9/1",
    "AGENTMEM_TRUST__DEFAULT_SOURCE": "tool",
    "AGENTMEM_RETRIEVAL__RRF_K": "30",  # a search setting: measured as it would serve
}


def test_the_temporary_home_pins_what_could_leave_it_or_skew_the_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """AGENTMEM_INFER=true (as docs/configuration.md suggests exporting) extracted facts from
    every replayed memory: they carry no answer key, took the top places and recall@1 of the
    shipped small set fell from 0.93 to 0.10; the graph and buffer URLs and the LLM were the
    user's, outside the temporary home."""
    opened: list[Settings] = []

    def open_memory(settings: Settings) -> Memory:
        opened.append(settings)
        return Memory(settings=settings, embedder=embedder)

    monkeypatch.setattr(cli, "open_memory", open_memory)
    small = {
        "scopes": [
            {
                "name": "maya",
                "memories": [
                    "Maya: I live in Eastgate.",
                    "Maya: I work at Northwind.",
                    "Maya: I own a greyhound called Pepper.",
                ],
                "questions": [
                    {"question": "Where does Maya work?", "answer": 1, "category": "fact"},
                    {"question": "What is Maya's dog called?", "answer": 2, "category": "fact"},
                    {"question": "Where does Maya live?", "answer": 0, "category": "fact"},
                ],
            }
        ]
    }
    path = write(tmp_path / "small.json", small)
    args = ["--home", str(tmp_path / "home"), "eval", "small", str(path), "--json"]
    args += ["--k", "1", "--no-baselines"]
    plain = CliRunner().invoke(cli.app, args)
    assert plain.exit_code == 0, plain.output
    outside = CliRunner(env=OUTSIDE).invoke(cli.app, args)
    assert outside.exit_code == 0, outside.output
    assert json.loads(outside.output)["systems"] == json.loads(plain.output)["systems"]
    used = opened[-1]
    assert (used.infer, used.llm_model, used.llm_kwargs) == (False, None, {})
    assert (used.graph_url, used.buffer_url, used.store_url, used.vectors_url) == (None,) * 4
    assert used.consolidation.broker_url is None and used.trust.default_source == "user"
    assert used.retrieval.rrf_k == 30 and not (tmp_path / "home").exists()

    # With --use-home the home's own settings apply, but the replay still extracts nothing.
    infer = CliRunner(env={"AGENTMEM_INFER": "true"})
    kept = infer.invoke(cli.app, [*args, "--use-home"])
    assert kept.exit_code == 0, kept.output
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=embedder) as mem:
        assert mem.stats().records == 3


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("locomo", "[1, 2", "line 1, column 6: not valid JSON"),
        ("locomo", {"a": 1}, "field (the top level): expected a list"),
        (  # JSON keeps the last: the first questions were dropped, errors named the first's line
            "small",
            '{"scopes": [\n {"name": "a", "memories": ["x"],\n  "questions": [],\n'
            '  "questions": [{"question": "q", "answer": 7, "category": "c"}]}\n]}',
            "line 4, field scopes[0].questions: 'questions' appears more than once in one "
            "object, and all but the last would be ignored; keep one",
        ),
        (
            "locomo",
            [{"conversation": {"session_1": [{"speaker": "A", "text": "hi"}]}, "qa": []}],
            "line 5, field [0].conversation.session_1[0]: missing 'dia_id'",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_sessions": [[{"role": "user", "content": 5}], []]}],
            "field [0].haystack_sessions[0][0].content: expected a string, got int",
        ),
        (
            "small",
            {
                "scopes": [
                    {
                        "name": "x",
                        "memories": ["a"],
                        "questions": [{"question": "q", "answer": 3, "category": "fact"}],
                    }
                ]
            },
            "field scopes[0].questions[0].answer: 3 is not a memory index (0-0)",
        ),
        (
            "small",
            {
                "scopes": [
                    {
                        "name": "x",
                        "memories": ["a"],
                        "questions": [{"question": "q", "answer": [], "category": "fact"}],
                    }
                ]
            },
            "line 11, field scopes[0].questions[0].answer: is empty: nothing could be scored",
        ),
        (  # [true] passed as key "True", which no memory has: scored a miss for every system
            "small",
            {
                "scopes": [
                    {
                        "name": "x",
                        "memories": ["a", "b"],
                        "questions": [{"question": "q", "answer": [True], "category": "fact"}],
                    }
                ]
            },
            "field scopes[0].questions[0].answer: True is not a memory index (0-1)",
        ),
        (
            "small",
            {
                "scopes": [
                    {
                        "name": "x",
                        "memories": [],
                        "questions": [{"question": "q", "answer": 0, "category": "fact"}],
                    }
                ]
            },
            "line 5, field scopes[0].memories: is empty: the questions have no memory to name",
        ),
        (
            "small",
            {"scopes": [{"name": "x", "memories": ["a", " "], "questions": []}]},
            "field scopes[0].memories[1]: is empty",
        ),
        (
            "small",
            {
                "scopes": [
                    {"name": "a", "memories": ["tea"], "questions": []},
                    {"name": "a", "memories": ["dog"], "questions": []},
                ]
            },
            "line 11, field scopes[1].name: 'a' repeats scopes[0]",
        ),
        (  # scope ids are stripped and NFC-normalised: "a " would replay into user eval-small-a
            "small",
            {
                "scopes": [
                    {"name": "a", "memories": ["tea"], "questions": []},
                    {"name": "a ", "memories": ["dog"], "questions": []},
                ]
            },
            "field scopes[1].name: 'a ' repeats scopes[0] ('a'): both would replay into "
            "user_id 'eval-small-a'",
        ),
        (
            "small",
            {
                "scopes": [
                    {"name": "caf\u00e9", "memories": ["tea"], "questions": []},
                    {"name": "cafe\u0301", "memories": ["dog"], "questions": []},
                ]
            },
            "field scopes[1].name: 'cafe\u0301' repeats scopes[0] ('caf\u00e9')",
        ),
        (
            "small",
            {"scopes": [{"name": "a/b", "memories": ["tea"], "questions": []}]},
            "field scopes[0].name: cannot name a scope: user_id='eval-small-a/b' contains a "
            "path separator",
        ),
        (
            "locomo",
            [{**LOCOMO[0], "qa": [{"question": "", "evidence": ["D1:1"], "category": 4}]}],
            "field [0].qa[0].question: is empty",
        ),
        (
            "locomo",
            [
                {
                    **LOCOMO[0],
                    "conversation": {
                        "session_1": [{"speaker": "A", "dia_id": "D1:1", "text": {"x": 1}}]
                    },
                }
            ],
            "field [0].conversation.session_1[0].text: expected a string, got dict",
        ),
        (  # locomo-observations read the turns unchecked: a raw TypeError
            "locomo-observations",
            [{**LOCOMO[0], "conversation": {**LOCOMO[0]["conversation"], "session_2": 5}}],
            "field [0].conversation.session_2: expected a list, got int",
        ),
        (
            "locomo-observations",
            [
                {
                    **LOCOMO[0],
                    "conversation": {
                        **LOCOMO[0]["conversation"],
                        "session_2": [{"speaker": "A", "dia_id": ["D2:1"], "text": "hi"}],
                    },
                }
            ],
            "field [0].conversation.session_2[0].dia_id: expected a string, got list",
        ),
        ("longmemeval", [{**LONGMEMEVAL[1], "question": "  "}], "field [0].question: is empty"),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_dates": 5}],
            "field [0].haystack_dates: expected a list, got int",
        ),
        (  # the second session was silently undated
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_dates": ["2023/01/01 (Sun) 09:00"]}],
            "field [0].haystack_dates: 1 dates for 2 haystack_sessions; give each session its "
            "date (null for none)",
        ),
        (  # a date too many: the dates no longer line up with the sessions
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_dates": ["2023/01/01 (Sun) 09:00", None, None]}],
            "field [0].haystack_dates: 3 dates for 2 haystack_sessions",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_dates": ["last spring", None]}],
            "field [0].haystack_dates[0]: 'last spring' is not a date: write it like "
            "'2023/05/20 (Sat) 02:21' or in ISO 8601",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "question_date": 20230301}],
            "field [0].question_date: expected a date string, got int",
        ),
        (  # a UTC offset past the last datetime gave a raw OverflowError
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_dates": ["9999-12-31T23:59:00-05:00", None]}],
            "field [0].haystack_dates[0]: date=9999-12-31T23:59:00-05:00 is outside the "
            "supported range 0001-01-02 to 9999-12-30 (UTC)",
        ),
        (
            "locomo",
            [
                {
                    **LOCOMO[0],
                    "conversation": {
                        **LOCOMO[0]["conversation"],
                        "session_2_date_time": "0001-01-01T01:00:00+05:00",
                    },
                }
            ],
            "field [0].conversation.session_2_date_time: date=0001-01-01T01:00:00+05:00 is "
            "outside the supported range",
        ),
        (
            "locomo",
            [
                {
                    **LOCOMO[0],
                    "conversation": {**LOCOMO[0]["conversation"], "session_2_date_time": "soon"},
                }
            ],
            "field [0].conversation.session_2_date_time: 'soon' is not a date",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "answer_session_ids": [{"x": 1}]}],
            "field [0].answer_session_ids[0]: expected a string or an integer, got dict",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "answer_session_ids": []}],
            "field [0].answer_session_ids: is empty: nothing could be scored",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "answer_session_ids": ["b", "s9"]}],
            "line 32, field [0].answer_session_ids[1]: 's9' is not one of haystack_session_ids",
        ),
        (  # no memory has its key: the question scored 0 for every system
            "longmemeval",
            [
                {
                    **LONGMEMEVAL[1],
                    "haystack_sessions": [
                        [{"role": "user", "content": "I work as a barista."}],
                        [{"role": "user", "content": "  "}],
                    ],
                }
            ],
            "field [0].answer_session_ids[0]: 'b' has no turn with text: the question could "
            "never be answered",
        ),
        (
            "longmemeval",
            [{**LONGMEMEVAL[1], "haystack_sessions": [[{"role": "user", "content": "x"}], []]}],
            "field [0].answer_session_ids[0]: 'b' has no turn with text",
        ),
        (
            "longmemeval",
            [LONGMEMEVAL[0], {**LONGMEMEVAL[1], "question_id": "q1"}],
            "field [1].question_id: 'q1' repeats the question at [0]",
        ),
        (
            "longmemeval",
            [LONGMEMEVAL[0], {**LONGMEMEVAL[1], "question_id": "q1 "}],
            "field [1].question_id: 'q1 ' repeats the question at [0] ('q1'): both would "
            "replay into user_id 'eval-lme-q1'",
        ),
    ],
)
def test_a_bad_data_file_names_file_line_and_field(
    tmp_path: Path, kind: str, data: object, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    with pytest.raises(InvalidDataFile) as caught:
        load_dataset(kind, path)
    assert str(path) in str(caught.value) and expected in str(caught.value), caught.value
    result = run(tmp_path / "home", kind, str(path))
    assert result.exit_code == 1 and "error:" in result.output
    assert not (tmp_path / "home").exists()


def test_a_file_json_reads_but_python_cannot_hold_is_refused_naming_it(tmp_path: Path) -> None:
    """An integer over int()'s 4,300 digits, nesting deeper than Python recurses, or a LoCoMo
    session number that long gave a raw ValueError or RecursionError."""
    huge = "9" * 5000
    small = '{"scopes": [{"name": "a", "memories": ["x"],\n "questions": [{"question": "q", '
    small += f'"answer": {huge}, "category": "c"}}]}}]}}'
    session = [{**LOCOMO[0], "conversation": {f"session_{huge}": []}}]
    observed = [{**LOCOMO[0], "observation": {f"session_{huge}_observation": {}}}]
    cases = [
        ("small", small, "line 2: holds an integer of more than 4,300 digits, too long to read"),
        ("locomo", "[" * 100_000 + "]" * 100_000, ": its lists or objects are nested too deeply"),
        ("locomo", json.dumps(session), "field [0].conversation: session_999999999999"),
        ("locomo-observations", json.dumps(observed), "field [0].observation: session_9999"),
    ]
    for n, (kind, text, expected) in enumerate(cases):
        path = tmp_path / f"bad{n}.json"
        path.write_text(text)
        with pytest.raises(InvalidDataFile) as caught:
            load_dataset(kind, path)
        assert str(caught.value).startswith(str(path)) and expected in str(caught.value)
    assert "session number is too long" in str(caught.value)


def test_a_data_set_with_nothing_to_score_is_refused_and_adds_nothing(tmp_path: Path) -> None:
    """Evidence that names no turn leaves no question: an error, not a table of NaN."""
    qa = [{"question": "What breed is Ana's dog?", "evidence": ["D9:9"], "category": 4}]
    path = write(tmp_path / "nowhere.json", [{**LOCOMO[0], "qa": qa}])
    result = run(tmp_path / "home", "locomo", str(path), "--use-home")
    assert result.exit_code == 1 and "no question can be scored" in result.output
    with Memory(settings=Settings.load(home=tmp_path / "home")) as mem:
        assert mem.stats().records == 0


def test_locomo_evidence_that_names_no_turn_is_noted_not_dropped_silently(
    tmp_path: Path,
) -> None:
    """Real LoCoMo has a few evidence ids no turn has ('D10:19', a bare 'D'): too few to refuse
    the file, but the report says what was dropped and which questions were left out."""
    qa = [
        *LOCOMO[0]["qa"],
        {"question": "What did Ben say?", "evidence": ["D9:9"], "category": 1},
        {"question": "Who has a beagle?", "evidence": ["D1:3", "D7:7"], "category": 4},
    ]
    path = write(tmp_path / "l.json", [{**LOCOMO[0], "qa": qa}])
    for kind in ("locomo", "locomo-observations"):
        data = load_dataset(kind, path)
        assert data.notes[-1] == (
            "2 evidence ids name no turn and are not scored: 'D9:9' at [0].qa[4].evidence, "
            "'D7:7' at [0].qa[5].evidence; 1 question with no other evidence left out"
        ), kind
    assert load_dataset("locomo", path).questions == 4  # 'Who has a beagle?' keeps D1:3
    assert load_dataset("locomo", write(tmp_path / "ok.json", LOCOMO)).notes == []
    result = run(tmp_path / "home", "locomo", str(path), "--no-baselines")
    assert result.exit_code == 0 and "note: 2 evidence ids name no turn" in result.output


def test_limit_keeps_the_notes_of_the_conversations_it_keeps(tmp_path: Path) -> None:
    """With --limit the notes named evidence ids of conversations that were never run, and
    counted the observations and questions of the whole file."""
    bad_qa = [{**LOCOMO[0]["qa"][0], "evidence": ["D9:9"]}, *LOCOMO[0]["qa"][1:]]
    path = write(tmp_path / "l.json", [LOCOMO[0], {**LOCOMO[0], "qa": bad_qa}, LOCOMO[0]])
    assert load_dataset("locomo", path, limit=1).notes == []
    facts = load_dataset("locomo-observations", path, limit=1)
    assert facts.questions == 2 and len(facts.notes) == 2, facts.notes
    assert "2 of 3; 1 of 3 questions have none" in facts.notes[1], facts.notes
    assert "D9:9" in load_dataset("locomo", path, limit=2).notes[-1]


def test_load_dataset_takes_a_str_path_as_the_readme_shows(tmp_path: Path) -> None:
    """A str path raised a raw AttributeError ('str' object has no attribute 'read_text')."""
    path = str(write(tmp_path / "l.json", LOCOMO))
    assert load_dataset("locomo", path).questions == 3
    assert load_dataset("small", str(small_scope_path())).questions >= 100
    with pytest.raises(InvalidDataFile, match=r"path must be a str or a pathlib\.Path"):
        load_dataset("longmemeval", 7)  # type: ignore[arg-type]


def test_run_eval_refuses_bad_cutoffs_before_adding_anything(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Unchecked, () raised a raw TypeError, (-1,) reported "recall@-1": 1.0, and 1.5 failed
    on a raw TypeError after the whole replay."""
    data = load_small()
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=embedder) as mem:
        for ks in [(), (-1,), (0, 5), (1.5,), (True,), (2000,), "1,5", 5]:
            with pytest.raises(ValidationError, match=r"ks must be one or more integers from"):
                run_eval(mem, data, ks=ks, baselines=False)  # type: ignore[arg-type]
            assert mem.stats().records == 0, ks


def test_baselines_look_as_deep_as_the_largest_cutoff(tmp_path: Path, embedder: Embedder) -> None:
    """The baselines were read 100 deep whatever k: with 130 answers among 130 memories,
    dense exact search scored recall@150 = 0.769."""
    memories = [
        EvalMemory(str(i), f"Reminder {i}: water the garden plants on day {i}.") for i in range(130)
    ]
    answers = tuple(m.key for m in memories)
    question = EvalQuestion("When should I water the garden plants?", "all", answers)
    data = EvalSet("small", "big.json", [EvalScope("big", memories, [question])], "batch")
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=embedder) as mem:
        report = run_eval(mem, data, ks=(10, 150))
    recall = {name: report.means(name)["overall"]["recall@150"] for name in report.rows}
    assert recall == dict.fromkeys(("agentmem", "dense", "bm25", "bm25+dense"), 1.0), recall


def test_a_text_add_would_refuse_is_refused_before_the_replay_naming_its_field(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Found mid-replay, InvalidText named neither the data file nor the memory."""
    small = {
        "scopes": [
            {
                "name": "a",
                "memories": ["short", "x" * 200],
                "questions": [{"question": "short?", "answer": 0, "category": "fact"}],
            }
        ]
    }
    said = [{"speaker": "Ana", "dia_id": "D1:1", "text": "y" * 200}]
    locomo = [{**LOCOMO[0], "conversation": {**LOCOMO[0]["conversation"], "session_2": said}}]
    cases = [
        ("small", write(tmp_path / "s.json", small), "line 7, field scopes[0].memories[1]: "),
        ("locomo", write(tmp_path / "l.json", locomo), "field [0].conversation.session_2[0]: "),
    ]
    settings = Settings.load(home=tmp_path / "home", max_text_chars=100)
    with Memory(settings=settings, embedder=embedder) as mem:
        for kind, path, where in cases:
            with pytest.raises(InvalidDataFile) as caught:
                run_eval(mem, load_dataset(kind, path), baselines=False)
            message = str(caught.value)
            assert message.startswith(str(path)) and where in message, message
            assert "over the limit of 100" in message and "nothing was added" in message
        assert mem.stats().records == 0


def test_dates_in_iso_8601_are_read_not_left_undated(tmp_path: Path) -> None:
    """A session or question date in ISO 8601 instead of the data set's own format keeps its
    time: read as undated, the time channel would have nothing to match."""
    conversation = {
        **LOCOMO[0]["conversation"],
        "session_1_date_time": "2023-05-08T13:56:00",
        "session_2_date_time": "2023-06-20T10:00:00+02:00",
    }
    turns = load_dataset(
        "locomo", write(tmp_path / "l.json", [{**LOCOMO[0], "conversation": conversation}])
    )
    when = [m.event_time for m in turns.scopes[0].memories]
    assert when[0] == datetime(2023, 5, 8, 13, 56) and when[-1] == datetime(2023, 6, 20, 8, 0)
    iso = [
        {**LONGMEMEVAL[1], "haystack_dates": ["2023-01-01", None], "question_date": "2023-03-02"}
    ]
    lme = load_dataset("longmemeval", write(tmp_path / "m.json", iso))
    assert lme.scopes[0].memories[0].event_time == datetime(2023, 1, 1)
    assert lme.scopes[0].memories[-1].event_time is None
    assert lme.scopes[0].questions[0].reference_time == datetime(2023, 3, 2)


def test_a_date_the_store_refuses_is_refused_before_the_replay_naming_its_field(
    tmp_path: Path,
) -> None:
    """A date the store refuses passed the loader: the replay failed part-way ("item 4:
    event_time=..."), naming neither file nor field, leaving the earlier scopes in --use-home;
    a question_date failed only after the whole replay."""
    cases = [
        ("haystack_dates", ["2023/01/01 (Sun) 09:00", "9999-12-31T12:00:00"], "[1]"),
        ("haystack_dates", ["0001-01-01T00:00:00", None], "[0]"),
        ("haystack_dates", ["9999/12/31 (Fri) 12:00", None], "[0]"),
        ("question_date", "0001-01-01T00:00:00", ""),
    ]
    for n, (name, date, at) in enumerate(cases):
        path = write(tmp_path / f"m{n}.json", [LONGMEMEVAL[0], {**LONGMEMEVAL[1], name: date}])
        with pytest.raises(InvalidDataFile) as caught:
            load_dataset("longmemeval", path)
        assert f"field [1].{name}{at}: date=" in str(caught.value), caught.value
        assert "is outside the supported range" in str(caught.value)
        result = run(tmp_path / "home", "longmemeval", str(path), "--use-home")
        assert result.exit_code == 1 and f"{path}, line " in result.output, result.output
        with Memory(settings=Settings.load(home=tmp_path / "home")) as mem:
            assert mem.stats().records == 0


def test_a_locomo_category_written_as_a_string_counts(tmp_path: Path) -> None:
    qa = [{**q, "category": str(q["category"])} for q in LOCOMO[0]["qa"]]
    as_text = load_dataset("locomo", write(tmp_path / "text.json", [{**LOCOMO[0], "qa": qa}]))
    as_ints = load_dataset("locomo", write(tmp_path / "ints.json", LOCOMO))
    assert as_text.questions == as_ints.questions == 3


def test_a_k_search_cannot_return_is_refused_before_the_run(tmp_path: Path) -> None:
    """--k 2000 was accepted, failed at the first search ("k must be ...", not --k), and left
    the first scope in a --use-home home, so the corrected rerun was refused."""
    for k in ("2000", "0", "1,a", ","):
        result = run(tmp_path / "home", "small", "--limit", "1", "--use-home", "--k", k)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert (
            f"--k takes integers from 1 to 1000 separated by commas (e.g. --k 1,5,10), got {k!r}"
            in result.output
        ), result.output
        assert not (tmp_path / "home").exists()


def test_out_naming_the_data_file_is_refused_before_the_run(tmp_path: Path) -> None:
    """--out naming the input file overwrote the user's data set with the results."""
    data = write(tmp_path / "mydata.json", LOCOMO)
    original = data.read_text()
    (tmp_path / "link.json").symlink_to(data)
    for out in (str(data), str(tmp_path / "." / "link.json")):
        result = run(tmp_path / "home", "locomo", str(data), "--out", out)
        assert result.exit_code == 1 and "is the data file being evaluated" in result.output
        assert data.read_text() == original and not (tmp_path / "home").exists()
    result = run(tmp_path / "home", "small", "--out", str(small_scope_path()))
    assert result.exit_code == 1 and "is the data file being evaluated" in result.output


def test_an_unwritable_out_file_is_refused_before_the_run(tmp_path: Path) -> None:
    result = run(tmp_path / "home", "small", "--out", str(tmp_path / "missing" / "eval.json"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "folder" in result.output and "does not exist" in result.output
    assert not (tmp_path / "home").exists()


def test_unknown_kind_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataFile, match="unknown data set kind 'mem0'"):
        load_dataset("mem0", tmp_path / "x.json")
    with pytest.raises(InvalidDataFile, match="no such file"):
        load_dataset("locomo", tmp_path / "missing.json")
    with pytest.raises(InvalidDataFile, match="needs the path"):
        load_dataset("longmemeval")
