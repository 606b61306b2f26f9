"""The LangGraph store contract: the same cases against LangGraph's own ``InMemoryStore`` and
:class:`agentmem_graphs.AgentMemStore`, asserting identical results wherever the contract is
deterministic (get / put / delete, timestamps, filters, ordering, paging, namespace listing,
async twins). Query searches rank differently by design (agentmem's hybrid retrieval against
InMemoryStore's cosine), so they assert the relevant item is found, not the scores.

Behaviour that differs on purpose is asserted per store and listed in ``docs/langgraph.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem_graphs import AgentMemSearchItem, AgentMemStore

STORES = ("inmemory", "agentmem")


class WordEmbeddings(Embeddings):
    """A bag-of-words embedding (hashed words), so InMemoryStore's query search is meaningful
    offline."""

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * 256
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1.0
        return vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@pytest.fixture(scope="module")
def shared_mem(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One Memory for the module; each test gets its own store name, so stores never meet."""
    home = tmp_path_factory.mktemp("lg-store")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        yield mem


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, shared_mem: Memory) -> BaseStore:
    index: Any = {"dims": 256, "embed": WordEmbeddings(), "fields": ["text"]}
    if request.param == "inmemory":
        return InMemoryStore(index=index)
    return AgentMemStore(shared_mem, name=f"t-{uuid.uuid4().hex[:12]}", index={"fields": ["text"]})


def keys(items: list[Any]) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(i.namespace), i.key) for i in items]


def tick() -> None:
    """Let the clock move, so timestamps of consecutive writes differ on every machine."""
    time.sleep(0.002)


# get / put / delete --------------------------------------------------------------------------


def test_put_then_get_returns_the_value_and_its_coordinates(store: BaseStore) -> None:
    value = {"text": "Alice likes green tea", "n": 1, "nested": {"a": [1, 2, {"b": None}]}}
    store.put(("users", "alice"), "prefs", value)
    item = store.get(("users", "alice"), "prefs")
    assert item is not None
    assert item.value == value
    assert item.key == "prefs" and item.namespace == ("users", "alice")
    assert item.created_at.tzinfo is not None and item.updated_at >= item.created_at
    assert store.get(("users", "alice"), "other") is None
    assert store.get(("users", "bob"), "prefs") is None
    assert store.get(("users",), "prefs") is None  # a namespace is exact for get


def test_put_of_an_existing_key_replaces_the_value_and_moves_updated_at(
    store: BaseStore,
) -> None:
    store.put(("docs",), "d1", {"text": "first draft", "v": 1})
    before = store.get(("docs",), "d1")
    tick()
    store.put(("docs",), "d1", {"text": "second draft"})
    after = store.get(("docs",), "d1")
    assert before is not None and after is not None
    assert after.value == {"text": "second draft"}  # replaced whole, not merged
    assert after.updated_at > before.updated_at
    if isinstance(store, AgentMemStore):
        # Creation time is kept (the Item contract, and PostgresStore); InMemoryStore resets it.
        assert after.created_at == before.created_at
    else:
        assert after.created_at > before.created_at


def test_delete_removes_the_item_and_deleting_a_missing_item_is_harmless(
    store: BaseStore,
) -> None:
    store.put(("docs",), "d1", {"text": "x"})
    store.put(("docs",), "d2", {"text": "y"})
    store.delete(("docs",), "d1")
    store.delete(("docs",), "never-there")
    assert store.get(("docs",), "d1") is None
    assert keys(store.search(("docs",))) == [(("docs",), "d2")]
    store.put(("docs",), "d1", {"text": "back"})  # a deleted key can be written again
    item = store.get(("docs",), "d1")
    assert item is not None and item.value == {"text": "back"}


def test_batch_reads_see_the_state_before_its_writes_and_the_last_write_wins(
    store: BaseStore,
) -> None:
    store.put(("b",), "k", {"text": "old"})
    results = store.batch(
        [
            PutOp(("b",), "k", {"text": "new"}),
            GetOp(("b",), "k"),
            PutOp(("b",), "k2", {"text": "one"}),
            PutOp(("b",), "k2", {"text": "two"}),
            SearchOp(("b",)),
            PutOp(("b",), "k3", {"text": "gone"}),
            PutOp(("b",), "k3", None),
            ListNamespacesOp(),
        ]
    )
    assert len(results) == 8
    assert results[0] is None and results[2] is None
    got = results[1]
    assert got is not None and got.value == {"text": "old"}  # type: ignore[union-attr]
    assert keys(results[4]) == [(("b",), "k")]  # type: ignore[arg-type]
    assert results[7] == [("b",)]
    assert store.get(("b",), "k").value == {"text": "new"}  # type: ignore[union-attr]
    assert store.get(("b",), "k2").value == {"text": "two"}  # type: ignore[union-attr]
    assert store.get(("b",), "k3") is None


def test_ttl_is_not_supported_like_inmemorystore(store: BaseStore) -> None:
    assert store.supports_ttl is False
    with pytest.raises(NotImplementedError):
        store.put(("t",), "k", {"text": "x"}, ttl=5)


@pytest.mark.parametrize(
    "namespace",
    [(), ("langgraph", "x"), ("a.b",), ("",), ("ok", "")],
)
def test_bad_namespaces_are_rejected_before_anything_is_written(
    store: BaseStore, namespace: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(namespace, "k", {"text": "x"})
    assert store.list_namespaces() == []


# search without a query ------------------------------------------------------------------------


def fill(store: BaseStore) -> None:
    """Items in three namespaces, written in an interleaved order."""
    store.put(("shop", "eu"), "s1", {"text": "socks", "price": 5, "color": "red", "tags": ["a"]})
    store.put(("shop", "us"), "s2", {"text": "shoes", "price": 50, "color": "blue"})
    store.put(("shop", "eu"), "s3", {"text": "hat", "price": 20.5, "color": "red"})
    store.put(
        ("blog",), "b1", {"text": "post", "price": 100, "meta": {"lang": "en", "draft": False}}
    )
    store.put(("shop", "us"), "s4", {"text": "scarf", "price": 12, "tags": ["a", "b"]})
    store.put(("shop", "eu"), "s5", {"text": "gloves", "price": 8, "color": "blue"})


def test_search_orders_by_namespace_first_written_then_by_key_first_written(
    store: BaseStore,
) -> None:
    fill(store)
    eu = [(("shop", "eu"), k) for k in ("s1", "s3", "s5")]
    us = [(("shop", "us"), k) for k in ("s2", "s4")]
    assert keys(store.search(("shop",))) == eu + us
    assert keys(store.search(())) == [*eu, *us, (("blog",), "b1")]
    assert keys(store.search(("shop", "us"))) == us
    assert store.search(("shop", "u")) == []  # labels match whole, not as string prefixes
    assert store.search(("nothing",)) == []
    assert all(i.score is None for i in store.search(("shop",)))


def test_an_update_keeps_its_place_and_a_deleted_key_written_again_goes_last(
    store: BaseStore,
) -> None:
    fill(store)
    store.put(("shop", "eu"), "s1", {"text": "wool socks", "price": 6})
    assert keys(store.search(("shop", "eu"))) == [
        (("shop", "eu"), "s1"),
        (("shop", "eu"), "s3"),
        (("shop", "eu"), "s5"),
    ]
    store.delete(("shop", "eu"), "s1")
    store.put(("shop", "eu"), "s1", {"text": "socks again"})
    assert [i.key for i in store.search(("shop", "eu"))] == ["s3", "s5", "s1"]


def test_new_keys_written_in_one_batch_keep_the_batchs_order(store: BaseStore) -> None:
    names = [f"k{i:02d}" for i in range(30)][::-1]
    store.batch([PutOp(("batch",), name, {"text": name}) for name in names])
    assert [i.key for i in store.search(("batch",), limit=100)] == names


def test_search_pages_with_limit_and_offset(store: BaseStore) -> None:
    fill(store)
    everything = keys(store.search((), limit=100))
    assert len(everything) == 6
    assert keys(store.search((), limit=2)) == everything[:2]
    assert keys(store.search((), limit=2, offset=2)) == everything[2:4]
    assert keys(store.search((), limit=10, offset=5)) == everything[5:]
    assert store.search((), offset=6) == []
    assert len(store.search(())) == 6  # default limit 10


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"color": "red"}, ["s1", "s3"]),
        ({"color": {"$eq": "blue"}}, ["s5", "s2"]),
        ({"color": {"$ne": "red"}}, ["s5", "s2", "s4", "b1"]),  # missing counts as not equal
        ({"price": {"$gt": 12}}, ["s3", "s2", "b1"]),
        ({"price": {"$gte": 12}}, ["s3", "s2", "s4", "b1"]),
        ({"price": {"$lt": 8}}, ["s1"]),
        ({"price": {"$lte": 8}}, ["s1", "s5"]),
        ({"price": {"$gte": 5, "$lt": 20.5}}, ["s1", "s5", "s4"]),
        ({"price": {"$gt": 5}, "color": "blue"}, ["s5", "s2"]),
        ({"meta": {"lang": "en"}}, ["b1"]),  # nested objects match on the keys given
        ({"meta": {"draft": False}}, ["b1"]),
        ({"tags": ["a"]}, ["s1"]),  # lists match whole and in order
        ({"tags": ["a", "b"]}, ["s4"]),
        ({"color": "green"}, []),
    ],
)
def test_search_filters_like_inmemorystore(
    store: BaseStore, filter: dict[str, Any], expected: list[str]
) -> None:
    fill(store)
    found = store.search((), filter=filter, limit=100)
    assert [i.key for i in found] == expected
    prefix_only = [i.key for i in store.search(("shop",), filter=filter, limit=100)]
    assert prefix_only == [k for k in expected if k != "b1"]


def test_a_range_filter_on_a_missing_field(store: BaseStore) -> None:
    store.put(("r",), "with", {"price": 3})
    store.put(("r",), "without", {"text": "no price"})
    if isinstance(store, AgentMemStore):
        # Not in range, as in PostgreSQL's JSONB comparison.
        assert [i.key for i in store.search(("r",), filter={"price": {"$lt": 5}})] == ["with"]
    else:
        with pytest.raises(TypeError):  # InMemoryStore calls float(None)
            store.search(("r",), filter={"price": {"$lt": 5}})


def test_filters_page_after_filtering(store: BaseStore) -> None:
    fill(store)
    assert [i.key for i in store.search((), filter={"price": {"$gte": 5}}, limit=2)] == [
        "s1",
        "s3",
    ]
    page = store.search((), filter={"price": {"$gte": 5}}, limit=2, offset=2)
    assert [i.key for i in page] == ["s5", "s2"]


# search with a query ----------------------------------------------------------------------------


def fill_documents(store: BaseStore) -> None:
    store.put(("kb", "travel"), "rome", {"text": "Rome trip: the Colosseum and pasta", "n": 1})
    store.put(("kb", "travel"), "oslo", {"text": "Oslo trip: fjords, ferries and cold", "n": 2})
    store.put(("kb", "pets"), "dog", {"text": "The dog Pepper chases squirrels", "n": 3})
    store.put(("kb", "pets"), "cat", {"text": "The cat sleeps all afternoon", "n": 4})
    store.put(("kb", "pets"), "raw", {"text": "Pepper the dog vet visit", "n": 5}, index=False)


def test_a_query_finds_the_relevant_item_first_with_a_score(store: BaseStore) -> None:
    fill_documents(store)
    found = store.search(("kb",), query="fjords and ferries in Oslo", limit=3)
    assert found[0].key == "oslo"
    assert isinstance(found[0].score, float)
    dog = store.search(("kb",), query="Pepper the dog chases squirrels", limit=1)
    assert keys(dog) == [(("kb", "pets"), "dog")]


def test_a_query_stays_within_the_prefix_and_the_filter(store: BaseStore) -> None:
    fill_documents(store)
    found = store.search(("kb", "pets"), query="fjords and ferries in Oslo", limit=10)
    assert {i.key for i in found} == {"dog", "cat", "raw"}
    filtered = store.search(("kb",), query="trip to Rome", filter={"n": {"$gte": 2}}, limit=10)
    assert "rome" not in {i.key for i in filtered}
    assert filtered[0].key == "oslo"


def test_items_put_with_index_false_come_after_ranked_ones_without_a_score(
    store: BaseStore,
) -> None:
    fill_documents(store)
    found = store.search(("kb",), query="Pepper the dog vet visit", limit=10)
    assert len(found) == 5
    assert found[-1].key == "raw" and found[-1].score is None
    assert all(i.score is not None for i in found[:-1])


def test_an_indexed_field_that_is_blank_or_invisible_is_stored_like_any_value(
    store: BaseStore,
) -> None:
    values = {"ws": {"text": "   "}, "zw": {"text": "\u200b"}, "bom": {"text": "\ufeff", "o": "x"}}
    for key, value in values.items():
        store.put(("blank",), key, value)
    assert {k: getattr(store.get(("blank",), k), "value", None) for k in values} == values
    assert [i.key for i in store.search(("blank",))] == ["ws", "zw", "bom"]
    if isinstance(store, AgentMemStore):  # nothing to index: listed, unscored
        found = store.search(("blank",), query="anything")
        assert [(i.key, i.score) for i in found] == [("ws", None), ("zw", None), ("bom", None)]


def test_a_blank_query_lists_and_an_overlong_query_ranks_by_its_beginning(
    shared_mem: Memory,
) -> None:
    store = AgentMemStore(shared_mem, name="query-limits", index={"fields": ["text"]})
    store.put(("q",), "a", {"text": "alpha particles"})
    store.put(("q",), "b", {"text": "beta decay"})
    for blank in ("  ", "\n", "\u200b"):
        found = store.search(("q",), query=blank)
        assert [(i.key, i.score) for i in found] == [("a", None), ("b", None)]
    overlong = "beta decay " * 4000
    assert len(overlong) > shared_mem.settings.max_text_chars
    found = store.search(("q",), query=overlong)
    assert found[0].key == "b" and found[0].score is not None


def test_index_fields_choose_what_a_query_matches(store: BaseStore) -> None:
    store.put(("f",), "a", {"title": "gardening tomatoes", "body": "quantum physics lecture"})
    store.put(("f",), "b", {"title": "quantum physics", "body": "gardening tomatoes"})
    store.put(("f",), "c", {"title": "knitting", "body": "knitting"}, index=["body"])
    # The store's default fields are ["text"]: an item without it is unscored unless the put
    # names its fields.
    store.put(("f",), "d", {"title": "gardening tomatoes"}, index=["title"])
    found = store.search(("f",), query="gardening tomatoes", limit=10)
    assert found[0].key == "d"
    assert {i.key for i in found if i.score is None} == {"a", "b"}


def make_store(kind: str, shared_mem: Memory, fields: list[str]) -> BaseStore:
    if kind == "inmemory":
        return InMemoryStore(index={"dims": 256, "embed": WordEmbeddings(), "fields": fields})
    name = f"t-{uuid.uuid4().hex[:12]}"
    return AgentMemStore(shared_mem, name=name, index={"fields": fields})


@pytest.mark.parametrize("kind", STORES)
def test_embed_with_path(kind: str, shared_mem: Memory) -> None:
    """LangGraph's own ``test_embed_with_path`` (langgraph's store tests, for InMemoryStore),
    rebound: ``score`` is the query's similarity to the item's closest indexed field, so two
    items that match equally score equally, whatever order the hybrid ranking gives them."""

    async def run() -> None:
        store = make_store(kind, shared_mem, ["key0", "key1", "key3"])
        doc1 = {"key1": "xxx", "key2": "yyy", "key3": "zzz"}  # key0 missing: no error
        doc2 = {"key0": "uuu", "key1": "vvv", "key2": "www", "key3": "xxx"}
        await store.aput(("test",), "doc1", doc1)
        await store.aput(("test",), "doc2", doc2)

        # doc2.key3 and doc1.key1 both would have the highest score
        results = await store.asearch(("test",), query="xxx")
        assert len(results) == 2
        assert results[0].key != results[1].key
        ascore, bscore = results[0].score, results[1].score
        assert ascore is not None and bscore is not None
        assert ascore == pytest.approx(bscore, abs=1e-5)

        results = await store.asearch(("test",), query="uuu")
        assert len(results) == 2
        assert results[0].key != results[1].key
        assert results[0].key == "doc2"
        assert results[0].score is not None and results[1].score is not None
        assert results[0].score > results[1].score
        assert ascore == pytest.approx(results[0].score, abs=1e-5)

        # Un-indexed: low scores for both.
        results = await store.asearch(("test",), query="www")
        assert len(results) == 2
        assert all(r.score is not None and r.score < ascore for r in results)

        # Operation-level field configuration
        store_no_defaults = make_store(kind, shared_mem, ["key17"])
        doc3 = {"key0": "aaa", "key1": "bbb", "key2": "ccc", "key3": "ddd"}
        doc4 = {"key0": "eee", "key1": "bbb", "key2": "fff", "key3": "ggg"}
        await store_no_defaults.aput(("test",), "doc3", doc3, index=["key0", "key1"])
        await store_no_defaults.aput(("test",), "doc4", doc4, index=["key1", "key3"])

        results = await store_no_defaults.asearch(("test",), query="aaa")
        assert len(results) == 2
        assert results[0].key == "doc3"
        assert results[0].score is not None and results[1].score is not None
        assert results[0].score > results[1].score

        results = await store_no_defaults.asearch(("test",), query="ggg")
        assert len(results) == 2
        assert results[0].key == "doc4"
        assert results[0].score is not None and results[1].score is not None
        assert results[0].score > results[1].score

        results = await store_no_defaults.asearch(("test",), query="bbb")
        assert len(results) == 2
        assert results[0].key != results[1].key
        assert results[0].score == results[1].score

        results = await store_no_defaults.asearch(("test",), query="ccc")
        assert len(results) == 2
        assert all(r.score is not None and r.score < ascore for r in results)

        doc5 = {"key0": "hhh", "key1": "iii"}
        await store_no_defaults.aput(("test",), "doc5", doc5, index=False)
        results = await store_no_defaults.asearch(("test",), query="hhh")
        assert len(results) == 3
        doc5_result = next(r for r in results if r.key == "doc5")
        assert doc5_result.score is None

    asyncio.run(run())


def test_the_fused_score_orders_the_results_and_score_is_similarity(shared_mem: Memory) -> None:
    store = make_store("agentmem", shared_mem, ["text"])
    fill_documents(store)
    found = store.search(("kb",), query="fjords and ferries in Oslo", limit=10)
    assert all(isinstance(i, AgentMemSearchItem) for i in found)
    ranked = [i for i in found if i.fused_score is not None]
    assert [i.fused_score for i in ranked] == sorted((i.fused_score for i in ranked), reverse=True)
    assert found[0].key == "oslo"
    assert found[0].score is not None and -1.0 <= found[0].score <= 1.0
    raw = next(i for i in found if i.key == "raw")  # index=False: neither score
    assert (raw.score, raw.fused_score) == (None, None)
    assert found[0].dict()["fused_score"] == found[0].fused_score
    assert all(i.score is None and i.fused_score is None for i in store.search(("kb",)))


# list_namespaces -----------------------------------------------------------------------------


def fill_namespaces(store: BaseStore) -> None:
    for namespace in [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("x", "y"),
        ("users", "alice", "prefs"),
        ("users", "bob", "prefs"),
        ("users", "bob", "v1"),
    ]:
        store.put(namespace, "k", {"text": "-".join(namespace)})


def test_list_namespaces_sorted_with_prefix_suffix_and_wildcards(store: BaseStore) -> None:
    fill_namespaces(store)
    everything = store.list_namespaces(limit=100)
    assert everything == sorted(everything) and len(everything) == 9
    assert store.list_namespaces(prefix=("a", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("users", "*", "prefs")) == [
        ("users", "alice", "prefs"),
        ("users", "bob", "prefs"),
    ]
    assert store.list_namespaces(suffix=("*", "v1")) == [("users", "bob", "v1")]
    assert store.list_namespaces(prefix=("a",), suffix=("f",)) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
    ]
    assert store.list_namespaces(prefix=("nothing",)) == []


def test_list_namespaces_truncates_to_max_depth_and_pages(store: BaseStore) -> None:
    fill_namespaces(store)
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(max_depth=1) == [("a",), ("users",), ("x",)]
    assert store.list_namespaces(max_depth=2, limit=2, offset=1) == [("a", "c"), ("users", "alice")]
    assert store.list_namespaces(limit=3) == store.list_namespaces(limit=100)[:3]
    assert store.list_namespaces(offset=8) == [("x", "y")]
    conditions = (MatchCondition("prefix", ("users",)), MatchCondition("suffix", ("prefs",)))
    (listed,) = store.batch([ListNamespacesOp(match_conditions=conditions, max_depth=2)])
    assert listed == [("users", "alice"), ("users", "bob")]


def test_a_namespace_whose_items_are_all_deleted(store: BaseStore) -> None:
    store.put(("keep",), "k", {"text": "x"})
    store.put(("gone",), "k", {"text": "x"})
    store.delete(("gone",), "k")
    listed = store.list_namespaces()
    if isinstance(store, AgentMemStore):
        assert listed == [("keep",)]  # only namespaces holding items (as PostgresStore)
    else:
        assert listed == [("gone",), ("keep",)]  # InMemoryStore keeps the empty one


# async twins -----------------------------------------------------------------------------------


def test_async_twins_match_the_sync_methods(store: BaseStore) -> None:
    async def scenario() -> None:
        await store.aput(("as", "one"), "k1", {"text": "async socks", "n": 1})
        await store.aput(("as", "two"), "k2", {"text": "async shoes", "n": 2})
        item = await store.aget(("as", "one"), "k1")
        assert item is not None and item.value == {"text": "async socks", "n": 1}
        found = await store.asearch(("as",), filter={"n": {"$gt": 1}})
        assert keys(found) == [(("as", "two"), "k2")]
        ranked = await store.asearch(("as",), query="async shoes", limit=1)
        assert ranked[0].key == "k2"
        assert await store.alist_namespaces(prefix=("as",)) == [("as", "one"), ("as", "two")]
        await store.adelete(("as", "one"), "k1")
        assert await store.aget(("as", "one"), "k1") is None
        results = await store.abatch([GetOp(("as", "two"), "k2"), PutOp(("as", "two"), "k3", {})])
        assert results[0] is not None and results[1] is None

    asyncio.run(scenario())
    assert store.get(("as", "two"), "k3") is not None  # an empty document is a value


# agentmem-specific: scopes, persistence, recall --------------------------------------------


def test_items_live_in_agentmem_scopes_and_are_recalled_by_memory(shared_mem: Memory) -> None:
    store = AgentMemStore(shared_mem, name="recall", user_level=1, index={"fields": ["text"]})
    store.put(("memories", "maya"), "m1", {"text": "Maya's dog is called Pepper"})
    store.put(("memories", "ines"), "m1", {"text": "Ines' cat is called Miso"})
    store.put(("shared",), "m1", {"text": "The office closes at six"})
    hits = shared_mem.search("what is the dog called?", user_id="maya", k=5)
    assert [h.record.text for h in hits] == ["Maya's dog is called Pepper"]
    record = hits[0].record
    assert record.scope.user_id == "maya" and record.scope.org_id == "langgraph"
    assert record.id == store.record_id(("memories", "maya"), "m1")
    assert shared_mem.history(record.id)[0].actor == "langgraph-store"
    assert "Pepper" in shared_mem.context("dog", user_id="maya").text
    assert all("Miso" not in h.record.text for h in shared_mem.search("cat", user_id="maya"))
    # The store itself sees every user's items under a prefix.
    assert [i.namespace for i in store.search(("memories",))] == [
        ("memories", "maya"),
        ("memories", "ines"),
    ]
    assert store.list_namespaces() == [("memories", "ines"), ("memories", "maya"), ("shared",)]


def test_items_with_nothing_to_index_are_not_recalled_by_memory(shared_mem: Memory) -> None:
    store = AgentMemStore(shared_mem, name="unindexed", user_level=1)
    user = f"maya-{uuid.uuid4().hex[:8]}"
    store.put(("memories", user), "food", {"text": f"{user} is vegetarian"})
    store.put(("memories", user), "profile", {"theme": "dark"}, index=False)
    store.put(("memories", user), "blob", {"data": [1, 2, 3]}, index=[])
    question = f"what does {user} eat? memories {user} profile blob"
    texts = [h.record.text for h in shared_mem.search(question, user_id=user, k=5)]
    assert texts == [f'{{"text": "{user} is vegetarian"}}']
    context = shared_mem.context(question, user_id=user).text
    assert "vegetarian" in context and "profile" not in context and "blob" not in context
    # The store still lists them, unscored after the ranked item.
    ranked = store.search(("memories", user), query=question)
    assert [(i.key, i.score is None) for i in ranked] == [
        ("food", False),
        ("profile", True),
        ("blob", True),
    ]


def test_stores_with_different_names_or_scopes_never_meet(shared_mem: Memory) -> None:
    first = AgentMemStore(shared_mem, name="iso-1")
    second = AgentMemStore(shared_mem, name="iso-2")
    third = AgentMemStore(shared_mem, name="iso-1", org_id="acme")
    first.put(("n",), "k", {"text": "one"})
    assert second.get(("n",), "k") is None and third.get(("n",), "k") is None
    assert second.search(()) == [] and third.list_namespaces() == []
    shared_mem.add("a plain memory, not a store item", org_id="langgraph")
    assert keys(first.search(())) == [(("n",), "k")]


def test_stores_with_nested_scopes_agree_on_the_one_item_of_a_key(shared_mem: Memory) -> None:
    user = f"alice-{uuid.uuid4().hex[:8]}"
    per_user = AgentMemStore(shared_mem, name="nested", user_level=1)
    alice = AgentMemStore(shared_mem, name="nested", user_id=user)
    per_user.put(("memories", user), "pref", {"text": "likes tea"})
    # The user's own store does not see the per-user store's item: get, search, put agree.
    assert alice.get(("memories", user), "pref") is None and alice.search(()) == []
    alice.put(("memories", user), "pref", {"text": "likes coffee"})
    assert [i.value for i in alice.search(("memories",))] == [{"text": "likes coffee"}]
    alice.delete(("memories", user), "pref")
    assert alice.search(()) == [] and alice.get(("memories", user), "pref") is None
    per_user_item = per_user.get(("memories", user), "pref")
    assert per_user_item is not None and per_user_item.value == {"text": "likes tea"}
    # The same store without user_level addresses the same record id in another scope: it
    # sees it nowhere, and its put takes the record over.
    default = AgentMemStore(shared_mem, name="nested")
    assert default.get(("memories", user), "pref") is None
    assert default.search(("memories", user)) == [] and default.list_namespaces() == []
    default.put(("memories", user), "pref", {"text": "likes water"})
    assert keys(default.search(())) == [(("memories", user), "pref")]
    assert per_user.get(("memories", user), "pref") is None and per_user.search(()) == []


def test_a_put_racing_another_store_object_retries_and_the_last_put_wins(
    shared_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = AgentMemStore(shared_mem, name="race")
    rival = AgentMemStore(shared_mem, name="race")
    first.put(("p",), "old", {"v": 0})
    document = first._document
    raced: set[str] = set()

    def racing(namespace: tuple[str, ...], key: str, op: PutOp) -> Any:
        if key not in raced:  # the rival writes between this put's read and its write
            raced.add(key)
            rival.put(namespace, key, {"v": "rival"})
        return document(namespace, key, op)

    monkeypatch.setattr(first, "_document", racing)
    first.put(("p",), "old", {"v": 1})  # the rival's update moved the version
    first.put(("p",), "new", {"v": 1})  # the rival inserted the record first
    assert raced == {"old", "new"}
    for key in ("old", "new"):
        item = rival.get(("p",), key)
        assert item is not None and item.value == {"v": 1}
    assert keys(rival.search(())) == [(("p",), "old"), (("p",), "new")]


def test_items_persist_across_memory_instances(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=tmp_path / "home")
    with Memory(settings=settings, embedder=embedder) as mem:
        store = AgentMemStore(mem)
        store.put(("p",), "k", {"text": "kept", "when": [2024, 5]})
        before = store.get(("p",), "k")
    with Memory(settings=settings, embedder=embedder) as mem:
        after = AgentMemStore(mem).get(("p",), "k")
    assert before is not None and after is not None
    assert after.value == {"text": "kept", "when": [2024, 5]}
    assert after.created_at == before.created_at and after.updated_at == before.updated_at


def test_values_that_are_not_json_are_rejected_and_change_nothing(shared_mem: Memory) -> None:
    from agentmem import ValidationError

    store = AgentMemStore(shared_mem, name="bad-values")
    with pytest.raises(ValidationError):
        store.batch([PutOp(("v",), "ok", {"text": "fine"}), PutOp(("v",), "bad", {"x": object()})])
    assert store.search(()) == []
    # A value must be an object, and index False, None or a list of field paths.
    for value, index in ((["x"], None), ("hello", None), ({"text": "x"}, [1]), ({"t": 1}, "text")):
        with pytest.raises(ValidationError):
            store.put(("v",), "k", value, index=index)  # type: ignore[arg-type]
    assert store.search(()) == []


def test_a_key_whose_memory_was_updated_elsewhere_can_be_put_again(shared_mem: Memory) -> None:
    store = AgentMemStore(shared_mem, name="taken-over", user_id="maya")
    store.put(("prefs",), "seat", {"text": "Maya likes window seats"})
    record_id = store.record_id(("prefs",), "seat")
    shared_mem.update(record_id, metadata={"note": "edited by hand"}, user_id="maya")
    store.put(("prefs",), "seat", {"text": "Maya likes aisle seats"})  # takes it over
    item = store.get(("prefs",), "seat")
    assert item is not None and item.value == {"text": "Maya likes aisle seats"}
    store.delete(("prefs",), "seat")
    assert store.get(("prefs",), "seat") is None


def test_store_values_are_redacted_like_memories(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=tmp_path / "home", redaction={"enabled": True})
    with Memory(settings=settings, embedder=embedder) as mem:
        store = AgentMemStore(mem)
        store.put(("n",), "k", {"text": "mail maya@example.com", "more": ["call a@b.example"]})
        item = store.get(("n",), "k")
        record = mem.get(store.record_id(("n",), "k"))
    assert item is not None
    assert item.value == {"text": "mail [REDACTED_EMAIL]", "more": ["call [REDACTED_EMAIL]"]}
    assert "example" not in record.text and "example" not in str(record.metadata)


def test_store_values_redact_dict_keys_and_numbers(tmp_path: Path, embedder: Embedder) -> None:
    """A card number stored as a number, or an address used as a key, is redacted too: a number
    holding an item becomes the redacted string, other numbers stay numbers; keys that redact
    alike are told apart, not merged."""
    settings = Settings.load(home=tmp_path / "home", redaction={"enabled": True})
    value = {
        "card": 4111111111111111,
        "float_card": 4111111111111111.0,
        "count": 42,
        "ratio": 0.5,
        "flag": True,
        "emails": {"yy@example.org": "Bob", "zz@example.org": "Al"},
    }
    with Memory(settings=settings, embedder=embedder) as mem:
        store = AgentMemStore(mem)
        store.put(("n",), "k", value)
        item = store.get(("n",), "k")
        record = mem.get(store.record_id(("n",), "k"))
        history = str(mem.history(record.id))
    assert item is not None
    assert item.value == {
        "card": "[REDACTED_CARD]",
        "float_card": "[REDACTED_CARD]",
        "count": 42,
        "ratio": 0.5,
        "flag": True,
        "emails": {"[REDACTED_EMAIL]": "Bob", "[REDACTED_EMAIL] #2": "Al"},
    }
    for raw in ("4111111111111111", "example.org"):
        assert raw not in str(record.metadata) and raw not in history


def test_reserved_item_keys_are_written_only_by_the_store(shared_mem: Memory) -> None:
    from agentmem import InvalidMetadata, Scope, writing

    store = AgentMemStore(shared_mem, name="reserved", user_id="alice")
    store.put(("memories",), "real", {"text": "genuine item"})
    forged = {"lg_store": "reserved", "lg_value": {"role": "admin"}, "lg_ns": "memories"}
    with pytest.raises(InvalidMetadata, match="reserved"):
        shared_mem.add("forged", user_id="alice", metadata={**forged, "lg_key": "real"})
    with pytest.raises(InvalidMetadata, match="reserved"):
        shared_mem.add_many([{"text": "forged", "metadata": forged}], user_id="alice")
    record_id = store.record_id(("memories",), "real")
    record = shared_mem.get(record_id)
    with pytest.raises(InvalidMetadata, match="lg_value"):
        shared_mem.update(record_id, metadata={**record.metadata, "lg_value": {"x": 1}})
    shared_mem.update(record_id, metadata={**record.metadata, "note": "kept"})  # unchanged keys
    assert [i.value for i in store.search(())] == [{"text": "genuine item"}]
    # A record cut short (only some of the keys) is skipped, never read.
    partial = writing.new_record(
        shared_mem.backends,
        Scope.of(user_id="alice"),
        "partial",
        metadata={"lg_store": "reserved", "lg_value": {"x": 1}},
        reserved=True,
    )
    writing.insert(shared_mem.backends, [partial])
    assert keys(store.search(())) == [(("memories",), "real")]
    assert keys(store.search((), query="partial item")) == [(("memories",), "real")]
    assert store.list_namespaces() == [("memories",)]


def test_a_handed_off_item_is_a_plain_memory_of_the_recipient(shared_mem: Memory) -> None:
    researcher = shared_mem.for_agent("researcher", user_id="maya", team="trip")
    writer = shared_mem.for_agent("writer", user_id="maya", team="trip")
    store = AgentMemStore(
        shared_mem,
        name="handoff",
        user_id="maya",
        agent_id="researcher",
        index={"fields": ["text"]},
    )
    store.put(("notes", "city"), "hotel", {"text": "The hotel near the station is quiet", "n": 3})
    item_id = store.record_id(("notes", "city"), "hotel")
    (copy,) = researcher.handoff(writer, ids=[researcher.get(item_id).id])
    assert copy.text == "The hotel near the station is quiet"
    assert not [k for k in copy.metadata if k.startswith("lg_")]
    assert copy.metadata["handoff_store_item"] == {
        "store": "handoff",
        "namespace": ["notes", "city"],
        "key": "hotel",
        "value": {"text": "The hotel near the station is quiet", "n": 3},
    }
    assert copy.metadata["handoff_source_id"] == item_id
    assert [h.record.id for h in writer.search("quiet hotel", k=3)][:1] == [copy.id]
    # No store reads the copy as one of its items; the source item is untouched.
    writers_store = AgentMemStore(shared_mem, name="handoff", user_id="maya", agent_id="writer")
    assert writers_store.search(()) == [] and writers_store.get(("notes", "city"), "hotel") is None
    assert keys(store.search(())) == [(("notes", "city"), "hotel")]
    assert [c.id for c in researcher.handoff(writer, ids=[item_id])] == [copy.id]
