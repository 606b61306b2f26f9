"""Shared pieces of the gpu tests: a tiny BERT built from a config in code, a document
embedder over it, a scope of conversation turns, and a fast training config."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from agentmem import MemoryRecord, Scope
from agentmem.embedders import Embedder, minilm_path, normalise
from agentmem_gpu import RetrieverAdapterConfig

TINY_NAME = "tiny-bert"

TURNS = [
    ("Alice", "I adopted a beagle puppy named Rex from the shelter."),
    ("Bob", "Rex sounds adorable! I started learning the cello in January."),
    ("Alice", "I went hiking in Yosemite with my sister Clara last weekend."),
    ("Bob", "I bought a vintage motorcycle, a red Triumph from 1972."),
    ("Alice", "My bakery on Elm Street finally opened; sourdough sold out by noon."),
    ("Bob", "I ran the Chicago marathon in four hours and ten minutes."),
    ("Alice", "I am painting a mural of sunflowers for the library in Portland."),
    ("Bob", "My daughter Maya won the regional chess tournament."),
    ("Alice", "I planted tomatoes, basil and zucchini in the community garden."),
    ("Bob", "We moved to a cabin near Lake Tahoe because of my new remote job."),
    ("Alice", "I read a novel by Haruki Murakami about a mysterious well."),
    ("Bob", "I repaired the roof after the hailstorm damaged the shingles."),
    ("Alice", "I volunteered at the animal rescue and fostered three kittens."),
    ("Bob", "My band played jazz standards at the Blue Note on Friday."),
    ("Alice", "I signed up for a pottery class to make ceramic bowls."),
    ("Bob", "I caught a huge trout while fishing on the Snake River."),
    ("Alice", "I visited my grandmother in Lisbon and tried pastel de nata."),
    ("Bob", "I built a treehouse for the kids out of reclaimed cedar."),
    ("Alice", "I got promoted to head nurse at Saint Mary hospital."),
    ("Bob", "I learned to bake croissants from a French cookbook."),
    ("Alice", "I started a podcast about urban beekeeping and honey."),
    ("Bob", "My telescope showed the rings of Saturn for the first time."),
    ("Alice", "I finished knitting a wool scarf for my nephew Theo."),
    ("Bob", "I coached the soccer team to a win against the Falcons."),
]


def scope_records(turns: Sequence[tuple[str, str]] = TURNS) -> list[MemoryRecord]:
    """Turns as episodic memories: sessions of eight turns a day apart, turns a minute apart."""
    start = datetime(2024, 5, 1, 9, tzinfo=UTC)
    return [
        MemoryRecord(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentmem-test/{text}")),
            scope=Scope(user_id="alice"),
            text=f"{speaker}: {text}",
            event_time=start + timedelta(days=i // 8, minutes=i),
            metadata={"session": i // 8, "speaker": speaker},
        )
        for i, (speaker, text) in enumerate(turns)
    ]


class TinyEmbedder(Embedder):
    """The tiny BERT as a document embedder: masked mean pooling and L2 norm, written out
    independently of agentmem_gpu.retriever so it is a reference for the query tower."""

    def __init__(self, directory: Path) -> None:
        self.name = directory.name
        self.model_path = directory  # what agentmem_gpu.pipeline trains an adapter on
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self.model = BertModel.from_pretrained(str(directory)).eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt"
        )
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return normalise(((hidden * mask).sum(1) / mask.sum(1)).numpy())


def fast_config(**changes: object) -> RetrieverAdapterConfig:
    """A config for the tiny model: a high learning rate, no time limit, no progress bar."""
    values: dict[str, object] = {
        "learning_rate": 1e-2,
        "min_lr": 1e-3,
        "warmup_steps": 2,
        "max_steps": 60,
        "eval_interval": 10,
        "batch_size": 16,
        "patience": 0,
        "time_budget_s": 0,
        "progress": False,
        "device": "cpu",
        "eval_k": 1,
    }
    values.update(changes)
    return RetrieverAdapterConfig(**values)  # type: ignore[arg-type]


def build_tiny_model(directory: Path) -> Path:
    """A randomly initialised 2-layer, 32-d BERT with the MiniLM tokenizer, saved to disk."""
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=tokenizer.vocab_size,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def damage_lora(adapter_dir: Path, damage: str) -> None:
    """Break a saved LoRA the way a bad copy or a full disk does (one of ``LORA_DAMAGES``)."""
    weights, config = adapter_dir / "adapter_model.safetensors", adapter_dir / "adapter_config.json"
    if damage == "weights missing":
        weights.unlink()
    elif damage == "weights truncated":
        weights.write_bytes(b"\x10" + b"\x00" * 7 + b"{}")
    elif damage == "config missing":
        config.unlink()
    else:
        config.write_text("not json")


LORA_DAMAGES = ("weights missing", "weights truncated", "config missing", "config not json")
