"""`grounded ask`, `compare` and `eval`: answers from the index, and their quality."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from desktop.cli.terminal import (
    CancelOnInterrupt,
    ProgressLine,
    adapter_settings,
    emit,
    err,
    fmt_eta,
    model_setting,
    quote_mode,
    settings_with,
    workspace,
)
from desktop.core.answering.evidence import answer_span
from desktop.core.jobs import run_job

if TYPE_CHECKING:
    from desktop.core.answering.answer import Answer


def scope_options(f):
    """--collection NAME (repeatable) and the passage options: where to search, how many
    passages, how many of their sentences the prompt carries, whether answers quote them."""
    f = click.option("--quote/--free", "quote", default=None,
                     help="Answer with a verbatim passage of one source, cited, or in the "
                          "model's own words (default: the settings'; auto: quotes for a "
                          "question in a script the model hardly knows).")(f)
    f = click.option("--sentences", "sentences", type=click.IntRange(0, 50),
                     help="Evidence sentences shown first and carried by the prompt; 0: the "
                          "prompt carries whole passages (default: the settings'; unless set "
                          "there, by the model's size).")(f)
    f = click.option("--k", "k", type=click.IntRange(1, 50),
                     help="Passages per answer (default: the settings', 5).")(f)
    return click.option("--collection", "-c", "collections", multiple=True,
                        help="Search only these collections (default: all).")(f)


def model_options(f):
    """--model GGUF, and --adapter PATH|NAME (repeatable) with --adapter-scale S (in order)."""
    f = click.option("--adapter-scale", "adapter_scales", type=float, multiple=True,
                     help="Scale for each --adapter, in order (default 1.0).")(f)
    f = click.option("--adapter", "adapters", multiple=True,
                     help="A GGUF LoRA adapter file, or the NAME of one made by "
                          "`grounded tune` (repeatable).")(f)
    return click.option("--model", help="A GGUF model file, or the name of one that "
                        "`grounded models` lists.")(f)


def _answer_workspace(k, sentences, quote, model, adapters, adapter_scales):
    """The workspace with the command's options on top of the settings, its adapters
    attached and checked before any answer is spent."""
    ws = workspace(passages=k, focus_sentences=sentences, quote_answers=quote_mode(quote),
                   model=model_setting(model), adapters=adapter_settings(adapters, adapter_scales))
    try:
        ws.attach_adapters(strict=True)
    except BaseException:
        ws.close()
        raise
    return ws


@click.command()
@click.argument("question")
@scope_options
@click.option("--no-retrieval", is_flag=True, help="Ask the bare model, without your files.")
@click.option("--follow-up", is_flag=True,
              help="Ask within the collection's last conversation (the window's too): a "
                   "question that leans on the one before is searched with it.")
@model_options
@click.option("--temperature", type=float, default=0.0, show_default=True,
              help="0 is greedy and deterministic.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def ask(question: str, collections: tuple[str, ...], k: int | None, sentences: int | None,
        quote: bool | None, no_retrieval: bool, follow_up: bool, model: Path | None,
        adapters: tuple[str, ...], adapter_scales: tuple[float, ...], temperature: float,
        as_json: bool) -> None:
    """Answer QUESTION from the indexed files, citing the passages used: the evidence
    first (the sentences of your files that answer it), then the model's answer with each
    sentence checked against them. The turn joins the collection's conversation."""
    with _answer_workspace(k, sentences, quote, model, adapters, adapter_scales) as ws, \
            CancelOnInterrupt() as cancel:
        from desktop.core.answering.answer import Found
        from desktop.core.answering.conversations import turn_from_answer
        from desktop.core.workspace import DEFAULT_COLLECTION

        conversation = collections[0] if collections else DEFAULT_COLLECTION
        history = [t.question for t in ws.conversations.load(conversation)] if follow_up else []
        stream = ws.ask(question, collections or None, cancel, retrieval=not no_retrieval,
                        temperature=temperature, history=history)
        out = sys.stderr if as_json else sys.stdout

        def show(item) -> None:
            if isinstance(item, Found):
                if item.evidence and not as_json:
                    click.echo("Evidence" if item.asked else "Closest evidence in your files")
                    for i, e in enumerate(item.evidence, start=1):
                        click.echo(f"  {i}. {e.sentence}  [{e.n}] {e.label()}")
                    click.echo("\nAnswer")
                return
            out.write(item.text)
            out.flush()

        answer = run_job(stream, show)
        streamed = answer.generation_text()
        if not answer.refused and streamed and answer.text.startswith(streamed):
            out.write(answer.text[len(streamed):])  # the citation a supported answer gets
            streamed = answer.text
        if streamed:
            out.write("\n")
        try:
            ws.conversations.append(conversation, turn_from_answer(answer))
        except OSError as exc:
            err(f"warning: the conversation was not saved: {exc}")
    if as_json:
        emit(answer.to_dict(), True, lambda: None)
        return
    if answer.text != streamed:
        click.echo(f"\n{answer.text}" if streamed else answer.text)
    for line in sentence_checks(answer):
        click.echo(line)
    for s in answer.sources:
        mark = "*" if s.n in answer.cited else " "
        ocr = f" (OCR, {s.ocr:.0%} confident)" if s.ocr is not None else ""
        click.echo(f"{mark}[{s.n}] {s.label()}{ocr}: {' '.join(s.text.split())[:160]}")
    err(timing_line(answer.timings))


def timing_line(t: dict[str, float]) -> str:
    """How long the evidence and the model took; a question the gate refused never reached
    the model, and the line says so rather than print a first token of 0 ms."""
    if "first_token_ms" not in t:
        return f"evidence {t.get('evidence_ms', 0):.0f} ms · the model was not asked"
    return (f"evidence {t.get('evidence_ms', 0):.0f} ms · first token "
            f"{t['first_token_ms']:.0f} ms · {t.get('tokens_per_s', 0):.1f} tokens/s"
            + (f" on {t['threads']:.0f} thread(s)" if t.get("threads") else ""))


def sentence_checks(answer: Answer) -> list[str]:
    """One line per sentence of the answer: what it rests on, with the answer's words marked
    «so» in the evidence sentence, or that it is not in the files."""
    lines = []
    for c in answer.sentences:
        if not c.supported:
            lines.append(f"  ✗ not in your files: {c.text}")
            continue
        where = f"source [{c.source}]"
        if c.evidence is not None:
            e = answer.evidence[c.evidence]
            span = answer_span(e.sentence, c.text)
            shown = e.sentence if span is None else (
                f"{e.sentence[:span[0]]}«{e.sentence[span[0]:span[1]]}»{e.sentence[span[1]:]}")
            where = f"evidence {c.evidence + 1}: {shown}"
        lines.append(f"  ✓ {c.text} — {where}")
    return lines


@click.command()
@click.argument("question")
@scope_options
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def compare(question: str, collections: tuple[str, ...], k: int | None, sentences: int | None,
            quote: bool | None, model: Path | None, adapters: tuple[str, ...],
            adapter_scales: tuple[float, ...], as_json: bool) -> None:
    """Answer QUESTION four ways: base, + retrieval, adapter, adapter + retrieval.

    With a tuned adapter (one `grounded tune` made, with its held-out replies) each row also
    gets a form score: its best ROUGE-L F1 against those replies."""
    evidence: list[dict] = []
    with _answer_workspace(k, sentences, quote, model, adapters, adapter_scales) as ws, \
            CancelOnInterrupt() as cancel:

        def show(event) -> None:
            if event.kind == "evidence" and not evidence:
                evidence.extend(e.to_dict() for e in event.found.evidence)
            elif event.kind == "begin":
                err(f"— {event.config} —")
            elif event.kind == "token":
                sys.stderr.write(event.text)
                sys.stderr.flush()
            elif event.kind in ("done", "failed"):
                sys.stderr.write("\n" if event.kind == "done" else f"error: {event.text}\n")

        rows = run_job(ws.compare(question, collections or None, cancel), show)
    data = {"question": question, "evidence": evidence, "rows": [r.to_dict() for r in rows]}

    def human() -> None:
        if evidence:
            click.echo("Evidence")
            for i, e in enumerate(evidence, start=1):
                click.echo(f"  {i}. {e['sentence']}  [{e['n']}] {Path(e['path']).name}")
            click.echo()
        with_form = any(r.get("form") is not None for r in data["rows"])
        click.echo(f"{'config':<10} {'support':>8}" + (f" {'form':>5}" if with_form else "")
                   + f" {'latency':>9} {'tokens':>7}  cited  answer")
        for r in data["rows"]:
            if r["error"]:
                click.echo(f"{r['config']:<10} error: {r['error']}")
                continue
            sup = "-" if r["support"] is None else f"{r['support']:.2f}"
            form = "" if not with_form else " " + (
                f"{'-':>5}" if r.get("form") is None else f"{r['form']:>5.2f}")
            cited = ",".join(str(c["n"]) for c in r["cited"]) or "-"
            click.echo(f"{r['config']:<10} {sup:>8}{form} {r['latency_ms']:>7.0f}ms "
                       f"{r['tokens']:>7}  {cited:<5}  {' '.join(r['answer'].split())[:80]}")

    emit(data, as_json, human)


@click.command("eval")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--questions", type=click.Path(path_type=Path), help="A questions JSONL file.")
@click.option("--limit", type=click.IntRange(1), help="Sample N questions (reproducibly).")
@click.option("--no-answers", is_flag=True, help="Retrieval metrics only (no model).")
@click.option("--k", "k", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Passages per answer.")
@click.option("--sentences", type=click.IntRange(0, 50),
              help="Evidence sentences the prompt carries (0: whole passages; default: by the "
                   "model's size).")
@click.option("--quote/--free", default=None,
              help="Every answer quotes a source verbatim, or none does (default: auto, "
                   "quotes for a question in a script the model hardly knows).")
@click.option("--follow-ups", "follow_ups", type=click.Path(path_type=Path),
              help="A follow-ups JSONL file over this dataset (tests/data/follow_ups.jsonl): "
                   "adds follow-up recall@5 with and without the conversation.")
@click.option("--configs", default="",
              help="Answer only these configurations, comma-separated (e.g. hybrid,oracle); "
                   "default: all.")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def eval_(dataset: Path, questions: Path | None, limit: int | None, no_answers: bool,
          k: int, sentences: int | None, quote: bool | None, follow_ups: Path | None,
          configs: str,
          model: Path | None, adapters: tuple[str, ...], adapter_scales: tuple[float, ...],
          as_json: bool) -> None:
    """Retrieval and answer quality on DATASET (a folder of ../shared/eval), per configuration.

    Rows: hybrid, vector and bm25 retrieval, no retrieval (none), and the gold passage
    (oracle: the ceiling retrieval can approach); with --adapter also the adapters alone
    (adapter) and with hybrid retrieval (adapter+hybrid). With a tuned adapter each answer row
    also gets form: the mean best ROUGE-L F1 of its answers against the adapter's held-out
    ideal replies.
    """
    from desktop.core.config import Settings
    from desktop.core.evaluation import evaluate

    if adapters and no_answers:
        raise click.UsageError("--adapter needs answers: drop --no-answers")
    mine = settings_with(model=model_setting(model))
    # The bundled embedder and default chunking, the person's model and how it runs.
    settings = Settings(model=mine.model, n_ctx=mine.n_ctx, n_threads=mine.n_threads,
                        n_gpu_layers=mine.n_gpu_layers, passages=k, focus_sentences=sentences,
                        quote_answers=quote_mode(quote) or "auto",
                        adapters=adapter_settings(adapters, adapter_scales) or [])
    from desktop.core.evaluation.evidence_measures import load_follow_ups

    pairs = load_follow_ups(follow_ups) if follow_ups else []
    ds = evaluate.load_dataset(dataset, questions, limit)
    line = ProgressLine()
    err(f"indexing {ds.name} into a throwaway index…")

    def show(p) -> None:
        if isinstance(p, evaluate.AnswerProgress):
            rate = p.done / max(1e-9, p.elapsed_s)
            line.text(f"answering {p.done}/{p.total} · {rate:.1f} answers/s · "
                      f"ETA {fmt_eta((p.total - p.done) / rate)}", force=p.done == p.total)
        else:
            line.show(p)

    only = [c.strip() for c in configs.split(",") if c.strip()]
    result = run_job(evaluate.run(ds, settings, answers=not no_answers, follow_ups=pairs,
                                  configs=only), show)
    line.end()
    rows, languages = result.configurations, result.recall_by_language

    def human() -> None:
        click.echo(f"{ds.name}: {result.questions} questions"
                   + (f", {result.unanswerable} unanswerable" if result.unanswerable else ""))
        keys = list(dict.fromkeys(key for row in rows.values() for key in row))
        for part in (keys[:8], keys[8:]):
            if not part:
                continue
            click.echo("config   " + " ".join(f"{key[:14]:>14}" for key in part))
            for config, row in rows.items():
                click.echo(f"{config:<8} " + " ".join(
                    f"{row[key]:>14.3f}" if key in row else f"{'':>14}" for key in part))
        for title, measured in (("sentence check", result.checks),
                                ("follow-ups recall@5", result.follow_ups)):
            if measured:
                click.echo(f"{title}: " + " · ".join(
                    f"{key} {value:.3f}" if value % 1 else f"{key} {value:.0f}"
                    for key, value in measured.items()))
        if languages:
            click.echo("recall@5 " + " ".join(f"{lang:>7}" for lang in languages))
            for mode in evaluate.RETRIEVAL_MODES:
                click.echo(f"{mode:<8} " + " ".join(
                    f"{languages[lang][mode]:>7.3f}" for lang in languages))

    emit(result.to_dict(), as_json, human)
