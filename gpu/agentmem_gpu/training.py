"""The one training loop of both adapter kinds, and the small helpers it is made of.

nanoGPT's order, step after step: set the learning rate -> evaluate, keep the best LoRA and
checkpoint -> stop? -> one optimisation step (forward, backward, clip, step) -> log. What is
trained is a :class:`Task`: the retriever adapter (:mod:`agentmem_gpu.retriever`, InfoNCE on a
query tower) and the recall adapter (:mod:`agentmem_gpu.recall_adapter`, next-token loss on a
causal LM) each supply their batches' loss, their evaluation and the score that ranks
evaluations; everything else (schedule, early stopping, the time budget, checkpoints and
resuming from them, threads, device, mixed precision) lives here once.

A checkpoint (``checkpoint.pt`` in the output directory, rewritten atomically at every
evaluation) holds everything a run needs to continue: the LoRA, the best LoRA so far, the
optimiser, the loop's state and the random generators. A run stopped by its time budget, or
killed, continues from it with ``resume=True`` (a resumed run sees the same batches, because
batch ``n`` is a function of the seed and ``n``: :func:`batch_indices`).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from agentmem.errors import AgentMemError, BackendUnavailable, InvalidSettings
from agentmem_gpu.config import (
    RECALL_KIND,
    AdapterMetadata,
    RecallAdapterConfig,
    RetrieverAdapterConfig,
)

CHECKPOINT_FILE = "checkpoint.pt"
"""The resumable state of a run, in its output directory (never copied into the registry)."""

CHECKPOINT_FORMAT = 2

LoopConfig = RetrieverAdapterConfig | RecallAdapterConfig

# Fields that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = frozenset(
    {"time_budget_s", "max_steps", "patience", "progress", "device", "threads"}
)


class Task(Protocol):
    """What the loop trains: a model with a LoRA, its batches and its evaluation."""

    name: str
    """Shown on the progress bar."""

    def parameters(self) -> list[Tensor]:
        """The trainable (LoRA) weights."""
        ...

    def loss(self, step: int, autocast: contextlib.AbstractContextManager[Any]) -> Tensor:
        """Loss of the batch of ``step``, in training mode (forward under ``autocast``)."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics of the model as it is now."""
        ...

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        """What ranks evaluations: the first number must beat the best by ``min_delta``; the
        next ones break ties."""
        ...

    def lora_state(self) -> dict[str, Tensor]:
        """A detached copy of the LoRA weights."""
        ...

    def load_lora_state(self, state: dict[str, Tensor]) -> None:
        """Load weights from :meth:`lora_state`."""
        ...


@dataclass
class TrainState:
    """Everything of a run that changes from step to step (saved in the checkpoint)."""

    step: int = 0
    base: dict[str, float] | None = None  # step 0's evaluation: LoRA's B is zero, the base model
    best: dict[str, float] = field(default_factory=dict)
    best_score: tuple[float, ...] | None = None
    best_step: int = 0
    bad_evals: int = 0
    elapsed_s: float = 0.0
    train_loss: float | None = None  # moving average
    loss_start: float | None = None  # loss of the first step
    stopped: str = ""
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class RunIdentity:
    """What a checkpoint must match to be resumed: the data, the config, the base model."""

    data_hash: str
    config: dict[str, Any]
    base_model: str


def train(
    task: Task,
    config: LoopConfig,
    out_dir: Path,
    identity: RunIdentity,
    *,
    device: torch.device,
    resume: bool = False,
) -> TrainState:
    """Train ``task`` until ``max_steps``, the time budget or early stopping; leave the best
    LoRA seen by evaluation loaded, and return the run's state."""
    optimizer = torch.optim.AdamW(
        task.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    state = TrainState()
    best_lora = task.lora_state()
    checkpoint = out_dir / CHECKPOINT_FILE
    if resume and checkpoint.is_file():
        best_lora = load_checkpoint(checkpoint, task, optimizer, state, identity)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=config.max_steps,
        initial=state.step,
        desc=task.name,
        disable=not config.progress,
        leave=False,
    )
    autocast = autocast_for(config, device)
    started = time.monotonic() - state.elapsed_s
    eval_s = step_s = 0.0
    while True:
        # 1. learning rate for this step
        lr = get_lr(state.step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # 2. evaluate and checkpoint; stop early enough that the final evaluation still fits
        state.stopped = stop_reason(state, config, time.monotonic() - started + eval_s + step_s)
        # (a run resumed from a checkpoint has already evaluated the step it resumes at)
        evaluated = bool(state.history) and state.history[-1]["step"] == state.step
        if not evaluated and (state.step % config.eval_interval == 0 or state.stopped):
            t_eval = time.monotonic()
            if _record_evaluation(task, state, config, lr):
                best_lora = task.lora_state()
            state.elapsed_s = time.monotonic() - started
            save_checkpoint(checkpoint, task, optimizer, state, best_lora, identity)
            eval_s = time.monotonic() - t_eval
            if config.patience and state.bad_evals >= config.patience:
                state.stopped = state.stopped or "early_stop"
        if state.stopped:
            break

        # 3. one optimisation step: forward, backward, clip, step
        t_step = time.monotonic()
        value = optimisation_step(task, optimizer, config, state.step, autocast)
        step_s = time.monotonic() - t_step

        # 4. log
        _log_step(state, value)
        bar.update(1)
        best = state.best_score[0] if state.best_score else 0.0
        bar.set_postfix(loss=f"{state.train_loss:.3f}", lr=f"{lr:.1e}", best=f"{best:.3f}")
    bar.close()
    task.load_lora_state(best_lora)
    state.elapsed_s = time.monotonic() - started
    return state


def optimisation_step(
    task: Task,
    optimizer: torch.optim.Optimizer,
    config: LoopConfig,
    step: int,
    autocast: contextlib.AbstractContextManager[Any],
) -> float:
    """Forward and backward on the batch of ``step``, clip, update; returns the loss."""
    loss = task.loss(step, autocast)
    loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(task.parameters(), config.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def _record_evaluation(task: Task, state: TrainState, config: LoopConfig, lr: float) -> bool:
    """Evaluate, log, count a non-improvement; True when this evaluation is the new best."""
    metrics = task.evaluate()
    if state.base is None:
        state.base = dict(metrics)
    state.history.append(
        {"step": state.step, **metrics, "lr": lr, "train_loss": state.train_loss or 0.0}
    )
    score = task.score(metrics)
    if improved(score, state.best_score, config.min_delta):
        state.best, state.best_score, state.best_step = dict(metrics), score, state.step
        state.bad_evals = 0
        return True
    state.bad_evals += 1
    return False


def improved(score: tuple[float, ...], best: tuple[float, ...] | None, min_delta: float) -> bool:
    """Whether ``score`` beats ``best``: its first number by more than ``min_delta``, or by
    nothing while the next numbers are higher (an exact tie keeps the earlier best)."""
    if best is None:
        return True
    return score[0] > best[0] + min_delta or (score[0] >= best[0] and score[1:] > best[1:])


def _log_step(state: TrainState, value: float) -> None:
    if state.loss_start is None:
        state.loss_start = value
    state.train_loss = value if state.train_loss is None else 0.9 * state.train_loss + 0.1 * value
    state.step += 1


def stop_reason(state: TrainState, config: LoopConfig, projected_s: float) -> str:
    """Why the loop stops now ("" = it goes on): the step limit, or a time budget that the
    next step and evaluation (``projected_s``) would overrun."""
    if state.step >= config.max_steps:
        return "max_steps"
    if config.time_budget_s and projected_s >= config.time_budget_s:
        return "time_budget"
    return ""


def get_lr(step: int, config: LoopConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr`` at ``max_steps`` (nanoGPT's schedule)."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if step >= config.max_steps:
        return config.min_lr
    progress = (step - config.warmup_steps) / (config.max_steps - config.warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The training examples of ``step``: epochs are seeded permutations, so any step's batch
    is known without replaying the run (a resumed run sees the same batches)."""
    batch_size = min(batch_size, n)
    per_epoch = n // batch_size
    epoch, j = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[j * batch_size : (j + 1) * batch_size]


# --- checkpoints -----------------------------------------------------------------------------


def save_checkpoint(
    path: Path,
    task: Task,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    best_lora: dict[str, Tensor],
    identity: RunIdentity,
) -> None:
    """Write everything needed to resume the run to ``path``, atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "lora": task.lora_state(),
        "best_lora": best_lora,
        "optimizer": optimizer.state_dict(),
        "state": asdict(state),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "identity": asdict(identity),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # a crash mid-write leaves the previous checkpoint intact


def load_checkpoint(
    path: Path,
    task: Task,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    identity: RunIdentity,
) -> dict[str, Tensor]:
    """Restore a run saved by :func:`save_checkpoint` into ``task``, ``optimizer`` and
    ``state``; returns the best LoRA so far. A checkpoint of another train set, config (but
    for the fields a resumed run may change) or base model is refused."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InvalidSettings(
            f"checkpoint {path} was written by another version of agentmem; delete it or "
            "train with resume=False"
        )
    saved = RunIdentity(**payload["identity"])
    if (
        saved.data_hash != identity.data_hash
        or _fixed(saved.config) != _fixed(identity.config)
        or saved.base_model != identity.base_model
    ):
        raise InvalidSettings(
            f"checkpoint {path} belongs to another train set, config or base model; delete it "
            "or train with resume=False"
        )
    task.load_lora_state(payload["lora"])
    optimizer.load_state_dict(payload["optimizer"])
    for key, value in payload["state"].items():
        setattr(state, key, value)
    if state.best_score is not None:
        state.best_score = tuple(state.best_score)
    torch.set_rng_state(payload["rng"])
    if payload["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return dict(payload["best_lora"])


def _fixed(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _RESUMABLE_CHANGES}


# --- runtime: device, precision, threads, peft, LoRA weights ---------------------------------


def device_of(name: str) -> torch.device:
    """The torch device for a config's ``device`` ('auto' = CUDA when present)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidSettings(
            f"device {name!r} was asked for but CUDA is not available; use 'auto'"
        )
    return torch.device(name)


def autocast_for(
    config: LoopConfig, device: torch.device
) -> contextlib.AbstractContextManager[Any]:
    """The mixed-precision context of training's forward passes."""
    # bf16 halves activation memory and is ~2x faster on GPUs; on CPU it is opt-in because
    # not every CPU has fast bf16 kernels.
    if config.autocast == "bf16" or (config.autocast == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Let torch use ``threads`` CPU threads inside the block (0 = leave torch's setting)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def peft_module() -> Any:
    """The ``peft`` package, or an error naming the extra that installs it."""
    try:
        import peft
    except ImportError as exc:
        raise BackendUnavailable(
            "adapters need peft, from the gpu extra: pip install 'agentmem[gpu]'"
        ) from exc
    return peft


def attach_lora(
    base: Any,
    config: LoopConfig,
    *,
    target_modules: list[str] | str | None,
    task_type: str | None = None,
    adapter_dir: str | Path | None = None,
    adapter_name: str = "default",
) -> Any:
    """``base`` (frozen) with a fresh LoRA from ``config``, or with the saved one in
    ``adapter_dir`` (not trainable) under ``adapter_name``."""
    peft = peft_module()
    with warnings.catch_warnings():
        # transformers 5 deprecates an attribute peft still reads; nothing to act on.
        warnings.simplefilter("ignore", FutureWarning)
        # GPT-2's Conv1D layers: peft sets fan_in_fan_out itself and says so; nothing to do.
        warnings.filterwarnings("ignore", message=".*fan_in_fan_out", category=UserWarning)
        if adapter_dir is not None:
            with reading_lora(adapter_dir):
                return peft.PeftModel.from_pretrained(
                    base, str(adapter_dir), adapter_name=adapter_name, is_trainable=False
                )
        # LoRA's A matrices are random: seed them so a run is reproducible.
        torch.manual_seed(config.seed)
        lora = peft.LoraConfig(
            task_type=task_type,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=target_modules,
            bias="none",
        )
        return peft.get_peft_model(base, lora)


LORA_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""The files of a saved LoRA (peft's), besides agentmem's own metadata."""


@contextlib.contextmanager
def reading_lora(adapter_dir: str | Path) -> Iterator[None]:
    """Load the saved LoRA in ``adapter_dir`` inside this block: a missing file, or one that
    cannot be read (truncated weights, broken JSON), raises InvalidSettings naming the
    directory and how to get rid of it. (Without its files, peft would even take the local
    path for a Hub repo id.)"""
    from safetensors import SafetensorError

    path = Path(adapter_dir)
    try:
        missing = [name for name in LORA_FILES if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{' and '.join(missing)} missing")
        yield
    except torch.OutOfMemoryError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise InvalidSettings(
            f"adapter {path} is unreadable ({type(exc).__name__}: {exc}); {_lora_fix(path)}"
        ) from exc


def _lora_fix(path: Path) -> str:
    """How to stop using the unreadable adapter in ``path``."""
    if not re.fullmatch(r"v\d+", path.name):  # not a registered version
        return "restore its files or train it again"
    try:
        recall = AdapterMetadata.load(path).kind == RECALL_KIND
    except AgentMemError:
        recall = False
    kind = f" --kind {RECALL_KIND}" if recall else ""
    return (
        f"restore its files, or roll it back (`agentmem adapters rollback {path.parent.name}"
        f"{kind}`) and train the scope's adapter again"
    )


class LoraWeights:
    """The LoRA weight helpers of a wrapper whose ``model`` is a peft model."""

    model: Any

    def lora_state(self) -> dict[str, Tensor]:
        """A detached copy of the trainable (LoRA) weights."""
        return {
            name: p.detach().clone() for name, p in self.model.named_parameters() if p.requires_grad
        }

    def load_lora_state(self, state: dict[str, Tensor]) -> None:
        """Load weights saved by :meth:`lora_state`."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value.to(params[name].device))

    def save_adapter(self, directory: Path) -> None:
        """peft's ``save_pretrained``: ``adapter_model.safetensors`` + ``adapter_config.json``."""
        self.model.save_pretrained(str(directory), safe_serialization=True)

    def trainable(self) -> list[Tensor]:
        """The weights the optimiser updates."""
        return [p for p in self.model.parameters() if p.requires_grad]


__all__ = [
    "CHECKPOINT_FILE",
    "LORA_FILES",
    "LoraWeights",
    "RunIdentity",
    "Task",
    "TrainState",
    "attach_lora",
    "autocast_for",
    "batch_indices",
    "device_of",
    "get_lr",
    "improved",
    "load_checkpoint",
    "peft_module",
    "reading_lora",
    "save_checkpoint",
    "stop_reason",
    "torch_threads",
    "train",
]
