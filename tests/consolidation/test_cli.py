"""``agentmem consolidate --now`` and ``agentmem jobs`` through the real command line (typer's
CliRunner on the ``agentmem`` app, with the plugin commands the entry points add)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import agentmem_consolidation
from agentmem import Memory, Settings, cli
from agentmem.embedders import Embedder
from agentmem_consolidation import ledger


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    """Every command opens its Memory with the session's embedder (loaded once)."""
    monkeypatch.setattr(cli, "open_memory", lambda s: Memory(settings=s, embedder=embedder))


def run(home: Path, *args: str) -> Result:
    """``agentmem --home HOME ARGS`` on a wide terminal (table cells do not wrap)."""
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli.app, ["--home", str(home), *args])


def ok(home: Path, *args: str) -> Result:
    result = run(home, *args)
    assert result.exit_code == 0, result.output
    return result


def _fill(home: Path, embedder: Embedder) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        for user in ("alice", "bob"):
            for i in range(2):
                mem.add(
                    f"{user.title()}: I adopted a cat named Tom{i}. I work as a nurse in Berlin.",
                    user_id=user,
                    thread_id=f"t{i}",
                    infer="deferred",
                )


def _table(output: str) -> list[list[str]]:
    """The body rows of a rich table (cells split on the box character)."""
    return [
        [c.strip() for c in line.strip("│ ").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_consolidate_now_one_user_then_jobs(home: Path, embedder: Embedder) -> None:
    _fill(home, embedder)
    out = ok(home, "consolidate", "--now", "--user", "alice").output
    assert "user_id=alice: run " in out and "extract 2->" in out and "bob" not in out
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        alice = mem.list(user_id="alice", kinds=["semantic"], limit=100)
        assert alice and all(r.scope.user_id == "alice" for r in alice)
        assert not mem.list(user_id="bob", kinds=["semantic"], limit=100)
        episodes = mem.list(user_id="alice", kinds=["episodic"], limit=100)
        assert {r.metadata["extraction"] for r in episodes} == {"done"}
        (run_row,) = [r for r in ledger.jobs(mem) if r.stage == ledger.RUN_STAGE]
    assert run_row.run_id in out  # the printed run id is the ledger's

    rows = _table(ok(home, "jobs").output)
    assert {r[2] for r in rows} == {"run", *agentmem_consolidation.STAGES}
    # Piped, the table shows whole run ids (a terminal shows their first 8 characters).
    assert {(r[0], r[1], r[3]) for r in rows} == {(run_row.run_id, "user_id=alice", "done")}
    extract = next(r for r in rows if r[2] == "extract")
    assert extract[4] == "2" and int(extract[5]) >= 1  # in: 2 episodes; out: facts written
    assert len(_table(ok(home, "jobs", "--limit", "3").output)) == 3
    assert _table(ok(home, "jobs", "--user", "bob").output) == []
    as_json = json.loads(ok(home, "jobs", "--json").output)
    assert {r["run_id"] for r in as_json} == {run_row.run_id} and len(as_json) == len(rows)


def test_consolidate_now_every_active_scope(home: Path, embedder: Embedder) -> None:
    _fill(home, embedder)
    out = ok(home, "consolidate", "--now").output
    assert "user_id=alice: run" in out and "user_id=bob: run" in out
    rows = _table(ok(home, "jobs", "--user", "bob").output)
    assert {r[2] for r in rows if r[3] == "done"} == {"run", *agentmem_consolidation.STAGES}
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        assert mem.list(user_id="bob", kinds=["semantic"], limit=100)
    # Nothing new since: nothing runs, and the ledger gains no rows.
    again = ok(home, "consolidate", "--now").output
    assert "nothing to consolidate" in again
    assert len(_table(ok(home, "jobs", "--limit", "500").output)) == len(rows) * 2


def test_queueing_needs_a_scope(home: Path) -> None:
    result = run(home, "consolidate")
    assert result.exit_code == 1 and "queueing needs a scope" in result.output


def test_queueing_without_a_broker_is_refused_not_lost(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no broker the run went to Celery's in-process memory:// transport, "queued run ..."
    was printed with exit 0, and the run died with the process (issue 22)."""
    monkeypatch.delenv("AGENTMEM_CONSOLIDATION__BROKER_URL", raising=False)
    result = run(home, "consolidate", "--user", "maya")
    assert result.exit_code == 1, result.output
    assert "no consolidation broker" in result.output and "--now" in result.output
    assert not result.output.startswith("queued run")


def test_queueing_names_the_store_of_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--home A consolidate --user X` sent only the scope, so the workers consolidated their
    own store; the run now carries A's store, which a worker on another store refuses."""
    from agentmem_consolidation import tasks

    sent: list[dict[str, object]] = []

    def send(scope: object, **options: object) -> tuple[str, None]:
        sent.append({"scope": scope, **options})
        return str(options["run_id"]), None

    monkeypatch.setattr(tasks, "consolidate", send)
    result = ok(home, "consolidate", "--user", "gina")
    store = ledger.store_identity(Settings.load(home=home))
    assert [s["store"] for s in sent] == [store] and str(home.resolve()) in store
    assert f"on the workers of {store}" in " ".join(result.output.split())


def test_a_queued_run_is_in_the_ledger_before_a_worker_starts_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentmem jobs --run ID` answered "no run" until a worker started the run, like a
    mistyped id; the run is now recorded queued when it is sent (failed if it cannot be)."""
    from agentmem.errors import BackendUnavailable
    from agentmem_consolidation import tasks

    sent: list[str] = []

    def send(scope: object, *, run_id: str, **options: object) -> tuple[str, None]:
        sent.append(run_id)
        return run_id, None

    monkeypatch.setattr(tasks, "consolidate", send)
    ok(home, "consolidate", "--user", "alice")
    rows = json.loads(ok(home, "jobs", "--run", sent[0][:8], "--json").output)
    assert [(r["run_id"], r["stage"], r["status"]) for r in rows] == [(sent[0], "run", "queued")]

    def down(scope: object, *, run_id: str, **options: object) -> tuple[str, None]:
        sent.append(run_id)
        raise BackendUnavailable("cannot queue the run on the consolidation broker at redis://x")

    monkeypatch.setattr(tasks, "consolidate", down)
    assert run(home, "consolidate", "--user", "alice").exit_code == 1
    rows = json.loads(ok(home, "jobs", "--run", sent[1], "--json").output)
    assert [(r["status"], r["error"][:11]) for r in rows] == [("failed", "not queued:")]


def test_a_result_backend_that_cannot_be_used_fails_the_run_with_one_error_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AGENTMEM_CONSOLIDATION__RESULT_BACKEND=foo://x: Celery's ModuleNotFoundError escaped
    as a traceback and, being no AgentMemError, left the run `queued` although nothing was
    sent. Now one `error:` line names the setting and the run is `failed`, "not queued"."""
    from agentmem_consolidation import tasks
    from agentmem_consolidation.app import create_app

    settings = Settings.load(
        home=home,
        consolidation={"broker_url": "redis://127.0.0.1:1/0", "result_backend": "foo://x"},
    )
    app, send = create_app(settings), tasks.consolidate
    monkeypatch.setattr(tasks, "consolidate", lambda scope, **kw: send(scope, celery_app=app, **kw))
    result = run(home, "consolidate", "--user", "alice")
    assert result.exit_code == 1 and result.output.startswith("error: "), result.output
    assert "AGENTMEM_CONSOLIDATION__RESULT_BACKEND" in result.output
    assert "Traceback" not in result.output
    rows = json.loads(ok(home, "jobs", "--json").output)
    assert [(r["status"], r["error"][:11]) for r in rows] == [("failed", "not queued:")]


def test_a_run_whose_sending_fails_unexpectedly_is_not_left_queued(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the send raises, the run is recorded `failed` rather than `queued` forever."""
    from agentmem_consolidation import tasks

    def broken(scope: object, **options: object) -> None:
        raise LookupError("no such codec")

    monkeypatch.setattr(tasks, "consolidate", broken)
    assert isinstance(run(home, "consolidate", "--user", "alice").exception, LookupError)
    rows = json.loads(ok(home, "jobs", "--json").output)
    assert [(r["status"], r["error"]) for r in rows] == [
        ("failed", "not queued: LookupError: no such codec")
    ]


def test_a_run_queued_while_a_worker_has_the_home_open_is_still_queued(
    home: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """The queued row cannot be written while another process has the embedded home open:
    the run is still sent (the worker records it when it starts it), with a note."""
    from agentmem_consolidation import tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks, "consolidate", lambda scope, *, run_id, **_: sent.append(run_id))
    with Memory(settings=Settings.load(home=home), embedder=embedder):
        result = ok(home, "consolidate", "--user", "alice")
    assert len(sent) == 1 and "home is busy" in result.output


def test_consolidate_now_goes_on_past_a_failing_scope(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem_consolidation.stages import STAGES

    decay = STAGES["decay"]

    def broken_for_alice(mem: Memory, scope: object, run: object) -> object:
        if getattr(scope, "user_id", None) == "alice":
            raise ValueError("Invalid isoformat string: 'last tuesday'")
        return decay(mem, scope, run)  # type: ignore[arg-type]

    monkeypatch.setitem(STAGES, "decay", broken_for_alice)
    _fill(home, embedder)
    result = run(home, "consolidate", "--now")
    assert result.exit_code == 1
    assert "user_id=alice: failed: ValueError: Invalid isoformat string" in result.output
    assert "user_id=bob: run " in result.output  # sorted after alice, still consolidated
    assert "1 of 2 scopes failed" in result.output
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        assert mem.list(user_id="bob", kinds=["semantic"], limit=100)
        runs = {r.scope: r.status for r in ledger.jobs(mem) if r.stage == ledger.RUN_STAGE}
    assert runs == {"user_id=alice": ledger.FAILED, "user_id=bob": ledger.DONE}
