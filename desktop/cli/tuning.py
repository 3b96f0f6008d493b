"""`grounded tune`: a LoRA adapter from prompt → reply examples, trained on this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from desktop.cli.terminal import CancelOnInterrupt, ProgressLine, err, model_setting, workspace
from desktop.core.jobs import run_job


@click.command()
@click.argument("examples", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="The adapter's name (then --adapter NAME).")
@click.option("--epochs", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--system", help="The system prompt to train with (default: the one `ask` uses "
                               "without retrieval).")
@click.option("--model", help="The GGUF model to tune for, a file or a name `grounded models` "
                              "lists (default: the settings' model).")
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
    then usable as --adapter NAME in ask, compare and eval. Models of the llama architecture
    (no biases, no RoPE scaling) can be tuned; others are refused with a message.
    """
    from desktop.core.tuning import report as tune_report
    from desktop.core.tuning.examples import read_examples
    from desktop.core.tuning.records import TuneOptions

    rows = read_examples(examples)
    options = TuneOptions(epochs=epochs, learning_rate=learning_rate, batch_tokens=batch_tokens,
                          system=system, force=force)
    tuner = workspace(model=model_setting(model)).tuner(options)
    line = ProgressLine()
    err(f"tuning {name!r} for {tuner.info.path.name} on {len(rows)} examples from "
        f"{examples.name}; loading the model for tuning (about 5 s)…")
    with CancelOnInterrupt() as cancel:
        report = run_job(tuner.run(rows, name, cancel),
                         lambda p: tune_report.show_progress(p, line, err))
    if report.cancelled:
        line.end()
        err("cancelled: no adapter was written")
    else:
        tune_report.show_result(report, err)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
    if report.cancelled:
        sys.exit(130)
