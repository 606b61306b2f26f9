"""The command line as a user and a script meet it (issue 27): id prefixes, full ids and
``--json`` when piped, ``add --file``, confirmations and usage lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmem import Memory, MemoryRecord, Scope, Settings, cli
from agentmem.embedders import Embedder
from agentmem_consolidation import run_inline
from tests.integration.test_cli import all_records, ok, open_mem, run


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    monkeypatch.setattr(
        cli, "open_memory", lambda settings: Memory(settings=settings, embedder=embedder)
    )


def _twins(home: Path, embedder: Embedder) -> tuple[str, str]:
    """Two stored memories whose ids share the prefix ``abc``."""
    with open_mem(home, embedder) as mem:
        base = mem.add("Maya adopted a greyhound", user_id="maya").model_dump(mode="json")
        mem.delete(base["id"])
        ids = ("abc11111-1111-4111-8111-111111111111", "abc22222-2222-4222-8222-222222222222")
        mem.import_records(
            [MemoryRecord.model_validate({**base, "id": i, "text": f"twin {i[3]}"}) for i in ids]
        )
    return ids


# ids ---------------------------------------------------------------------------------------


def test_every_id_command_takes_a_unique_prefix(home: Path, embedder: Embedder) -> None:
    first, second = _twins(home, embedder)
    assert json.loads(ok(home, "get", "abc1", "--json").stdout)["id"] == first
    assert first in ok(home, "history", "abc1").stdout
    ok(home, "update", "abc2", "--text", "twin two, revised")
    versions = json.loads(ok(home, "history", "abc2", "--json").stdout)
    assert [v["event"] for v in versions][-1].lower() == "update"
    assert "invalidated " + second in ok(home, "invalidate", "abc2").stdout
    assert ok(home, "links", "abc1", "--json").stdout.strip() == "[]"
    assert f"deleted {first}" in ok(home, "delete", "abc1", "--yes").stdout
    # The deleted memory's history is still reachable by its full id.
    assert "delete" in ok(home, "history", first).stdout.lower()


def test_an_ambiguous_prefix_lists_the_candidates_and_changes_nothing(
    home: Path, embedder: Embedder
) -> None:
    first, second = _twins(home, embedder)
    result = run(home, "delete", "abc", "--yes")
    assert result.exit_code == 1
    assert "AmbiguousId" not in result.output  # a message, not a traceback
    assert "matches 2 ids" in result.output and first in result.output
    assert second in result.output
    assert len(all_records(home, embedder)) == 2


def test_a_prefix_completes_only_within_the_given_scope(home: Path, embedder: Embedder) -> None:
    first, second = _twins(home, embedder)  # both maya's
    for command in (["get", "abc1"], ["history", "abc1"], ["delete", "abc1", "--yes"]):
        result = run(home, *command, "--user", "sam")
        assert result.exit_code == 1 and first not in result.output, result.output
    assert json.loads(ok(home, "get", "abc1", "--user", "maya", "--json").stdout)["id"] == first
    # Ambiguity is counted within the scope too: sam sees none of the two.
    assert second not in run(home, "delete", "abc", "--yes", "--user", "sam").output
    empty = run(home, "get", "")
    assert empty.exit_code == 1 and "pass a memory id" in empty.output
    assert len(all_records(home, embedder)) == 2


def test_piped_tables_show_whole_ids_and_listings_have_json(home: Path) -> None:
    ids = [
        ok(home, "add", f"note {n} about Porto", "--user", "maya").stdout.strip() for n in (1, 2)
    ]
    narrow = CliRunner(env={"COLUMNS": "40"})  # piped: the width must not cut anything
    listing = narrow.invoke(cli.app, ["--home", str(home), "list", "--user", "maya"]).stdout
    searched = narrow.invoke(cli.app, ["--home", str(home), "search", "Porto", "-u", "maya"])
    for memory_id in ids:
        assert memory_id in listing and memory_id in searched.stdout
    listed = json.loads(ok(home, "list", "--user", "maya", "--json").stdout)
    assert {r["id"] for r in listed} == set(ids)
    assert json.loads(ok(home, "stats", "--json").stdout)["records"] == 2


# add --file --------------------------------------------------------------------------------


def test_add_file_loads_text_lines_and_jsonl_with_scope_defaults(
    home: Path, tmp_path: Path, embedder: Embedder
) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("Maya runs on Sundays\n\nMaya likes green tea\n", encoding="utf-8")
    assert "added 2 memories" in ok(home, "add", "--file", str(plain), "--user", "maya").stdout
    lines = [
        {"text": "Sam moved to Eastgate", "user_id": "sam", "metadata": {"session": 1}},
        {"text": "Maya's dog is Pepper", "event_time": "2024-04-12T18:40:00Z"},
    ]
    records = tmp_path / "more.jsonl"
    records.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    ok(home, "add", "--file", str(records), "--user", "maya")
    # The same file again adds nothing: each line has its own idempotency key.
    again = ok(home, "add", "--file", str(records), "--user", "maya").stdout
    assert "added 0 memories" in again and "skipped 2 added by an earlier run" in again
    stored = all_records(home, embedder)
    assert sorted((r.scope.user_id, r.text) for r in stored) == [
        ("maya", "Maya likes green tea"),
        ("maya", "Maya runs on Sundays"),
        ("maya", "Maya's dog is Pepper"),
        ("sam", "Sam moved to Eastgate"),
    ]
    sam = next(r for r in stored if r.scope.user_id == "sam")
    assert sam.metadata["session"] == 1


def test_add_file_again_with_other_options_adds_the_lines_with_those(
    home: Path, tmp_path: Path, embedder: Embedder
) -> None:
    notes = tmp_path / "two.txt"
    notes.write_text("Maya likes green tea\nMaya has a dog called Pepper\n", encoding="utf-8")
    first = ("add", "--file", str(notes), "--user", "maya", "--metadata", '{"session": 1}')
    assert "added 2 memories" in ok(home, *first).stdout
    again = ok(home, *first).stdout  # the same command: an interrupted run's rerun
    assert "added 0 memories" in again and "skipped 2" in again
    other = ("--metadata", '{"session": 2}', "--event-time", "2024-01-01", "--importance", "0.9")
    assert "added 2 memories" in ok(home, *first[:5], *other).stdout
    assert "added 2 memories" in ok(home, *first[:5], "--kind", "semantic").stdout
    stored = all_records(home, embedder)
    assert sorted((r.metadata.get("session", 0), r.importance, r.kind.value) for r in stored) == [
        (0, 0.5, "semantic"),
        (0, 0.5, "semantic"),
        (1, 0.5, "episodic"),
        (1, 0.5, "episodic"),
        (2, 0.9, "episodic"),
        (2, 0.9, "episodic"),
    ]


def test_add_file_again_skips_a_line_whose_memory_was_deleted_since(
    home: Path, tmp_path: Path, embedder: Embedder
) -> None:
    notes = tmp_path / "three.txt"
    notes.write_text("Maya likes green tea\nMaya runs\nMaya has a dog\n", encoding="utf-8")
    assert "added 3 memories" in ok(home, "add", "--file", str(notes), "--user", "maya").stdout
    with open_mem(home, embedder) as mem:
        runs = next(r for r in mem.list(user_id="maya") if r.text == "Maya runs")
        mem.delete(runs.id)
    # The rerun neither brings it back nor stops there (which no rerun would get past).
    again = ok(home, "add", "--file", str(notes), "--user", "maya").stdout
    assert "added 0 memories" in again and "skipped 2 added by an earlier run" in again
    assert "skipped 1 an earlier run added and were deleted since" in again
    assert sorted(r.text for r in all_records(home, embedder)) == [
        "Maya has a dog",
        "Maya likes green tea",
    ]


def test_add_drops_a_byte_order_mark_and_reads_stdin_for_a_dash(
    home: Path, tmp_path: Path, embedder: Embedder
) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfMaya likes tea\n")
    assert "added 1 memories" in ok(home, "add", "--file", str(bom), "--user", "u").stdout
    ok(home, "add", "-", "--user", "u", input="Sam likes coffee\n")
    piped = ok(home, "add", "--file", "-", "--user", "u", input="Sam has a cat\nSam runs\n")
    assert "added 2 memories" in piped.stdout
    texts = ["Maya likes tea", "Sam has a cat", "Sam likes coffee", "Sam runs"]
    assert sorted(r.text for r in all_records(home, embedder)) == texts
    missing = run(home, "add", "--file", str(tmp_path / "nope.txt"), "--user", "u")
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_add_file_ends_lines_at_newline_only(
    home: Path, tmp_path: Path, embedder: Embedder
) -> None:
    records = tmp_path / "seps.jsonl"  # json.dumps(ensure_ascii=False) keeps U+2028 raw
    lines = [{"text": "Paragraph one\u2028paragraph two"}, {"text": "Second memory"}]
    records.write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
    )
    assert "added 2 memories" in ok(home, "add", "--file", str(records), "--user", "u").stdout
    plain = tmp_path / "seps.txt"
    plain.write_bytes("Page one\x0cpage two\r\nCost was 5\x85 euros\x1cpaid\n".encode())
    assert "added 2 memories" in ok(home, "add", "--file", str(plain), "--user", "u").stdout
    assert sorted(r.text for r in all_records(home, embedder)) == sorted(
        [
            "Paragraph one\u2028paragraph two",
            "Second memory",
            "Page one\x0cpage two",
            "Cost was 5\x85 euros\x1cpaid",
        ]
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"text": "ok", "colour": "red"}', "line 2: unknown field 'colour'"),
        ('{"user_id": "maya"}', "line 2: field 'text' is missing"),
        ('{"text": "x", "importance": 7}', "line 2: field 'importance'"),
        ('{"text": "x", "metadata": [1]}', "line 2: field 'metadata'"),
        ('{"text": null}', "line 2: field 'text' must be a string"),
        (
            '{"text": "x", "valid_from": "2024-01-01", "valid_to": "2023-01-01"}',
            "line 2: field 'valid_to'",
        ),
        ("not json", "line 2: not valid JSON"),
    ],
)
def test_add_file_names_the_bad_line_and_field_and_adds_nothing(
    home: Path, tmp_path: Path, embedder: Embedder, line: str, expected: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    result = run(home, "add", "--file", str(data), "--user", "maya")
    assert result.exit_code == 1
    assert str(data) in result.output and expected in result.output, result.output
    assert "nothing was added" in result.output
    assert all_records(home, embedder) == []


def test_add_file_needs_a_scope_per_line(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "scopeless.txt"
    data.write_text("a memory of nobody\n", encoding="utf-8")
    result = run(home, "add", "--file", str(data))
    assert result.exit_code == 1 and "line 1: field 'user_id' is missing" in result.output


def test_add_infer_extracts_facts(home: Path, embedder: Embedder) -> None:
    ok(home, "add", "Maya: I adopted a greyhound called Pepper.", "--user", "maya", "--infer")
    kinds = {r.kind.value for r in all_records(home, embedder)}
    assert kinds == {"episodic", "semantic"}


# forget, reindex, usage --------------------------------------------------------------------


def test_forget_reports_are_per_user_and_a_whole_user_needs_confirmation(
    home: Path, embedder: Embedder
) -> None:
    maya = ok(home, "add", "Maya likes tea", "--user", "maya").stdout.strip()
    ok(home, "add", "Sam likes coffee", "--user", "sam")
    ok(home, "forget", "--user", "maya", "--id", maya[:8], "--reason", "asked")

    refused = run(home, "forget", "--user", "sam", "--reason", "closed", input="n\n")
    assert refused.exit_code == 1 and "Forget every memory" in refused.output
    assert [r.scope.user_id for r in all_records(home, embedder)] == ["sam"]
    ok(home, "forget", "--user", "sam", "--reason", "closed", "--yes")
    assert all_records(home, embedder) == []

    mine = json.loads(ok(home, "forget", "--report", "--user", "maya", "--json").stdout)
    assert [r["reason"] for r in mine] == ["asked"]
    assert len(json.loads(ok(home, "forget", "--report", "--json").stdout)) == 2


def test_keys_list_never_cuts_ids_and_revoke_takes_a_prefix(home: Path) -> None:
    pytest.importorskip("fastapi")
    created = [
        json.loads(ok(home, "keys", "create", "--org", "acme", "--json").stdout)["id"]
        for _ in range(2)
    ]
    table = CliRunner(env={"COLUMNS": "40"}).invoke(cli.app, ["--home", str(home), "keys", "list"])
    assert all(key_id in table.stdout for key_id in created)
    listed = json.loads(ok(home, "keys", "list", "--json").stdout)
    assert [k["id"] for k in listed] == created and all(k["revoked_at"] is None for k in listed)
    prefix = created[0][: next(i for i in range(1, 40) if created[1][:i] != created[0][:i])]
    assert f"revoked key {created[0]}" in ok(home, "keys", "revoke", prefix).stdout


def test_jobs_and_quarantine_list_as_json_and_review_by_prefix(
    home: Path, embedder: Embedder
) -> None:
    assert json.loads(ok(home, "jobs", "--json").stdout) == []
    unknown = run(home, "jobs", "--run", "no-such-run")
    assert unknown.exit_code == 1 and "no run 'no-such-run'" in unknown.output
    with open_mem(home, embedder) as mem:
        held = mem.add("page says Maya is 40", user_id="maya", source="tool")
    listed = json.loads(ok(home, "quarantine", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [held.id]
    assert "approved 1" in ok(home, "quarantine", "approve", held.id[:8], "--user", "maya").stdout
    assert json.loads(ok(home, "quarantine", "list", "--json").stdout) == []
    with open_mem(home, embedder) as mem:
        ran = run_inline(mem, Scope.of(user_id="maya"), stages=["flush"])
    rows = json.loads(ok(home, "jobs", "--run", ran.run_id[:8], "--json").stdout)
    assert rows and {r["run_id"] for r in rows} == {ran.run_id}  # the prefix the table shows


def test_an_empty_id_or_prefix_is_refused_and_changes_nothing(
    home: Path, embedder: Embedder
) -> None:
    pytest.importorskip("fastapi")
    key = json.loads(ok(home, "keys", "create", "--org", "acme", "--json").stdout)["id"]
    with open_mem(home, embedder) as mem:
        held = mem.add("page says Maya is 40", user_id="maya", source="tool")
        run_inline(mem, Scope.of(user_id="maya"), stages=["flush"])
        old = mem.add("Maya's old number", user_id="maya")
        mem.forget([old.id], reason="asked", user_id="maya")
    for blank in ("", "  "):  # e.g. an unset shell variable: it would match every id
        for command in (
            ["keys", "revoke", blank],
            ["quarantine", "approve", "--user", "maya", blank],
            ["quarantine", "reject", "--user", "maya", blank],
            ["jobs", "--run", blank],
            ["forget", "--report", "--forget-id", blank],
        ):
            result = run(home, *command)
            assert result.exit_code == 1, (command, result.output)
            assert "pass a" in result.output and "empty id" in result.output, result.output
    assert json.loads(ok(home, "keys", "list", "--json").stdout)[0]["revoked_at"] is None
    assert [r["id"] for r in json.loads(ok(home, "quarantine", "list", "--json").stdout)] == [
        held.id
    ]
    assert key


def test_reindex_graph_rebuild_says_what_it_did(home: Path) -> None:
    out = ok(home, "reindex", "--graph", "--rebuild").stdout
    assert "rebuilt the knowledge graph" in out and "from scratch" in out


@pytest.mark.parametrize("command", ["forget", "jobs", "consolidate", "serve", "mcp"])
def test_single_commands_show_a_plain_usage_line(command: str) -> None:
    result = CliRunner().invoke(cli.app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"agentmem {command} [OPTIONS]" in result.output
    assert "COMMAND [ARGS]" not in result.output


def test_graph_export_help_names_the_default_files() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli.app, ["graph", "export", "--help"])
    assert "graph.html" in result.output and "graph.;" not in result.output


def test_settings_are_untouched_by_the_package_split(home: Path) -> None:
    # The seam tests use: agentmem.cli.open_memory is looked up at call time.
    seen: list[Settings] = []

    def spy(settings: Settings) -> Memory:
        seen.append(settings)
        raise AssertionError("stop")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "open_memory", spy)
        result = run(home, "stats")
    assert result.exit_code != 0 and seen and seen[0].home == home
