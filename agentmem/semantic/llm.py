"""The LLM path: extraction and one batched decision call per episode, through litellm.

Every call asks for a JSON object (``response_format``; providers that cannot honour it get
the instruction in the prompt) and validates the answer with the prompt's pydantic model. An
answer that does not parse or validate gets **one** repair request (the bad answer and the
error are shown to the model); a second failure raises :class:`ExtractionFailed`. What follows
is the caller's to say: extraction keeps the episode, marked pending; notes, profiles,
community summaries and reflections fall back to the rules. Timeouts, rate limits, connection
and server errors are retried with exponential backoff and jitter (tenacity, ``llm_retries``
times, starting at ``llm_backoff_s``); when they persist, or for errors that retrying cannot
fix (bad key, unknown model), :class:`LLMUnavailable` is raised.

litellm is imported on first use (it takes seconds to import), with its model cost map read
from the installed package, never fetched.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from agentmem.backends import Backends
from agentmem.errors import ExtractionFailed, LLMUnavailable, first_message
from agentmem.semantic.episodes import Episode
from agentmem.semantic.prompts import DECIDE, EXTRACT, REPAIR, Messages, Prompt
from agentmem.semantic.schema import (
    Decision,
    DecisionBatch,
    DecisionOp,
    ExtractedFact,
    ExtractionResult,
)
from agentmem.semantic.scrub import scrub
from agentmem.settings import Settings, check_llm_kwargs

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
Completion = Callable[..., Any]
"""A function with ``litellm.completion``'s signature (tests wrap it to script answers)."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


LLM_PROVIDER_GROUP = "agentmem.llm_providers"
"""Entry-point group of local litellm providers: each entry point's name is the provider
(model strings ``<name>/<model>``) and its value a ``litellm.CustomLLM`` class; the ``agentmem_gpu``
package registers ``agentmem-local`` (SmolLM2-135M-Instruct, fully offline) here."""


def load_litellm() -> Any:
    """litellm, imported offline (local model cost map) and without its debug banners, with the
    installed local providers (:data:`LLM_PROVIDER_GROUP`) in its ``custom_provider_map``."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:
        raise LLMUnavailable(
            "the LLM path needs litellm, which this install lacks: "
            "pip install 'agentmem[llm]' (or unset AGENTMEM_LLM_MODEL for the LLM-free mode)"
        ) from exc
    litellm.suppress_debug_info = True
    register_providers(litellm)
    return litellm


def register_providers(litellm: Any) -> list[str]:
    """Add every installed local provider that litellm does not know yet to
    ``litellm.custom_provider_map``; returns the names added. Found through entry points, so
    the core imports no provider (nor torch) until one is installed and an LLM is used."""
    known = {p.get("provider") for p in litellm.custom_provider_map}
    added = []
    for entry in sorted(entry_points(group=LLM_PROVIDER_GROUP), key=lambda e: e.name):
        if entry.name in known:
            continue
        handler = entry.load()()
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": entry.name, "custom_handler": handler},
        ]
        added.append(entry.name)
    return added


def _transient_errors(litellm: Any) -> tuple[type[BaseException], ...]:
    names = (
        "Timeout",
        "RateLimitError",
        "APIConnectionError",
        "InternalServerError",
        "ServiceUnavailableError",
    )
    return tuple(getattr(litellm, n) for n in names if hasattr(litellm, n))


def parse_answer(text: Any, model: type[T]) -> T:
    """Validate an LLM answer as ``model``: JSON, optionally in code fences or surrounded by
    prose (the outermost ``{...}`` is tried). Raises ``ValueError`` with a readable reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the answer was empty")
    body = _FENCE.sub("", text.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError as first:
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            raise ValueError(
                f"the answer is not JSON ({first.msg} at position {first.pos})"
            ) from None
        try:
            data = json.loads(body[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ValueError(f"the answer is not JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict):
        raise ValueError(f"the answer is JSON {type(data).__name__}, not an object")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValueError(
            f"the JSON does not have the expected shape: {first_message(exc)}"
        ) from None


class LLMClient:
    """Calls one litellm model with retries, and turns answers into validated models."""

    def __init__(
        self,
        model: str,
        *,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        kwargs: dict[str, Any] | None = None,
        completion: Completion | None = None,
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.kwargs = check_llm_kwargs(dict(kwargs or {}))
        self._completion = completion
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: Settings, completion: Completion | None = None) -> LLMClient:
        """The client for ``settings.llm_model`` (which must be set)."""
        if not settings.llm_model:
            raise LLMUnavailable("no LLM configured: set AGENTMEM_LLM_MODEL (a litellm model)")
        return cls(
            settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
            backoff_s=settings.llm_backoff_s,
            kwargs=settings.llm_kwargs,
            completion=completion,
        )

    def _short(self, exc: BaseException | None) -> str:
        return short_error(exc, self.kwargs)

    @property
    def name(self) -> str:
        """``"llm:<model>"``, as recorded in provenance."""
        return f"llm:{self.model}"

    def complete(self, messages: Messages, *, prompt_id: str) -> str:
        """The model's answer text, retried on transient errors with backoff."""
        import tenacity

        litellm = load_litellm()
        completion = self._completion or litellm.completion
        transient = _transient_errors(litellm)

        def call() -> Any:
            self.calls += 1
            return completion(
                model=self.model,
                messages=messages,
                response_format={"type": "json_object"},
                timeout=self.timeout_s,
                num_retries=0,  # retried here, with backoff
                drop_params=True,
                metadata={"agentmem_prompt": prompt_id},
                **self.kwargs,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(transient),
            wait=tenacity.wait_exponential_jitter(
                initial=self.backoff_s, max=30.0, jitter=self.backoff_s
            ),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "LLM %s: %s; retry %d of %d",
                self.model,
                self._short(state.outcome.exception()) if state.outcome else "error",
                state.attempt_number,
                self.retries,
            ),
        )
        # The provider's exception is not chained (``from None``): its text may echo the key.
        try:
            response = retrying(call)
        except transient as exc:
            raise LLMUnavailable(
                f"LLM {self.model!r} did not answer after {self.retries + 1} attempts "
                f"({type(exc).__name__}: {self._short(exc)}); a later call may succeed "
                "(AGENTMEM_LLM_RETRIES and AGENTMEM_LLM_BACKOFF_S set how long a call retries)"
            ) from None
        except Exception as exc:
            raise LLMUnavailable(
                f"LLM {self.model!r} failed ({type(exc).__name__}: {self._short(exc)}); check "
                "AGENTMEM_LLM_MODEL, the provider key and AGENTMEM_LLM_KWARGS"
            ) from None
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError):
            content = None
        return content if isinstance(content, str) else ""

    def ask(self, prompt: Prompt, **context: Any) -> BaseModel:
        """Render ``prompt``, call the model, validate the answer; one repair on a bad answer,
        then :class:`ExtractionFailed`."""
        messages = prompt.render(**context)
        answer = self.complete(messages, prompt_id=prompt.id)
        try:
            return parse_answer(answer, prompt.answer)
        except ValueError as exc:
            log.warning("LLM %s gave a malformed %s answer (%s); asking once more", self.model,
                        prompt.id, exc)  # fmt: skip
            retry = REPAIR.render(messages=messages, answer=answer, error=str(exc))
            repaired = self.complete(retry, prompt_id=f"{prompt.id}+{REPAIR.id}")
            try:
                return parse_answer(repaired, prompt.answer)
            except ValueError as again:
                raise ExtractionFailed(
                    f"LLM {self.model!r} gave no usable {prompt.id} answer after a repair "
                    f"request ({again})"
                ) from None


def short_error(exc: BaseException | None, kwargs: dict[str, Any] | None = None) -> str:
    """A provider error in one line of at most 300 characters, secrets scrubbed (see
    :mod:`agentmem.semantic.scrub`), fit for a log line or stored metadata."""
    text = scrub(" ".join(str(exc).split()), kwargs)
    return text[:300]


class LLMExtractor:
    """Extracts facts with the :data:`~agentmem.semantic.prompts.EXTRACT` prompt."""

    def __init__(self, client: LLMClient, *, max_facts: int = 20) -> None:
        self.client = client
        self.max_facts = max_facts
        self.name = client.name
        self.version = EXTRACT.id

    def extract(self, episode: Episode) -> list[ExtractedFact]:
        """The facts the model finds in the episode (its answer validated; empty facts and
        duplicates dropped)."""
        speakers = [s for s in episode.speakers if s.lower() not in ("assistant", "system")]
        result = self.client.ask(
            EXTRACT, text=episode.text, said_at=episode.said_at, speakers=speakers
        )
        assert isinstance(result, ExtractionResult)
        seen: dict[str, ExtractedFact] = {}
        for fact in result.facts:
            seen.setdefault(fact.text.lower(), fact)
        return list(seen.values())[: self.max_facts]


class LLMDecider:
    """Decides about all of an episode's new facts in one call with the
    :data:`~agentmem.semantic.prompts.DECIDE` prompt. Existing facts are shown under short
    ids ("1", "2", ...), mapped back to record ids here; a decision naming an id that was not
    shown is read as ADD, and a fact the model left out is added."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.name = client.name
        self.version = DECIDE.id

    def decide(
        self, backends: Backends, episode: Episode, contexts: Sequence[Any]
    ) -> list[Decision]:
        """One decision per fact (or more, when a fact invalidates several known facts)."""
        del backends  # the candidates were gathered already
        local: dict[str, str] = {}
        existing: list[dict[str, Any]] = []
        for ctx in contexts:
            for record in ctx.known:
                if record.id in local.values():
                    continue
                key = str(len(local) + 1)
                local[key] = record.id
                start = record.valid_from or record.event_time
                existing.append(
                    {
                        "id": key,
                        "text": record.text,
                        "since": start.date().isoformat() if start else None,
                    }
                )
        new = [
            {
                "fact": i,
                "text": ctx.fact.text,
                "date": ctx.fact.event_time.date().isoformat() if ctx.fact.event_time else None,
            }
            for i, ctx in enumerate(contexts)
        ]
        if not contexts:
            return []
        batch = self.client.ask(DECIDE, existing=existing, new=new)
        assert isinstance(batch, DecisionBatch)
        by_id = {v: v for v in local.values()}
        decisions: list[Decision] = []
        decided: set[int] = set()
        for d in batch.decisions:
            if d.fact >= len(contexts):
                continue
            target = local.get(d.target_id or "") or by_id.get(d.target_id or "")
            if d.op is not DecisionOp.ADD and target is None:
                if d.op is DecisionOp.NOOP and d.target_id is None:
                    decisions.append(d)
                    decided.add(d.fact)
                    continue
                reason = f"model chose {d.op.value} of unknown fact {d.target_id!r}; added"
                d = Decision(op=DecisionOp.ADD, fact=d.fact, reason=reason)
            else:
                d = d.model_copy(update={"target_id": target})
            decisions.append(d)
            decided.add(d.fact)
        for i in range(len(contexts)):
            if i not in decided:
                decisions.append(
                    Decision(op=DecisionOp.ADD, fact=i, reason="model gave no decision; added")
                )
        return decisions


__all__ = [
    "LLM_PROVIDER_GROUP",
    "Completion",
    "LLMClient",
    "LLMDecider",
    "LLMExtractor",
    "load_litellm",
    "parse_answer",
    "register_providers",
    "short_error",
]
