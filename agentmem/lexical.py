"""Lexical (BM25) encoding as sparse vectors, scored inside the vector index.

Documents get BM25 term-frequency weights and queries one weight per unique term; the index
multiplies in each term's IDF (Qdrant's ``Idf`` modifier), so the score is BM25 computed
**inside the scoped index query**: scope isolation, kinds and filters apply to the lexical
channel exactly as to the dense one. Tokenisation (lowercase, English stopwords, Snowball
stemming) is Qdrant's own, from the ``qdrant-edge-py`` package, so the embedded index and a
Qdrant server see identical terms.

Before Qdrant's tokeniser sees a text, :func:`terms_text` NFC-normalises it (so "café" typed
precomposed or decomposed, as macOS input and some copy-paste give it, is one term) and writes
each run of Chinese, Japanese or Korean letters as its overlapping character bigrams
("我姐姐住在上海" -> "我姐 姐姐 姐住 住在 在上 上海"): these scripts put no spaces between
words, and the tokeniser splits on spaces and punctuation only, so a whole sentence would
otherwise be one term. A capital dotted "İ" (Turkish, Azerbaijani) is written "I" first: the
tokeniser lower-cases it to "i" plus a combining dot, so "İstanbul" and "Istanbul" would be two
terms (a home indexed before this needs ``agentmem reindex --rebuild`` for such texts). Text that
is already NFC and has neither reaches the tokeniser unchanged, so its vectors are exactly those
of Qdrant's English encoder.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import regex

# Letters of the Han, Hiragana, Katakana and Hangul scripts, including those the scripts share
# (the prolonged sound mark "ー", the iteration mark "々"), but not their punctuation.
_CJK_RUN = regex.compile(r"(?V1)[[\p{scx=Hani}\p{scx=Hira}\p{scx=Kana}\p{scx=Hang}]&&\p{L}]+")


def _bigrams(run: regex.Match[str]) -> str:
    chars = run.group(0)
    if len(chars) == 1:
        return f" {chars} "
    return " " + " ".join(chars[i : i + 2] for i in range(len(chars) - 1)) + " "


def terms_text(text: str) -> str:
    """``text`` as the BM25 encoder tokenises it: in NFC, "İ" written "I", each run of Chinese,
    Japanese or Korean letters written as its overlapping character bigrams, set apart by spaces.
    Text that is already NFC and has none of these comes back unchanged."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "\u0130" in text:
        text = text.replace("\u0130", "I")
    return _CJK_RUN.sub(_bigrams, text)


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Non-zero dimensions (hashed terms) and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.indices)


class Bm25Encoder:
    """BM25 sparse vectors for documents and queries.

    ``avg_len`` is the expected document length in tokens for BM25's length normalisation;
    memories are short (a chat turn is ~20 tokens after stopwords), so the default is 24
    rather than Qdrant's 256, which is tuned for web pages.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 24.0) -> None:
        self.k1 = k1
        self.b = b
        self.avg_len = avg_len
        self._model: Any = None
        self._counter: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _bm25(self.k1, self.b, self.avg_len)
        return self._model

    def term_counts(self, text: str) -> dict[int, int]:
        """How often each term (hashed, as in :meth:`document`) occurs in ``text``, in the
        order :meth:`document` lists them; the document's length is their sum."""
        if self._counter is None:
            with self._lock:
                if self._counter is None:
                    # With b = 0 and k far above any count, a term's BM25 weight
                    # tf * (k + 1) / (tf + k) is its count tf, exactly.
                    self._counter = _bm25(1e30, 0.0, 1.0)
        v = self._counter.embed_document(terms_text(text))
        return {i: int(tf) for i, tf in zip(v.indices, v.values, strict=True)}

    def term_weight(self, count: int, length: int) -> float:
        """The weight :meth:`document` gives a term occurring ``count`` times in a document of
        ``length`` terms: BM25's term frequency, computed in double precision and rounded to
        single precision as qdrant's encoder does, so it equals that vector's value."""
        k1, b = self.k1, self.b
        weight = count * (k1 + 1.0) / (count + k1 * (1.0 - b + b * length / self.avg_len))
        return float(np.float32(weight))

    def document(self, text: str) -> SparseVector:
        """The sparse vector of a text to index."""
        v = self._load().embed_document(terms_text(text))
        return SparseVector(tuple(v.indices), tuple(v.values))

    def query(self, text: str) -> SparseVector:
        """The sparse vector of a query (empty when the query is only stopwords)."""
        v = self._load().embed_query(terms_text(text))
        return SparseVector(tuple(v.indices), tuple(v.values))


def _bm25(k1: float, b: float, avg_len: float) -> Any:
    import qdrant_edge as qe

    return qe.Bm25(qe.Bm25Config(k=k1, b=b, avg_len=avg_len, language="english"))


__all__ = ["Bm25Encoder", "SparseVector", "terms_text"]
