"""The ``agentmem`` command line, run in-process with typer's CliRunner on embedded homes."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentmem import Memory, MemoryRecord, Settings, cli, indexing
from agentmem.embedders import Embedder

COMMANDS = [
    "update",
    "invalidate",
    "links",
    "add",
    "search",
    "get",
    "history",
    "delete",
    "list",
    "stats",
    "export",
    "import",
    "reindex",
]


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    """Every command opens its Memory with the session's embedder (loaded once)."""

    def open_memory(settings: Settings) -> Memory:
        return Memory(settings=settings, embedder=embedder)

    monkeypatch.setattr(cli, "open_memory", open_memory)


def run(home: Path, *args: str, input: str | bytes | None = None) -> Result:
    """Run ``agentmem --home HOME ARGS`` with a wide terminal, so table cells do not wrap."""
    runner = CliRunner(env={"COLUMNS": "250"})
    return runner.invoke(cli.app, ["--home", str(home), *args], input=input)


def ok(home: Path, *args: str, input: str | bytes | None = None) -> Result:
    result = run(home, *args, input=input)
    assert result.exit_code == 0, result.output
    return result


def open_mem(home: Path, embedder: Embedder) -> Memory:
    return Memory(settings=Settings.load(home=home), embedder=embedder)


def all_records(home: Path, embedder: Embedder) -> list[MemoryRecord]:
    with open_mem(home, embedder) as mem:
        return list(mem.export())


# happy paths -----------------------------------------------------------------------------------


def test_add_prints_the_id_and_get_shows_the_record(home: Path, embedder: Embedder) -> None:
    result = ok(
        home,
        "add",
        "Alice moved to Lisbon in May",
        "--user",
        "alice",
        "--agent",
        "planner",
        "--kind",
        "semantic",
        "--metadata",
        '{"topic": "travel", "session": 3}',
        "--event-time",
        "2023-05-08T13:56:00+00:00",
        "--importance",
        "0.9",
    )
    memory_id = result.stdout.strip()
    with open_mem(home, embedder) as mem:
        record = mem.get(memory_id)
    assert record.text == "Alice moved to Lisbon in May"
    assert record.scope.user_id == "alice" and record.scope.agent_id == "planner"
    assert record.kind == "semantic"
    # A semantic memory is a note: keywords, tags and a context join the given metadata.
    assert {k: record.metadata[k] for k in ("topic", "session")} == {
        "topic": "travel",
        "session": 3,
    }
    assert set(record.metadata) == {"topic", "session", "keywords", "tags", "context"}
    assert record.event_time is not None and record.event_time.isoformat().startswith("2023-05-08")
    assert record.importance == 0.9

    shown = ok(home, "get", memory_id).stdout
    assert memory_id in shown and "Alice moved to Lisbon in May" in shown and "travel" in shown
    as_json = json.loads(ok(home, "get", memory_id, "--json").stdout)
    assert as_json == record.model_dump(mode="json")


def test_search_prints_a_ranked_table_and_json(home: Path) -> None:
    lisbon = ok(home, "add", "Alice moved to Lisbon in May", "--user", "alice").stdout.strip()
    ok(home, "add", "Bob plays [bold]chess[/bold] on Sundays", "--user", "alice")
    ok(home, "add", "Alice's sister lives in Lisbon too", "--user", "carol")

    table = ok(home, "search", "where does Alice live?", "--user", "alice").stdout
    assert "rank" in table and "score" in table
    assert lisbon[:8] in table
    assert "Alice moved to Lisbon in May" in table
    assert "[bold]chess[/bold]" in table  # memory text is printed as is, never as markup
    assert "sister" not in table  # another user's memory

    hits = json.loads(
        ok(home, "search", "where does Alice live?", "--user", "alice", "--json", "-k", "1").stdout
    )
    assert len(hits) == 1
    assert hits[0]["rank"] == 1 and hits[0]["record"]["id"] == lisbon
    assert isinstance(hits[0]["score"], float)


def test_search_filters_by_kind_and_metadata(home: Path) -> None:
    ok(home, "add", "Alice likes green tea", "--user", "a", "--metadata", '{"topic": "food"}')
    fact = ok(home, "add", "Alice drinks tea", "--user", "a", "--kind", "semantic").stdout.strip()
    procedure = ok(
        home, "add", "Brew tea for 3 minutes", "--user", "a", "--kind", "procedural"
    ).stdout.strip()

    def ids(*args: str) -> set[str]:
        hits = json.loads(ok(home, "search", "tea", "--user", "a", "--json", *args).stdout)
        return {h["record"]["id"] for h in hits}

    assert ids("--kind", "semantic", "--kind", "procedural") == {fact, procedure}
    food = ids("--filter", '{"topic": {"$in": ["food"]}}')
    assert len(food) == 1 and fact not in food
    assert ids("--as-of", "2000-01-01T00:00:00+00:00") == set()


def test_search_with_no_hits_says_so(home: Path) -> None:
    assert "no memories found" in ok(home, "search", "anything", "--user", "nobody").stdout


def test_history_shows_each_version(home: Path, embedder: Embedder) -> None:
    memory_id = ok(home, "add", "Alice lives in Porto", "--user", "alice").stdout.strip()
    with open_mem(home, embedder) as mem:
        mem.update(memory_id, text="Alice lives in Lisbon")
    table = ok(home, "history", memory_id).stdout
    lines = [line for line in table.splitlines() if "ADD" in line or "UPDATE" in line]
    assert len(lines) == 2
    assert "1" in lines[0] and "ADD" in lines[0] and "Alice lives in Porto" in lines[0]
    assert "2" in lines[1] and "UPDATE" in lines[1]
    assert "Alice lives in Porto -> Alice lives in Lisbon" in lines[1]


def test_delete_asks_first_and_keeps_history(home: Path) -> None:
    memory_id = ok(home, "add", "temporary note", "--user", "alice").stdout.strip()

    declined = run(home, "delete", memory_id, input="n\n")
    assert declined.exit_code == 1
    ok(home, "get", memory_id)  # still there

    ok(home, "delete", memory_id, input="y\n")
    assert run(home, "get", memory_id).exit_code == 1

    memory_id = ok(home, "add", "another note", "--user", "alice").stdout.strip()
    assert memory_id in ok(home, "delete", memory_id, "--yes").stdout
    assert "DELETE" in ok(home, "history", memory_id).stdout


def test_list_pages_through_a_scope(home: Path) -> None:
    ids = [ok(home, "add", f"note number {n}", "--user", "alice").stdout.strip() for n in range(3)]
    ok(home, "add", "not alice's", "--user", "bob")

    first = ok(home, "list", "--user", "alice", "--limit", "2").stdout
    assert ids[0][:8] in first and ids[1][:8] in first and ids[2][:8] not in first
    assert "note number 0" in first
    rest = ok(home, "list", "--user", "alice", "--limit", "2", "--offset", "2").stdout
    assert ids[2][:8] in rest and ids[0][:8] not in rest
    listed = json.loads(ok(home, "list", "--user", "alice", "--json").stdout)
    assert [r["id"] for r in listed] == ids
    assert "no memories" in ok(home, "list", "--user", "alice", "--offset", "10").stdout


def test_tables_write_a_year_before_1000_in_four_digits(home: Path) -> None:
    """glibc's strftime writes %Y of the year 90 as "90": the list showed "90-06-01 00:00:00"."""
    from agentmem.cli._output import when

    ok(home, "add", "The Roman coin was minted", "--user", "u", "--event-time", "0090-06-01")
    assert "0090-06-01 00:00:00" in ok(home, "list", "--user", "u").stdout
    assert when(None) == "-"


def test_stats_shows_counts(home: Path) -> None:
    ok(home, "add", "one", "--user", "alice")
    ok(home, "add", "two", "--user", "alice", "--kind", "semantic")
    table = ok(home, "stats").stdout
    lines = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in table.splitlines()
        if line.count("│") == 3
    }
    assert lines["records"] == "2"
    assert lines["episodic"] == "1" and lines["semantic"] == "1"
    assert lines["history entries"] == "2"
    assert lines["indexed vectors"] == "2"
    assert lines["pending index updates"] == "0"
    assert lines["embedder"] == "all-MiniLM-L6-v2"


# errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "", "--user", "alice"], "text is empty"),
        (["add", "   ", "--user", "alice"], "text is empty"),
        (["add", "hello"], "needs a scope"),
        (["add", "hello", "--user", "a/b"], "path separator"),
        (["add", "hello", "--user", "alice", "--kind", "nope"], "unknown memory kind 'nope'"),
        (["add", "hello", "--user", "alice", "--metadata", "{bad"], "--metadata is not valid JSON"),
        (["add", "hello", "--user", "alice", "--metadata", "[1, 2]"], "metadata must be a dict"),
        (["add", "hello", "--user", "alice", "--event-time", "yesterday"], "not an ISO-8601"),
        (["add", "hello", "--user", "alice", "--importance", "2"], "importance must be in"),
        (["search", "q", "--user", "alice", "--filter", '{"n": {"$regex": 1}}'], "'$regex'"),
        (["search", "q", "--user", "alice", "--filter", "[oops"], "--filter is not valid JSON"),
        (["search", "q", "--user", "alice", "--kind", "nope"], "unknown memory kind"),
        (["search", "q", "--user", "alice", "-k", "0"], "k must be an integer"),
        (["search", "q", "--user", "alice", "--as-of", "soon"], "not an ISO-8601"),
        (["list", "--user", "alice", "--offset", "-1"], "offset must be"),
        (["get", "no-such-id"], "no memory with id 'no-such-id'"),
        (["history", "no-such-id"], "no history for memory id 'no-such-id'"),
        (["delete", "no-such-id", "--yes"], "no memory with id 'no-such-id'"),
        (["--store-url", "mysql://db", "stats"], "unknown scheme"),
    ],
)
def test_errors_are_one_red_line_and_exit_1(
    home: Path, embedder: Embedder, args: list[str], message: str
) -> None:
    result = run(home, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no exception escaped the CLI
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    if home.exists():  # nothing was written
        assert all_records(home, embedder) == []


# export / import -------------------------------------------------------------------------------


def _fill(home: Path, embedder: Embedder) -> None:
    """Memories of every shape: kinds, scopes, metadata, times, versions, invalidation."""
    ok(home, "add", "Alice moved to Lisbon", "--user", "alice", "--metadata", '{"s": 1}')
    ok(
        home,
        "add",
        "Ünïcödé ✓ text\u2028 after a line separator\x85 and a NEL",
        "--org",
        "acme",
        "--thread",
        "t-1",
        "--kind",
        "semantic",
    )
    with open_mem(home, embedder) as mem:
        mem.add_many(
            [
                {"text": "Brew tea", "kind": "procedural", "importance": 0.25},
                {
                    "text": "Bob was CTO",
                    "valid_from": "2020-01-01T00:00:00+00:00",
                    "valid_to": "2022-06-30T00:00:00+00:00",
                    "metadata": {"tags": ["work", "role"], "nested": {"x": 1.5}},
                },
            ],
            agent_id="coach",
            user_id="bob",
        )
        updated = mem.add("draft", user_id="alice", event_time="2023-05-08T10:00:00+02:00")
        mem.update(updated.id, text="final", metadata={"rev": 2})
        gone = mem.add("Alice works at Initech", user_id="alice")
        mem.invalidate(gone.id, valid_to="2024-01-01T00:00:00+00:00")


def test_export_then_import_round_trips_every_record(
    tmp_path: Path, home: Path, embedder: Embedder
) -> None:
    _fill(home, embedder)
    original = all_records(home, embedder)
    assert len(original) == 6
    assert {r.version for r in original} == {1, 2}

    path = tmp_path / "backup.jsonl"
    assert "exported 6 records" in ok(home, "export", str(path)).stdout
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6 and all(isinstance(json.loads(line), dict) for line in lines)
    assert not list(tmp_path.glob("*.partial"))

    fresh = tmp_path / "fresh"
    assert "imported 6 records, skipped 0" in ok(fresh, "import", str(path)).stdout
    restored = all_records(fresh, embedder)
    assert [r.model_dump() for r in restored] == [r.model_dump() for r in original]

    assert "imported 0 records, skipped 6" in ok(fresh, "import", str(path)).stdout
    assert len(all_records(fresh, embedder)) == 6

    # The restored home is searchable, not just stored.
    hits = json.loads(ok(fresh, "search", "Lisbon", "--user", "alice", "--json").stdout)
    assert hits and hits[0]["record"]["text"] == "Alice moved to Lisbon"


def test_export_writes_through_a_symlink_a_fifo_and_stdout(
    tmp_path: Path, home: Path, embedder: Embedder
) -> None:
    _fill(home, embedder)
    out_dir = tmp_path / "out"
    (out_dir / "backups").mkdir(parents=True)
    target = out_dir / "backups" / "latest.jsonl"
    target.write_text("old\n", encoding="utf-8")
    link = out_dir / "current.jsonl"
    link.symlink_to("backups/latest.jsonl")
    ok(home, "export", str(link))
    assert link.is_symlink() and len(target.read_text(encoding="utf-8").splitlines()) == 6
    assert sorted(p.name for p in out_dir.rglob("*")) == [
        "backups",
        "current.jsonl",
        "latest.jsonl",
    ]

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    ok(home, "export", str(fifo))
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and len(got[0].splitlines()) == 6

    out = ok(home, "export", "-")
    assert [json.loads(line)["id"] for line in out.stdout.splitlines()] == [
        json.loads(line)["id"] for line in got[0].splitlines()
    ]
    assert "exported 6 records to stdout" in out.stderr


def test_import_reads_stdin_and_gzip_as_export_dash_pipes_them(
    tmp_path: Path, home: Path, embedder: Embedder
) -> None:
    """`agentmem export - | gzip > backup.jsonl.gz` restores with `import backup.jsonl.gz`
    or `gunzip -c backup.jsonl.gz | agentmem import -` (and plain JSON Lines on stdin)."""
    _fill(home, embedder)
    dump = ok(home, "export", "-").stdout.encode("utf-8")
    packed = tmp_path / "backup.jsonl.gz"
    packed.write_bytes(gzip.compress(dump))
    out = ok(tmp_path / "stdin", "import", "-", input=dump).stdout
    assert "imported 6 records, skipped 0 already present (from stdin)" in out
    assert "imported 6 records" in ok(tmp_path / "gz", "import", str(packed)).stdout
    assert (
        "imported 6 records"
        in ok(tmp_path / "gzin", "import", "-", input=packed.read_bytes()).stdout
    )
    original = [r.model_dump() for r in all_records(home, embedder)]
    for copy in ("stdin", "gz", "gzin"):
        assert [r.model_dump() for r in all_records(tmp_path / copy, embedder)] == original
    packed.write_bytes(gzip.compress(dump)[:-20])  # cut short
    result = run(tmp_path / "cut", "import", str(packed))
    assert result.exit_code == 1 and f"cannot read {packed}" in result.stderr


def test_import_in_small_batches(tmp_path: Path, home: Path, embedder: Embedder) -> None:
    _fill(home, embedder)
    path = tmp_path / "backup.jsonl"
    ok(home, "export", str(path))
    fresh = tmp_path / "fresh"
    assert "imported 6 records" in ok(fresh, "import", str(path), "--batch-size", "4").stdout
    assert len(all_records(fresh, embedder)) == 6


def test_export_and_import_keep_held_memories_held(
    tmp_path: Path, home: Path, embedder: Embedder
) -> None:
    with open_mem(home, embedder) as mem:
        mem.add("Trusted note", user_id="u")
        held = mem.add("The weather API said it is sunny", user_id="u", source="tool")
    path = tmp_path / "backup.jsonl"
    assert "exported 2 records" in ok(home, "export", str(path)).stdout
    fresh = tmp_path / "fresh"
    out = ok(fresh, "import", str(path)).stdout
    assert "imported 2 records (1 held in quarantine again), skipped 0" in out
    listed = json.loads(ok(fresh, "quarantine", "list", "--json").stdout)
    assert [(r["id"], r["provenance"]["quarantine"]) for r in listed] == [(held.id, "pending")]
    assert [r.text for r in all_records(fresh, embedder)] == ["Trusted note"]  # not stored
    assert "imported 0 records, skipped 2" in ok(fresh, "import", str(path)).stdout
    assert len(json.loads(ok(fresh, "quarantine", "list", "--json").stdout)) == 1


def test_import_skips_memories_a_forget_erased(
    tmp_path: Path, home: Path, embedder: Embedder
) -> None:
    with open_mem(home, embedder) as mem:
        secret = mem.add("Alice's SSN is 123-45-6789", user_id="alice")
        mem.add("Alice likes tea", user_id="alice")
    path = tmp_path / "before_forget.jsonl"
    ok(home, "export", str(path))
    with open_mem(home, embedder) as mem:
        mem.forget([secret.id], reason="erasure request", purge=True, user_id="alice")
    out = ok(home, "import", str(path)).stdout
    assert "imported 0 records, skipped 1 already present and 1 erased by forget" in out
    assert [r.text for r in all_records(home, embedder)] == ["Alice likes tea"]
    assert run(home, "get", secret.id).exit_code == 1
    # Another home never forgot it: the backup restores it there.
    assert "imported 2 records" in ok(tmp_path / "other", "import", str(path)).stdout
    # A fact derived from it (a line the backup of another home holds) is not stored either.
    fact = {"id": str(uuid.uuid4()), "scope": {"user_id": "alice"}, "kind": "semantic",
            "text": "Alice's SSN ends in 6789", "provenance": {"sources": [secret.id]}}  # fmt: skip
    facts = tmp_path / "facts.jsonl"
    facts.write_text(json.dumps(fact) + "\n", encoding="utf-8")
    out = ok(home, "import", str(facts)).stdout
    assert "imported 0 records, skipped 0 already present and 1 derived from a memory" in out
    assert [r.text for r in all_records(home, embedder)] == ["Alice likes tea"]


def _exported_line(home: Path, embedder: Embedder) -> str:
    with open_mem(home, embedder) as mem:
        record = mem.add("a good record", user_id="alice")
    return json.dumps(record.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "line 3: not valid JSON"),
        ('{"text": "no scope or id"}', "line 3: not a memory record"),
        ('["a", "list"]', "line 3: not a memory record"),
        ('{"scope": {"user_id": "a"}, "text": "   "}', "line 3: text is empty"),
        ('{"scope": {"user_id": "a/b"}, "text": "x"}', "line 3: not a memory record"),
        ("DUPLICATE", "line 3: record id"),
        ('{"scope": {"user_id": "a"}, "text": "x", "importance": 7}', "line 3: importance"),
        (
            '{"scope": {"user_id": "a"}, "text": "x", "valid_from": "2024-01-01T00:00:00Z", '
            '"valid_to": "2020-01-01T00:00:00Z"}',
            "line 3: valid_to",
        ),
        ('{"id": "x1", "scope": {"user_id": "a"}, "text": "x"}', "memory id 'x1' is not a UUID"),
        (
            '{"scope": {"user_id": "a"}, "text": "x", "updated_at": "yesterday"}',
            "line 3: not a memory record (updated_at: Input should be a valid datetime",
        ),
        (
            '{"scope": {"user_id": "a"}, "text": "x", "created_at": "not a date"}',
            "line 3: not a memory record (created_at: ",
        ),
    ],
)
def test_a_malformed_import_line_names_its_number_and_changes_nothing(
    tmp_path: Path, home: Path, embedder: Embedder, bad_line: str, message: str
) -> None:
    good = _exported_line(home, embedder)
    other = json.loads(good)
    other["id"] = str(uuid.uuid4())
    bad = json.dumps(other) if bad_line == "DUPLICATE" else bad_line
    path = tmp_path / "broken.jsonl"
    path.write_text(f"{json.dumps(other)}\n\n{bad}\n", encoding="utf-8")

    fresh = tmp_path / "fresh"
    result = run(fresh, "import", str(path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0] and str(path) in lines[0]
    assert not fresh.exists() or all_records(fresh, embedder) == []


def test_importing_records_without_an_id_twice_stores_them_once(
    tmp_path: Path, embedder: Embedder
) -> None:
    """`import --help` says importing twice is safe: a line without an "id" (a converted
    backup) gets an id derived from its content, so the second import skips it, and so is an
    identical copy of it in the file; a line that differs in a field is another memory."""
    home = tmp_path / "home"
    path = tmp_path / "converted.jsonl"
    tea = {"scope": {"user_id": "maya"}, "text": "Maya likes green tea"}
    lines = [tea, {**tea, "scope": {"user_id": "maya "}}, {**tea, "metadata": {"a": 1}}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert "imported 2 records, skipped 1 already present" in ok(home, "import", str(path)).stdout
    first = sorted(r.id for r in all_records(home, embedder))
    assert "imported 0 records, skipped 3 already present" in ok(home, "import", str(path)).stdout
    assert sorted(r.id for r in all_records(home, embedder)) == first


def test_import_normalises_scope_ids_as_every_write_so_forget_reaches_them(
    tmp_path: Path, embedder: Embedder
) -> None:
    """An imported ``"maya "`` is ``maya`` (as ``add --user "maya "`` is), so ``forget --user
    maya`` erases it; ids every other write refuses are refused with the line and field."""
    home = tmp_path / "home"
    path = tmp_path / "backup.jsonl"
    line = {"id": str(uuid.uuid4()), "scope": {"user_id": "maya "}, "text": "Maya's passport"}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert "imported 1 records" in ok(home, "import", str(path)).stdout
    assert [r.scope.user_id for r in all_records(home, embedder)] == ["maya"]
    ok(home, "forget", "--user", "maya", "--reason", "gdpr", "--yes")
    assert all_records(home, embedder) == []

    for bad, says in ((".", "user_id='.' is a path name"), ("ma\u200bya", "user_id holds")):
        line = {"id": str(uuid.uuid4()), "scope": {"user_id": bad}, "text": "x"}
        path.write_text(json.dumps(line) + "\n", encoding="utf-8")
        result = run(tmp_path / "fresh", "import", str(path))
        assert result.exit_code == 1
        assert f"{path} line 1: {says}" in result.stderr and "nothing was imported" in result.stderr
    assert all_records(tmp_path / "fresh", embedder) == []


def test_import_drops_a_leading_byte_order_mark_as_add_file_does(
    tmp_path: Path, home: Path, embedder: Embedder
) -> None:
    """An export saved by a Windows editor starts with a BOM: refused before, with a Python
    hint ("decode using utf-8-sig"); now read, plain or gzip-compressed."""
    line = _exported_line(home, embedder)
    data = b"\xef\xbb\xbf" + line.encode("utf-8") + b"\r\n"
    path = tmp_path / "backup.jsonl"
    path.write_bytes(data)
    assert "imported 1 records" in ok(tmp_path / "plain", "import", str(path)).stdout
    packed = tmp_path / "backup.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    assert "imported 1 records" in ok(tmp_path / "gz", "import", str(packed)).stdout
    assert [r.text for r in all_records(tmp_path / "gz", embedder)] == ["a good record"]


def test_import_of_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "caf\xe9"}\n')
    result = run(tmp_path / "fresh", "import", str(path))
    assert result.exit_code == 1
    assert "line 1: not UTF-8" in result.stderr


# reindex ---------------------------------------------------------------------------------------


def test_reindex_after_losing_the_vectors_restores_search(home: Path) -> None:
    memory_id = ok(home, "add", "Alice moved to Lisbon", "--user", "alice").stdout.strip()
    ok(home, "add", "Bob plays chess", "--user", "alice")

    def hit_ids() -> list[str]:
        out = ok(home, "search", "where does Alice live", "--user", "alice", "--json").stdout
        return [h["record"]["id"] for h in json.loads(out)]

    assert hit_ids()[0] == memory_id
    shutil.rmtree(home / "vectors")
    assert hit_ids() == []

    result = ok(home, "reindex")
    assert "reindexed 2 of 2 records" in result.stdout and "-> 2" in result.stdout
    assert hit_ids()[0] == memory_id

    assert "reindexed 2 of 2 records; vectors 2 -> 2" in ok(home, "reindex", "--rebuild").stdout
    assert hit_ids()[0] == memory_id


class _Interrupted(Exception):
    """Stands for a kill while a rebuild runs: nothing after the raise runs."""


def test_an_interrupted_rebuild_is_reported_on_open_until_a_reindex_finishes_it(
    home: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    with open_mem(home, embedder) as mem:
        mem.add_many([f"note {n} about the garden" for n in range(5)], user_id="u")

        def killed(done: int) -> None:
            raise _Interrupted  # after the first page of 2: 3 records have no point

        with pytest.raises(_Interrupted):
            indexing.reindex(mem.backends, rebuild=True, page=2, progress=killed)
    with caplog.at_level(logging.WARNING, logger="agentmem.indexing"):
        mem = open_mem(home, embedder)
    with mem:
        stats = mem.stats()
        assert (stats.records, stats.indexed_vectors, stats.pending_index) == (5, 2, 0)
        assert (
            stats.index_incomplete and "run `agentmem reindex --rebuild`" in stats.index_incomplete
        )
    assert "has not finished" in caplog.text and "agentmem reindex --rebuild" in caplog.text
    assert "warning: a vector index rebuild" in ok(home, "stats").stderr
    assert "reindexed 5 of 5 records; vectors 2 -> 5" in ok(home, "reindex").stdout
    with open_mem(home, embedder) as mem:
        assert mem.stats().index_incomplete is None
    assert "warning" not in ok(home, "stats").stderr


def _damage_index(vectors: Path, how: str) -> None:
    """Damage a real Qdrant Edge index on disk: empty its dense vector files, or garble its
    config (found by exploratory testing: each locked every command out)."""
    if how == "truncated vectors":
        files = list(vectors.glob("segments/*/vector_storage-dense/vectors/chunk_0.mmap"))
        assert files, "the Qdrant Edge layout changed; update this test"
        for f in files:
            f.write_bytes(b"")
    else:
        (vectors / "edge_config.json").write_text("{garbage")


@pytest.mark.parametrize("how", ["truncated vectors", "garbled config"])
def test_a_damaged_index_locks_no_one_out_and_reindex_rebuild_repairs_it(
    home: Path, how: str
) -> None:
    first = ok(home, "add", "Alice moved to Lisbon", "--user", "alice").stdout.strip()
    ok(home, "add", "Bob plays chess", "--user", "alice")
    _damage_index(home / "vectors", how)

    # A write that reaches the store says it was stored, in one error line (no traceback).
    result = run(home, "add", "Carol paints murals", "--user", "alice")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.stderr.startswith("error: stored ")
    assert "nothing is lost" in result.stderr and "agentmem reindex --rebuild" in result.stderr
    assert str(home / "vectors") in result.stderr

    # The store's own commands work while the index is unreadable; export saves everything.
    listed = json.loads(ok(home, "list", "--user", "alice", "--json").stdout)
    assert sorted(r["text"] for r in listed) == [
        "Alice moved to Lisbon",
        "Bob plays chess",
        "Carol paints murals",
    ]
    assert "Lisbon" in ok(home, "get", first).stdout
    ok(home, "history", first)
    ok(home, "export", str(home.parent / "backup.jsonl"))
    assert len((home.parent / "backup.jsonl").read_text().splitlines()) == 3
    stats = run(home, "stats", "--json")
    assert stats.exit_code == 0 and json.loads(stats.stdout)["records"] == 3
    search = run(home, "search", "where does Alice live", "--user", "alice")
    assert search.exit_code == 1 and "Traceback" not in search.output
    assert "agentmem reindex --rebuild" in search.stderr

    # The documented repair sets the damaged directory aside (kept) and rebuilds from the store.
    result = ok(home, "reindex", "--rebuild")
    assert "reindexed 3 of 3 records" in result.stdout and "-> 3" in result.stdout
    [aside] = home.glob("vectors.damaged-*")
    assert f"moved aside to {aside}" in result.stdout
    out = ok(home, "search", "where does Alice live", "--user", "alice", "--json").stdout
    assert json.loads(out)[0]["record"]["id"] == first
    assert "Carol paints murals" in ok(home, "list", "--user", "alice").stdout


# help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_touches_neither_disk_nor_model(
    command: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory(settings: Settings) -> Memory:
        raise AssertionError("--help opened a Memory")

    monkeypatch.setattr(cli, "open_memory", no_memory)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "never"
    args = ["--home", str(home), *([command] if command else []), "--help"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if command is not None:
        assert "Example" in result.output
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_agentmem_help_does_not_import_torch(tmp_path: Path) -> None:
    script = (
        "import runpy, sys\n"
        "sys.argv = ['agentmem', 'add', '--help']\n"
        "try:\n"
        "    runpy.run_module('agentmem', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('exit', code, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Store one memory" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "exit 0 False False"
    assert list(tmp_path.iterdir()) == []
