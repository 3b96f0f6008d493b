"""`grounded bench NAME`: a hot path measured against its natural reference in one run."""

from __future__ import annotations

from pathlib import Path

import click

from desktop.cli.terminal import emit, err
from desktop.core.errors import GroundedError

EVAL_CORPORA = ("squad_v1.1_dev/corpus_small", "covidqa_long/corpus",
                "xquad_multilingual/corpus", "pdfs")


@click.command()
@click.argument("name", type=click.Choice(["index", "rescan", "retrieve", "generate",
                                          "adapters", "tune", "ocr", "models"]))
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False,
                                                     path_type=Path))
@click.option("--corpus", "corpora", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder to index (index; the same as naming FOLDERS).")
@click.option("--limit", type=int, help="Use only the first N files (index).")
@click.option("--sizes", default=None,
              help="tune: example counts (default 64,200; 64 is ours, others from SQuAD); "
                   "retrieve: index sizes in chunks (default 10000,100000; 1000000 for a "
                   "whole life's documents: built once, kept in the cache folder).")
@click.option(
    "--files", "n_files", type=int, default=10_000, show_default=True,
    help="Size of the generated tree (rescan without a FOLDER)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench(name: str, folders: tuple[Path, ...], corpora: tuple[Path, ...], limit: int | None,
          sizes: str | None, n_files: int, as_json: bool) -> None:
    """Measure a hot path against its natural reference, in one run; print the ratios.

    index, rescan and retrieve work on the FOLDERS named (rescan: the first), or without
    them on ../shared/eval beside the checkout (rescan: a generated tree of --files files);
    ocr on an evaluation folder laid out as ../shared/eval (the default).
    """
    from desktop.dev import benchmarks

    folders = (*folders, *corpora)
    if name == "index":
        if not folders:
            eval_dir = _eval_dir(benchmarks)
            folders = tuple(eval_dir / c for c in EVAL_CORPORA)
        result = benchmarks.bench_index(list(folders), err, limit)
    elif name == "rescan":
        result = benchmarks.bench_rescan(err, n_files, folder=folders[0] if folders else None)
    elif name == "retrieve":
        from desktop.dev.bench_retrieve import bench_retrieve

        eval_dir = None if folders else _eval_dir(benchmarks)
        result = bench_retrieve(err, eval_dir, list(folders),
                                sizes=_numbers(sizes or "10000,100000"))
    elif name == "generate":
        from desktop.dev.bench_generate import bench_generate

        result = bench_generate(err)
    elif name == "models":
        from desktop.dev.bench_models import bench_models

        result = bench_models(err)
    elif name == "ocr":
        from desktop.dev.bench_ocr import bench_ocr

        result = bench_ocr(folders[0] if folders else _eval_dir(benchmarks), err)
    elif name == "tune":
        from desktop.dev.bench_tune import bench_tune

        result = bench_tune(benchmarks.default_eval_dir(), err, sizes=_numbers(sizes or "64,200"))
    else:
        from desktop.dev.bench_adapters import bench_adapters

        result = bench_adapters(None, err)
    emit(result, as_json, lambda: None)


def _eval_dir(benchmarks) -> Path:
    eval_dir = benchmarks.default_eval_dir()
    if eval_dir is None:
        raise GroundedError("no ../shared/eval found beside the checkout: name the folders "
                            "to measure on (grounded bench NAME FOLDER...)")
    return eval_dir


def _numbers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in text.split(","))
    except ValueError:
        raise click.UsageError("--sizes takes numbers separated by commas") from None
