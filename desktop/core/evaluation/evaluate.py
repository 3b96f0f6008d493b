"""`grounded eval`: retrieval and answer quality on a dataset, every configuration in one run.

A dataset folder holds ``questions.jsonl`` (``id``, ``question``, ``answers``,
``gold_doc_ids``) and its corpus: a folder of files named by ``doc_id`` (``corpus/`` or
``corpus_small/``) or ``corpus.jsonl``. The corpus is indexed through the normal pipeline into a
throwaway database; a retrieved chunk is a hit when its file's ``doc_id`` is a gold document.
Retrieval metrics are document-level over the distinct documents of the ranked chunks;
``answer_recall@5`` is passage-level: one of the top 5 passages contains a reference answer.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from desktop.core.answering.answer import Answerer
from desktop.core.answering.citations import strip_citations
from desktop.core.answering.form import form_against
from desktop.core.answering.retrieve import Passage, Retriever
from desktop.core.answering.support import support
from desktop.core.config import Dirs, Settings
from desktop.core.errors import GroundedError
from desktop.core.evaluation import metrics
from desktop.core.evaluation.evidence_measures import (
    check_metrics,
    evidence_metrics,
    follow_up_metrics,
)
from desktop.core.indexing.indexer import Progress
from desktop.core.jobs import run_job
from desktop.core.model.adapter_store import ideal_replies
from desktop.core.storage.store import Store
from desktop.core.workspace import Workspace

RETRIEVAL_MODES = ("hybrid", "vector", "bm25")
#: Answer configurations: the retrieval modes, the bare model, and the gold passage (ceiling).
ANSWER_CONFIGS = (*RETRIEVAL_MODES, "none", "oracle")
#: With ``--adapter``: the adapters alone, and the adapters with hybrid retrieval.
ADAPTER_CONFIGS = ("adapter", "adapter+hybrid")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    gold_doc_ids: frozenset[str]
    answerable: bool = True
    lang: str | None = None


@dataclass
class Dataset:
    """Questions and where their corpus lives."""

    name: str
    questions: list[Question]
    unanswerable: list[Question] = field(default_factory=list)
    corpus_dir: Path | None = None
    corpus_jsonl: Path | None = None


def load_questions(path: Path) -> list[Question]:
    """Read a questions JSONL file."""
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            q = json.loads(line)
            out.append(Question(
                str(q["id"]), q["question"], tuple(q.get("answers") or ()),
                frozenset(q.get("gold_doc_ids") or ()),
                answerable=q.get("expected") != "no_answer_in_corpus" and bool(q.get("answers")),
                lang=q.get("lang"),
            ))
    return out


def load_dataset(folder: Path, questions: Path | None = None, limit: int | None = None,
                 seed: int = 0) -> Dataset:
    """Find a dataset's corpus and questions; sample ``limit`` questions reproducibly.

    With a ``corpus_small/`` folder the matching ``questions_small.jsonl`` (and the
    unanswerable probes, when present) are used unless ``questions`` names a file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GroundedError(f"{folder}: no such dataset folder")
    corpus_dir = next((folder / n for n in ("corpus_small", "corpus") if (folder / n).is_dir()),
                      None)
    jsonl = folder / "corpus.jsonl"
    if corpus_dir is None and not jsonl.is_file():
        raise GroundedError(f"{folder} has no corpus/ folder and no corpus.jsonl")
    small = corpus_dir is not None and corpus_dir.name == "corpus_small"
    qfile = questions or folder / ("questions_small.jsonl" if small else "questions.jsonl")
    if not qfile.is_file():
        raise GroundedError(f"{qfile}: no such questions file")
    qs = [q for q in load_questions(qfile) if q.answerable]
    probes_file = folder / "questions_small_unanswerable.jsonl"
    probes = load_questions(probes_file) if small and probes_file.is_file() else []
    if limit:
        rng = random.Random(seed)
        qs = rng.sample(qs, min(limit, len(qs)))
        probes = rng.sample(probes, min(max(1, limit // 4), len(probes))) if probes else []
    return Dataset(folder.name, qs, probes, corpus_dir, None if corpus_dir else jsonl)


def materialize(dataset: Dataset, into: Path) -> Path:
    """The folder to index: the corpus folder, or corpus.jsonl written out as files."""
    if dataset.corpus_dir is not None:
        return dataset.corpus_dir
    target = into / "corpus"
    target.mkdir(parents=True, exist_ok=True)
    with dataset.corpus_jsonl.open(encoding="utf-8") as f:  # type: ignore[union-attr]
        for line in f:
            doc = json.loads(line)
            title = doc.get("title")
            body = f"# {title}\n\n{doc['text']}" if title else doc["text"]
            (target / f"{doc['doc_id']}.md").write_text(body, encoding="utf-8")
    return target


def doc_id_of(path: str) -> str:
    """A corpus file is named by its doc_id."""
    return Path(path).stem


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def retrieval_metrics(retriever: Retriever, questions: list[Question], mode: str,
                      collection: str | None = None) -> dict[str, float]:
    """recall@1/5/10, mrr@10, ndcg@10, answer_recall@5 and latency for one retrieval mode."""
    rows: dict[str, list[float]] = {k: [] for k in
                                    ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10",
                                     "answer_recall@5")}
    latency = []
    for q in questions:
        r = retriever.search(q.question, k=10, collections=[collection] if collection else None,
                             mode=mode)
        latency.append(r.embed_ms + r.search_ms)
        ranked = metrics.ranked_documents([doc_id_of(p.path) for p in r.passages])
        gold = set(q.gold_doc_ids)
        rows["recall@1"].append(metrics.recall_at(ranked, gold, 1))
        rows["recall@5"].append(metrics.recall_at(ranked, gold, 5))
        rows["recall@10"].append(metrics.recall_at(ranked, gold, 10))
        rows["mrr@10"].append(metrics.mrr_at(ranked, gold, 10))
        rows["ndcg@10"].append(metrics.ndcg_at(ranked, gold, 10))
        rows["answer_recall@5"].append(float(any(
            metrics.contains_answer(p.text, q.answers) for p in r.passages[:5])))
    out = {k: statistics.fmean(v) if v else 0.0 for k, v in rows.items()}
    out["retrieve_ms_p50"] = _percentile(latency, 0.5)
    out["retrieve_ms_p95"] = _percentile(latency, 0.95)
    return out


def temporary_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="grounded-eval-")


def gold_passages(store: Store, questions: list[Question]) -> dict[str, Passage]:
    """The oracle's passage per question: the first chunk of a gold document that contains a
    reference answer (the gold document's first chunk when an answer straddles two chunks)."""
    by_doc: dict[str, list[Passage]] = {}
    for cid, path, page, page_end, heading, text in store.chunk_rows():
        by_doc.setdefault(doc_id_of(path), []).append(
            Passage(cid, path, page, page_end, heading, text, 1.0))
    out = {}
    for q in questions:
        chunks = [p for d in sorted(q.gold_doc_ids) for p in by_doc.get(d, [])]
        if chunks:
            out[q.id] = next((p for p in chunks if metrics.contains_answer(p.text, q.answers)),
                             chunks[0])
    return out


def recall_by_language(retriever: Retriever, questions: list[Question]
                       ) -> dict[str, dict[str, float]]:
    """recall@5 per question language and retrieval mode (empty when no question names one)."""
    langs = sorted({q.lang for q in questions if q.lang})
    return {lang: {mode: retrieval_metrics(retriever, [q for q in questions if q.lang == lang],
                                           mode)["recall@5"] for mode in RETRIEVAL_MODES}
            for lang in langs}


def reference_passages(retriever: Retriever, questions: list[Question], k: int
                       ) -> dict[str, list[str]]:
    """The hybrid passages per question that every configuration's support is scored on."""
    return {q.id: [p.text for p in retriever.search(q.question, k=k).passages]
            for q in questions}


def answer_metrics(answerer: Answerer, questions: list[Question], config: str,
                   gold: dict[str, Passage] | None = None,
                   unanswerable: list[Question] | None = None,
                   reference: dict[str, list[str]] | None = None,
                   ideals: Sequence[str] = ()) -> Generator[None, None, dict[str, float]]:
    """Answer quality for one configuration of :data:`ANSWER_CONFIGS` (with the engine's
    adapters as they are attached); yields once per answer given, returns the metrics.

    em/f1: SQuAD scores of the answer without its citation marks (a refusal scores 0);
    citation_precision: the share of citations naming a passage from a gold document or one
    that contains a reference answer; cite_rate: answers with at least one valid citation;
    refusal_rate: answerable questions refused; support: the mean :func:`support` of the
    answers not refused, against ``reference`` passages; unanswerable_refusal_rate: probes
    refused; form (with a tuned adapter's held-out ``ideals``): the mean best ROUGE-L F1 of
    the answers not refused against them (:func:`desktop.core.answering.form.form_against`);
    contains: answers that contain a reference answer; true_unsupported: of those answers'
    sentences, the share the sentence check marks unsupported.
    """
    em, f1, ms, supports, forms, contains, true_checks = [], [], [], [], [], [], []
    cites = supported = cited_answers = refused = 0
    for q in questions:
        answer = run_job(_ask(answerer, q, config, gold))
        text = "" if answer.refused else strip_citations(answer.text)
        em.append(metrics.exact_match(text, q.answers))
        f1.append(metrics.f1_score(text, q.answers))
        contains.append(float(bool(text) and metrics.contains_answer(text, q.answers)))
        if contains[-1] and answer.sentences:
            true_checks += [not c.supported for c in answer.sentences]
        ms.append(answer.timings.get("total_ms", 0.0))
        refused += answer.refused
        if reference is not None and not answer.refused:
            score = support(answer.text, reference.get(q.id, []))
            if score is not None:
                supports.append(score)
        if ideals and not answer.refused:
            forms.append(form_against(answer.text, ideals))
        cited = [s for s in answer.sources if s.n in answer.cited]
        cited_answers += bool(cited)
        cites += len(cited)
        supported += sum(doc_id_of(s.path) in q.gold_doc_ids
                         or metrics.contains_answer(s.text, q.answers) for s in cited)
        yield
    n = max(1, len(questions))
    out = {"em": statistics.fmean(em) if em else 0.0, "f1": statistics.fmean(f1) if f1 else 0.0,
           "citation_precision": supported / cites if cites else 0.0,
           "cite_rate": cited_answers / n, "refusal_rate": refused / n,
           "contains": statistics.fmean(contains) if contains else 0.0,
           "answer_ms_p50": _percentile(ms, 0.5)}
    if true_checks:
        out["true_unsupported"] = statistics.fmean(true_checks)
    if reference is not None:
        out["support"] = statistics.fmean(supports) if supports else 0.0
    if ideals:
        out["form"] = statistics.fmean(forms) if forms else 0.0
    if unanswerable and config != "oracle":
        refusals = 0
        for q in unanswerable:
            refusals += run_job(_ask(answerer, q, config, gold)).refused
            yield
        out["unanswerable_refusal_rate"] = refusals / len(unanswerable)
    return out


def _ask(answerer: Answerer, q: Question, config: str, gold: dict[str, Passage] | None):
    config = config.removeprefix("adapter+")
    if config == "oracle":
        passage = (gold or {}).get(q.id)
        return answerer.ask(q.question, passages=[passage] if passage else [])
    if config in ("none", "adapter"):
        return answerer.ask(q.question, retrieval=False)
    return answerer.ask(q.question, mode=config)


@dataclass(frozen=True)
class AnswerProgress:
    """Answers given so far of ``total``, and the seconds they took."""

    done: int
    total: int
    elapsed_s: float


@dataclass
class EvalResult:
    """Every configuration's metrics, and recall@5 per question language (when named)."""

    dataset: str
    questions: int
    unanswerable: int
    configurations: dict[str, dict[str, float]]
    recall_by_language: dict[str, dict[str, float]]
    checks: dict[str, float] = field(default_factory=dict)  # the sentence check, constructed
    follow_ups: dict[str, float] = field(default_factory=dict)  # with --follow-ups

    def to_dict(self) -> dict:
        data = {"dataset": self.dataset, "questions": self.questions,
                "unanswerable": self.unanswerable, "configurations": self.configurations}
        if self.recall_by_language:
            data["recall@5_by_language"] = self.recall_by_language
        if self.checks:
            data["sentence_check"] = self.checks
        if self.follow_ups:
            data["follow_ups"] = self.follow_ups
        return data


def run(dataset: Dataset, settings: Settings, answers: bool = True,
        follow_ups: Sequence[dict] = (), configs: Sequence[str] = ()
        ) -> Generator[Progress | AnswerProgress, None, EvalResult]:
    """Index ``dataset``'s corpus into a throwaway workspace built from ``settings`` (its
    model, passages, sentences, quoting and adapters), then measure retrieval and evidence in
    every mode, the sentence check, the ``follow_ups`` pairs (when given) and, with
    ``answers``, the answer ``configs`` (all of them when empty: the adapter ones too when
    ``settings`` attach adapters). Yields indexing progress, then one :class:`AnswerProgress`
    per answer.
    """
    unknown = sorted(set(configs) - set(ANSWER_CONFIGS + ADAPTER_CONFIGS))
    if unknown:
        raise GroundedError(f"unknown answer configuration {', '.join(unknown)}: choose from "
                            f"{', '.join(ANSWER_CONFIGS + ADAPTER_CONFIGS)}")
    with temporary_workdir() as tmp:
        root = Path(tmp)
        dirs = Dirs(config=root / "config", data=root / "data", logs=root / "logs")
        with Workspace(settings, dirs) as ws:
            yield from ws.index([materialize(dataset, root)], "eval")
            retriever = ws.retriever()
            retriever.search("warm up")
            rows = {mode: retrieval_metrics(retriever, dataset.questions, mode)
                    | evidence_metrics(retriever, dataset.questions, mode, settings.passages,
                                       dataset.unanswerable)
                    for mode in RETRIEVAL_MODES}
            languages = recall_by_language(retriever, dataset.questions)
            checks = check_metrics(retriever, dataset.questions,
                                   gold_passages(retriever.store, dataset.questions),
                                   settings.passages)
            followed = follow_up_metrics(retriever, follow_ups, doc_id_of) if follow_ups else {}
            if answers:
                adapters = ws.attach_adapters(strict=True)  # checked before any answer
                answered = yield from _answer_rows(ws.answerer(retriever), dataset, adapters,
                                                   configs)
                for config, row in answered.items():
                    rows.setdefault(config, {}).update(row)
    return EvalResult(dataset.name, len(dataset.questions),
                      len(dataset.unanswerable) if answers else 0, rows, languages, checks,
                      followed)


def _answer_rows(answerer: Answerer, ds: Dataset, adapters: list[tuple[str, float]],
                 only: Sequence[str] = ()
                 ) -> Generator[AnswerProgress, None, dict[str, dict[str, float]]]:
    """Answer each question in every answer configuration (or those in ``only``), yielding
    progress per answer."""
    configs = tuple(c for c in ANSWER_CONFIGS + (ADAPTER_CONFIGS if adapters else ())
                    if not only or c in only)
    total = (len(configs) * len(ds.questions)
             + sum(c != "oracle" for c in configs) * len(ds.unanswerable))
    done, start = 0, time.monotonic()
    gold = gold_passages(answerer.retriever.store, ds.questions)
    reference = reference_passages(answerer.retriever, ds.questions, answerer.k)
    ideals = ideal_replies(path for path, _ in adapters)
    rows = {}
    for config in configs:
        answerer.engine.set_adapters(adapters if config in ADAPTER_CONFIGS else [])
        answers = answer_metrics(answerer, ds.questions, config, gold, ds.unanswerable,
                                 reference, ideals=ideals)
        while True:
            try:
                next(answers)
            except StopIteration as stop:
                rows[config] = stop.value
                break
            done += 1
            yield AnswerProgress(done, total, time.monotonic() - start)
    return rows
