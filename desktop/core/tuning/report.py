"""How `grounded tune` shows a run on stderr: the estimate, a progress line per step, the
self-check, and base vs tuned answers to the held-out prompts side by side."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from typing import Any

Out = Callable[[str], None]


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; ``--`` for unknown."""
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def estimate_lines(e: Any) -> list[str]:
    """The estimate, in words."""
    memory = f"peak memory about {e.peak_bytes / 1e9:.1f} GB"
    if e.available_bytes is not None:
        memory += f" of {e.available_bytes / 1e9:.1f} GB available"
    where = f"on the CPU, {e.threads} thread{'s' if e.threads != 1 else ''}"
    if len(e.threads_measured) > 1:
        where += " (measured: " + ", ".join(
            f"{n}: {tps:.0f} tokens/s" for n, tps in sorted(e.threads_measured.items())) + ")"
    lines = [
        f"{e.trained} examples to train on, {e.held_out} held out to check the result; "
        f"{e.epochs} epoch{'s' if e.epochs != 1 else ''}, {e.steps} steps, "
        f"{e.train_tokens:,} tokens, {where}",
        f"estimate: {duration(e.total_s)} (training {duration(e.train_s)} at "
        f"{e.tokens_per_s:.0f} tokens/s, then {duration(e.after_s)} to export, check and "
        f"compare); {memory}",
    ]
    if e.batch_tokens < e.requested_batch_tokens:
        lines.append(f"tokens per batch lowered from {e.requested_batch_tokens:,} to "
                     f"{e.batch_tokens:,} to fit the memory available")
    return lines


def progress_text(p: Any) -> str | None:
    """A training step as one line (None for other phases)."""
    if p.phase != "training":
        return None
    return (f"step {p.step}/{p.steps} · epoch {p.epoch} · loss {p.loss:.3f} · "
            f"{p.tokens_per_s:.0f} tokens/s · ETA {duration(p.eta_s)}")


def show_progress(p: Any, line: Any, out: Out) -> None:
    """Drive the CLI's progress line with a :class:`TuneProgress`."""
    if p.phase == "estimate":
        for text in estimate_lines(p.estimate):
            out(text)
    elif p.phase == "training":
        line.text(progress_text(p), force=p.step in (1, p.steps))
    elif p.phase in ("exporting", "checking"):
        if p.phase == "exporting":
            line.end()
        out(f"{p.phase}: {p.message}")
    elif p.phase == "comparing" and p.answer is not None:
        out("")
        for text in side_by_side(p.answer):
            out(text)


def side_by_side(a: Any, width: int | None = None) -> list[str]:
    """A held-out prompt, then the base and tuned answers in two columns, with form scores."""
    width = width or min(shutil.get_terminal_size((110, 24)).columns, 140)
    col = max(20, (width - 3) // 2)
    left = _wrap(a.base, col)
    right = _wrap(a.tuned, col)
    lines = [f"prompt: {a.prompt}",
             f"{'base (form ' + format(a.form_base, '.2f') + ')':<{col}} | "
             f"tuned (form {a.form_tuned:.2f})",
             f"{'-' * col}-+-{'-' * col}"]
    for i in range(max(len(left), len(right))):
        lines.append(f"{left[i] if i < len(left) else '':<{col}} | "
                     f"{right[i] if i < len(right) else ''}".rstrip())
    return lines


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for paragraph in (text or "(nothing)").splitlines() or [""]:
        out += textwrap.wrap(paragraph, width) or [""]
    return out


def show_result(report: Any, out: Out) -> None:
    """The self-check, the form scores and where the adapter is."""
    c = report.check
    if c is not None:
        out(f"self-check on {c.tokens} tokens: llama.cpp + adapter vs the numpy model + LoRA, "
            f"logits correlate {c.logit_correlation:.4f} (base models: "
            f"{c.base_correlation:.4f}); the change correlates {c.change_correlation:.3f} "
            f"(q/k alone {c.qk_change_correlation:.3f}) at {c.change_scale:.2f}× the size")
    if report.form_base is not None:
        out(f"form on {len(report.held_out)} held-out prompts (ROUGE-L F1 against the ideal "
            f"replies): base {report.form_base:.3f}, tuned {report.form_tuned:.3f}")
    out(f"trained {report.steps} steps in {duration(report.train_s)} "
        f"({report.tokens_per_s:.0f} tokens/s), {duration(report.seconds)} in all, peak "
        f"memory {report.peak_rss_bytes / 1e9:.2f} GB")
    out(f"saved {report.adapter}; use it with: grounded ask \"...\" --adapter {report.name}")
