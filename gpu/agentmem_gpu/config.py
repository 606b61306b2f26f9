"""Configuration of adapter training, and the metadata saved next to every adapter.

Both are plain dataclasses: each field carries its help text in ``metadata["help"]`` and is
checked in ``__post_init__``, so a bad value fails when the config is built, not an hour into
training.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from agentmem.errors import InvalidSettings, NotFound

METADATA_FILE = "agentmem_adapter.json"
"""The JSON file describing an adapter, next to peft's ``adapter_model.safetensors``."""

ALL_LINEAR = "all-linear"
"""``RecallAdapterConfig.target_modules`` value for a LoRA on every linear layer but the output
head: attention and MLP projections (peft's shortcut)."""

RETRIEVER_KIND = "retriever"
RECALL_KIND = "recall"
ADAPTER_KINDS = (RETRIEVER_KIND, RECALL_KIND)
METADATA_FORMAT = 1


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def default_threads() -> int:
    """Training threads when a config does not say: half the cores, at least 1."""
    return max(1, (os.cpu_count() or 1) // 2)


class _LoopConfig:
    """What the two adapter configs share: the training loop's checks and a JSON round trip."""

    lora_dropout: float
    target_modules: tuple[str, ...]
    learning_rate: float
    min_lr: float
    warmup_steps: int
    max_steps: int
    device: str
    autocast: str

    def _check_loop(
        self,
        *,
        positive: tuple[str, ...] = (),
        non_negative_ints: tuple[str, ...] = (),
        non_negative: tuple[str, ...] = (),
    ) -> None:
        # The fields of the loop (training.py), checked once for both kinds of adapter.
        ints = ("lora_r", "lora_alpha", "batch_size", "max_steps", "max_seq_len", "eval_interval")
        for name in (*ints, *positive):
            _check_int(self, name, minimum=1)
        for name in ("warmup_steps", "patience", "seed", "threads", *non_negative_ints):
            _check_int(self, name, minimum=0)
        if not 0.0 <= self.lora_dropout < 1.0:
            _bad(self, "lora_dropout", "a float in [0, 1)")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if not 0.0 < self.learning_rate < 1.0:
            _bad(self, "learning_rate", "a float in (0, 1)")
        if not 0.0 <= self.min_lr <= self.learning_rate:
            _bad(self, "min_lr", "between 0 and learning_rate")
        if self.warmup_steps >= self.max_steps:
            _bad(self, "warmup_steps", "smaller than max_steps")
        for name in ("weight_decay", "grad_clip", "min_delta", "time_budget_s", *non_negative):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                _bad(self, name, "a non-negative number")
        if self.device not in ("auto", "cuda", "cpu") and not self.device.startswith("cuda:"):
            _bad(self, "device", "'auto', 'cpu', 'cuda' or 'cuda:<n>'")
        if self.autocast not in ("auto", "bf16", "off"):
            _bad(self, "autocast", "'auto', 'bf16' or 'off'")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data."""
        data = asdict(self)  # type: ignore[call-overload]
        data["target_modules"] = list(self.target_modules)
        return dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild a config saved by :meth:`to_dict` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in data.items() if k in known}
        if "target_modules" in values:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)


@dataclass(frozen=True)
class RetrieverAdapterConfig(_LoopConfig):
    """Hyperparameters of a query-side LoRA adapter on the embedding model.

    The defaults are the ones measured on LoCoMo (DESIGN.md, "Parametric recall"): r=8 on
    query/key/value, trained for about 90 s per scope on two CPU cores.
    """

    # LoRA
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling numerator (scale = alpha/r)"))
    lora_dropout: float = field(default=0.05, metadata=_help("dropout on the LoRA input"))
    target_modules: tuple[str, ...] = field(
        default=("query", "key", "value"),
        metadata=_help("names of the BERT linear layers that get a LoRA"),
    )
    # objective
    temperature: float = field(
        default=0.05, metadata=_help("InfoNCE softmax temperature (0.05 = scale 20)")
    )
    batch_size: int = field(
        default=32, metadata=_help("queries per step; their positives are in-batch negatives")
    )
    hard_negatives: int = field(
        default=2, metadata=_help("hard negatives per query taken from the train set (0 = none)")
    )
    # optimisation
    learning_rate: float = field(default=5e-4, metadata=_help("peak learning rate (AdamW)"))
    min_lr: float = field(default=5e-5, metadata=_help("learning rate at the end of the decay"))
    warmup_steps: int = field(default=20, metadata=_help("linear warmup steps"))
    max_steps: int = field(
        default=3000, metadata=_help("step limit; the cosine decay reaches min_lr here")
    )
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    grad_clip: float = field(default=1.0, metadata=_help("gradient norm clip (0 = off)"))
    max_seq_len: int = field(
        default=128, metadata=_help("query tokens kept while training (queries are short)")
    )
    # evaluation, stopping
    eval_interval: int = field(
        default=50, metadata=_help("steps between evaluations on the held-out questions")
    )
    eval_k: int = field(default=10, metadata=_help("k of the held-out recall@k"))
    patience: int = field(
        default=6,
        metadata=_help("stop after this many evaluations without improvement (0 = never)"),
    )
    min_delta: float = field(
        default=0.0, metadata=_help("smallest recall gain that counts as an improvement")
    )
    time_budget_s: float = field(
        default=90.0,
        metadata=_help(
            "wall-clock seconds for the training loop, evaluations included (0 = no limit)"
        ),
    )
    # runtime
    seed: int = field(default=0, metadata=_help("seed of batching, dropout and LoRA init"))
    device: str = field(default="auto", metadata=_help("'auto' (CUDA if present), 'cuda', 'cpu'"))
    autocast: str = field(
        default="auto",
        metadata=_help("'auto' (bf16 on CUDA, fp32 on CPU), 'bf16' or 'off'"),
    )
    threads: int = field(
        default=0,
        metadata=_help(
            "CPU threads torch may use while training (0 = torch's default); on a machine "
            "shared with other jobs, 1 avoids threads spinning against each other"
        ),
    )
    progress: bool = field(default=True, metadata=_help("show a progress bar"))

    def __post_init__(self) -> None:
        if not self.target_modules or not all(isinstance(m, str) for m in self.target_modules):
            _bad(self, "target_modules", "a non-empty tuple of module names")
        self._check_loop(positive=("eval_k",), non_negative_ints=("hard_negatives",))
        if not 0.0 < self.temperature <= 1.0:
            _bad(self, "temperature", "a float in (0, 1]")


@dataclass(frozen=True)
class RecallAdapterConfig(_LoopConfig):
    """Hyperparameters of a recall adapter: a LoRA on a causal language model that answers
    questions about a scope's memories closed-book, and of the confidence gate in front of it.

    The loop's fields (learning rate schedule, evaluation, early stopping, time budget, device,
    mixed precision) mean what they mean in :class:`RetrieverAdapterConfig`.
    """

    # LoRA
    lora_r: int = field(default=16, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=_help("LoRA scaling numerator (scale = alpha/r)"))
    lora_dropout: float = field(default=0.0, metadata=_help("dropout on the LoRA input"))
    target_modules: tuple[str, ...] = field(
        default=(ALL_LINEAR,),
        metadata=_help(
            "names of the linear layers that get a LoRA; ('all-linear',) = every linear layer "
            "but the output head (for SmolLM2/Llama: q/k/v/o_proj and gate/up/down_proj); () = "
            "peft's default for the model type (e.g. q_proj/v_proj for Llama, c_attn for GPT-2)"
        ),
    )
    # objective
    fact_weight: float = field(
        default=1.0,
        metadata=_help("weight of plain language-model loss on the fact texts (0 = QA pairs only)"),
    )
    batch_size: int = field(default=16, metadata=_help("sequences per step"))
    # optimisation
    learning_rate: float = field(default=1e-3, metadata=_help("peak learning rate (AdamW)"))
    min_lr: float = field(default=1e-4, metadata=_help("learning rate at the end of the decay"))
    warmup_steps: int = field(default=10, metadata=_help("linear warmup steps"))
    max_steps: int = field(
        default=2000, metadata=_help("step limit; the cosine decay reaches min_lr here")
    )
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    grad_clip: float = field(default=1.0, metadata=_help("gradient norm clip (0 = off)"))
    max_seq_len: int = field(default=96, metadata=_help("tokens kept per training sequence"))
    max_new_tokens: int = field(default=12, metadata=_help("longest generated answer, in tokens"))
    # gate
    gate_threshold: float = field(
        default=-0.5,
        metadata=_help(
            "mean log-probability of the answer's tokens at or above which the parametric "
            "answer is used; below it, recall falls back to retrieval (0 = never parametric "
            "unless certain, -inf-like values = always); with gate_precision set, training "
            "replaces it by the calibrated threshold"
        ),
    )
    gate_precision: float = field(
        default=0.9,
        metadata=_help(
            "precision the gate is calibrated to after training: the adapter's answers to its "
            "held-out generated questions set the threshold at the lowest confidence above "
            "which they are right this often, counting one wrong answer more than seen (3 "
            "right of 3 is 0.75; 9 of 9 is 0.9); where no threshold reaches it the gate is "
            "0.0 (retrieval answers). 0 = no calibration: gate_threshold as given"
        ),
    )
    # evaluation, stopping
    eval_interval: int = field(
        default=50, metadata=_help("steps between evaluations on the held-out questions")
    )
    max_eval_questions: int = field(
        default=64,
        metadata=_help(
            "held-out questions answered at each evaluation (answering is generation, and "
            "evaluation time counts in the budget)"
        ),
    )
    patience: int = field(
        default=6,
        metadata=_help("stop after this many evaluations without improvement (0 = never)"),
    )
    min_delta: float = field(
        default=0.0, metadata=_help("smallest exact-match gain that counts as an improvement")
    )
    time_budget_s: float = field(
        default=300.0,
        metadata=_help(
            "wall-clock seconds for the training loop, evaluations included (0 = no limit)"
        ),
    )
    # runtime
    seed: int = field(default=0, metadata=_help("seed of batching, dropout and LoRA init"))
    device: str = field(default="auto", metadata=_help("'auto' (CUDA if present), 'cuda', 'cpu'"))
    autocast: str = field(
        default="auto",
        metadata=_help("'auto' (bf16 on CUDA, fp32 on CPU), 'bf16' or 'off'"),
    )
    threads: int = field(
        default_factory=default_threads,
        metadata=_help(
            "CPU threads torch may use while training (0 = torch's default); by default half "
            "the cores, at least 1: on a 2-core machine shared with other jobs, more threads "
            "spin against each other"
        ),
    )
    progress: bool = field(default=True, metadata=_help("show a progress bar"))

    def __post_init__(self) -> None:
        if not all(isinstance(m, str) for m in self.target_modules):
            _bad(self, "target_modules", "a tuple of module names (empty = peft's default)")
        self._check_loop(
            positive=("max_new_tokens", "max_eval_questions"), non_negative=("fact_weight",)
        )
        gate = self.gate_threshold
        if isinstance(gate, bool) or not isinstance(gate, int | float) or gate > 0:
            _bad(self, "gate_threshold", "a log-probability (a number <= 0)")
        if not 0.0 <= self.gate_precision <= 1.0:
            _bad(self, "gate_precision", "a float in [0, 1]")


@dataclass(frozen=True)
class AdapterMetadata:
    """What is saved next to an adapter: what it is, what it was trained on, how it scored."""

    kind: str = field(metadata=_help("'retriever' (query-side embedder LoRA) or 'recall'"))
    base_model: str = field(
        metadata=_help("base model: 'all-MiniLM-L6-v2' (the packaged one) or a local directory")
    )
    base_name: str = field(
        metadata=_help("name of the document embedder whose vector space the adapter queries")
    )
    dim: int = field(metadata=_help("vector size"))
    data_hash: str = field(metadata=_help("content hash of the training set"))
    hyperparameters: dict[str, Any] = field(metadata=_help("the training config"))
    metrics: dict[str, Any] = field(metadata=_help("held-out evaluation and training figures"))
    trainset: dict[str, Any] = field(
        default_factory=dict, metadata=_help("training set summary (sizes, kinds, config)")
    )
    created: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"),
        metadata=_help("ISO time the adapter was saved"),
    )
    source_ids: list[str] = field(
        default_factory=list,
        metadata=_help(
            "ids of the memories the training data was made from (forgetting taints an "
            "adapter trained on a forgotten memory); empty for adapters saved before"
        ),
    )
    format: int = field(default=METADATA_FORMAT, metadata=_help("metadata format version"))

    def __post_init__(self) -> None:
        if self.kind not in ADAPTER_KINDS:
            _bad(self, "kind", f"one of {', '.join(ADAPTER_KINDS)}")
        _check_int(self, "dim", minimum=1)

    def save(self, directory: Path) -> Path:
        """Write the metadata file into ``directory``; returns its path."""
        path = Path(directory) / METADATA_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> AdapterMetadata:
        """Read the metadata file of the adapter in ``directory``."""
        path = Path(directory) / METADATA_FILE
        if not path.is_file():
            raise NotFound(
                f"{directory} holds no adapter ({METADATA_FILE} is missing); pass the directory "
                "a training run or the adapter registry wrote"
            )
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError(f"it holds {type(data).__name__}, not a JSON object")
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise InvalidSettings(
                f"adapter metadata {path} is unreadable: {exc}; restore the file, or remove "
                f"{directory} (a registered version: roll it back first)"
            ) from exc


def _check_int(obj: object, name: str, *, minimum: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _bad(obj, name, f"an integer >= {minimum}")


def _bad(obj: object, name: str, expected: str) -> None:
    raise InvalidSettings(
        f"{type(obj).__name__}.{name} must be {expected}, got {getattr(obj, name)!r}"
    )


__all__ = [
    "ADAPTER_KINDS",
    "METADATA_FILE",
    "RECALL_KIND",
    "RETRIEVER_KIND",
    "AdapterMetadata",
    "RecallAdapterConfig",
    "RetrieverAdapterConfig",
    "default_threads",
]
