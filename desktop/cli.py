"""The command line: a thin face over ``desktop.core``.

Every subcommand takes ``--json`` (one JSON object on stdout; human text and progress on
stderr), exits 0 on success, 1 on a user error with a one-line message, 2 on bad arguments.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from desktop import offline
from desktop.config import Settings, home
from desktop.core.errors import GroundedError
from desktop.core.focus import FOCUS_SENTENCES
from desktop.core.jobs import run_job


def _emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        human()


def _err(text: str) -> None:
    click.echo(text, err=True)


def _open_store():
    from desktop.core.store import Store

    return Store.open(home().database)


def _engine(model: Path | None):
    """The model engine as the settings ask (model file, threads, GPU layers, context);
    ``model`` (--model) wins over the settings' model."""
    from desktop.core.engine import Engine

    st = Settings.load()
    return Engine(model or st.model or None, n_ctx=st.n_ctx, n_threads=st.n_threads or None,
                  n_gpu_layers=st.n_gpu_layers)


def _settings_adapters() -> list[tuple[Path, float]]:
    """The adapters the settings attach (the window's settings), as (path, scale) pairs."""
    return [(Path(a["path"]), float(a.get("scale", 1.0))) for a in Settings.load().adapters
            if a.get("path")]


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, a line a second otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, p, force: bool = False) -> None:
        """Show an indexing :class:`~desktop.core.index.Progress`."""
        current = Path(p.current).name if p.current else ""
        self.text(
            f"indexing {p.files_done}/{p.files_total} files · {p.chunks_done} chunks · "
            f"{p.chunks_per_s:.1f} chunks/s · ETA {_fmt_eta(p.eta_s)} · {current}", force)

    def text(self, line: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.1 if self.tty else 1.0):
            return
        self.last = now
        if self.tty:
            width = 120
            sys.stderr.write("\r" + line[:width].ljust(width))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


class _CancelOnInterrupt:
    """Ctrl-C sets the token (the job stops cleanly); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.token = threading.Event()

    def __enter__(self) -> threading.Event:
        self._old = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.token.is_set():
                raise KeyboardInterrupt
            self.token.set()
            _err("\nstopping after the current batch… (Ctrl-C again to abort)")

        signal.signal(signal.SIGINT, handler)
        return self.token

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._old)


@click.group(invoke_without_command=True)
@click.version_option(package_name="grounded", prog_name="grounded")  # pyproject's version
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Grounded: private, offline answers from your own files."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if ctx.invoked_subcommand is None:
        ctx.invoke(gui)


@cli.command()
@click.option("--exit-when-ready", is_flag=True, hidden=True,
              help="Quit once the window is shown, printing the start-up time (benchmarks).")
def gui(exit_when_ready: bool) -> None:
    """Open the window."""
    try:
        from desktop.gui.app import run
    except ImportError:
        raise GroundedError(
            "the window is not part of this build yet; use the subcommands "
            "(grounded --help), e.g. `grounded index FOLDER` and `grounded status`"
        ) from None
    sys.exit(run([sys.argv[0], *(["--exit-when-ready"] if exit_when_ready else [])]))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--collection", "-c", help="Collection to add to (default: 'default').")
@click.option(
    "--embedder",
    help="A BERT-family sentence-transformers model folder ('bundled' for the default); "
    "saved in the settings.",
)
@click.option(
    "--reembed", is_flag=True, help="Re-embed everything (needed after an embedder change)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def index(
    paths: tuple[Path, ...],
    collection: str | None,
    embedder: str | None,
    reembed: bool,
    as_json: bool,
) -> None:
    """Add folders or files to the index, or refresh them (all indexed folders when no PATH)."""
    from desktop.core.embed import OnnxEmbedder
    from desktop.core.index import Indexer

    settings = Settings.load()
    if embedder is not None:
        settings = Settings(
            **{**asdict(settings), "embedder": "" if embedder == "bundled" else embedder}
        )
    emb = OnnxEmbedder(settings.embedder)
    if embedder is not None:
        settings.save()
    line = _ProgressLine()
    with _open_store() as store, _CancelOnInterrupt() as cancel:
        stored = store.embedder()
        if stored and stored[0] != emb.model_id and reembed:
            _err(f"re-embedding every document with {emb.model_id} (was {stored[0]})")
        indexer = Indexer(store, emb, settings)
        report = run_job(
            indexer.run(list(paths), collection, cancel, reembed=reembed),
            lambda p: line.show(p) if p.phase == "indexing" else None,
        )
        line.end()
    data = asdict(report)

    def human() -> None:
        for path, reason in report.failed:
            _err(f"failed:  {path}: {reason}")
        for path, pages in report.image_only:
            _err(f"no text: {path}: scanned pages need OCR ({', '.join(map(str, pages)) or 'all'})")
        for path in report.empty:
            _err(f"empty:   {path}")
        state = "cancelled; run again to resume" if report.cancelled else "done"
        _err(
            f"{state}: {report.added} added, {report.updated} updated, {report.moved} moved, "
            f"{report.removed} removed, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed, {len(report.skipped)} skipped; "
            f"{report.chunks} chunks in {report.seconds:.1f} s"
        )

    human()  # on stderr, with or without --json
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
    if report.cancelled:
        sys.exit(130)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def status(as_json: bool) -> None:
    """Collections, folders, documents, chunks, failed files and why, embedder, database."""
    from desktop.core.library import summarize

    with _open_store() as store:
        summary = summarize(store)

    def human() -> None:
        click.echo(f"database  {summary.database} ({summary.database_bytes / 1048576:.1f} MB)")
        click.echo(
            f"embedder  {summary.embedder or '(none yet)'}"
            + (f" ({summary.embedder_dim} dims)" if summary.embedder_dim else "")
        )
        click.echo(f"total     {summary.documents} documents, {summary.chunks} chunks")
        for coll in summary.collections:
            click.echo(f"\n[{coll.name}] {coll.documents} documents, {coll.chunks} chunks")
            for root in coll.roots:
                states = ", ".join(f"{n} {s}" for s, n in sorted(root.by_status.items()))
                click.echo(
                    f"  {root.path}: {root.documents} documents ({states}), {root.chunks} chunks"
                )
            for prob in coll.problems:
                click.echo(f"  {prob.status:<10} {prob.path}: {prob.reason}")

    _emit(summary.to_dict(), as_json, human)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--collection", "-c", help="Forget a whole collection.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def forget(paths: tuple[Path, ...], collection: str | None, as_json: bool) -> None:
    """Remove indexed folders (or a whole collection) from the index."""
    if not paths and not collection:
        raise click.UsageError("name a PATH or --collection")
    removed_roots, removed_docs = [], 0
    with _open_store() as store:
        if collection:
            coll_id = store.collection_id(collection)
            if coll_id is None:
                raise GroundedError(f"no collection named {collection!r}")
            removed_docs += store.forget_collection(coll_id)
        for p in paths:
            target = str(Path(p).expanduser().resolve())
            matches = [r for r in store.roots() if r[2] == target]
            if not matches:
                inside = [r[2] for r in store.roots() if target.startswith(r[2].rstrip("/") + "/")]
                hint = f" (it is inside the indexed folder {inside[0]})" if inside else ""
                raise GroundedError(f"{p} is not an indexed folder{hint}")
            for root_id, _, path in matches:
                removed_docs += store.forget_root(root_id)
                removed_roots.append(path)
    data = {"roots": removed_roots, "collection": collection, "documents": removed_docs}
    _emit(
        data,
        as_json,
        lambda: _err(
            f"forgot {removed_docs} documents"
            + (f" in {len(removed_roots)} folders" if removed_roots else "")
            + (f" and the collection {collection!r}" if collection else "")
        ),
    )


def _scope_options(f):
    """--collection NAME (repeatable) and the passage options: where to search, how many
    passages, how many of their sentences the prompt carries, whether answers quote them."""
    f = _passage_options(f)
    return click.option("--collection", "-c", "collections", multiple=True,
                        help="Search only these collections (default: all).")(f)


def _passage_options(f):
    """--k N, --sentences N, --quote/--free: passages per answer, the sentences of them the
    model reads, and whether it must quote them."""
    f = click.option("--quote/--free", "quote", default=None,
                     help="Answer with a verbatim passage of one source, cited, or in the "
                          "model's own words (default: the settings'; auto: quotes for a "
                          "question in a script the model hardly knows).")(f)
    f = click.option("--sentences", "sentences", type=click.IntRange(0, 50),
                     help="Sentences of the passages the prompt carries; 0: whole passages "
                          "(default: the settings', 2).")(f)
    return click.option("--k", "k", type=click.IntRange(1, 50),
                        help="Passages per answer (default: the settings', 5).")(f)


def _answerer(engine, retriever, k: int | None, sentences: int | None, quote: bool | None):
    """An Answerer with --k / --sentences / --quote, else the settings'."""
    from desktop.core.answer import Answerer

    settings = Settings.load()
    return Answerer(engine, retriever, k=k or settings.passages,
                    sentences=settings.focus_sentences if sentences is None else sentences,
                    quote=_quote_mode(quote, settings.quote_answers))


def _quote_mode(flag: bool | None, default: str = "auto") -> str:
    """--quote → "always", --free → "never", neither → ``default``."""
    return default if flag is None else ("always" if flag else "never")


def _adapter_options(f):
    """--adapter PATH (repeatable) with --adapter-scale S (one per adapter, in order)."""
    f = click.option("--adapter-scale", "adapter_scales", type=float, multiple=True,
                     help="Scale for each --adapter, in order (default 1.0).")(f)
    return click.option("--adapter", "adapters", multiple=True,
                        help="A GGUF LoRA adapter file, or the NAME of one made by "
                             "`grounded tune` (repeatable).")(f)


def _adapter_pairs(adapters: tuple[str, ...], scales: tuple[float, ...]
                   ) -> list[tuple[Path, float]]:
    """(file, scale) per --adapter: a path as given, or a tuned adapter's name in the data
    folder (an unknown name is an error that lists the known ones)."""
    from desktop.core import adapter_store

    if len(scales) > len(adapters):
        raise click.UsageError("more --adapter-scale values than --adapter files")
    data = home().data
    return [(adapter_store.resolve(a, data), scales[i] if i < len(scales) else 1.0)
            for i, a in enumerate(adapters)]


def _ideal_replies(pairs: list[tuple[Path, float]]) -> list[str]:
    """The held-out ideal replies of the tuned adapters among ``pairs`` (for the form score)."""
    from desktop.core import adapter_store

    return adapter_store.ideal_replies(p for p, _ in pairs)


def _retriever(store):
    """A retriever on the embedder the index was built with (loaded now, so timings measure
    the answers only)."""
    from desktop.core.embed import OnnxEmbedder
    from desktop.core.retrieve import Retriever

    emb = store.embedder()
    if emb is None:
        raise GroundedError("nothing is indexed yet: run `grounded index FOLDER` first")
    setting = "" if emb[0] == OnnxEmbedder().model_id else emb[0]
    retriever = Retriever(store, OnnxEmbedder(setting))
    retriever.embedder.load()
    return retriever


@cli.command()
@click.argument("question")
@_scope_options
@click.option("--no-retrieval", is_flag=True, help="Ask the bare model, without your files.")
@click.option("--model", type=click.Path(path_type=Path), help="A GGUF model file.")
@_adapter_options
@click.option("--temperature", type=float, default=0.0, show_default=True,
              help="0 is greedy and deterministic.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def ask(question: str, collections: tuple[str, ...], k: int | None, sentences: int | None,
        quote: bool | None, no_retrieval: bool, model: Path | None, adapters: tuple[str, ...],
        adapter_scales: tuple[float, ...], temperature: float, as_json: bool) -> None:
    """Answer QUESTION from the indexed files, citing the passages used."""
    pairs = _adapter_pairs(adapters, adapter_scales) or _settings_adapters()
    with _open_store() as store, _engine(model) as engine, _CancelOnInterrupt() as cancel:
        retriever = None if no_retrieval else _retriever(store)
        engine.set_adapters(pairs)
        answerer = _answerer(engine, retriever, k, sentences, quote)
        stream = answerer.ask(question, collections or None, retrieval=not no_retrieval,
                              temperature=temperature, cancel=cancel)
        out = sys.stderr if as_json else sys.stdout
        answer = run_job(stream, lambda tok: (out.write(tok.text), out.flush()))
        out.write("\n")
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    if answer.refused or answer.text != answer.generation_text():
        click.echo(f"\n{answer.text}")
    for s in answer.sources:
        mark = "*" if s.n in answer.cited else " "
        click.echo(f"{mark}[{s.n}] {s.label()}: {' '.join(s.text.split())[:160]}")
    t = answer.timings
    _err(f"retrieval {t.get('retrieve_ms', 0):.0f} ms · first token "
         f"{t.get('first_token_ms', 0):.0f} ms · {t.get('tokens_per_s', 0):.1f} tokens/s"
         + (f" on {t['threads']:.0f} thread(s)" if t.get("threads") else ""))


@cli.command()
@click.argument("question")
@_scope_options
@click.option("--model", type=click.Path(path_type=Path), help="A GGUF model file.")
@_adapter_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def compare(question: str, collections: tuple[str, ...], k: int | None, sentences: int | None,
            quote: bool | None, model: Path | None, adapters: tuple[str, ...],
            adapter_scales: tuple[float, ...], as_json: bool) -> None:
    """Answer QUESTION four ways: base, + retrieval, adapter, adapter + retrieval.

    With a tuned adapter (one `grounded tune` made, with its held-out replies) each row also
    gets a form score: its best ROUGE-L F1 against those replies."""
    from desktop.core.compare import compare as compare_all

    pairs = _adapter_pairs(adapters, adapter_scales) or _settings_adapters()
    with _open_store() as store, _engine(model) as engine, _CancelOnInterrupt() as cancel:
        answerer = _answerer(engine, _retriever(store), k, sentences, quote)
        engine.set_adapters(pairs)  # checked before any answer is spent
        events = compare_all(answerer, question, pairs, collections or None, cancel,
                             ideals=_ideal_replies(pairs))

        def show(event) -> None:
            if event.kind == "begin":
                _err(f"— {event.config} —")
            elif event.kind == "token":
                sys.stderr.write(event.text)
                sys.stderr.flush()
            elif event.kind in ("done", "failed"):
                sys.stderr.write("\n" if event.kind == "done" else f"error: {event.text}\n")

        rows = run_job(events, show)
    data = {"question": question, "rows": [r.to_dict() for r in rows]}

    def human() -> None:
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

    _emit(data, as_json, human)


@cli.command("eval")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--questions", type=click.Path(path_type=Path), help="A questions JSONL file.")
@click.option("--limit", type=click.IntRange(1), help="Sample N questions (reproducibly).")
@click.option("--no-answers", is_flag=True, help="Retrieval metrics only (no model).")
@click.option("--model", type=click.Path(path_type=Path), help="A GGUF model file.")
@click.option("--k", "k", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Passages per answer.")
@click.option("--sentences", type=click.IntRange(0, 50), default=FOCUS_SENTENCES,
              show_default=True, help="Sentences of the passages the prompt carries (0: whole).")
@click.option("--quote/--free", default=None,
              help="Every answer quotes a source verbatim, or none does (default: auto, "
                   "quotes for a question in a script the model hardly knows).")
@_adapter_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def eval_(dataset: Path, questions: Path | None, limit: int | None, no_answers: bool,
          model: Path | None, k: int, sentences: int, quote: bool | None, adapters: tuple[str, ...],
          adapter_scales: tuple[float, ...], as_json: bool) -> None:
    """Retrieval and answer quality on DATASET (a folder of ../shared/eval), per configuration.

    Rows: hybrid, vector and bm25 retrieval, no retrieval (none), and the gold passage
    (oracle: the ceiling retrieval can approach); with --adapter also the adapters alone
    (adapter) and with hybrid retrieval (adapter+hybrid). With a tuned adapter each answer row
    also gets form: the mean best ROUGE-L F1 of its answers against the adapter's held-out
    ideal replies.
    """
    from desktop.core import evaluate
    from desktop.core.answer import Answerer
    from desktop.core.embed import OnnxEmbedder
    from desktop.core.index import Indexer
    from desktop.core.retrieve import Retriever
    from desktop.core.store import Store

    pairs = _adapter_pairs(adapters, adapter_scales)
    if pairs and no_answers:
        raise click.UsageError("--adapter needs answers: drop --no-answers")
    ds = evaluate.load_dataset(dataset, questions, limit)
    emb = OnnxEmbedder()
    line = _ProgressLine()
    rows: dict[str, dict[str, float]] = {}
    with evaluate.temporary_workdir() as tmp, Store.open(Path(tmp) / "eval.sqlite") as store:
        _err(f"indexing {ds.name} into a throwaway index…")
        folder = evaluate.materialize(ds, Path(tmp))
        run_job(Indexer(store, emb).run([folder], "eval"),
                lambda p: line.show(p) if p.phase == "indexing" else None)
        line.end()
        retriever = Retriever(store, emb)
        retriever.search("warm up")
        for mode in evaluate.RETRIEVAL_MODES:
            rows[mode] = evaluate.retrieval_metrics(retriever, ds.questions, mode)
        languages = evaluate.recall_by_language(retriever, ds.questions)
        if not no_answers:
            with _engine(model) as engine:
                engine.set_adapters(pairs)  # checked before any answer is spent
                engine.set_adapters([])
                answerer = Answerer(engine, retriever, k=k, sentences=sentences,
                                    quote=_quote_mode(quote))
                answers = _answer_rows(answerer, ds, store, line, pairs)
            for config, row in answers.items():
                rows.setdefault(config, {}).update(row)
    data = {"dataset": ds.name, "questions": len(ds.questions),
            "unanswerable": 0 if no_answers else len(ds.unanswerable), "configurations": rows}
    if languages:
        data["recall@5_by_language"] = languages

    def human() -> None:
        click.echo(f"{ds.name}: {len(ds.questions)} questions"
                   + (f", {len(ds.unanswerable)} unanswerable" if data["unanswerable"] else ""))
        keys = list(dict.fromkeys(key for row in rows.values() for key in row))
        for part in (keys[:8], keys[8:]):
            if not part:
                continue
            click.echo("config   " + " ".join(f"{key[:14]:>14}" for key in part))
            for config, row in rows.items():
                click.echo(f"{config:<8} " + " ".join(
                    f"{row[key]:>14.3f}" if key in row else f"{'':>14}" for key in part))
        if languages:
            click.echo("recall@5 " + " ".join(f"{lang:>7}" for lang in languages))
            for mode in evaluate.RETRIEVAL_MODES:
                click.echo(f"{mode:<8} " + " ".join(
                    f"{languages[lang][mode]:>7.3f}" for lang in languages))

    _emit(data, as_json, human)


def _answer_rows(answerer, ds, store, line: _ProgressLine, adapters: list[tuple[Path, float]]
                 ) -> dict[str, dict[str, float]]:
    """Answer each question in every answer configuration, with a progress line."""
    from desktop.core import evaluate

    configs = evaluate.ANSWER_CONFIGS + (evaluate.ADAPTER_CONFIGS if adapters else ())
    total = len(configs) * len(ds.questions) + (len(configs) - 1) * len(ds.unanswerable)
    done, start = 0, time.monotonic()

    def tick() -> None:
        nonlocal done
        done += 1
        rate = done / max(1e-9, time.monotonic() - start)
        line.text(f"answering {done}/{total} · {rate:.1f} answers/s · "
                  f"ETA {_fmt_eta((total - done) / rate)}", force=done == total)

    gold = evaluate.gold_passages(store, ds.questions)
    reference = evaluate.reference_passages(answerer.retriever, ds.questions, answerer.k)
    rows = {}
    for config in configs:
        answerer.engine.set_adapters(adapters if config in evaluate.ADAPTER_CONFIGS else [])
        rows[config] = evaluate.answer_metrics(answerer, ds.questions, config, gold,
                                               ds.unanswerable, reference, on_answer=tick,
                                               ideals=_ideal_replies(adapters))
    line.end()
    return rows


@cli.command()
@click.argument("examples", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="The adapter's name (then --adapter NAME).")
@click.option("--epochs", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--system", help="The system prompt to train with (default: the one `ask` uses "
                               "without retrieval).")
@click.option("--model", type=click.Path(path_type=Path),
              help="The GGUF model to tune for (default: the settings' model).")
@click.option("--learning-rate", type=click.FloatRange(0, 1, min_open=True), default=1e-3,
              show_default=True)
@click.option("--batch-tokens", type=click.IntRange(64), default=1024, show_default=True,
              help="Cap on tokens per batch (memory grows with it; lowered to fit).")
@click.option("--force", is_flag=True, help="Replace an adapter of the same name.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def tune(examples: Path, name: str, epochs: int, system: str | None, model: Path | None,
         learning_rate: float, batch_tokens: int, force: bool, as_json: bool) -> None:
    """Tune a LoRA adapter for the model from EXAMPLES (JSONL lines {"prompt": ..., "reply":
    ...} or CSV with a prompt,reply header), on this machine.

    Prints an estimate first, then step, loss and ETA; Ctrl-C cancels (nothing is written).
    The adapter lands in the data folder's adapters/ (checked against llama.cpp first) and is
    then usable as --adapter NAME in ask, compare and eval.
    """
    from desktop import tune_report
    from desktop.core.tune import TuneOptions, Tuner
    from desktop.core.tune_examples import read_examples

    rows = read_examples(examples)
    settings = Settings.load()
    options = TuneOptions(epochs=epochs, learning_rate=learning_rate, batch_tokens=batch_tokens,
                          system=system, force=force, threads=settings.n_threads or None)
    tuner = Tuner(model or settings.model or None, home().data, options)
    line = _ProgressLine()
    _err(f"tuning {name!r} for {tuner.info.path.name} on {len(rows)} examples from "
         f"{examples.name}; loading the model for tuning (about 5 s)…")
    with _CancelOnInterrupt() as cancel:
        report = run_job(tuner.run(rows, name, cancel),
                         lambda p: tune_report.show_progress(p, line, _err))
    if report.cancelled:
        line.end()
        _err("cancelled: no adapter was written")
        if as_json:
            click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
        sys.exit(130)
    tune_report.show_result(report, _err)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str))


@cli.command()
@click.argument("name", type=click.Choice(["index", "rescan", "retrieve", "generate",
                                          "adapters", "tune"]))
@click.option(
    "--corpus",
    "corpora",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Folders to index (index; default: every corpus in ../shared/eval).",
)
@click.option("--limit", type=int, help="Use only the first N files (index).")
@click.option("--sizes", default="64,200", show_default=True,
              help="Example counts to tune (tune: 64 is ours, others from SQuAD).")
@click.option(
    "--files", "n_files", type=int, default=10_000, show_default=True, help="Tree size (rescan)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench(
    name: str, corpora: tuple[Path, ...], limit: int | None, sizes: str, n_files: int,
    as_json: bool
) -> None:
    """Measure a hot path against its natural reference, in one run; print the ratios."""
    from desktop import benchmarks

    if name == "index":
        if not corpora:
            eval_dir = benchmarks.default_eval_dir()
            if eval_dir is None:
                raise GroundedError("no ../shared/eval found: name folders with --corpus")
            corpora = (
                eval_dir / "squad_v1.1_dev" / "corpus_small",
                eval_dir / "covidqa_long" / "corpus",
                eval_dir / "xquad_multilingual" / "corpus",
                eval_dir / "pdfs",
            )
        result = benchmarks.bench_index(list(corpora), _err, limit)
    elif name == "rescan":
        result = benchmarks.bench_rescan(_err, n_files)
    elif name == "retrieve":
        eval_dir = benchmarks.default_eval_dir()
        if eval_dir is None:
            raise GroundedError("no ../shared/eval found beside the checkout")
        result = benchmarks.bench_retrieve(eval_dir, _err)
    elif name == "generate":
        from desktop.bench_generate import bench_generate

        result = bench_generate(_err)
    elif name == "tune":
        from desktop.bench_tune import bench_tune

        try:
            counts = tuple(int(n) for n in sizes.split(","))
        except ValueError:
            raise click.UsageError("--sizes takes numbers separated by commas") from None
        result = bench_tune(benchmarks.default_eval_dir(), _err, sizes=counts)
    else:
        from desktop.bench_adapters import bench_adapters

        result = bench_adapters(None, _err)
    _emit(result, as_json, lambda: None)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line and exit code 1."""
    offline.enforce()
    try:
        cli.main(args=argv, prog_name="grounded", standalone_mode=False)
    except click.exceptions.Abort:
        _err("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GroundedError as exc:
        _err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
