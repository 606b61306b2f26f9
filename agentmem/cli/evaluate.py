"""``agentmem eval``: measure search on a data set, beside dense-only, BM25 and BM25+dense RRF
baselines."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agentmem.cli._app import app, open_configured, settings_for
from agentmem.cli._output import console, dump, fail, progress, row
from agentmem.cli.options import JsonOpt
from agentmem.errors import ValidationError
from agentmem.security_settings import TrustSettings
from agentmem.settings import Settings
from agentmem.validation import MAX_K

if TYPE_CHECKING:
    from agentmem.evaluation import EvalReport, EvalSet

CutoffsOpt = Annotated[
    str, typer.Option("--k", metavar="K,K", help="Cut-offs for recall@k and hit@k.")
]
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit",
        min=1,
        help="Only the first N scopes (conversations, questions).",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="FILE",
        help="Also write the results as JSON here.",
        dir_okay=False,
        show_default=False,
    ),
]
UseHomeOpt = Annotated[
    bool,
    typer.Option(
        "--use-home",
        help="Replay into the home of --home / AGENTMEM_HOME (kept afterwards) instead of "
        "a temporary one that is deleted.",
    ),
]
BaselinesOpt = Annotated[
    bool,
    typer.Option("--baselines/--no-baselines", help="Also score dense-only, BM25 and their RRF."),
]


@app.command(name="eval")
def eval_(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help="locomo, locomo-observations, longmemeval, or small (the set shipped with "
            "agentmem)",
            show_default=False,
        ),
    ],
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH",
            help="The data file (not needed for small)",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    k: CutoffsOpt = "1,5,10",
    limit: LimitOpt = None,
    out: OutOpt = None,
    use_home: UseHomeOpt = False,
    baselines: BaselinesOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Measure search on a data set: replay it into fresh scopes, ask its questions, and report
    recall@k, hit@k and NDCG@10 per category, beside dense-only, BM25 and plain BM25+dense RRF in
    the same run.

    Nothing is written to your home unless --use-home is given: the temporary home keeps
    your search settings but never your store, index, buffer or graph URLs, LLM or
    inference (docs/operations.md lists what is pinned).

    Example:

        agentmem eval small
        agentmem eval locomo locomo10.json --limit 2 --out locomo.json
    """
    from agentmem.evaluation import load_dataset

    ks = _cutoffs(k)
    if out is not None:  # before the run, which may take long
        _check_writable(out)
        _check_not_the_data(out, path)
    data = load_dataset(kind, path, limit=limit)
    settings = settings_for(ctx)
    report = _run(settings, data, ks, baselines=baselines, use_home=use_home)
    result = report.to_dict()
    if as_json:
        dump(result)
    else:
        _print(kind, report, result, ks)
    if out is not None:  # after printing: a failed write loses no result
        try:
            out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc} (the results are printed above)")
        if not as_json:
            console().print(Text(f"wrote {out}"))


def _check_writable(out: Path) -> None:
    """Refuse an --out path that cannot be written, naming why (a folder is refused by the
    option itself)."""
    folder = out.parent
    if not folder.is_dir():
        fail(f"cannot write {out}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        fail(f"cannot write {out}: permission denied")


def _check_not_the_data(out: Path, path: Path | None) -> None:
    """Refuse an --out file that is the data file itself, also through a link or by another
    spelling (``path`` None: the shipped small set): the results would overwrite the data."""
    from agentmem.evaluation import small_scope_path

    data = path if path is not None else small_scope_path()
    try:
        same = out.exists() and data.exists() and os.path.samefile(out, data)
    except OSError:  # unreadable: the write or the load says so
        same = False
    if same:
        fail(
            f"--out {out} is the data file being evaluated ({data}): the results would "
            "overwrite the data set; name another file for --out"
        )


def _cutoffs(k: str) -> list[int]:
    """The --k cut-offs, checked as ``run_eval`` checks them but before the data set is read
    or a home opened: found at the first search, --k 2000 left a replayed scope behind."""
    from agentmem.evaluation.runner import check_cutoffs

    try:
        return check_cutoffs(int(part) for part in k.split(",") if part.strip())
    except ValueError:  # not an integer, or refused by check_cutoffs (a ValidationError)
        raise ValidationError(
            f"--k takes integers from 1 to {MAX_K} separated by commas (e.g. --k 1,5,10), got {k!r}"
        ) from None


def _run(
    settings: Settings, data: EvalSet, ks: list[int], *, baselines: bool, use_home: bool
) -> EvalReport:
    from agentmem.evaluation import run_eval

    with contextlib.ExitStack() as stack:
        if not use_home:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="agentmem-eval-"))
            settings = temporary_settings(Path(tmp))
        mem = stack.enter_context(open_configured(settings))
        with progress() as bar:
            adding = bar.add_task("adding memories", total=data.memories)
            asking = bar.add_task("asking questions", total=data.questions)

            def advance(stage: str, n: int) -> None:
                bar.advance(adding if stage == "add" else asking, n)

            return run_eval(mem, data, ks=ks, baselines=baselines, progress=advance)


def temporary_settings(home: Path) -> Settings:
    """The settings of a temporary eval home: those in force (environment, settings file) for
    how memories are embedded, stored and searched, with every setting pinned that could
    write outside ``home`` (store, index, buffer, graph and broker URLs), call an LLM
    (``llm_model``, ``infer``: extracted facts carry no answer key either, so they would take
    places in the top k and score nothing) or keep a replayed memory out of search (``trust``:
    a quarantined memory is not searchable)."""
    pinned = Settings.load(
        home=home,
        store_url=None,
        vectors_url=None,
        buffer_url=None,
        graph_url=None,
        infer=False,
        llm_model=None,
        trust=TrustSettings(),
        consolidation={"broker_url": None, "result_backend": None},
    )
    # A dict keyword is merged with the environment's, not put in its place: clear it here.
    return pinned.model_copy(update={"llm_kwargs": {}})


def _print(kind: str, report: EvalReport, result: dict[str, Any], ks: list[int]) -> None:
    from agentmem.evaluation import metric_names

    shown = metric_names(ks)
    table = Table(
        title=f"{kind}: {result['dataset']['questions']} questions, "
        f"{report.memories} memories in {report.scopes} scopes"
    )
    for name in ("category", "questions", "system", *shown):
        table.add_column(name, justify="left" if name in ("category", "system") else "right")
    systems = result["systems"]
    first = next(iter(systems.values()))
    for category in first:
        for n, (system, means) in enumerate(systems.items()):
            label = (category, f"{first[category]['questions']:.0f}") if n == 0 else ("", "")
            row(table, *label, system, *(f"{means[category][m]:.3f}" for m in shown))
        table.add_section()
    out = console()
    out.print(table)
    for note in report.notes:
        out.print(Text(f"note: {note}"))
