"""The knowledge graph: entities, bitemporal relations, episode links and a hierarchy of
communities, built from semantic facts and recalled by Personalized PageRank.

- :mod:`~agentmem.graph.model`: the items (:class:`Entity`, :class:`Relation`,
  :class:`EpisodeLink`, :class:`Community`, :class:`Merge`) and :class:`GraphChange`.
- :mod:`~agentmem.graph.base`: the :class:`GraphStore` contract;
  :mod:`~agentmem.graph.networkx_store` (embedded: networkx in memory, persisted in the
  record store), :mod:`~agentmem.graph.falkordb_store` (FalkorDB) and
  :mod:`~agentmem.graph.neo4j_store` (Neo4j), the two servers sharing one openCypher layer
  (:mod:`~agentmem.graph.cypher`, one dialect module per engine) through
  :mod:`~agentmem.graph.cypher_store`.
- :mod:`~agentmem.graph.resolve`: entity resolution (normalised, fuzzy, embedding; undoable).
- :mod:`~agentmem.graph.fact_reading`: what a fact says for the graph (mentions, relations);
  :mod:`~agentmem.graph.working`: the working copy of one update;
  :mod:`~agentmem.graph.build`: facts -> graph, incrementally from the outbox;
  :mod:`~agentmem.graph.rebuild`: graphs derived from the store again;
  :mod:`~agentmem.graph.merges`: entity merges by hand, and undo.
- :mod:`~agentmem.graph.communities`: Louvain communities and communities of communities.
- :mod:`~agentmem.graph.pagerank`: the ``graph`` retrieval channel (HippoRAG-style PPR).
- :mod:`~agentmem.graph.api`: ``mem.graph`` (neighbors, timeline, path, community, export).
"""

from __future__ import annotations

from agentmem.errors import InvalidSettings
from agentmem.graph.api import GraphAPI, GraphStats, Neighbor, PathStep, TimelineEntry
from agentmem.graph.base import GraphPartition, GraphStore
from agentmem.graph.cypher_store import CypherGraphStore
from agentmem.graph.export import ExportFormat
from agentmem.graph.falkordb_store import SCHEMES as FALKORDB_SCHEMES
from agentmem.graph.falkordb_store import FalkorDBGraphStore
from agentmem.graph.model import (
    Community,
    Entity,
    EpisodeLink,
    FactEntry,
    GraphChange,
    GraphMeta,
    ItemKind,
    Merge,
    MergeMethod,
    NameUse,
    Relation,
    partition_key,
)
from agentmem.graph.neo4j_store import SCHEMES as NEO4J_SCHEMES
from agentmem.graph.neo4j_store import Neo4jGraphStore
from agentmem.graph.networkx_store import NetworkXGraphStore
from agentmem.graph.rebuild import RebuildReport
from agentmem.graph.state import GraphState
from agentmem.settings import Settings
from agentmem.stores import RecordStore


def graph_from_settings(settings: Settings, store: RecordStore) -> GraphStore | None:
    """The graph backend the settings name (no I/O): ``graph_url`` None keeps graphs in
    ``store`` (networkx in memory); ``falkordb://...`` uses FalkorDB, ``neo4j://...`` Neo4j.
    None when the graph is off."""
    if not settings.graph.enabled:
        return None
    url = settings.graph_url
    if url is None:
        return NetworkXGraphStore(store)
    if url.startswith(FALKORDB_SCHEMES):
        return FalkorDBGraphStore.from_url(url, timeout=settings.connect_timeout_s)
    if url.startswith(NEO4J_SCHEMES):
        return Neo4jGraphStore.from_url(url, timeout=settings.connect_timeout_s)
    raise InvalidSettings(
        f"unknown graph URL {url!r}; use falkordb://host:6379/graph, neo4j://host:7687, or "
        "leave it unset"
    )


__all__ = [
    "Community",
    "CypherGraphStore",
    "Entity",
    "EpisodeLink",
    "ExportFormat",
    "FactEntry",
    "FalkorDBGraphStore",
    "GraphAPI",
    "GraphChange",
    "GraphMeta",
    "GraphPartition",
    "GraphState",
    "GraphStats",
    "GraphStore",
    "ItemKind",
    "Merge",
    "MergeMethod",
    "NameUse",
    "Neighbor",
    "Neo4jGraphStore",
    "NetworkXGraphStore",
    "PathStep",
    "RebuildReport",
    "Relation",
    "TimelineEntry",
    "graph_from_settings",
    "partition_key",
]
