"""The indexing pipeline: scan → extract → chunk → embed → store.

:meth:`Indexer.run` is a generator of :class:`Progress` records that returns an
:class:`IndexReport`; the CLI drives it under a progress line and the GUI in a worker, and
both cancel it with a :class:`threading.Event`. A background thread hashes, extracts (in a
sandboxed child process with time and memory limits) and chunks the next files while the
caller's thread embeds and writes, so extraction hides behind embedding.

Every batch of documents is written in one transaction together with its chunks, vectors and
keywords: a kill at any moment loses at most the batch in flight, and the next run redoes
exactly that (a document's row is written only with its chunks, so it cannot look done early).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from desktop.core.config import Settings
from desktop.core.embedding.embedder import Embedder, groups_by_length
from desktop.core.errors import GroundedError
from desktop.core.indexing import scan
from desktop.core.indexing.chunk import Chunk, Chunker
from desktop.core.indexing.extract import (
    ExtractError,
    Extraction,
    OcrOptions,
    kind_by_suffix,
    kind_for,
)
from desktop.core.indexing.extract.ocr import tessdata_dir
from desktop.core.indexing.extract.sandbox import ExtractionCancelled, ExtractionSandbox
from desktop.core.indexing.priority import lower_this_thread
from desktop.core.storage.library import WEAK_OCR_CONFIDENCE
from desktop.core.storage.store import ChunkRecord, DocumentRow, DocumentUpdate, Store

log = logging.getLogger(__name__)

#: Chunks embedded per call: one call is the longest a Ctrl-C waits.
EMBED_BATCH = 128
#: Chunks gathered before embedding. Calls take them by token count, longest first, so each
#: call holds similar lengths; over 512 chunks that pads far less than over 128.
FLUSH_CHUNKS = 512
#: How long the writer waits for more prepared files before it embeds a partial batch.
FILL_WAIT_S = 0.05
#: No ETA before this: a byte rate over the first files (a small text, then a scan whose bytes
#: say little of its OCR time) can be off a hundredfold.
ETA_AFTER_S = 3.0


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running index job."""

    phase: str  # "scanning" | "indexing" | "done"
    files_total: int = 0
    files_done: int = 0
    chunks_done: int = 0
    chunks_per_s: float = 0.0
    eta_s: float | None = None
    current: str | None = None
    ocr_pages_done: int = 0  # scanned pages and images read by OCR so far
    ocr_pages_per_s: float = 0.0
    ocr_page: tuple[int, int] | None = None  # (page, pages to OCR) of the file being read


@dataclass
class IndexReport:
    """What an index run changed (mutators return what changed, never a bare bool)."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    image_only: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    ocr_pages: int = 0
    weak_ocr: list[tuple[str, float]] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    reembedded: bool = False
    cancelled: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class _Task:
    root_id: int
    file: scan.FileStat
    doc: DocumentRow | None  # the stored document when the file changed
    reread: bool = False  # read again even when its content is unchanged (see Indexer._stale)


@dataclass
class _Prepared:
    task: _Task
    update: DocumentUpdate
    chunks: list[Chunk]


@dataclass(frozen=True)
class _Unchanged:
    """Content hash equal to a stored document: record the new stat (and path, for a move)."""

    task: _Task
    doc: DocumentRow
    moved: bool


@dataclass(frozen=True)
class _Vanished:
    task: _Task


_DONE = object()


def _without_chunks(task: _Task, status: str, reason: str, digest: str | None = None,
                    kind: str | None = None) -> _Prepared:
    """A file recorded with ``status`` and ``reason`` and no text (skipped, failed)."""
    f = task.file
    up = DocumentUpdate(task.root_id, f.path, f.size, f.mtime_ns, digest, kind, status, reason)
    return _Prepared(task, up, [])


@dataclass
class _Run:
    """The state of one :meth:`Indexer.run`: its report, counts for progress, the batch
    waiting to be embedded, and the file the producer is reading (set by its thread)."""

    report: IndexReport
    start: float
    total: int
    total_bytes: int
    files: int = 0
    bytes: int = 0
    chunks: int = 0
    current: str | None = None
    batch: list[_Prepared] = field(default_factory=list)
    pending: int = 0  # chunks in the batch
    moved: list[DocumentRow] = field(default_factory=list)
    ocr_pages: int = 0  # OCR pages read (set by the producer's thread)
    ocr_seconds: float = 0.0
    ocr_page: tuple[int, int] | None = None
    _ocr_mark: float = 0.0

    def ocr_progress(self, done: int, total: int) -> None:
        """One more OCR page of the current file (the sandbox's progress callback)."""
        now = time.perf_counter()
        if done and self._ocr_mark:
            self.ocr_pages += 1
            self.ocr_seconds += now - self._ocr_mark
        self._ocr_mark = now
        self.ocr_page = (done, total) if done < total else None

    def count(self, task: _Task) -> None:
        """One more file done."""
        self.files += 1
        self.bytes += task.file.size

    def progress(self) -> Progress:
        elapsed = time.perf_counter() - self.start
        rate = self.chunks / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.bytes and elapsed >= ETA_AFTER_S:  # the first seconds say little of the rest
            eta = elapsed / self.bytes * (self.total_bytes - self.bytes)
        pages_per_s = self.ocr_pages / self.ocr_seconds if self.ocr_seconds else 0.0
        page = self.ocr_page
        if page is not None:  # a scan: its pages left bound the wait (unknown before a page)
            eta = max(eta or 0.0, (page[1] - page[0]) / pages_per_s) if pages_per_s else None
        return Progress("indexing", self.total, self.files, self.chunks, rate, eta,
                        self.current, self.ocr_pages, pages_per_s, page)


class _Either:
    """Set when either of two events is set (the producer's stop signal)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def _drain(q: queue.Queue, producer: threading.Thread, wait_s: float = 2.0) -> None:
    """Empty the queue so a blocked producer can see its stop signal and end."""
    deadline = time.monotonic() + wait_s
    while producer.is_alive() and time.monotonic() < deadline:
        try:
            if q.get(timeout=0.05) is _DONE:
                break
        except queue.Empty:
            pass


def file_hash(path: str) -> str:
    """A content hash of the file (BLAKE2b, 128 bits)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


UNSUPPORTED = "not a supported format"
NEEDS_OCR = "no text layer (scanned?): needs OCR"
"""How the reason of a scan left unread (OCR off) starts."""


def _outcome(extraction: Extraction, has_chunks: bool) -> tuple[str, str | None]:
    """A document's status and reason from what extraction found."""
    if has_chunks:
        return "indexed", None
    if extraction.status == "image_only" or extraction.image_pages:
        pages = ", ".join(map(str, extraction.image_pages)) or "all"
        if extraction.ocr_pages:
            return "image_only", f"OCR found no readable text (pages {pages})"
        return "image_only", f"{NEEDS_OCR} on pages {pages}"
    return "empty", "no text found"


@dataclass(frozen=True)
class _Extracting:
    """The sandbox as the producer uses it: with the run's OCR options, progress and cancel."""

    sandbox: ExtractionSandbox
    ocr: OcrOptions | None
    run: _Run
    cancel: _Either

    def extract(self, path: Path, kind: str) -> Extraction:
        return self.sandbox.extract(path, kind, self.ocr, self.run.ocr_progress, self.cancel)


class Indexer:
    """Indexes folders into a :class:`Store` with an :class:`Embedder`."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or Settings()
        self.chunker = Chunker(
            embedder.tokenizer,
            max_tokens=embedder.max_tokens,
            target=self.settings.chunk_tokens,
            overlap=self.settings.chunk_overlap,
        )

    # -- planning -------------------------------------------------------------------------

    def _plan(
        self, paths: Sequence[Path], collection: str | None
    ) -> tuple[list[_Task], list[DocumentRow], list[int], IndexReport]:
        """Diff each path against the store: the files to process, documents to remove."""
        report = IndexReport()
        tasks: list[_Task] = []
        deleted: list[DocumentRow] = []
        root_ids: list[int] = []
        if paths:
            coll_id = self.store.collection_id(collection or "default", create=True)
            targets = []
            for p in paths:
                resolved = Path(p).expanduser().resolve()
                if not resolved.exists():
                    raise GroundedError(f"{p}: no such file or folder")
                targets.append((self.store.add_root(coll_id, str(resolved)), resolved))
        else:  # refresh every root (of one collection, when named)
            coll_id = None
            if collection is not None:
                coll_id = self.store.collection_id(collection)
                if coll_id is None:
                    raise GroundedError(f"no collection named {collection!r}")
            targets = [(rid, Path(path)) for rid, _, path in self.store.roots(coll_id)]
        for root_id, target in targets:
            stored = self.store.documents(root_id, under=str(target))
            d = scan.diff(target, stored, self._stale)
            report.unchanged += d.unchanged
            report.failed.extend((p.path, p.reason) for p in d.problems)
            tasks.extend(_Task(root_id, f, None) for f in d.new)
            tasks.extend(_Task(root_id, f, doc, self._stale(doc)) for f, doc in d.changed)
            deleted.extend(d.deleted)
            root_ids.append(root_id)
        return tasks, deleted, root_ids, report

    # -- the producer thread: hash, extract, chunk ----------------------------------------

    def ocr_options(self) -> OcrOptions | None:
        """The OCR settings for extraction (None when OCR is off); GroundedError when a
        language's trained data is not installed."""
        if not self.settings.ocr:
            return None
        languages = tuple(self.settings.ocr_languages) or ("eng",)
        try:
            tessdata_dir(languages)
        except ExtractError as exc:
            raise GroundedError(str(exc)) from exc
        # The engine gives up on a page at half the sandbox's limit, so that a hard page is
        # skipped with a reason before the sandbox stops the whole file.
        return OcrOptions(languages, page_timeout_s=self.settings.extract_timeout_s / 2)

    def _stale(self, doc: DocumentRow) -> bool:
        """A document an earlier run could not read, or read as another format, that this one
        reads better: a format it did not know or now maps elsewhere (CSV was text, now a
        sheet; judged by the name: no file is opened), or a scan it left for OCR, now on."""
        named = kind_by_suffix(doc.path)
        if named is not None and named != doc.kind and (
                doc.kind is not None or doc.reason == UNSUPPORTED):
            return True
        return (doc.status == "image_only" and self.settings.ocr
                and (doc.reason or "").startswith(NEEDS_OCR))

    def _prepare_one(
        self, task: _Task, sandbox: _Extracting, moves: dict[tuple[int, str], DocumentRow]
    ) -> _Prepared | _Unchanged | _Vanished:
        """Hash the file; if its content is new, extract and chunk it."""
        f = task.file
        limit = int(self.settings.max_file_mb * 1024 * 1024)
        if f.size > limit:
            return _without_chunks(task, "skipped", f"larger than the "
                                   f"{self.settings.max_file_mb:g} MB limit "
                                   f"({f.size / 1048576:.1f} MB)")
        try:
            digest = file_hash(f.path)
        except FileNotFoundError:
            return _Vanished(task)
        except OSError as exc:
            return _without_chunks(task, "failed", f"cannot read: {exc.strerror or exc}")
        if task.doc is not None and task.doc.hash == digest and not task.reread:
            return _Unchanged(task, task.doc, moved=False)
        if task.doc is None and (task.root_id, digest) in moves:
            return _Unchanged(task, moves.pop((task.root_id, digest)), moved=True)
        return self._extract(task, digest, sandbox)

    def _extract(self, task: _Task, digest: str, sandbox: _Extracting
                 ) -> _Prepared | _Vanished:
        """Extract the file in the sandbox and chunk its text (a file deleted meanwhile is
        vanished, not failed)."""
        f = task.file
        try:
            kind = kind_for(Path(f.path))
        except OSError as exc:
            if not Path(f.path).exists():
                return _Vanished(task)
            return _without_chunks(task, "failed", f"cannot read: {exc.strerror or exc}",
                                   digest=digest)
        if kind is None:
            return _without_chunks(task, "skipped", UNSUPPORTED, digest=digest)
        try:
            extraction = sandbox.extract(Path(f.path), kind)
        except ExtractionCancelled:
            raise
        except ExtractError as exc:
            if not Path(f.path).exists():
                return _Vanished(task)
            reason = str(exc)
            status = "skipped" if reason.startswith("binary") else "failed"
            return _without_chunks(task, status, reason, digest=digest, kind=kind)
        chunks = self.chunker.chunk(extraction.sections)
        status, reason = _outcome(extraction, bool(chunks))
        up = DocumentUpdate(
            task.root_id, f.path, f.size, f.mtime_ns, digest, kind, status, reason,
            image_pages=tuple(extraction.image_pages),
            chunks=[ChunkRecord(c.text, c.page, c.heading, c.start, c.end, c.n_tokens, c.page_end,
                                c.ocr)
                    for c in chunks],
            ocr_pages=extraction.ocr_pages,
            ocr_confidence=extraction.ocr_confidence,
        )
        return _Prepared(task, up, chunks)

    def _produce(
        self, tasks: list[_Task], moves: dict[tuple[int, str], DocumentRow],
        out: queue.Queue, cancel: _Either, run: _Run,
    ) -> None:
        lower_this_thread()  # hashing and chunking yield the CPU to embedding
        try:
            with ExtractionSandbox(
                timeout_s=self.settings.extract_timeout_s,
                memory_mb=self.settings.extract_memory_mb,
            ) as sandbox:
                extracting = _Extracting(sandbox, self.ocr_options(), run, cancel)
                for task in tasks:
                    if cancel.is_set():
                        break
                    run.current = task.file.path
                    out.put(self._prepare_one(task, extracting, moves))
        except ExtractionCancelled:
            pass  # the file in flight is left for the next run
        except BaseException as exc:  # surface in the caller's thread
            out.put(exc)
        finally:
            out.put(_DONE)

    # -- the caller's thread: embed, write, report ----------------------------------------

    def run(
        self,
        paths: Sequence[Path] = (),
        collection: str | None = None,
        cancel: threading.Event | None = None,
        reembed: bool = False,
    ) -> Generator[Progress, None, IndexReport]:
        """Index ``paths`` into ``collection`` (or refresh every root when no path is given).

        Yields progress; returns the report. Setting ``cancel`` stops after the batch in
        flight is written (or dropped, mid-embedding); the next run resumes.
        """
        cancel = cancel or threading.Event()
        start = time.perf_counter()
        yield Progress("scanning")
        reembedded = self._bind_embedder(reembed)
        tasks, deleted, root_ids, report = self._plan(paths, collection)
        report.reembedded = reembedded
        run = _Run(report, start, len(tasks), sum(t.file.size for t in tasks) or 1)
        yield Progress("indexing", run.total)  # the plan is made; nothing read yet
        moves = {(d.root_id, d.hash): d for d in deleted if d.hash}
        q: queue.Queue = queue.Queue(maxsize=256)
        stop = threading.Event()  # tells the producer to stop: on cancel, error or the end
        producer = threading.Thread(
            target=self._produce, args=(tasks, moves, q, _Either(cancel, stop), run),
            name="grounded-extract", daemon=True,
        )
        producer.start()
        try:
            yield from self._consume(q, run, cancel)
            if cancel.is_set():
                report.cancelled = True
            else:
                self._finish(run, deleted, root_ids)
        finally:
            stop.set()
            _drain(q, producer)
        report.seconds = time.perf_counter() - start
        yield Progress("done", run.total, run.files, run.chunks,
                       run.chunks / report.seconds if report.seconds else 0.0, 0.0, None)
        return report

    def _bind_embedder(self, reembed: bool) -> bool:
        """Record this embedder in the store (a new index, or ``reembed``); whether the
        stored chunks were dropped to be embedded again."""
        stored = self.store.embedder()
        if stored is None or stored[0] != self.embedder.model_id or reembed:
            return self.store.bind_embedder(self.embedder.model_id, self.embedder.dim,
                                            reembed=reembed)
        return False

    def _consume(self, q: queue.Queue, run: _Run, cancel: threading.Event
                 ) -> Generator[Progress, None, None]:
        """Take the producer's results until it is done (or ``cancel``): record unchanged,
        moved and vanished files at once, embed and write the rest in batches."""
        finished = False
        while not finished:
            try:
                item = q.get(timeout=FILL_WAIT_S if run.batch else 0.5)
            except queue.Empty:  # the producer is slow: write what is waiting meanwhile
                if run.batch:
                    yield from self._flush(run, cancel)
                else:
                    yield run.progress()
                if cancel.is_set():
                    return
                continue
            if item is _DONE:
                finished = True
            elif isinstance(item, BaseException):
                raise item
            elif isinstance(item, _Prepared):
                run.batch.append(item)
                run.pending += len(item.chunks)
            else:
                self._record(item, run)
            if run.batch and (run.pending >= FLUSH_CHUNKS or finished):
                yield from self._flush(run, cancel)
            if cancel.is_set():
                return

    def _record(self, item: _Unchanged | _Vanished, run: _Run) -> None:
        """A file whose content needs no embedding: gone, unchanged (new stat) or moved."""
        if isinstance(item, _Vanished):
            run.report.vanished.append(item.task.file.path)
            if item.task.doc is not None:
                self.store.delete_documents([item.task.doc.id])
        else:
            f = item.task.file
            self.store.touch_document(item.doc.id, f.size, f.mtime_ns,
                                      f.path if item.moved else None)
            if item.moved:
                run.moved.append(item.doc)
                run.report.moved += 1
            else:
                run.report.unchanged += 1
        run.count(item.task)

    def _finish(self, run: _Run, deleted: list[DocumentRow], root_ids: list[int]) -> None:
        """After a whole run: remove the documents whose files are gone (not moved) and mark
        the roots scanned."""
        moved_ids = {d.id for d in run.moved}
        run.report.removed = self.store.delete_documents(
            d.id for d in deleted if d.id not in moved_ids)
        for root_id in root_ids:
            self.store.mark_scanned(root_id)

    def _flush(self, run: _Run, cancel: threading.Event) -> Generator[Progress, None, None]:
        """Embed the batch of prepared documents, then write them in one transaction."""
        batch, run.batch, run.pending = run.batch, [], 0
        chunks = [c for p in batch for c in p.chunks]
        vectors = np.empty((len(chunks), self.embedder.dim), dtype=np.float32)
        for rows in groups_by_length([c.n_tokens for c in chunks], EMBED_BATCH):
            if cancel.is_set():
                return  # dropped whole; the next run redoes these files
            vectors[rows] = self.embedder.embed([chunks[r].text for r in rows])
            if len(chunks) > EMBED_BATCH:
                yield run.progress()
        updates, pos = [], 0
        for p in batch:
            n = len(p.chunks)
            vec = vectors[pos : pos + n] if n else None
            pos += n
            updates.append(replace(p.update, vectors=vec))
        self.store.write_documents(updates)
        if self.store.vectors.needs_training():
            yield replace(run.progress(), current="organizing the vector index")
            self.store.vectors.train()
        self._tally(run, batch)
        yield run.progress()

    def _tally(self, run: _Run, batch: list[_Prepared]) -> None:
        """Count a written batch into the run's report."""
        report = run.report
        for p in batch:
            up = p.update
            if up.status == "failed":
                report.failed.append((up.path, up.reason or "failed"))
            elif up.status == "skipped":
                report.skipped.append((up.path, up.reason or "skipped"))
            elif up.status == "empty":
                report.empty.append(up.path)
            elif up.status == "image_only":
                report.image_only.append((up.path, up.image_pages))
            report.ocr_pages += up.ocr_pages
            if up.ocr_confidence is not None and up.ocr_confidence < WEAK_OCR_CONFIDENCE:
                report.weak_ocr.append((up.path, up.ocr_confidence))
            if p.task.doc is None:
                report.added += 1
            else:
                report.updated += 1
            report.chunks += len(p.chunks)
            run.chunks += len(p.chunks)
            run.count(p.task)
