"""`grounded models`: the GGUF models already on this computer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from desktop.cli.terminal import emit, err
from desktop.core.config import Settings, home
from desktop.core.errors import GroundedError

if TYPE_CHECKING:
    from desktop.core.model.discovery import Found


def _line(f: Found) -> str:
    from desktop.core.answering.reading import reading_by_size
    from desktop.core.model.discovery import parameters_text, size_text, speed_text

    if f.kind == "broken":
        return f"  {f.name}  [{f.source}]  broken: {f.error}"
    fits = {True: "fits in memory", False: "too large for the memory free now", None: ""}
    details = [f.architecture, parameters_text(f.parameters), f.quantization,
               size_text(f.size_bytes)]
    if f.kind == "model":
        details += [f"{f.context_length} context" if f.context_length else "",
                    "chat template" if f.chat_template else "no chat template",
                    fits[f.fits_memory],
                    f"reads {reading_by_size(f.parameters)}"]
        if f.tokens_per_s:
            details.append(f"{speed_text(f.first_token_ms or 0, f.tokens_per_s)} here")
    return f"  {f.name}  [{f.source}]  " + " · ".join(d for d in details if d)


@click.command()
@click.option("--add-folder", "add", type=click.Path(exists=True, file_okay=False,
                                                      path_type=Path),
              help="Search this folder too from now on (saved in the settings).")
@click.option("--remove-folder", "remove", type=click.Path(path_type=Path),
              help="Stop searching a folder added before (it may no longer exist).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def models(add: Path | None, remove: Path | None, as_json: bool) -> None:
    """The GGUF models on this computer (LM Studio, GPT4All, Jan, Ollama, llama.cpp, the
    Hugging Face cache, your folders), told apart from adapters, embedders and projectors.
    Reads headers only; nothing is downloaded. `ask --model NAME` takes a listed name."""
    from dataclasses import replace

    from desktop.core.model.discovery import catalog_for

    settings = Settings.load()
    if add is not None:
        folder = str(add.resolve())
        if folder not in settings.model_folders:
            settings = replace(settings, model_folders=[*settings.model_folders, folder])
            settings.save()
            err(f"added {folder} to the folders searched for models")
    if remove is not None:
        folder = str(remove.expanduser().resolve())
        if folder not in settings.model_folders:
            added = ", ".join(settings.model_folders) or "none"
            raise GroundedError(f"{folder} is not a folder added to search for models "
                                f"(added: {added})")
        settings = replace(settings, model_folders=[f for f in settings.model_folders
                                                    if f != folder])
        settings.save()
        err(f"no longer searching {folder} for models")
    catalog = catalog_for(home().data, tuple(settings.model_folders)).scan()

    def human() -> None:
        groups = (("model", "Models"), ("adapter", "LoRA adapters"), ("embedder", "Embedders"),
                  ("projector", "Vision projectors"), ("broken", "Unreadable"))
        for kind, title in groups:
            items = [f for f in catalog.found if f.kind == kind]
            if items:
                click.echo(f"{title}:")
                for f in items:
                    click.echo(_line(f))
                    click.echo(f"      {f.path}")
        if not catalog.models:
            click.echo("No GGUF models found; add a folder to search with --add-folder.")

    from desktop.core.answering.reading import sentences_for

    # evidence_sentences: what the model reads by its size (0: whole passages).
    emit({"models": [f.to_dict() | ({"evidence_sentences": sentences_for(f.parameters)}
                                    if f.kind == "model" else {})
                     for f in catalog.found]}, as_json, human)
