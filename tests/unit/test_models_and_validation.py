"""Scopes, kinds, the validation helpers and settings: each rejects bad input with a specific
error whose message says what to do."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentmem import (
    AgentMemError,
    InvalidKind,
    InvalidMetadata,
    InvalidScope,
    InvalidSettings,
    InvalidText,
    MemoryKind,
    MemoryRecord,
    Scope,
    Settings,
    ValidationError,
)
from agentmem.models import ScopeSet, content_hash, scope_text
from agentmem.validation import (
    check_importance,
    check_k,
    check_kind,
    check_kinds,
    check_local_time,
    check_metadata,
    check_text,
    check_time,
)

# Scope ---------------------------------------------------------------------------------------


def test_scope_of_keeps_the_fields_given() -> None:
    scope = Scope.of(org_id="acme", user_id="alice", agent_id="planner", thread_id="t-1")
    assert scope.fields() == {
        "org_id": "acme",
        "user_id": "alice",
        "agent_id": "planner",
        "thread_id": "t-1",
    }
    assert str(Scope.of(user_id="alice", thread_id="t-1")) == "user_id=alice,thread_id=t-1"


@pytest.mark.parametrize(
    "value", ["alice", "a", "alice@example.com", "org:team.1", "ünïcødé-名前", "a b", "x" * 256]
)
def test_scope_accepts_ordinary_ids(value: str) -> None:
    assert Scope.of(user_id=value).user_id == value


def test_scope_needs_at_least_one_field() -> None:
    with pytest.raises(InvalidScope, match="at least one of org_id, user_id") as info:
        Scope.of()
    assert "user_id='alice'" in str(info.value), "the message shows how to pass a scope"


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"user_id": ""}, "non-empty"),
        ({"user_id": "   "}, "non-empty"),
        ({"agent_id": "\t\n"}, "non-empty"),
        ({"user_id": 42}, "must be a string"),
        ({"org_id": b"acme"}, "must be a string"),
        ({"thread_id": ["t"]}, "must be a string"),
        ({"user_id": "a/b"}, "path separator"),
        ({"user_id": "..\\etc"}, "path separator"),
        ({"agent_id": "bad\x00id"}, "control character"),
        ({"thread_id": "line\nbreak"}, "control character"),
        ({"org_id": "del\x7f"}, "control character"),
        ({"user_id": "x" * 257}, "limited to 256"),
        ({"user_id": "ok", "agent_id": "not/ok"}, "agent_id"),
        ({"user_id": "lone\ud800"}, "not valid Unicode"),
    ],
)
def test_scope_rejects_unsafe_values(kwargs: dict[str, object], hint: str) -> None:
    with pytest.raises(InvalidScope) as info:
        Scope.of(**kwargs)  # type: ignore[arg-type]
    assert hint in str(info.value)
    assert "validation error" not in str(info.value), "not a raw pydantic dump"


def test_invalid_scope_is_a_value_error_and_an_agentmem_error() -> None:
    with pytest.raises(ValueError):
        Scope.of(user_id="")
    assert issubclass(InvalidScope, ValidationError)
    assert issubclass(InvalidScope, AgentMemError)


def test_scope_contains_is_field_by_field() -> None:
    record = Scope.of(org_id="acme", user_id="alice", agent_id="planner")
    assert Scope.of(user_id="alice").contains(record)
    assert Scope.of(org_id="acme", agent_id="planner").contains(record)
    assert not Scope.of(user_id="bob").contains(record)
    assert not Scope.of(user_id="alice", thread_id="t-1").contains(record)
    assert not Scope.of(user_id="Alice").contains(record), "ids are case-sensitive"


def test_scope_text_tells_apart_scopes_that_print_the_same() -> None:
    pairs = [
        (Scope.of(user_id="maya,thread_id=t"), Scope.of(user_id="maya", thread_id="t")),
        (Scope.of(org_id="a,user_id=b"), Scope.of(org_id="a", user_id="b")),
        (
            ScopeSet.of(Scope.of(user_id="a) | (user_id=b")),
            ScopeSet.of(Scope.of(user_id="a"), Scope.of(user_id="b")),
        ),
    ]
    for one, other in pairs:
        assert str(one) == str(other) and scope_text(one) != scope_text(other)
    plain = ScopeSet.of(Scope.of(user_id="alice", agent_id="x"), Scope.of(user_id="alice"))
    assert scope_text(plain) == str(plain)  # texts written before stay valid
    assert (
        scope_text(Scope.of(user_id="a,b", thread_id="t(1) | x"))
        == "user_id=a,b,thread_id=t(1) | x"
    )


def test_scope_is_frozen() -> None:
    scope = Scope.of(user_id="alice")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        scope.user_id = "bob"  # type: ignore[misc]


# MemoryKind ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MemoryKind))
def test_kind_parse_accepts_values_and_members(kind: MemoryKind) -> None:
    assert MemoryKind.parse(kind.value) is kind
    assert MemoryKind.parse(kind) is kind


@pytest.mark.parametrize("bad", ["fact", "", "Semantic ", "EPISODIC", 3, None])
def test_kind_parse_rejects_unknown_kinds(bad: object) -> None:
    with pytest.raises(InvalidKind) as info:
        MemoryKind.parse(bad)  # type: ignore[arg-type]
    assert "episodic, semantic, procedural, experience" in str(info.value)


# check_text ----------------------------------------------------------------------------------


def test_check_text_returns_valid_text_unchanged() -> None:
    assert check_text("  Alice likes tea \n", max_chars=100) == "  Alice likes tea \n"
    assert check_text("x" * 10, max_chars=10) == "x" * 10


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "non-empty"),
        ("  \n\t", "non-empty"),
        (None, "must be a string"),
        (7, "must be a string"),
        (b"bytes", "must be a string"),
        (["a"], "must be a string"),
        ("x" * 11, "AGENTMEM_MAX_TEXT_CHARS"),
        ("nul\x00byte", "NUL"),
        ("lone \ud800", "decode"),
    ],
)
def test_check_text_rejects(text: object, hint: str) -> None:
    with pytest.raises(InvalidText) as info:
        check_text(text, max_chars=10)
    assert hint in str(info.value)


def test_check_text_names_what_it_checks() -> None:
    with pytest.raises(InvalidText, match=r"^query is empty"):
        check_text("", max_chars=10, what="query")


# check_kind / check_kinds --------------------------------------------------------------------


def test_check_kind_and_kinds() -> None:
    assert check_kind("semantic") is MemoryKind.SEMANTIC
    assert check_kinds(None) == ()
    assert check_kinds("procedural") == (MemoryKind.PROCEDURAL,)
    assert check_kinds(["episodic", MemoryKind.EXPERIENCE]) == (
        MemoryKind.EPISODIC,
        MemoryKind.EXPERIENCE,
    )
    with pytest.raises(InvalidKind, match="must be a string"):
        check_kind(1.5)
    with pytest.raises(InvalidKind, match="use one of"):
        check_kinds(["semantic", "facts"])


# check_metadata ------------------------------------------------------------------------------


def test_check_metadata_round_trips_json() -> None:
    assert check_metadata(None) == {}
    meta = {"session": 3, "tags": ("a", "b"), "nested": {"ok": True, "x": None}, "f": 0.5}
    assert check_metadata(meta) == {
        "session": 3,
        "tags": ["a", "b"],
        "nested": {"ok": True, "x": None},
        "f": 0.5,
    }
    original = {"a": [1]}
    result = check_metadata(original)
    result["a"].append(2)
    assert original == {"a": [1]}, "the caller's dict is not shared"


@pytest.mark.parametrize(
    ("metadata", "hint"),
    [
        ([("a", 1)], "must be a dict"),
        ("a=1", "must be a dict"),
        ({1: "x"}, "keys must be strings"),
        ({("a",): "x"}, "keys must be strings"),
        ({"when": datetime(2024, 1, 1)}, "JSON-serialisable"),
        ({"s": {1, 2}}, "JSON-serialisable"),
        ({"x": object()}, "JSON-serialisable"),
        ({"x": math.nan}, "JSON-serialisable"),
        ({"x": math.inf}, "JSON-serialisable"),
        ({"x": "lone \ud800"}, "not valid Unicode"),
        ({"k\udc00": 1}, "not valid Unicode"),
        ({"x": ["a", {"deep": "\udfff"}]}, "not valid Unicode"),
        ({"x": "nul\x00"}, "NUL"),
    ],
)
def test_check_metadata_rejects(metadata: object, hint: str) -> None:
    with pytest.raises(InvalidMetadata) as info:
        check_metadata(metadata)
    assert hint in str(info.value)


@pytest.mark.parametrize(
    "value",
    [r"C:\u0000\notes", r'{"sep": "\u0000"}', "\\u0000", "\\\\u0000", r"\\\u0000"],
)
def test_check_metadata_keeps_a_backslash_before_u0000_that_is_no_nul(value: str) -> None:
    # Only the characters backslash, "u", "0000": JSON escapes the backslash, which a search
    # for the escaped NUL must not take for one.
    assert "\x00" not in value
    assert check_metadata({"path": value, value: 1}) == {"path": value, value: 1}


@pytest.mark.parametrize("value", ["\x00", "\\\x00", "\\\\\x00", "a\\u0000\x00"])
def test_check_metadata_finds_a_nul_after_backslashes(value: str) -> None:
    with pytest.raises(InvalidMetadata, match="NUL"):
        check_metadata({"x": value})
    with pytest.raises(InvalidMetadata, match="NUL"):
        check_metadata({value: 1})


# check_time ----------------------------------------------------------------------------------


def test_check_time_normalises_to_utc() -> None:
    assert check_time(None) is None
    naive = datetime(2024, 5, 8, 13, 56)
    assert check_time(naive) == naive.replace(tzinfo=UTC)
    plus2 = datetime(2024, 5, 8, 15, 56, tzinfo=timezone(timedelta(hours=2)))
    result = check_time(plus2)
    assert result == datetime(2024, 5, 8, 13, 56, tzinfo=UTC)
    assert result is not None and result.utcoffset() == timedelta(0)
    assert check_time("2024-05-08T13:56:00+00:00") == datetime(2024, 5, 8, 13, 56, tzinfo=UTC)
    assert check_time("2024-05-08") == datetime(2024, 5, 8, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "", "08/05/2024"])
def test_check_time_rejects_bad_strings(bad: str) -> None:
    with pytest.raises(InvalidMetadata, match="ISO-8601") as info:
        check_time(bad, what="valid_from")
    assert "valid_from" in str(info.value)


@pytest.mark.parametrize("bad", [1715176560, 1.5, b"2024-05-08", ["2024"]])
def test_check_time_rejects_other_types(bad: object) -> None:
    with pytest.raises(InvalidMetadata, match="datetime or ISO-8601 string"):
        check_time(bad)


def test_check_local_time_keeps_a_real_time_zone() -> None:
    """A ZoneInfo reference time was reduced to its UTC offset of that moment, so "last month"
    asked in April in Berlin (summer time, +02:00) began March at 22:00 UTC on 29 February,
    an hour early: 23:30 on 29 February in Berlin (+01:00) fell in March."""
    from zoneinfo import ZoneInfo

    from agentmem.timeparse import parse_time_window

    berlin = ZoneInfo("Europe/Berlin")
    asked = check_local_time(datetime(2024, 4, 2, 10, tzinfo=berlin), what="reference_time")
    assert asked is not None and asked.tzinfo is berlin
    window = parse_time_window("what did I bake last month?", now=asked)
    assert window is not None
    assert (window.start, window.end) == (
        datetime(2024, 2, 29, 23, tzinfo=UTC),  # 1 March, 00:00 CET
        datetime(2024, 3, 31, 22, tzinfo=UTC),  # 1 April, 00:00 CEST
    )
    # a string keeps its offset, a naive time is UTC
    offset = check_local_time("2024-04-02T10:00:00+02:00")
    assert offset is not None and offset.utcoffset() == timedelta(hours=2)
    naive = check_local_time("2024-04-02T10:00:00")
    assert naive is not None and naive.utcoffset() == timedelta(0)


# check_importance / check_k ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, 0.5), (0, 0.0), (1, 1.0), (0.25, 0.25)])
def test_check_importance_accepts(value: float | None, expected: float) -> None:
    assert check_importance(value) == expected


def test_check_importance_default() -> None:
    assert check_importance(None, default=0.9) == 0.9


@pytest.mark.parametrize("bad", [-0.01, 1.01, 5, math.nan, math.inf, True, "0.5", [0.5]])
def test_check_importance_rejects(bad: object) -> None:
    with pytest.raises(InvalidMetadata, match=r"importance must be"):
        check_importance(bad)


@pytest.mark.parametrize("good", [1, 10, 1000])
def test_check_k_accepts(good: int) -> None:
    assert check_k(good) == good


@pytest.mark.parametrize("bad", [0, -1, 1001, True, 2.0, "5", None])
def test_check_k_rejects(bad: object) -> None:
    with pytest.raises(ValidationError, match="integer from 1 to 1000"):
        check_k(bad)


# MemoryRecord --------------------------------------------------------------------------------


def test_record_fills_its_content_hash_and_id() -> None:
    a = MemoryRecord(scope=Scope.of(user_id="u"), text="hello")
    b = MemoryRecord(scope=Scope.of(user_id="u"), text="hello")
    assert a.content_hash == b.content_hash == content_hash("hello")
    assert a.id != b.id
    assert a.kind is MemoryKind.EPISODIC and a.version == 1


def test_record_validity_window() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    record = MemoryRecord(
        scope=Scope.of(user_id="u"),
        text="x",
        created_at=t0,
        valid_from=t0 + timedelta(days=1),
        valid_to=t0 + timedelta(days=3),
    )
    assert not record.is_valid_at(t0)
    assert record.is_valid_at(t0 + timedelta(days=2))
    assert not record.is_valid_at(t0 + timedelta(days=3))
    assert record.is_valid_at(datetime(2024, 1, 2, 12))  # naive means UTC


# Settings ------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AGENTMEM_* variables from the outer environment, and a scratch working directory."""
    import os

    for name in list(os.environ):
        if name.startswith("AGENTMEM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_settings_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = Settings.load()
    assert s.home == Path(".agentmem")
    assert s.store_url is None and s.vectors_url is None
    assert s.embedder == "minilm" and s.llm_model is None
    assert s.resolved_store_url() == f"sqlite:///{(tmp_path / '.agentmem/agentmem.db')}"
    assert s.resolved_vectors_url() == f"edge://{tmp_path / '.agentmem/vectors'}"
    assert s.uses_embedded_home()
    assert not (tmp_path / ".agentmem").exists(), "building settings touches no disk"


def test_settings_from_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("AGENTMEM_HOME", str(tmp_path / "h"))
    clean_env.setenv("AGENTMEM_MAX_TEXT_CHARS", "123")
    clean_env.setenv("AGENTMEM_STORE_URL", "postgresql://postgres@db:5432/mem")
    clean_env.setenv("AGENTMEM_VECTORS_URL", "http://qdrant:6333")
    clean_env.setenv("AGENTMEM_CONNECT_TIMEOUT_S", "1.5")
    s = Settings.load()
    assert s.home == tmp_path / "h"
    assert s.max_text_chars == 123
    assert s.connect_timeout_s == 1.5
    assert s.resolved_store_url() == "postgresql://postgres@db:5432/mem"
    assert s.resolved_vectors_url() == "http://qdrant:6333"
    assert not s.uses_embedded_home()


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_home_is_refused_not_taken_for_the_current_directory(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    """AGENTMEM_HOME='' (export AGENTMEM_HOME=$UNSET_VAR) made the current directory the home,
    while Memory(home='') was refused."""
    clean_env.setenv("AGENTMEM_HOME", value)
    with pytest.raises(InvalidSettings, match=r"home is empty.*AGENTMEM_HOME"):
        Settings.load()
    clean_env.delenv("AGENTMEM_HOME")
    with pytest.raises(InvalidSettings, match="home is empty"):
        Settings(home=value)


def test_settings_overrides_beat_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENTMEM_MAX_TEXT_CHARS", "123")
    assert Settings.load(max_text_chars=7).max_text_chars == 7


def test_settings_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    file = tmp_path / "agentmem.toml"
    file.write_text(
        'home = "/srv/mem"\n'
        "max_text_chars = 500\n"
        'embedder = "sentence-transformers:/models/x"\n'
        'store_url = "sqlite:////srv/mem/other.db"\n'
    )
    clean_env.setenv("AGENTMEM_SETTINGS_FILE", str(file))
    clean_env.setenv("AGENTMEM_MAX_TEXT_CHARS", "900")  # the environment wins over the file
    s = Settings.load()
    assert s.home == Path("/srv/mem")
    assert s.max_text_chars == 900
    assert s.embedder == "sentence-transformers:/models/x"
    assert s.resolved_store_url() == "sqlite:////srv/mem/other.db"
    # The file can also be passed in code.
    clean_env.delenv("AGENTMEM_SETTINGS_FILE")
    clean_env.delenv("AGENTMEM_MAX_TEXT_CHARS")
    assert Settings.load(settings_file=file).max_text_chars == 500


def test_a_pool_minimum_above_its_maximum_is_refused_at_load(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """It loaded, and the PostgreSQL store refused to open without naming the settings."""
    clean_env.setenv("AGENTMEM_POSTGRES_POOL_MIN", "9")
    with pytest.raises(InvalidSettings, match="AGENTMEM_POSTGRES_POOL_MIN at most"):
        Settings.load()
    assert Settings.load(postgres_pool_max=9).postgres_pool_min == 9


def test_settings_file_missing(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("AGENTMEM_SETTINGS_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(InvalidSettings, match="does not exist") as info:
        Settings.load()
    assert "AGENTMEM_SETTINGS_FILE" in str(info.value)


def test_settings_file_that_is_a_directory_is_called_one(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A directory was refused as a file that "does not exist; create it", which is false and
    cannot be done."""
    clean_env.setenv("AGENTMEM_SETTINGS_FILE", str(tmp_path))
    with pytest.raises(InvalidSettings, match="is a directory, not a TOML file") as info:
        Settings.load()
    assert "does not exist" not in str(info.value) and "AGENTMEM_SETTINGS_FILE" in str(info.value)
    clean_env.setenv("AGENTMEM_SETTINGS_FILE", "/dev/null")
    with pytest.raises(InvalidSettings, match="is not a regular file"):
        Settings.load()


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        ({"store_url": "mysql://db/mem"}, "sqlite://, postgresql://"),
        ({"store_url": "agentmem.db"}, "unknown scheme"),
        ({"vectors_url": "milvus://host"}, "edge://, postgresql://"),
        ({"max_text_chars": 0}, "max_text_chars"),
        ({"embed_batch_size": 100_000}, "embed_batch_size"),
        ({"connect_timeout_s": -1}, "connect_timeout_s"),
        ({"connect_timeout_s": math.inf}, "connect_timeout_s: Input should be a finite number"),
        ({"llm_timeout_s": math.nan}, "llm_timeout_s: Input should be a finite number"),
        ({"llm_backoff_s": math.inf}, "llm_backoff_s: Input should be a finite number"),
    ],
)
def test_settings_load_rejects(
    clean_env: pytest.MonkeyPatch, overrides: dict[str, object], hint: str
) -> None:
    with pytest.raises(InvalidSettings) as info:
        Settings.load(**overrides)
    assert hint in str(info.value)


def test_settings_nested_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENTMEM_RETRIEVAL__WINDOWS", "false")
    clean_env.setenv("AGENTMEM_RETRIEVAL__RRF_K", "10")
    s = Settings.load()
    assert s.retrieval.windows is False and s.retrieval.rrf_k == 10


def test_settings_bad_environment_value(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENTMEM_STORE_URL", "redis://localhost")
    with pytest.raises(InvalidSettings, match="store_url"):
        Settings.load()
    clean_env.delenv("AGENTMEM_STORE_URL")
    clean_env.setenv("AGENTMEM_MAX_TEXT_CHARS", "lots")
    with pytest.raises(InvalidSettings, match="max_text_chars"):
        Settings.load()


def test_phone_region_is_normalised_or_refused(clean_env: pytest.MonkeyPatch) -> None:
    # phonenumbers finds no number for a region it does not know ('us' included): such a
    # region would switch phone redaction off silently.
    assert Settings.load(redaction={"phone_region": " us"}).redaction.phone_region == "US"
    clean_env.setenv("AGENTMEM_REDACTION__PHONE_REGION", "gb")
    assert Settings.load().redaction.phone_region == "GB"
    for bad in ("XX", "USA", ""):
        with pytest.raises(InvalidSettings, match=r"redaction\.phone_region.*ISO 3166"):
            Settings.load(redaction={"phone_region": bad})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENTMEM_LLM_KWARGS", '{"api_key": sk-secret}'),
        ("AGENTMEM_RETRIEVAL__WEIGHTS", "dense=2"),
        ("AGENTMEM_CONSOLIDATION__DECAY_KINDS", "semantic"),
        ("AGENTMEM_EXPERIENCE__REWARD_RANGE", "0,1"),
    ],
)
def test_an_environment_value_that_is_not_json_names_its_variable(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(InvalidSettings) as info:
        Settings.load()
    message = str(info.value)
    assert f"{variable} is not valid JSON" in message and "written as JSON" in message
    assert value not in message  # the value may hold a secret


def test_a_settings_file_that_is_not_toml_is_named(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "agentmem.toml"
    file.write_text('home = "/srv/mem"\nembed_batch_size = \n')  # a value forgotten
    clean_env.setenv("AGENTMEM_SETTINGS_FILE", str(file))
    with pytest.raises(InvalidSettings, match="is not valid TOML") as info:
        Settings.load()
    assert str(file) in str(info.value) and "line 2" in str(info.value)
    file.write_bytes(b'home = "\xff"\n')  # not UTF-8
    with pytest.raises(InvalidSettings, match=re.escape(f"settings file {file} is not valid")):
        Settings.load()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"retrieval": {"weights": {"dense": math.nan}}}, "retrieval.weights.dense"),
        ({"retrieval": {"weights": {"dense": math.inf}}}, "retrieval.weights.dense"),
        ({"retrieval": {"session_prior": math.inf}}, "retrieval.session_prior"),
        ({"retrieval": {"recency_half_life_days": math.inf}}, "retrieval.recency_half_life_days"),
        ({"retrieval": {"mmr_lambda": math.nan}}, "retrieval.mmr_lambda"),
        ({"graph": {"dense_seed_weight": math.inf}}, "graph.dense_seed_weight"),
        ({"consolidation": {"stability_days": math.inf}}, "consolidation.stability_days"),
        ({"buffer": {"topic_shift_threshold": math.nan}}, "buffer.topic_shift_threshold"),
        ({"notes": {"link_threshold": math.nan}}, "notes.link_threshold"),
    ],
)
def test_section_numbers_must_be_finite(
    clean_env: pytest.MonkeyPatch, overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidSettings, match=re.escape(named) + ".*finite"):
        Settings.load(**overrides)


def test_a_non_finite_number_in_the_environment_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENTMEM_RETRIEVAL__WEIGHTS", '{"bm25": NaN}')
    with pytest.raises(InvalidSettings, match=r"retrieval\.weights\.bm25.*finite"):
        Settings.load()


def test_consolidation_timezone_must_be_a_known_zone(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings.load(consolidation={"timezone": "Europe/Berlin"}).consolidation.timezone == (
        "Europe/Berlin"
    )
    for bad, hint in (("europe/berlin", "did you mean 'Europe/Berlin'"), ("CET+1", "IANA")):
        clean_env.setenv("AGENTMEM_CONSOLIDATION__TIMEZONE", bad)
        with pytest.raises(InvalidSettings, match=r"consolidation\.timezone") as info:
            Settings.load()
        assert hint in str(info.value) and "AGENTMEM_CONSOLIDATION__TIMEZONE" in str(info.value)


def test_consolidation_backoff_above_its_maximum_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    # It was accepted and silently capped: every retry waited retry_backoff_max_s.
    with pytest.raises(InvalidSettings, match=r"retry_backoff_s \(500\.0\) is above") as info:
        Settings.load(consolidation={"retry_backoff_s": 500, "retry_backoff_max_s": 300})
    assert "consolidation.retry_backoff_max_s (300.0)" in str(info.value)
    assert "AGENTMEM_CONSOLIDATION__RETRY_BACKOFF_MAX_S" in str(info.value)
    same = Settings.load(consolidation={"retry_backoff_s": 30, "retry_backoff_max_s": 30})
    assert same.consolidation.retry_backoff_s == same.consolidation.retry_backoff_max_s == 30


@pytest.mark.parametrize(
    "url", ["redis:/localhost", "amqpp://guest@rabbit//", "memory://", "localhost:6379", "redis"]
)
def test_a_broker_url_of_an_unsupported_scheme_is_refused_at_load(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    # A typo was found only when a run was queued, or by a worker that never started.
    clean_env.setenv("AGENTMEM_CONSOLIDATION__BROKER_URL", url)
    with pytest.raises(InvalidSettings, match=r"consolidation\.broker_url") as info:
        Settings.load()
    for named in ("redis://", "rediss://", "amqp://", "amqps://", "BROKER_URL"):
        assert named in str(info.value)


def test_a_broker_url_hides_its_password_when_refused(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidSettings, match="broker_url") as info:
        Settings.load(consolidation={"broker_url": "redis:/:s3cret@host:6379/0"})
    assert "s3cret" not in str(info.value)
    for url in ("redis://h:6379/1", "rediss://:pw@h/0", "amqp://u:p@h//", "amqps://h//", "none"):
        clean_env.setenv("AGENTMEM_CONSOLIDATION__BROKER_URL", url)
        expected = None if url == "none" else url
        assert Settings.load().consolidation.broker_url == expected


def test_consolidation_kinds_must_be_memory_kinds(clean_env: pytest.MonkeyPatch) -> None:
    # A typo in decay_kinds failed every consolidation run at its decay stage; one in
    # retention_days was a policy that never deleted anything.
    clean_env.setenv("AGENTMEM_CONSOLIDATION__DECAY_KINDS", '["episodes"]')
    with pytest.raises(InvalidSettings, match="did you mean 'episodic'") as info:
        Settings.load()
    assert "AGENTMEM_CONSOLIDATION__DECAY_KINDS" in str(info.value)
    clean_env.delenv("AGENTMEM_CONSOLIDATION__DECAY_KINDS")
    with pytest.raises(InvalidSettings, match=r"retention_days names unknown .*\['semantc'\]"):
        Settings.load(consolidation={"retention_days": {"semantc": 30}})
    with pytest.raises(InvalidSettings, match=r"retention_days of \['episodic'\] is negative"):
        Settings.load(consolidation={"retention_days": {"episodic": -1}})
    kept = Settings.load(
        consolidation={"decay_kinds": ["episodic", "semantic"], "retention_days": {"episodic": 0}}
    )
    assert kept.consolidation.decay_kinds == ("episodic", "semantic")
