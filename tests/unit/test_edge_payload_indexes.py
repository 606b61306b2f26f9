"""Qdrant Edge indexes every payload key a search filters on, in new shards and old ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import qdrant_edge as qe

from agentmem.filters import Condition, FilterOp
from agentmem.models import Scope
from agentmem.vectors import EdgeVectorIndex, VectorPoint, VectorQuery
from agentmem.vectors._qdrant_filter import FLOAT_PAYLOAD_FIELDS, KEYWORD_PAYLOAD_FIELDS
from agentmem.vectors.base import DENSE_SPACES, SPARSE_SPACES, index_value

DIM = 4


def _schema(path: Path) -> dict[str, str]:
    index = EdgeVectorIndex(path)
    index.setup(DIM)
    try:
        info = index._shard.info()
        return {name: str(i.data_type) for name, i in info.payload_schema.items()}
    finally:
        index.close()


def test_a_new_shard_indexes_the_archived_flag_every_search_filters_on(tmp_path: Path) -> None:
    schema = _schema(tmp_path / "vectors")
    assert "metadata.archived" in KEYWORD_PAYLOAD_FIELDS
    for name in KEYWORD_PAYLOAD_FIELDS:
        assert schema[name].endswith("Keyword"), name
    for name in FLOAT_PAYLOAD_FIELDS:
        assert schema[name].endswith("Float"), name


def test_a_shard_made_before_the_archived_index_gets_it_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "vectors"
    path.mkdir()
    config = qe.EdgeConfig(
        vectors={
            n: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine) for n in DENSE_SPACES
        },
        sparse_vectors={
            n: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for n in SPARSE_SPACES
        },
    )
    old = qe.EdgeShard.create(str(path), config)
    old.update(qe.UpdateOperation.create_field_index("user_id", qe.PayloadSchemaType.Keyword))
    old.flush()
    old.close()

    index = EdgeVectorIndex(path)
    index.setup(DIM)
    payload = {"user_id": "u", "status": "active", "valid_to": 1e12, "metadata": {}}
    archived = {**payload, "metadata": {"archived": index_value(True)}}
    index.upsert(
        [
            VectorPoint("00000000-0000-0000-0000-000000000001", np.ones(DIM), payload),
            VectorPoint("00000000-0000-0000-0000-000000000002", np.ones(DIM), archived),
        ]
    )
    assert "metadata.archived" in index._shard.info().payload_schema
    query = VectorQuery(
        scope=Scope(user_id="u"), limit=5, conditions=(Condition("archived", FilterOp.NE, True),)
    )
    assert [i for i, _ in index.search(np.ones(DIM), query)] == [
        "00000000-0000-0000-0000-000000000001"
    ]
    index.close()
    assert "metadata.archived" in _schema(path)
