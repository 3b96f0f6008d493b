"""Scoring functions, pure and small: SQuAD answer normalisation, EM/F1, ranking metrics."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

from desktop.core.storage.keywords import UNSPACED

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation) | set("。，、！？：；「」《》")
_MIXED = re.compile(f"[{UNSPACED}]|[^\\s{UNSPACED}]+")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Words; characters of scripts written without spaces (Chinese, Japanese, Thai...) count
    one by one, as MLQA's "mixed segmentation" does: otherwise a partly right Chinese answer
    would be one wrong token."""
    return _MIXED.findall(normalize_answer(text))


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised reference."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(a) for a in answers))


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """Best token-overlap F1 of the prediction against any reference."""
    pred = _tokens(prediction)
    best = 0.0
    for answer in answers:
        gold = _tokens(answer)
        common = Counter(pred) & Counter(gold)
        overlap = sum(common.values())
        if not pred or not gold or overlap == 0:
            continue
        precision, recall = overlap / len(pred), overlap / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether ``text`` contains any reference answer, after normalisation."""
    norm = normalize_answer(text)
    return any(normalize_answer(a) and normalize_answer(a) in norm for a in answers)


def ranked_documents(doc_ids: Sequence[str]) -> list[str]:
    """Distinct documents in order of their best-ranked chunk."""
    return list(dict.fromkeys(doc_ids))


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """1.0 when a gold document is among the first ``k``."""
    return float(any(d in gold for d in ranked[:k]))


def mrr_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    """Reciprocal rank of the first gold document within ``k`` (else 0)."""
    for i, d in enumerate(ranked[:k], start=1):
        if d in gold:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k."""
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0
