"""An embedder whose vectors do not fit the index is refused before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agentmem import EmbedderMismatch, InvalidSettings, Memory, Settings
from agentmem.backends import check_memory_arguments
from agentmem.embedders import Embedder, normalise

ROOT = Path(__file__).resolve().parents[2]


class _Random(Embedder):
    """Random unit vectors of ``returns`` dimensions, declaring ``declares``."""

    def __init__(self, declares: int, returns: int | None = None) -> None:
        self.name = f"random-{declares}"
        self._declares = declares
        self._returns = returns or declares
        self._rng = np.random.default_rng(0)

    @property
    def dim(self) -> int:
        return self._declares

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self._rng.random((len(texts), self._returns)))


def test_vectors_of_another_size_than_declared_write_nothing(home: Path) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        mem.add("kept", user_id="u")
    with Memory(settings=Settings.load(home=home), embedder=_Random(384, returns=768)) as mem:
        with pytest.raises(EmbedderMismatch, match=r"shape \(1, 768\).*declares 384.*nothing"):
            mem.add("refused", user_id="u")
        with pytest.raises(EmbedderMismatch):
            mem.add_many([{"text": "a"}, {"text": "b"}], user_id="u")
        with pytest.raises(EmbedderMismatch):
            mem.search("kept", user_id="u")
        stats = mem.stats()
        assert stats.records == 1 and stats.pending_index == 0 and stats.history_entries == 1


def test_an_index_built_by_another_embedder_is_refused_at_open(home: Path) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        mem.add("kept", user_id="u")
    with pytest.raises(EmbedderMismatch, match="another size than this embedder's 768"):
        Memory(settings=Settings.load(home=home), embedder=_Random(768))
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        assert [h.record.text for h in mem.search("kept", user_id="u")] == ["kept"]


def test_the_documented_change_to_an_embedder_of_another_size_works(home: Path) -> None:
    """docs/configuration.md's steps: move the index aside, then reindex with the new one."""
    row = next(
        line
        for line in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `embedder` |")
    )
    assert "of another size" in row and "move `<home>/vectors` aside" in row
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        mem.add("kept", user_id="u")
    with pytest.raises(EmbedderMismatch):
        Memory(settings=Settings.load(home=home), embedder=_Random(64))
    (home / "vectors").rename(home / "vectors.384")
    with Memory(settings=Settings.load(home=home), embedder=_Random(64)) as mem:
        assert mem.reindex() == 1
        assert [h.record.text for h in mem.search("kept", user_id="u")] == ["kept"]


class _AdapterNeedsTorch:
    """A registry whose promoted adapter cannot load here (as without the gpu extra)."""

    def query_encoder(self, scope_key: str, base: Embedder) -> None:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")


def test_an_adapter_this_process_cannot_serve_falls_back_to_the_base_embedder(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.load(home=home)
    adapters = _AdapterNeedsTorch()
    with Memory(settings=settings, embedder=_Random(384), query_encoders=adapters) as mem:
        mem.add("Maya adopted a greyhound called Pepper", user_id="maya")
        for _ in range(2):
            hits = mem.search("Maya's dog", user_id="maya")
            assert [h.record.text for h in hits] == ["Maya adopted a greyhound called Pepper"]
    warnings = [r for r in caplog.records if "cannot be served" in r.getMessage()]
    assert len(warnings) == 1 and "agentmem[gpu]" in warnings[0].getMessage()


class _Broken(Embedder):
    """Unit vectors of 16 dimensions, except ``bad`` (NaN or inf) for texts containing
    ``marker``; ``name`` stays the same, as for a model that fails now and then."""

    name = "broken-16"
    dim = 16

    def __init__(self, marker: str | None = None, bad: float = np.nan) -> None:
        self.marker, self.bad = marker, bad

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(sum(map(ord, t))).random(16) for t in texts]
        vectors = normalise(np.stack(rows))
        for i, text in enumerate(texts):
            if self.marker is not None and self.marker in text:
                vectors[i] = self.bad
        return vectors


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_vectors_are_refused_and_never_cached(home: Path, bad: float) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Broken("violin", bad)) as mem:
        mem.add("Alice moved to Lisbon", user_id="u")
        with pytest.raises(EmbedderMismatch, match=r"'broken-16'.*NaN or infinite.*nothing"):
            mem.add("Eve plays the violin", user_id="u")
        with pytest.raises(EmbedderMismatch):
            mem.add_many([{"text": "Bob loves chess"}, {"text": "a violin"}], user_id="u")
        stats = mem.stats()
        assert stats.records == 1 and stats.pending_index == 0
    with Memory(settings=Settings.load(home=home), embedder=_Broken()) as mem:
        mem.add("Eve plays the violin", user_id="u")  # the model works again: nothing cached
        mem.reindex(rebuild=True)
        hits = mem.search("Eve plays the violin", user_id="u")
        assert hits[0].record.text == "Eve plays the violin" and "dense" in hits[0].channels


class _BadOutput(Embedder):
    """Documents embed well; a search gets the output named by ``query`` (no row, a whole
    matrix, a list, None) instead of one vector."""

    name = "bad-output-16"
    dim = 16

    def __init__(self, query: str | None = None) -> None:
        self.query = query

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.full((len(texts), 16), 0.25, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vectors = self.embed_documents([text])
        outputs = {
            "row-short": vectors[:0],
            "rows": vectors,
            "list": vectors.tolist(),
            "none": None,
        }
        return super().embed_query(text) if self.query is None else outputs[self.query]


class _ShortDocuments(_BadOutput):
    """Returns a row too few: the base class's embed_query meets it."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return super().embed_documents(texts)[:-1]

    embed_query = Embedder.embed_query


QUERY_OUTPUTS = ["row-short", "rows", "list", "none"]


@pytest.mark.parametrize("output", [*QUERY_OUTPUTS, "short-documents"])
def test_a_query_vector_of_the_wrong_shape_is_refused_like_a_document(
    home: Path, output: str
) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_BadOutput()) as mem:
        mem.add("Alice moved to Lisbon", user_id="u")
        assert [h.record.text for h in mem.search("Lisbon", user_id="u")] == [
            "Alice moved to Lisbon"
        ]
    bad = _BadOutput(output) if output in QUERY_OUTPUTS else _ShortDocuments()
    with (
        Memory(settings=Settings.load(home=home), embedder=bad) as mem,
        pytest.raises(EmbedderMismatch, match=r"'bad-output-16'.*16 dimensions"),
    ):
        mem.search("Lisbon", user_id="u")


class _Declares(Embedder):
    """Whatever name and dim a test gives its subclass."""

    name = "declares"
    dim: object = 16

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.full((len(texts), 16), 0.25, dtype=np.float32)


class _NoName(Embedder):
    dim = 16
    embed_documents = _Declares.embed_documents


@pytest.mark.parametrize(
    ("embedder", "match"),
    [(_NoName(), "must set `name`")]
    + [(type("E", (_Declares,), {"name": bad})(), "must set `name`") for bad in ("", "  ", None, 3)]
    + [
        (type("E", (_Declares,), {"dim": bad})(), "positive int")
        for bad in (None, "16", 16.0, -3, 0, True)
    ]
    + [(type("E", (_Declares,), {"dim": property(lambda self: "16")})(), "positive int")],
)
def test_a_custom_embedder_without_a_name_or_dim_is_refused_at_open(
    home: Path, embedder: Embedder, match: str
) -> None:
    with pytest.raises(InvalidSettings, match=match):
        Memory(settings=Settings.load(home=home), embedder=embedder)
    assert not (home / "vectors").exists() or not any((home / "vectors").iterdir())


def test_a_lazy_dim_is_not_read_before_the_index_needs_it() -> None:
    class Lazy(_Declares):
        @property
        def dim(self) -> int:
            raise AssertionError("the model was loaded by the argument check")

    check_memory_arguments(None, None, Lazy())


class _Lazy(_Random):
    """An embedder that learns its size by loading its model (as ``onnx:<dir>``,
    ``sentence-transformers:`` and ``litellm:`` do): counts the loads."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.loads = 0

    @property
    def known_dim(self) -> int | None:
        return self._declares if self.loads else None

    @property
    def dim(self) -> int:
        if not self.loads:
            self.loads += 1
        return self._declares


def test_an_embedder_that_must_load_to_know_its_size_is_not_loaded_to_open(home: Path) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        kept = mem.add("kept", user_id="u")
    lazy = _Lazy(384)
    with Memory(settings=Settings.load(home=home), embedder=lazy) as mem:
        assert mem.stats().records == 1 and mem.get(kept.id).text == "kept"
        assert [r.text for r in mem.list(user_id="u")] == ["kept"]
        assert lazy.loads == 0
        mem.add("more", user_id="u")
        assert lazy.loads == 1
    new = _Lazy(384)  # a new index is made for the embedder's size
    with Memory(settings=Settings.load(home=home / "new"), embedder=new):
        assert new.loads == 1


def test_such_an_embedder_of_another_size_is_refused_on_first_use(home: Path) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        mem.add("kept", user_id="u")
    with Memory(settings=Settings.load(home=home), embedder=_Lazy(768)) as mem:
        assert mem.stats().records == 1  # reads work: the store can be exported
        for call in (
            lambda: mem.add("refused", user_id="u"),
            lambda: mem.search("kept", user_id="u"),
            lambda: mem.reindex(rebuild=True),
        ):
            with pytest.raises(EmbedderMismatch, match=r"holds 384-d.*makes 768-d.*nothing"):
                call()
        stats = mem.stats()
        assert stats.records == 1 and stats.indexed_vectors == 1 and stats.pending_index == 0
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        assert [h.record.text for h in mem.search("kept", user_id="u")] == ["kept"]


def test_a_broken_onnx_model_leaves_the_home_readable(home: Path, tmp_path: Path) -> None:
    from agentmem import ModelUnavailable
    from agentmem.embedders import OnnxEmbedder
    from agentmem.embedders.onnx import packaged_tokenizer

    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        kept = mem.add("kept", user_id="u")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"not an onnx graph" * 100)
    (model / "tokenizer.json").write_bytes(packaged_tokenizer().read_bytes())
    with Memory(settings=Settings.load(home=home), embedder=OnnxEmbedder(model)) as mem:
        assert mem.get(kept.id).text == "kept" and mem.stats().records == 1
        assert [r.text for r in mem.export()] == ["kept"]
        with pytest.raises(ModelUnavailable, match="cannot be loaded"):
            mem.add("refused", user_id="u")
        assert mem.stats().records == 1
    (model / "model.onnx").unlink()  # its name is made from its files: stats say what is wrong
    with Memory(settings=Settings.load(home=home), embedder=OnnxEmbedder(model)) as mem:
        assert "model.onnx is missing" in mem.stats().embedder
