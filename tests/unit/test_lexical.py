"""The BM25 encoder: CJK segmentation, Unicode normalisation, and unchanged vectors elsewhere."""

# Non-Latin letters that look like Latin ones are what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as qe

from agentmem.evaluation.datasets import small_scope_path
from agentmem.lexical import Bm25Encoder, terms_text

DEMO = Path(__file__).resolve().parents[2] / "examples" / "data" / "conversation.json"

# Already NFC, no Chinese/Japanese/Korean letters: European, Cyrillic, Greek, Arabic, Hebrew,
# Devanagari and Thai text, digits, punctuation, e-mail addresses and emoji (and one "İ", which
# alone is written "I" before the tokeniser sees it).
WORLD = [
    "Mein Hund heißt Bello und ist drei Jahre alt",
    "Ich arbeite bei Siemens in München, seit dem 3. Mai 2023.",
    "Je travaille chez Renault à Paris ; ma sœur habite à Lyon.",
    "¿Dónde vive mi hermana? En Sevilla, cerca de la Giralda.",
    "Zoë met me at the café in Málaga with O'Brien and Łukasz.",
    "Мою собаку зовут Шарик, я работаю в Яндексе в Москве с 2019 года.",
    "Η αδελφή μου μένει στην Αθήνα.",
    "أعمل في شركة أرامكو في الرياض",
    "אחותי גרה בתל אביב",
    "मैं दिल्ली में इन्फोसिस में काम करता हूँ",
    "ฉันชอบกินข้าวผัด",
    "e-mail bob@example.com, call +49 30 1234567 🎉🎉 İstanbul ß ﬁ",
    "",
    "   ",
]


def _corpus() -> list[str]:
    texts = list(WORLD)
    for scope in json.loads(small_scope_path().read_text())["scopes"]:
        texts += scope["memories"] + [q["question"] for q in scope["questions"]]
    demo = json.loads(DEMO.read_text())
    texts += [turn["text"] for session in demo["sessions"] for turn in session["turns"]]
    return texts


def _qdrant(k1: float, b: float, avg_len: float) -> Any:
    return qe.Bm25(qe.Bm25Config(k=k1, b=b, avg_len=avg_len, language="english"))


@pytest.mark.parametrize("avg_len", [24.0, 80.0])
def test_vectors_of_nfc_text_without_cjk_are_qdrants_english_encoder(avg_len: float) -> None:
    """The shipped fusion weights and benchmark figures were measured on these exact vectors."""
    ours, theirs = Bm25Encoder(avg_len=avg_len), _qdrant(1.2, 0.75, avg_len)
    counter = _qdrant(1e30, 0.0, 1.0)
    texts = _corpus()
    assert len(texts) > 300
    for text in texts:
        assert unicodedata.is_normalized("NFC", text)
        seen = text.replace("\u0130", "I")
        assert terms_text(text) == seen
        doc, want = ours.document(text), theirs.embed_document(seen)
        assert (doc.indices, doc.values) == (tuple(want.indices), tuple(want.values)), text
        query, want = ours.query(text), theirs.embed_query(seen)
        assert (query.indices, query.values) == (tuple(want.indices), tuple(want.values)), text
        want = counter.embed_document(seen)
        assert list(ours.term_counts(text).items()) == [
            (i, int(v)) for i, v in zip(want.indices, want.values, strict=True)
        ], text


@pytest.mark.parametrize(
    ("document", "query"),
    [
        ("我姐姐住在上海", "上海"),
        ("我在北京的华为公司工作", "我在哪里工作？"),
        ("姉は大阪に住んでいます", "姉はどこに住んでいますか？"),
        ("東京のソニーで働いています", "ソニー"),
        ("언니는 부산에 살아요", "언니가 부산"),
        ("我在Google工作", "google"),
    ],
)
def test_chinese_japanese_and_korean_words_inside_a_sentence_are_terms(
    document: str, query: str
) -> None:
    """These scripts put no spaces between words: a keyword must still match the sentence."""
    encoder = Bm25Encoder()
    doc, q = encoder.document(document), encoder.query(query)
    assert len(doc.indices) > 1
    assert set(q.indices) & set(doc.indices)
    assert sum(encoder.term_counts(document).values()) == len(terms_text(document).split())


def test_cjk_segmentation_is_character_bigrams_of_letters() -> None:
    assert terms_text("我姐姐住在上海").split() == ["我姐", "姐姐", "姐住", "住在", "在上", "上海"]
    assert terms_text("猫。サーバー").split() == ["猫", "。", "サー", "ーバ", "バー"]
    assert terms_text("上海 is big").split() == ["上海", "is", "big"]


@pytest.mark.parametrize(
    "text", ["Zoë met me at the café in Málaga", "Ich wohne in Köln", "Мой ёжик", "データを送る"]
)
def test_decomposed_and_precomposed_text_have_the_same_terms(text: str) -> None:
    """A memory typed on macOS (NFD) must match a query typed in NFC, and the other way round."""
    encoder = Bm25Encoder()
    nfc, nfd = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert nfc != nfd
    assert encoder.document(nfd) == encoder.document(nfc)
    assert encoder.query(nfd) == encoder.query(nfc)
    assert encoder.term_counts(nfd) == encoder.term_counts(nfc)


@pytest.mark.parametrize("text", ["İstanbul", "İZMİR", "İstanbul'a"])
def test_a_capital_dotted_i_is_the_same_term_as_a_plain_one(text: str) -> None:
    """The tokeniser lower-cases "İ" to "i" plus a combining dot: "İstanbul" typed with a
    Turkish keyboard must meet "Istanbul" and "istanbul" typed without one."""
    encoder = Bm25Encoder()
    plain = text.replace("İ", "I")
    assert encoder.term_counts(text) == encoder.term_counts(plain)
    assert encoder.term_counts(text) == encoder.term_counts(plain.lower())
    assert encoder.query(text) == encoder.query(plain)
