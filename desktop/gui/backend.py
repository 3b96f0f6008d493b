"""What the window's jobs call: the core objects of one session, created lazily.

No Qt here and no widget: every method runs on a job's thread (see :mod:`desktop.gui.workers`)
and does what the CLI's commands do (``index``, ``status``, ``ask``), with the same core
objects. Heavy modules (numpy, apsw, onnxruntime, llama_cpp) are imported inside the methods, so
importing this module costs nothing on the window's start-up path.

Threads: the index lane and the answer lane each run one job at a time. Index jobs and quick
reads open their own database connection (SQLite in WAL mode lets them read while another
writes); the answer lane keeps one connection for its retriever's vector cache. The embedder
is shared by both lanes, its calls serialised by :class:`SharedEmbedder`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop.config import Dirs, Settings, home
from desktop.core.conversations import Conversations
from desktop.core.errors import GroundedError

if TYPE_CHECKING:
    from desktop.core.answer import Answer
    from desktop.core.compare import CompareEvent, CompareRow
    from desktop.core.engine import Engine, Token
    from desktop.core.index import IndexReport, Progress
    from desktop.core.library import LibrarySummary
    from desktop.core.passages import PassageContext
    from desktop.core.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelState:
    """A model's loading state, for the status bar: ``state`` is loading, ready or failed."""

    model: str  # "embedder" | "model"
    state: str
    detail: str = ""


class SharedEmbedder:
    """One embedder for the indexer and the retriever; calls into the model are serialised
    (its Hugging Face tokenizer must not be used by two threads at once)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id: str = inner.model_id
        self.max_tokens: int = inner.max_tokens
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def load(self) -> None:
        with self._lock:
            self.inner.load()

    def embed(self, texts: Sequence[str]):
        with self._lock:
            return self.inner.embed(texts)


def _engine_key(s: Settings) -> tuple:
    return (s.model, s.n_ctx, s.n_threads, s.n_gpu_layers)


class Backend:
    """The core objects of one window: settings, embedder, model, stores, conversations."""

    def __init__(self, settings: Settings | None = None, dirs: Dirs | None = None,
                 embedder: Any | None = None) -> None:
        self.dirs = dirs or home()
        self.settings = settings or Settings.load()
        self._lock = threading.Lock()
        self._embedders: dict[str, SharedEmbedder] = {}
        if embedder is not None:
            self._embedders[embedder.model_id] = SharedEmbedder(embedder)
        self._engine: Engine | None = None
        self._engine_key: tuple | None = None
        self._answer_store: Store | None = None
        self._retriever = None
        self.adapters_on: list[tuple[str, float]] = []  # attached, from the settings
        self.adapter_errors: list[str] = []  # why the others were left out

    # -- the parts ------------------------------------------------------------------------

    @property
    def conversations(self) -> Conversations:
        return Conversations(self.dirs.data / "conversations")

    def open_store(self) -> Store:
        """A new connection to the index (the caller closes it)."""
        from desktop.core.store import Store

        return Store.open(self.dirs.database)

    def embedder(self, setting: str | None = None) -> SharedEmbedder:
        """The embedder for a setting ("" bundled; None: the settings' own), created once."""
        from desktop.core.embed import OnnxEmbedder, resolve_model

        setting = self.settings.embedder if setting is None else setting
        model_id = resolve_model(setting)[1]
        with self._lock:
            if model_id not in self._embedders:
                self._embedders[model_id] = SharedEmbedder(
                    OnnxEmbedder(setting))
            return self._embedders[model_id]

    def index_embedder(self) -> SharedEmbedder:
        """The embedder the index was built with (the settings' one for a new index)."""
        from desktop.core.embed import BUNDLED_ID

        with self.open_store() as store:
            recorded = store.embedder()
        if recorded is None:
            return self.embedder()
        return self.embedder("" if recorded[0] == BUNDLED_ID else recorded[0])

    def engine(self) -> Engine:
        """The model (checked, not yet loaded), rebuilt when its settings changed."""
        from desktop.core.engine import Engine

        s = self.settings
        with self._lock:
            if self._engine is None or self._engine_key != _engine_key(s):
                if self._engine is not None:
                    self._engine.close()
                self._engine = None
                self._engine = Engine(s.model or None, n_ctx=s.n_ctx,
                                      n_threads=s.n_threads or None, n_gpu_layers=s.n_gpu_layers)
                self._engine_key = _engine_key(s)
            return self._engine

    def warm_up(self, cancel: threading.Event) -> Generator[ModelState, None, None]:
        """Load the embedder, the model and the adapters in the background, reporting each
        one's state (a failure is a state, not an exception: the others still load)."""
        steps = [("embedder", self._load_embedder), ("model", self._load_model)]
        if self.settings.adapters:
            steps.append(("adapters", self._load_adapters))
        for name, load in steps:
            if cancel.is_set():
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
                yield ModelState(name, "ready", detail)

    def _load_embedder(self) -> str:
        emb = self.index_embedder()
        emb.load()
        return emb.model_id.rsplit("/", 1)[-1]

    def _load_model(self) -> str:
        engine = self.engine()
        _ = engine.llama
        where = f"{engine.n_gpu_layers} GPU layers" if engine.gpu_offload else "CPU"
        threads = f"{engine.n_threads} thread" + ("s" if engine.n_threads != 1 else "")
        return f"{engine.info.path.stem} · {where} · {threads}"

    def _load_adapters(self) -> str:
        self.apply_adapters()
        if self.adapter_errors:
            raise GroundedError("; ".join(self.adapter_errors))
        return ", ".join(f"{Path(p).name} ×{s:g}" for p, s in self.adapters_on) or "none"

    def apply_adapters(self, adapters: Sequence[tuple[str, float]] | None = None) -> None:
        """Attach ``adapters`` (default: the settings' own) to the model. One that fails its
        check is left out and its error kept in :attr:`adapter_errors`: the model stays
        usable with the others (and is never reloaded)."""
        engine = self.engine()
        _ = engine.llama
        wanted = self.settings_adapters() if adapters is None else list(adapters)
        good: list[tuple[str, float]] = []
        errors: list[str] = []
        for path, scale in wanted:
            try:
                engine.set_adapters([*good, (path, scale)])
            except GroundedError as exc:
                errors.append(str(exc))
            else:
                good.append((path, scale))
        engine.set_adapters(good)
        if adapters is None:
            self.adapters_on, self.adapter_errors = good, errors

    def settings_adapters(self) -> list[tuple[str, float]]:
        """The enabled adapters of the settings, as (path, scale) pairs."""
        return [(str(a["path"]), float(a.get("scale", 1.0))) for a in self.settings.adapters
                if a.get("path") and a.get("enabled", True)]

    def update_settings(self, settings: Settings) -> None:
        """Save new settings; the model is rebuilt on next use if its settings changed, and
        the database reopened if the data folder moved (run it in the answer lane)."""
        settings.save()
        self.settings = settings
        dirs = home()
        if dirs.database != self.dirs.database:
            self._close_answer_store()
        self.dirs = dirs

    # -- the library ----------------------------------------------------------------------

    def library(self) -> LibrarySummary:
        from desktop.core.library import summarize

        with self.open_store() as store:
            return summarize(store)

    def index(self, paths: Sequence[str], collection: str | None, cancel: threading.Event
              ) -> Generator[Progress, None, IndexReport]:
        """Index ``paths`` into ``collection`` (every indexed folder when no path is given)."""
        from desktop.core.index import Indexer

        emb = self.embedder()
        with self.open_store() as store:
            indexer = Indexer(store, emb, self.settings)
            return (yield from indexer.run(list(paths), collection, cancel))

    def forget(self, collection: str, folder: str | None = None) -> int:
        """Forget a folder of a collection (or the whole collection); documents removed."""
        with self.open_store() as store:
            coll_id = store.collection_id(collection)
            if coll_id is None:
                return 0
            if folder is None:
                return store.forget_collection(coll_id)
            return sum(store.forget_root(rid) for rid, _, path in store.roots(coll_id)
                       if path == folder)

    def create_collection(self, name: str) -> None:
        with self.open_store() as store:
            store.collection_id(name, create=True)

    def passage(self, chunk_id: int | None, text: str) -> PassageContext:
        from desktop.core.passages import passage_context

        with self.open_store() as store:
            return passage_context(store, chunk_id, text)

    # -- answering (the answer lane) ------------------------------------------------------

    def _retriever_for(self, collection: str | None):
        from desktop.core.retrieve import Retriever

        if self._answer_store is None or self._answer_store.path != self.dirs.database:
            self._close_answer_store()
            self._answer_store = self.open_store()
        store = self._answer_store
        if store.embedder() is None or not store.counts()["chunks"]:
            raise GroundedError("nothing is indexed yet: drop a folder on the window")
        if collection is not None and store.collection_id(collection) is None:
            raise GroundedError(f"the collection {collection!r} is empty: drop a folder on it")
        emb = self.index_embedder()
        if self._retriever is None or self._retriever.embedder is not emb:
            self._retriever = Retriever(store, emb)
        return self._retriever

    def _close_answer_store(self) -> None:
        if self._answer_store is not None:
            self._answer_store.close()
        self._answer_store, self._retriever = None, None

    def ask(self, question: str, collection: str | None, cancel: threading.Event,
            retrieval: bool = True) -> Generator[Token, None, Answer]:
        """Stream the answer to ``question`` from ``collection``; return the Answer."""
        from desktop.core.answer import Answerer

        retriever = self._retriever_for(collection) if retrieval else None
        if self.settings_adapters() and not self.adapters_on and not self.adapter_errors:
            self.apply_adapters()  # not warmed up yet
        answerer = Answerer(self.engine(), retriever, k=self.settings.passages,
                            sentences=self.settings.focus_sentences,
                            quote=self.settings.quote_answers)
        return (yield from answerer.ask(question, [collection] if collection else None,
                                        retrieval=retrieval, cancel=cancel))

    def compare(self, question: str, collection: str | None, cancel: threading.Event
                ) -> Generator[CompareEvent, None, list[CompareRow]]:
        """Answer ``question`` the four ways of :func:`desktop.core.compare.compare` (base,
        retrieval, adapter, adapter + retrieval: the last two with the attached adapters),
        streaming each; return the rows with their support scores (and form scores when a
        tuned adapter with held-out replies is attached)."""
        from desktop.core.answer import Answerer
        from desktop.core.compare import compare

        retriever = self._retriever_for(collection)
        if self.settings_adapters() and not self.adapters_on and not self.adapter_errors:
            self.apply_adapters()
        from desktop.core.adapter_store import ideal_replies

        answerer = Answerer(self.engine(), retriever, k=self.settings.passages,
                            sentences=self.settings.focus_sentences,
                            quote=self.settings.quote_answers)
        ideals = ideal_replies(path for path, _ in self.adapters_on)
        return (yield from compare(answerer, question, self.adapters_on,
                                   [collection] if collection else None, cancel, ideals=ideals))

    # -- tuning (its own job) ------------------------------------------------------------

    def tune(self, examples: Sequence[Any], name: str, options: Any,
             cancel: threading.Event) -> Generator[Any, None, Any]:
        """Tune an adapter called ``name`` for the settings' model into the data folder
        (:meth:`desktop.core.tune.Tuner.run`); the model threads follow the settings."""
        from dataclasses import replace

        from desktop.core.tune import Tuner

        options = replace(options, threads=options.threads or self.settings.n_threads or None)
        tuner = Tuner(self.settings.model or None, self.dirs.data, options)
        return (yield from tuner.run(examples, name, cancel))

    def close(self) -> None:
        """Free the model and close the database (once the lanes are idle)."""
        self._close_answer_store()
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
