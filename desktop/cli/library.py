"""`grounded index`, `status` and `forget`: what is in the index."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from desktop.cli.terminal import CancelOnInterrupt, ProgressLine, count, emit, err, workspace
from desktop.core.jobs import run_job


@click.command()
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
    ws = workspace(embedder=None if embedder is None else "" if embedder == "bundled"
                   else embedder)
    new_id = ws.embedder().model_id  # a folder that is no embedder fails here, before saving
    if embedder is not None:
        ws.settings.save(ws.dirs)
    line = ProgressLine()
    with ws, CancelOnInterrupt() as cancel:
        recorded = ws.recorded_embedder()
        if recorded and recorded != new_id and reembed:
            err(f"re-embedding every document with {new_id} (was {recorded})")
        report = run_job(ws.index(list(paths), collection, cancel, reembed=reembed), line.show)
        line.end()

    for path, reason in report.failed:
        err(f"failed:  {path}: {reason}")
    for path, pages in report.image_only:
        need = "OCR found no readable text" if report.ocr_pages else "scanned pages need OCR"
        err(f"no text: {path}: {need} ({', '.join(map(str, pages)) or 'all'})")
    for path, confidence in report.weak_ocr:
        err(f"weak OCR: {path}: confidence {confidence:.0%}, worth checking")
    for path in report.empty:
        err(f"empty:   {path}")
    state = "cancelled; run again to resume" if report.cancelled else "done"
    err(f"{state}: {report.added} added, {report.updated} updated, {report.moved} moved, "
        f"{report.removed} removed, {report.unchanged} unchanged, {len(report.failed)} failed, "
        f"{len(report.skipped)} skipped; {count(report.chunks, 'chunk')} in "
        f"{report.seconds:.1f} s"
        + (f"; {count(report.ocr_pages, 'page')} read by OCR" if report.ocr_pages else ""))
    if as_json:
        click.echo(json.dumps(asdict(report), ensure_ascii=False, default=str))
    if report.cancelled:
        sys.exit(130)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def status(as_json: bool) -> None:
    """Collections, folders, documents, chunks, failed files and why, embedder, database."""
    summary = workspace().library()

    def human() -> None:
        from desktop.core.storage.vectors import FIRST_CELLS_AT

        click.echo(f"database  {summary.database} ({summary.database_bytes / 1048576:.1f} MB "
                   f"on disk)")
        cells = (f"{summary.vector_cells} cells" if summary.vector_cells > 1 else
                 f"one cell (cells are made at {FIRST_CELLS_AT:,} chunks)")
        click.echo(f"search    {summary.search_memory_bytes / 1048576:.1f} MB in memory; "
                   f"vectors filed in {cells}")
        click.echo(
            f"embedder  {summary.embedder or '(none yet)'}"
            + (f" ({summary.embedder_dim} dims)" if summary.embedder_dim else "")
        )
        click.echo(f"total     {count(summary.documents, 'document')}, "
                   f"{count(summary.chunks, 'chunk')}")
        for coll in summary.collections:
            click.echo(f"\n[{coll.name}] {count(coll.documents, 'document')}, "
                       f"{count(coll.chunks, 'chunk')}")
            for root in coll.roots:
                states = ", ".join(f"{n} {s}" for s, n in sorted(root.by_status.items()))
                click.echo(
                    f"  {root.path}: {count(root.documents, 'document')} ({states}), "
                    f"{count(root.chunks, 'chunk')}"
                )
            for prob in coll.problems:
                click.echo(f"  {prob.status:<10} {prob.path}: {prob.reason}")
            if coll.ocr_documents:
                click.echo(f"  {count(coll.ocr_documents, 'document')} read by OCR"
                           + (f"; {len(coll.weak_ocr)} with weak OCR, worth checking:"
                              if coll.weak_ocr else ""))
            for weak in coll.weak_ocr:
                click.echo(f"  weak OCR   {weak.path}: {count(weak.pages, 'page')}, "
                           f"confidence {weak.confidence:.0%}")

    emit(summary.to_dict(), as_json, human)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--collection", "-c", help="Forget a whole collection.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def forget(paths: tuple[Path, ...], collection: str | None, as_json: bool) -> None:
    """Remove indexed folders (or a whole collection) from the index."""
    if not paths and not collection:
        raise click.UsageError("name a PATH or --collection")
    gone = workspace().forget(paths, collection=collection)
    data = {"roots": gone.roots, "collection": collection, "documents": gone.documents}
    emit(data, as_json, lambda: err(
        f"forgot {gone.documents} documents"
        + (f" in {len(gone.roots)} folders" if gone.roots else "")
        + (f" and the collection {collection!r}" if collection else "")))
