"""The app's objects for one person, built once: both faces (the CLI and the window) call this.

A :class:`Workspace` is made from :class:`~desktop.core.config.Settings` and the folders
(:class:`~desktop.core.config.Dirs`) and owns everything built from them: the connection the
answers read through, the embedders, the model engine and its adapters, the retriever. Its
operations (index, ask, compare, tune...) are the core's progress generators
(:mod:`desktop.core.jobs`), so a face only drives them and shows what they yield.

Threads: the window runs index jobs and answer jobs on two lanes at once. Index jobs and quick
reads open their own connection (SQLite in WAL mode lets them read while another writes); the
answer lane keeps one for the retriever's vector cache. Building the parts is guarded by one
lock; the embedder serialises its own calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop.core.config import Dirs, Settings, home
from desktop.core.errors import GroundedError

if TYPE_CHECKING:
    from desktop.core.answering.answer import Answer, Answerer, Found
    from desktop.core.answering.compare import CompareEvent, CompareRow
    from desktop.core.answering.conversations import Conversations
    from desktop.core.answering.retrieve import Retriever
    from desktop.core.embedding.embedder import OnnxEmbedder
    from desktop.core.indexing.indexer import IndexReport, Progress
    from desktop.core.model.engine import Engine, Token
    from desktop.core.storage.library import LibrarySummary
    from desktop.core.storage.passages import PassageContext
    from desktop.core.storage.store import Store
    from desktop.core.tuning.records import TuneOptions, TuneProgress, TuneReport
    from desktop.core.tuning.tuner import Tuner

log = logging.getLogger(__name__)

#: The collection a folder joins when none is named (the window's first one too).
DEFAULT_COLLECTION = "default"

NOTHING_INDEXED = ("nothing is indexed yet: add a folder first (drop it on the window, or "
                   "`grounded index FOLDER`)")


#: The reply that measures a model's speed the first time it loads here (0.3-0.5 s for the
#: bundled model on 2 cores).
SPEED_PROMPT = ({"role": "user", "content": "Say in two sentences what a library is for."},)
SPEED_TOKENS = 24


@dataclass(frozen=True)
class ModelState:
    """A model's loading state, for the status bar: ``state`` is loading, ready or failed."""

    model: str  # "embedder" | "model" | "adapters" | "speed"
    state: str
    detail: str = ""


@dataclass(frozen=True)
class Forgotten:
    """What a forget removed: the folders, the collection (if one was named), documents."""

    roots: list[str]
    collection: str | None
    documents: int


def _engine_key(s: Settings) -> tuple:
    return (s.model, s.n_ctx, s.n_threads, s.n_gpu_layers)


class Workspace:
    """Settings, folders and the objects built from them; see the module docstring.

    ``embedder``: an already loaded embedder to use for its model id (tests share one)."""

    def __init__(self, settings: Settings | None = None, dirs: Dirs | None = None,
                 embedder: OnnxEmbedder | None = None) -> None:
        self.dirs = dirs or home()
        self.settings = settings or Settings.load(self.dirs)
        self._lock = threading.Lock()
        self._embedders: dict[str, OnnxEmbedder] = {}
        if embedder is not None:
            self._embedders[embedder.model_id] = embedder
        self._engine: Engine | None = None
        self._engine_key: tuple | None = None
        self._answer_store: Store | None = None
        self._retriever: Retriever | None = None
        self._adapters_tried = False
        self.adapters_on: list[tuple[str, float]] = []  # attached now, as (file, scale)
        self.adapter_errors: list[str] = []  # why the others were left out

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- settings -------------------------------------------------------------------------

    def update_settings(self, settings: Settings) -> None:
        """Save new settings; the model is rebuilt on next use if its settings changed, the
        adapters re-attached, and the database reopened if the data folder moved (in the
        window, run it in the answer lane)."""
        settings.save(self.dirs)
        self.settings = settings
        self._adapters_tried = False
        dirs = home()
        if dirs.database != self.dirs.database:
            self._close_answer_store()
        self.dirs = dirs

    # -- the parts ------------------------------------------------------------------------

    @property
    def conversations(self) -> Conversations:
        """The conversations kept per collection (in the data folder)."""
        from desktop.core.answering.conversations import Conversations

        return Conversations(self.dirs.data / "conversations")

    def open_store(self) -> Store:
        """A new connection to the index (the caller closes it)."""
        from desktop.core.storage.store import Store

        return Store.open(self.dirs.database)

    def embedder(self, setting: str | None = None) -> OnnxEmbedder:
        """The embedder for a setting ("" bundled; None: the settings' own), created once."""
        from desktop.core.embedding.embedder import OnnxEmbedder, resolve_model

        setting = self.settings.embedder if setting is None else setting
        model_id = resolve_model(setting)[1]
        with self._lock:
            if model_id not in self._embedders:
                self._embedders[model_id] = OnnxEmbedder(setting)
            return self._embedders[model_id]

    def recorded_embedder(self) -> str | None:
        """The id of the embedder the index was built with (None: nothing indexed yet)."""
        with self.open_store() as store:
            recorded = store.embedder()
        return recorded[0] if recorded else None

    def index_embedder(self) -> OnnxEmbedder:
        """The embedder the index was built with (the settings' one for a new index)."""
        return self._embedder_for(self.recorded_embedder())

    def _embedder_for(self, recorded: str | None) -> OnnxEmbedder:
        """The embedder of a recorded model id (None: the settings' own)."""
        from desktop.core.embedding.embedder import BUNDLED_ID

        if recorded is None:
            return self.embedder()
        return self.embedder("" if recorded == BUNDLED_ID else recorded)

    def engine(self) -> Engine:
        """The model (checked, not yet loaded), rebuilt when its settings changed."""
        from desktop.core.model.engine import Engine

        s = self.settings
        with self._lock:
            if self._engine is None or self._engine_key != _engine_key(s):
                if self._engine is not None:
                    self._engine.close()
                    self.adapters_on, self._adapters_tried = [], False
                self._engine = None
                self._engine = Engine(s.model or None, n_ctx=s.n_ctx,
                                      n_threads=s.n_threads or None, n_gpu_layers=s.n_gpu_layers)
                self._engine_key = _engine_key(s)
            return self._engine

    def retriever(self, collections: Sequence[str] | None = None) -> Retriever:
        """The retriever over the index, on the answer lane's connection, its embedder
        loaded. A clear error when nothing (or nothing in ``collections``) is indexed."""
        from desktop.core.answering.retrieve import Retriever

        if self._answer_store is None or self._answer_store.path != self.dirs.database:
            self._close_answer_store()
            self._answer_store = self.open_store()
        store = self._answer_store
        recorded = store.embedder()
        if recorded is None or not store.has_chunks():
            raise GroundedError(NOTHING_INDEXED)
        for name in collections or ():
            if store.collection_id(name) is None:
                raise GroundedError(f"the collection {name!r} is empty: add a folder to it")
        emb = self._embedder_for(recorded[0])
        if self._retriever is None or self._retriever.embedder is not emb:
            if self._retriever is not None:
                self._retriever.close()
            self._retriever = Retriever(store, emb)
        emb.load()
        return self._retriever

    def answerer(self, retriever: Retriever | None) -> Answerer:
        """An :class:`Answerer` on the engine with the settings' passages, quoting and
        evidence sentences (by the model's size unless set)."""
        from desktop.core.answering.answer import Answerer
        from desktop.core.answering.reading import sentences_for

        s, engine = self.settings, self.engine()
        return Answerer(engine, retriever, k=s.passages, quote=s.quote_answers,
                        sentences=sentences_for(engine.info.parameters, s.focus_sentences))

    # -- adapters -------------------------------------------------------------------------

    def settings_adapters(self) -> list[tuple[str, float]]:
        """The settings' adapters as (file or tuned adapter's name, scale) pairs."""
        return [(str(a["path"]), float(a.get("scale", 1.0))) for a in self.settings.adapters
                if a.get("path")]

    def attach_adapters(self, strict: bool = False) -> list[tuple[str, float]]:
        """Attach the settings' adapters to the model (loaded now) and return them.

        A name is looked up among the tuned adapters in the data folder. ``strict`` (the
        CLI): the first that fails its check raises. Otherwise (the window) it is left out,
        its error kept in :attr:`adapter_errors`, and the model stays usable with the others
        (it is never reloaded)."""
        from desktop.core.model.adapter_store import resolve

        engine = self.engine()
        _ = engine.llama
        good: list[tuple[str, float]] = []
        errors: list[str] = []
        for value, scale in self.settings_adapters():
            try:
                path = str(resolve(value, self.dirs.data))
                engine.set_adapters([*good, (path, scale)])
            except GroundedError as exc:
                if strict:
                    engine.set_adapters(good)
                    raise
                errors.append(str(exc))
            else:
                good.append((path, scale))
        engine.set_adapters(good)
        self.adapters_on, self.adapter_errors, self._adapters_tried = good, errors, True
        return good

    def _ensure_adapters(self) -> None:
        if not self._adapters_tried:
            self.attach_adapters()

    # -- loading --------------------------------------------------------------------------

    def warm_up(self, cancel: threading.Event) -> Generator[ModelState, None, None]:
        """Load the embedder, the model and the adapters, reporting each one's state (a
        failure is a state, not an exception: the others still load), then give the model's
        speed here (``"speed"``: measured the first time this model file loads)."""
        steps = [("embedder", self._load_embedder), ("model", self._load_model)]
        if self.settings.adapters:
            steps.append(("adapters", self._load_adapters))
        steps.append(("speed", lambda: self._model_speed(cancel)))
        loaded = set()
        for name, load in steps:
            if cancel.is_set() or (name == "speed" and "model" not in loaded):
                return
            yield ModelState(name, "loading")
            try:
                detail = load()
            except GroundedError as exc:
                yield ModelState(name, "failed", str(exc))
            except Exception as exc:  # noqa: BLE001 - shown in the window, logged in full
                log.exception("loading the %s failed", name)
                yield ModelState(name, "failed", f"{type(exc).__name__}: {exc}")
            else:
                loaded.add(name)
                yield ModelState(name, "ready", detail)

    def _load_embedder(self) -> str:
        emb = self.index_embedder()
        emb.load()
        return emb.model_id.rsplit("/", 1)[-1]

    def _load_model(self) -> str:
        engine = self.engine()
        _ = engine.llama
        every = engine.info.block_count + 1
        where = ("CPU" if not engine.gpu_offload else "GPU" if engine.n_gpu_layers >= every
                 else f"GPU {engine.n_gpu_layers} of {every} layers")
        threads = f"{engine.n_threads} thread" + ("s" if engine.n_threads != 1 else "")
        return f"{engine.info.path.stem} · {where} · {threads}"

    def _model_speed(self, cancel: threading.Event) -> str:
        """The model's first-token time and tokens/s here ("" when not known). Measured with
        a reply of :data:`SPEED_TOKENS` tokens the first time a model file loads (each answer
        updates it), and kept for the model list; a question asked meanwhile cancels it."""
        from desktop.core.jobs import run_job
        from desktop.core.model.discovery import record_speed, recorded_speed, speed_text

        engine = self.engine()
        speed = recorded_speed(self.dirs.data, engine.info.path)
        if speed is None:
            never_end = dict.fromkeys(engine.end_tokens(), float("-inf"))
            try:
                generation = run_job(engine.chat(SPEED_PROMPT, max_tokens=SPEED_TOKENS,
                                                 cancel=cancel, logit_bias=never_end))
            except (GroundedError, RuntimeError) as exc:  # answers will say; this stays quiet
                log.warning("could not measure the speed of %s: %s", engine.info.path, exc)
                return ""
            if generation.finish_reason == "cancelled" or not generation.tokens_per_s:
                return ""
            speed = (generation.first_token_ms, generation.tokens_per_s)
            record_speed(self.dirs.data, engine.info.path, *speed)
        return speed_text(*speed)

    def _load_adapters(self) -> str:
        self.attach_adapters()
        if self.adapter_errors:
            raise GroundedError("; ".join(self.adapter_errors))
        return ", ".join(f"{Path(p).name} ×{s:g}" for p, s in self.adapters_on) or "none"

    # -- the library ----------------------------------------------------------------------

    def library(self) -> LibrarySummary:
        """Collections, folders, counts and problem files."""
        from desktop.core.storage.library import summarize

        with self.open_store() as store:
            return summarize(store)

    def index(self, paths: Sequence[str | Path], collection: str | None,
              cancel: threading.Event | None = None, reembed: bool = False
              ) -> Generator[Progress, None, IndexReport]:
        """Index ``paths`` into ``collection`` (every indexed folder when no path is given)
        with the settings' embedder."""
        from desktop.core.indexing.indexer import Indexer

        emb = self.embedder()
        with self.open_store() as store:
            indexer = Indexer(store, emb, self.settings)
            return (yield from indexer.run(list(paths), collection, cancel, reembed=reembed))

    def forget(self, paths: Sequence[str | Path] = (), collection: str | None = None,
               within: str | None = None) -> Forgotten:
        """Forget indexed folders (``paths``, or ``paths`` of the collection ``within``) or a
        whole ``collection``. A path that is not an indexed folder is an error naming the
        folder it is inside, if any; an unknown collection too."""
        roots: list[str] = []
        documents = 0
        with self.open_store() as store:
            if collection:
                coll_id = store.collection_id(collection)
                if coll_id is None:
                    raise GroundedError(f"no collection named {collection!r}")
                documents += store.forget_collection(coll_id)
            scope = None if within is None else store.collection_id(within)
            if within is not None and scope is None:
                raise GroundedError(f"no collection named {within!r}")
            indexed = store.roots(scope) if scope is not None else store.roots()
            for p in paths:
                target = str(Path(p).expanduser().resolve())
                matches = [r for r in indexed if r[2] == target]
                if not matches:
                    inside = [r[2] for r in indexed if target.startswith(r[2].rstrip("/") + "/")]
                    hint = f" (it is inside the indexed folder {inside[0]})" if inside else ""
                    raise GroundedError(f"{p} is not an indexed folder{hint}")
                for root_id, _, path in matches:
                    documents += store.forget_root(root_id)
                    roots.append(path)
        return Forgotten(roots, collection, documents)

    def create_collection(self, name: str) -> None:
        with self.open_store() as store:
            store.collection_id(name, create=True)

    def passage(self, chunk_id: int | None, text: str) -> PassageContext:
        """A source's passage with the text before and after it."""
        from desktop.core.storage.passages import passage_context

        with self.open_store() as store:
            return passage_context(store, chunk_id, text)

    # -- answering (the answer lane) ------------------------------------------------------

    def ask(self, question: str, collections: Sequence[str] | None,
            cancel: threading.Event | None = None, retrieval: bool = True,
            temperature: float = 0.0, history: Sequence[str] = ()
            ) -> Generator[Token | Found, None, Answer]:
        """Stream the evidence, then the answer to ``question`` from ``collections`` (None:
        all); return it. ``history``: the conversation's earlier questions, oldest first."""
        retriever = self.retriever(collections) if retrieval else None
        self._ensure_adapters()
        answerer = self.answerer(retriever)
        answer = yield from answerer.ask(question, collections or None, retrieval=retrieval,
                                         temperature=temperature, cancel=cancel,
                                         history=history)
        self._record_speed(answer)
        return answer

    def _record_speed(self, answer: Answer) -> None:
        """Keep this model's first-token time and tokens/s for the model list."""
        from desktop.core.model.discovery import record_speed

        t = answer.timings
        if answer.generation is not None and t.get("tokens_per_s") and self._engine is not None:
            record_speed(self.dirs.data, self._engine.info.path, t.get("first_token_ms", 0.0),
                         t["tokens_per_s"])

    def compare(self, question: str, collections: Sequence[str] | None,
                cancel: threading.Event | None = None
                ) -> Generator[CompareEvent, None, list[CompareRow]]:
        """Answer ``question`` the four ways of :func:`~desktop.core.answering.compare.compare`
        (base, retrieval, adapter, adapter + retrieval: the last two with the attached
        adapters), streaming each; return the rows with their support scores (and form
        scores when a tuned adapter with held-out replies is attached)."""
        from desktop.core.answering.compare import compare
        from desktop.core.model.adapter_store import ideal_replies

        retriever = self.retriever(collections)
        self._ensure_adapters()
        ideals = ideal_replies(path for path, _ in self.adapters_on)
        return (yield from compare(self.answerer(retriever), question, self.adapters_on,
                                   collections or None, cancel, ideals=ideals))

    # -- tuning (its own job) -------------------------------------------------------------

    def tuner(self, options: TuneOptions) -> Tuner:
        """A tuner for the settings' model into the data folder; threads as the settings."""
        from desktop.core.tuning.tuner import Tuner

        options = replace(options, threads=options.threads or self.settings.n_threads or None)
        return Tuner(self.settings.model or None, self.dirs.data, options)

    def tune(self, examples: Sequence[Any], name: str, options: TuneOptions,
             cancel: threading.Event | None = None
             ) -> Generator[TuneProgress, None, TuneReport]:
        """Tune an adapter called ``name`` (:meth:`desktop.core.tuning.tuner.Tuner.run`)."""
        return (yield from self.tuner(options).run(examples, name, cancel))

    # -- closing --------------------------------------------------------------------------

    def _close_answer_store(self) -> None:
        if self._retriever is not None:
            self._retriever.close()
        if self._answer_store is not None:
            self._answer_store.close()
        self._answer_store, self._retriever = None, None

    def close(self) -> None:
        """Free the model and close the database (once the lanes are idle)."""
        self._close_answer_store()
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
