"""The ``agentmem`` command line: add, search, inspect, export, import and reindex memory.

Every command opens one :class:`~agentmem.Memory` through :func:`open_memory` (from ``--home``,
``--store-url``, ``--vectors-url`` and the ``AGENTMEM_*`` environment), does its work and closes
it. Errors from agentmem are caught at one boundary and printed as one red ``error: ...`` line
with exit code 1. ``--help`` touches neither the disk nor the model. Every command that takes a
memory id takes any unique prefix of one (as tables show them on a terminal).

One module per command group: :mod:`~agentmem.cli.records` (add, search, get, list, stats),
:mod:`~agentmem.cli.changes` (update, invalidate, delete, history, links),
:mod:`~agentmem.cli.bulk` (add --file), :mod:`~agentmem.cli.transfer` (export, import,
reindex), :mod:`~agentmem.cli.evaluate` (eval) and :mod:`~agentmem.cli.graph`. Other packages
add command groups through the ``agentmem.cli`` entry points, loaded only when called.

::

    agentmem add "Alice moved to Lisbon in May" --user alice
    agentmem search "where does Alice live?" --user alice
    agentmem export backup.jsonl && agentmem --home ./restored import backup.jsonl
"""

from __future__ import annotations

from agentmem.cli import changes, evaluate, graph, records, transfer
from agentmem.cli._app import PLUGIN_GROUP, app, memory_for, open_memory, settings_for
from agentmem.cli._args import resolve_id, unique_prefix
from agentmem.cli._output import console, dump, fail, id_column, on_terminal, show_id
from agentmem.cli.options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt

del changes, evaluate, graph, records, transfer  # imported for the commands they add


__all__ = [
    "PLUGIN_GROUP",
    "AgentOpt",
    "JsonOpt",
    "OrgOpt",
    "ThreadOpt",
    "UserOpt",
    "app",
    "console",
    "dump",
    "fail",
    "id_column",
    "memory_for",
    "on_terminal",
    "open_memory",
    "resolve_id",
    "settings_for",
    "show_id",
    "unique_prefix",
]


if __name__ == "__main__":
    app()
