"""`grounded eval`'s measures of the evidence, the sentence check and follow-ups.

- :func:`evidence_metrics`: ``evidence@1`` / ``evidence@3`` (a reference answer appears in the
  first / first three evidence sentences) beside today's baselines measured in the same run:
  the first sentence of the old focus excerpt (whole words, no rank prior) and the first
  sentence of the best passage.
- :func:`check_metrics`: the sentence check (:func:`desktop.core.answering.support.check`) on a
  constructed set: each question's true answer sentence (the sentence of its gold passage that
  holds a reference answer) and a copy of it with one fact changed (a number moved by one, or
  a name swapped for another name of the set), each checked against the question's retrieved
  passages and its gold passage. A changed copy flagged unsupported is a true positive.
- :func:`follow_up_metrics`: recall@5 of follow-up questions with and without the
  conversation, and of standalone questions asked after an unrelated turn.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from desktop.core.answering import evidence
from desktop.core.answering.answer import passes_gate
from desktop.core.answering.follow_up import search_text
from desktop.core.answering.retrieve import Passage, Retrieval, Retriever
from desktop.core.answering.sentences import flat, sentence_spans
from desktop.core.answering.support import NAME_WORD, check
from desktop.core.errors import GroundedError
from desktop.core.evaluation import metrics


def _holds(sentences: Sequence[str], answers: Sequence[str], k: int) -> float:
    return float(any(metrics.contains_answer(s, answers) for s in sentences[:k]))


def gate_passes(retriever: Retriever, found: Retrieval, ranked: Sequence[evidence.Sentence]
                ) -> bool:
    """The answerer's relevance gate over ``ranked`` evidence (:func:`passes_gate`)."""
    best = ranked[0] if ranked else None
    return passes_gate(retriever, found, best.score if best else 0.0, best and best.text)


def _gate_refuses(retriever: Retriever, question: str, k: int, mode: str) -> bool:
    found = retriever.search(question, k=k, mode=mode)
    ranked = evidence.rank(question, [p.text for p in found.passages])
    return not gate_passes(retriever, found, ranked)


def evidence_metrics(retriever: Retriever, questions: Sequence, mode: str, k: int,
                     probes: Sequence = ()) -> dict[str, float]:
    """evidence@1/@3 over ``k`` passages of ``mode`` retrieval, the two baselines, the time
    to the evidence (search + ranking) at p50/p95, and the share of the questions (and of the
    unanswerable ``probes``) the relevance gate refuses before any model is asked."""
    rows: dict[str, list[float]] = {key: [] for key in (
        "evidence@1", "evidence@3", "focus_first@1", "passage_first@1", "gate_refused")}
    took = []
    for q in questions:
        t0 = time.perf_counter()
        found = retriever.search(q.question, k=k, mode=mode)
        texts = [p.text for p in found.passages]
        scored = evidence.rank(q.question, texts)
        ranked = [s.text for s in scored]
        took.append((time.perf_counter() - t0) * 1000)
        rows["gate_refused"].append(float(not gate_passes(retriever, found, scored)))
        rows["evidence@1"].append(_holds(ranked, q.answers, 1))
        rows["evidence@3"].append(_holds(ranked, q.answers, 3))
        old = sorted(evidence.rank(q.question, texts, stem=0, prior=0.0, restated=1.0)
                     [:evidence.FOCUS_SENTENCES], key=lambda s: (s.passage, s.start))
        rows["focus_first@1"].append(_holds([s.text for s in old], q.answers, 1))
        first = [flat(texts[0][s:e]) for s, e in sentence_spans(texts[0])[:1]] if texts else []
        rows["passage_first@1"].append(_holds(first, q.answers, 1))
    out = {key: statistics.fmean(v) if v else 0.0 for key, v in rows.items()}
    if probes:
        out["gate_refused_probes"] = statistics.fmean(
            _gate_refuses(retriever, q.question, k, mode) for q in probes)
    took.sort()
    out["evidence_ms_p50"] = took[len(took) // 2] if took else 0.0
    out["evidence_ms_p95"] = took[min(len(took) - 1, int(0.95 * len(took)))] if took else 0.0
    return out


_NUMBER = re.compile(r"\d+")


def change_one_fact(sentence: str, names: Sequence[str], rng: random.Random,
                    prefer_number: bool) -> str | None:
    """``sentence`` with one fact changed: its first number moved by one, or its first name
    inside the sentence swapped for another of ``names`` (None when it has neither)."""
    number = _NUMBER.search(sentence)
    name = NAME_WORD.search(sentence)
    if number and (prefer_number or not name):
        return f"{sentence[:number.start()]}{int(number.group()) + 1}{sentence[number.end():]}"
    if name:
        others = [n for n in names if n.lower() != name.group().lower()
                  and n.lower() not in sentence.lower()]
        if others:
            return f"{sentence[:name.start()]}{rng.choice(others)}{sentence[name.end():]}"
    return None


def check_metrics(retriever: Retriever, questions: Sequence, gold: dict[str, Passage], k: int
                  ) -> dict[str, float]:
    """Precision and recall of "unsupported" on changed copies, and the share of true answer
    sentences marked unsupported (see the module's docstring)."""
    pairs = []
    for q in questions:
        passage = gold.get(q.id)
        if passage is None:
            continue
        true = next((flat(passage.text[s:e]) for s, e in sentence_spans(passage.text)
                     if metrics.contains_answer(flat(passage.text[s:e]), q.answers)), None)
        if true:
            found = [p.text for p in retriever.search(q.question, k=k).passages]
            pairs.append((true, {n: t for n, t in enumerate([passage.text, *found], 1)}))
    names = sorted({m.group() for true, _ in pairs for m in NAME_WORD.finditer(true)})
    rng = random.Random(0)
    flagged_true = flagged_changed = changed_total = 0
    for i, (true, sources) in enumerate(pairs):
        flagged_true += not all(c.supported for c in check(true, sources))
        copy = change_one_fact(true, names, rng, prefer_number=i % 2 == 0)
        if copy is not None:
            changed_total += 1
            flagged_changed += not all(c.supported for c in check(copy, sources))
    flagged = flagged_true + flagged_changed
    return {"check_precision": flagged_changed / flagged if flagged else 0.0,
            "check_recall": flagged_changed / changed_total if changed_total else 0.0,
            "true_unsupported": flagged_true / len(pairs) if pairs else 0.0,
            "true_sentences": float(len(pairs)), "changed_sentences": float(changed_total)}


def load_follow_ups(path: Path) -> list[dict]:
    """The pairs of a follow-ups JSONL file (``tests/data/follow_ups.jsonl``'s format)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        pairs = [json.loads(line) for line in lines if line.strip()]
        for pair in pairs:
            _ = pair["first"]["question"], pair["follow_up"]["question"], \
                pair["follow_up"]["standalone"], pair["follow_up"]["gold_doc_ids"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GroundedError(f"{path}: not a follow-ups file ({exc})") from None
    return pairs


def follow_up_metrics(retriever: Retriever, pairs: Sequence[dict], doc_id_of
                      ) -> dict[str, float]:
    """recall@5 of each pair's follow-up: asked standalone (its original wording), as
    written without the conversation, with it; and the standalone question asked after
    another article's first question (the conversation must not drag it away)."""
    rows: dict[str, list[float]] = {key: [] for key in (
        "standalone", "follow_up_alone", "follow_up_in_conversation",
        "standalone_after_unrelated")}

    def hit(text: str, gold: set[str]) -> float:
        return float(any(doc_id_of(p.path) in gold
                         for p in retriever.search(text, k=5).passages))

    embedder = retriever.embedder
    for i, pair in enumerate(pairs):
        first, follow = pair["first"]["question"], pair["follow_up"]
        gold = set(follow["gold_doc_ids"])
        unrelated = next((p["first"]["question"] for p in pairs[i + 1:] + pairs[:i]
                          if p.get("article") != pair.get("article")), "")
        rows["standalone"].append(hit(follow["standalone"], gold))
        rows["follow_up_alone"].append(hit(follow["question"], gold))
        rows["follow_up_in_conversation"].append(
            hit(search_text(embedder, follow["question"], [first]), gold))
        rows["standalone_after_unrelated"].append(
            hit(search_text(embedder, follow["standalone"], [unrelated]), gold))
    out = {key: statistics.fmean(v) if v else 0.0 for key, v in rows.items()}
    out["pairs"] = float(len(pairs))
    return out
