"""A tiny causal language model built from a config in code, with a word-level tokenizer
built from the texts it will see (nothing is downloaded).

For tests, benchmarks and demos where no pretrained causal LM is available offline: the model
is randomly initialised, so it knows no language; it only shows the machinery works.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from agentmem_gpu.recall_adapter import PROMPT
from agentmem_gpu.recall_adapter_data import RecallSet

__all__ = ["SPECIALS", "build_tiny_lm", "build_tiny_lm_for"]

SPECIALS = ("[UNK]", "[PAD]", "[EOS]")


def build_tiny_lm(
    directory: Path,
    texts: Iterable[str],
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 2,
    seed: int = 0,
    init_range: float = 0.2,
) -> Path:
    """A randomly initialised GPT-2 (``n_layer`` x ``n_embd``) and a whitespace word-level
    tokenizer whose vocabulary is every word of ``texts`` (plus the prompt's), saved to disk."""
    words: dict[str, int] = {s: i for i, s in enumerate(SPECIALS)}
    for text in (*texts, PROMPT.format(question="")):
        for word in text.split():
            words.setdefault(word, len(words))
    tok = Tokenizer(models.WordLevel(vocab=words, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(words),
        n_positions=128,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=words["[EOS]"],
        eos_token_id=words["[EOS]"],
        pad_token_id=words["[PAD]"],
        # GPT-2's 0.02 leaves a frozen random model unable to put much probability on any
        # token (tied embeddings and a unit LayerNorm bound the logits); a pretrained model
        # has no such limit, so the tiny one gets larger random weights.
        initializer_range=init_range,
    )
    directory.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def build_tiny_lm_for(directory: Path, recallset: RecallSet, **kwargs: Any) -> Path:
    """:func:`build_tiny_lm` with the vocabulary of a recall set."""
    return build_tiny_lm(directory, recallset.texts(), **kwargs)
