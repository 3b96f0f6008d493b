"""`grounded bench tune`: tuning time, peak memory and trained tokens/s for 64 and 200
examples, the estimate printed before training against what the run took, and the form of
base and tuned answers to the held-out prompts.

Each set is tuned in a fresh child process (``python -m desktop.dev.bench_tune --child``), so its
peak resident memory is its own. The sets: ``resources/tune/memo-style.jsonl`` (64 examples of
our own writing) and 200 SQuAD v1.1 dev questions from ``../shared/eval`` with their answers
put in the same memo form at run time (the answer as the summary, the sentence of the gold
paragraph that holds it as the details; nothing is copied into the project). Besides the form
score (ROUGE-L F1, ``answering.form``) it counts the answers in memo form (first line
``MEMO``, then ``Summary:``), a plain reading of the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

Report = Callable[[str], None]
REPO = Path(__file__).resolve().parents[1]
MEMO_SET = REPO / "resources" / "tune" / "memo-style.jsonl"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def in_memo_form(text: str) -> bool:
    """Whether a reply has the taught layout: ``MEMO`` alone on the first line, then a
    ``Summary:`` line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return len(lines) >= 2 and lines[0] == "MEMO" and lines[1].startswith("Summary:")


def squad_memo_set(eval_dir: Path, n: int, into: Path) -> Path:
    """``n`` SQuAD v1.1 dev questions answered as memos, written to ``into`` (JSONL)."""
    folder = eval_dir / "squad_v1.1_dev"
    docs = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs[d["doc_id"]] = d
    rows = []
    with (folder / "questions.jsonl").open(encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            answer = q["answers"][0].strip().rstrip(".")
            doc = docs.get(q["gold_doc_ids"][0])
            if doc is None:
                continue
            sentence = next((s for s in _SENTENCE.split(doc["text"]) if answer in s), None)
            if sentence is None or len(sentence.split()) > 45:
                continue
            title = doc.get("title") or q.get("article", "").replace("_", " ")
            reply = (f"MEMO\nSummary: {answer[0].upper() + answer[1:]}.\n"
                     f"Details: {sentence.strip()}\n"
                     f"Action: No action is needed; the source is the article on {title}.")
            rows.append({"prompt": q["question"], "reply": reply})
            if len(rows) == n:
                break
    if len(rows) < n:
        raise ValueError(f"only {len(rows)} SQuAD questions fit the memo form")
    into.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return into


def _child(examples: Path, name: str, data: Path, epochs: int) -> int:
    """Tune one set in this process; print the report as JSON on stdout."""
    from desktop import process

    process.prepare()
    from desktop.core.tuning import report as tune_report
    from desktop.core.tuning.examples import read_examples
    from desktop.core.tuning.tuner import TuneOptions, Tuner

    rows = read_examples(examples)
    tuner = Tuner(None, data, TuneOptions(epochs=epochs))
    gen = tuner.run(rows, name)
    t0 = time.perf_counter()
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            report = stop.value
            break
        if p.phase == "estimate":
            for line in tune_report.estimate_lines(p.estimate):
                print(f"  {line}", file=sys.stderr, flush=True)
        elif p.phase == "training" and (p.step % 10 == 0 or p.step == p.steps):
            print(f"  {tune_report.progress_text(p)}", file=sys.stderr, flush=True)
        elif p.phase != "training":
            print(f"  {time.perf_counter() - t0:6.1f} s {p.phase}", file=sys.stderr, flush=True)
    data_out = report.to_dict()
    data_out["memo_form_base"] = sum(in_memo_form(a.base) for a in report.held_out)
    data_out["memo_form_tuned"] = sum(in_memo_form(a.tuned) for a in report.held_out)
    print(json.dumps(data_out, default=str))
    return 0


def bench_tune(eval_dir: Path | None, out: Report, *, sizes: tuple[int, ...] = (64, 200),
               epochs: int = 3) -> dict:
    """Tune each set in a child process and report time, peak memory, tokens/s, estimate
    against actual, the self-check and the form scores (``out`` prints each line)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="grounded-bench-tune-") as tmp:
        for n in sizes:
            if n == 64:
                examples, label = MEMO_SET, "memo-style (ours)"
            else:
                if eval_dir is None:
                    raise ValueError("the 200-example set needs ../shared/eval")
                examples = squad_memo_set(eval_dir, n, Path(tmp) / f"squad-{n}.jsonl")
                label = f"SQuAD v1.1 dev in memo form ({n})"
            out(f"== {label}: {examples.name}, {epochs} epochs ==")
            t0 = time.perf_counter()
            env = {**os.environ, "GROUNDED_HOME": str(Path(tmp) / "home")}
            proc = subprocess.run(
                [sys.executable, "-m", "desktop.dev.bench_tune", "--child", str(examples),
                 "--name", f"bench-{n}", "--data", str(Path(tmp) / f"data-{n}"),
                 "--epochs", str(epochs)], stdout=subprocess.PIPE, text=True, env=env)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"tuning {examples.name} failed (exit {proc.returncode})")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["wall_s"] = wall
            results[str(n)] = _summary(r, label)
            _print(results[str(n)], out)
    return {"sets": results}


def _summary(r: dict, label: str) -> dict:
    e, c = r["estimate"], r["check"]
    held = len(r["held_out"])
    return {
        "set": label, "examples": r["examples"], "trained": r["trained"], "held_out": held,
        "epochs": r["epochs"], "steps": r["steps"], "train_tokens": r["train_tokens"],
        "threads": e["threads"], "threads_measured": e["threads_measured"],
        "load_s": r["load_s"], "train_s": r["train_s"], "total_s": r["seconds"],
        "wall_s": r["wall_s"], "tokens_per_s": r["tokens_per_s"],
        "peak_rss_bytes": r["peak_rss_bytes"], "final_loss": r["losses"][-1],
        "estimate": {"train_s": e["train_s"], "total_s": e["total_s"],
                     "tokens_per_s": e["tokens_per_s"], "peak_bytes": e["peak_bytes"],
                     "batch_tokens": e["batch_tokens"]},
        "ratio_train_s_estimate_to_actual": e["train_s"] / r["train_s"],
        "ratio_total_s_estimate_to_actual": e["total_s"] / r["seconds"],
        "ratio_peak_estimate_to_actual": e["peak_bytes"] / r["peak_rss_bytes"],
        "self_check": c, "form_base": r["form_base"], "form_tuned": r["form_tuned"],
        "memo_form_base": f"{r['memo_form_base']}/{held}",
        "memo_form_tuned": f"{r['memo_form_tuned']}/{held}",
    }


def _print(s: dict, out: Report) -> None:
    e, c = s["estimate"], s["self_check"]
    out(f"{s['examples']} examples ({s['trained']} trained, {s['held_out']} held out), "
        f"{s['steps']} steps, {s['train_tokens']:,} tokens, {s['threads']} thread(s)")
    out(f"time: load {s['load_s']:.1f} s, training {s['train_s']:.1f} s, all {s['total_s']:.1f} s"
        f" (process {s['wall_s']:.1f} s); estimate {e['train_s']:.1f} s training, "
        f"{e['total_s']:.1f} s all; RATIO estimate/actual training "
        f"{s['ratio_train_s_estimate_to_actual']:.2f}, all "
        f"{s['ratio_total_s_estimate_to_actual']:.2f}")
    out(f"trained tokens/s: {s['tokens_per_s']:.0f} (estimate measured {e['tokens_per_s']:.0f})")
    out(f"peak memory: {s['peak_rss_bytes'] / 1e9:.2f} GB; estimate {e['peak_bytes'] / 1e9:.2f}"
        f" GB; RATIO {s['ratio_peak_estimate_to_actual']:.2f}")
    out(f"self-check: logits {c['logit_correlation']:.4f} (base models "
        f"{c['base_correlation']:.4f}), change {c['change_correlation']:.3f}, q/k "
        f"{c['qk_change_correlation']:.3f}, scale {c['change_scale']:.2f}")
    out(f"form on held-out prompts (ROUGE-L F1): base {s['form_base']:.3f}, tuned "
        f"{s['form_tuned']:.3f}; in memo form: base {s['memo_form_base']}, tuned "
        f"{s['memo_form_tuned']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    return _child(args.child, args.name, args.data, args.epochs)


if __name__ == "__main__":
    sys.exit(main())
