"""Tune: prompt → ideal-reply examples become a LoRA adapter for the model, on this machine.

:meth:`Tuner.run` is one generator of :class:`TuneProgress` records that returns a
:class:`TuneReport`, cancelled with a :class:`threading.Event` between steps, like indexing:
the CLI drives it under a progress line (Ctrl-C sets the token), the window in a worker.

1. **load** the GGUF into numpy (float32, :mod:`.numpy_llama`) and its tokenizer and chat
   template from llama.cpp (:mod:`.train`);
2. **encode** each example through the chat template, the loss on the reply only; hold out a
   seeded share (never trained on) for the check at the end;
3. **estimate** time (one timed forward + backward pass on real examples gives tokens/s) and
   peak memory (:func:`.train.training_bytes` of the largest batch), lowering the tokens per
   batch when the estimate exceeds the memory available;
4. **train** a LoRA (:mod:`.lora`; AdamW, learning rate decaying linearly to a tenth),
   progress per step;
5. **export** a GGUF LoRA to a hidden file in ``<data>/adapters`` (:mod:`.export`);
6. **self-check**: logits of the numpy model + LoRA against llama.cpp + the file on the same
   tokens (:func:`.export.judge`); a failing adapter is refused and deleted;
7. **compare** base and tuned answers (llama.cpp, greedy) to the held-out prompts, with their
   :func:`form <desktop.core.answering.form.form>` scores against the ideal replies;
8. **keep**: ``<name>.gguf`` and ``<name>.json`` move into place (``os.replace``). A cancel or
   an error at any step leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import random
import resource
import statistics
import sys
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from desktop.core.answering.form import form
from desktop.core.errors import GroundedError
from desktop.core.jobs import run_job
from desktop.core.model import adapter_store
from desktop.core.model.modelfile import available_memory, bundled_model_path, check_model_file
from desktop.core.tuning import export as tune_export
from desktop.core.tuning import train as tune_train
from desktop.core.tuning.examples import Example
from desktop.core.tuning.lora import AdamW, Lora
from desktop.core.tuning.numpy_llama import LlamaModel
from desktop.core.tuning.records import (
    Estimate,
    HeldOutAnswer,
    TuneOptions,
    TuneProgress,
    TuneReport,
)

log = logging.getLogger(__name__)

#: Assumed llama.cpp generation speed for the estimate of the comparison (tokens/s).
GENERATION_TOKENS_PER_S = 60.0
#: Share of the available memory the estimate may use before the batch is made smaller.
MEMORY_SHARE = 0.85


def peak_rss() -> int:
    """This process's peak resident memory so far, bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss() -> int:
    """This process's resident memory now, bytes (the peak where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss()


def default_held_out(n: int) -> int:
    """Examples held out of ``n``: an eighth, at least 2, at most 16."""
    return max(2, min(16, round(n / 8)))


class Tuner:
    """Tunes LoRA adapters for one GGUF model (``None``: the bundled one) into ``data``'s
    adapters folder. The numpy model is loaded on the first run and kept."""

    def __init__(self, model: str | Path | None, data: Path,
                 options: TuneOptions | None = None) -> None:
        self.info = check_model_file(model or bundled_model_path(), check_memory=False)
        self.data = Path(data)
        self.options = options or TuneOptions()
        self.model: LlamaModel | None = None  # loaded on the first run, then kept
        self.tokenizer: tune_train.ChatTokenizer | None = None
        self.lora: Lora | None = None  # the last run's LoRA (tests export from it)
        self.threads = self.options.threads or 1

    def target(self, name: str) -> Path:
        return adapter_store.adapters_dir(self.data) / f"{name}.gguf"

    def run(self, examples: Sequence[Example], name: str,
            cancel: threading.Event | None = None
            ) -> Generator[TuneProgress, None, TuneReport]:
        """Tune an adapter called ``name`` on ``examples``; see the module's steps."""
        cancel = cancel or threading.Event()
        target = self._free_target(name)
        held = self._held_count(len(examples))
        t0 = time.perf_counter()
        report = TuneReport(name=name, model=str(self.info.path), examples=len(examples),
                            epochs=self.options.epochs)
        from threadpoolctl import threadpool_limits

        blas = threadpool_limits(limits=None, user_api="blas")  # restores the count after
        candidate = target.with_name(f".{name}.{os.getpid()}.candidate.gguf")
        try:
            yield from self._loading(report, t0)
            if cancel.is_set():
                return self._cancelled(report, t0)
            train, held_out = self._split(examples, held)
            report.trained = len(train)
            estimate, batches = yield from self._estimating(train, held_out, report, t0)
            if cancel.is_set():
                return self._cancelled(report, t0)
            yield from self._train(train, batches, estimate, report, cancel, t0)
            if cancel.is_set():
                return self._cancelled(report, t0)
            yield from self._export_and_check(candidate, name, held_out or train, report, t0)
            if cancel.is_set():
                return self._cancelled(report, t0)
            yield from self._comparing(candidate, held_out, report, cancel, t0)
            if cancel.is_set():
                return self._cancelled(report, t0)
            self._summarise(report, t0)
            self._keep(candidate, target, report, held_out)
            yield TuneProgress("done", str(target), report.seconds)
            return report
        finally:
            candidate.unlink(missing_ok=True)
            blas.restore_original_limits()

    # -- the steps ------------------------------------------------------------------------

    def _free_target(self, name: str) -> Path:
        """Where the adapter ``name`` goes: a valid name, free unless the options force it."""
        adapter_store.check_name(name)
        target = self.target(name)
        if target.exists() and not self.options.force:
            raise GroundedError(f"an adapter named {name!r} exists ({target}); choose another "
                                "name or replace it with --force")
        return target

    def _held_count(self, n: int) -> int:
        """How many of ``n`` examples are held out, leaving at least one on each side."""
        opts = self.options
        held = opts.held_out if opts.held_out is not None else default_held_out(n)
        if n - held < 1 or held < 1:
            raise GroundedError(f"{n} examples leave none to train on or to hold out ({held} "
                                "held out)")
        return held

    def _loading(self, report: TuneReport, t0: float) -> Generator[TuneProgress, None, None]:
        """Load the numpy model and tokenizer (once per Tuner)."""
        yield TuneProgress("loading", f"loading {self.info.path.name} for tuning",
                           time.perf_counter() - t0)
        self._load()
        report.load_s = time.perf_counter() - t0

    def _split(self, examples: Sequence[Example], held: int
               ) -> tuple[list[tune_train.Encoded], list[tune_train.Encoded]]:
        """The examples encoded through the chat template, then (train, held out): ``held``
        of them chosen with the seed, each side in the examples' order."""
        opts = self.options
        encoded = tune_train.encode(self.tokenizer, examples, opts.system_prompt)
        too_long = [e for e in encoded if len(e) > opts.batch_tokens]
        if too_long:
            e = too_long[0]
            raise GroundedError(
                f"the example on line {e.example.line} has {len(e):,} tokens; the cap per "
                f"batch is {opts.batch_tokens:,}: shorten it or raise the cap")
        order = list(range(len(encoded)))
        random.Random(opts.seed).shuffle(order)
        held_out = [encoded[i] for i in sorted(order[:held])]
        train = [encoded[i] for i in sorted(order[held:])]
        return train, held_out

    def _estimating(self, train: list[tune_train.Encoded], held_out: list[tune_train.Encoded],
                    report: TuneReport, t0: float
                    ) -> Generator[TuneProgress, None, tuple[Estimate, list[list[int]]]]:
        """A fresh LoRA, then the estimate (yielded) and the batches it planned."""
        opts = self.options
        self.lora = Lora.fresh(self.model.lora_shapes(), opts.rank, opts.alpha, opts.dropout,
                               opts.seed)
        estimate, batches = self._estimate(train, held_out, report.examples)
        report.estimate = estimate
        yield TuneProgress("estimate", "", time.perf_counter() - t0, steps=len(batches),
                           estimate=estimate)
        return estimate, batches

    def _export_and_check(self, candidate: Path, name: str,
                          check_on: Sequence[tune_train.Encoded], report: TuneReport,
                          t0: float) -> Generator[TuneProgress, None, None]:
        """Write the adapter to ``candidate`` and self-check it; one that fails is refused."""
        yield TuneProgress("exporting", "writing the GGUF adapter", time.perf_counter() - t0)
        candidate.parent.mkdir(parents=True, exist_ok=True)
        self.export(candidate, name)
        yield TuneProgress("checking", "comparing llama.cpp with the tuned model",
                           time.perf_counter() - t0)
        report.check = self._self_check(candidate, check_on)
        if not report.check.passed:
            raise GroundedError(f"the exported adapter does not match the tuned model, so "
                                f"it was not kept: {report.check.reason}")

    def _comparing(self, candidate: Path, held_out: Sequence[tune_train.Encoded],
                   report: TuneReport, cancel: threading.Event, t0: float
                   ) -> Generator[TuneProgress, None, None]:
        """Answer each held-out prompt with and without the adapter (each answer yielded)."""
        for answer in self._compare(candidate, held_out, cancel):
            report.held_out.append(answer)
            yield TuneProgress("comparing", answer.prompt, time.perf_counter() - t0,
                               answer=answer)

    def _summarise(self, report: TuneReport, t0: float) -> None:
        """The mean form scores, the time and the peak memory of a finished run."""
        if report.held_out:
            report.form_base = statistics.fmean(a.form_base for a in report.held_out)
            report.form_tuned = statistics.fmean(a.form_tuned for a in report.held_out)
        report.seconds = time.perf_counter() - t0
        report.peak_rss_bytes = peak_rss()

    def _load(self) -> None:
        """The numpy model and tokenizer, read on the first run; no LoRA yet."""
        if self.model is None:
            self.model, self.tokenizer = tune_train.load(self.info.path)
        self.lora = None

    def _estimate(self, train: list[tune_train.Encoded], held_out: list[tune_train.Encoded],
                  n_examples: int) -> tuple[Estimate, list[list[int]]]:
        """Time from a timed forward + backward pass on the first batch; memory from the
        largest batch; the cap lowered when that would not fit."""
        opts = self.options
        lengths = [len(e) for e in train]
        config, longest = self.model.config, max(lengths)
        resident = current_rss()
        available = self._available()
        cap = opts.batch_tokens
        if available is not None:
            fits = tune_train.tokens_that_fit(config, available * MEMORY_SHARE - resident,
                                              longest)
            if fits < cap:
                if fits < longest:
                    need = resident + tune_train.training_bytes(config, longest, longest)
                    raise GroundedError(
                        f"not enough memory to train: {available / 1e9:.1f} GB available, an "
                        f"example of {longest:,} tokens needs about {need / 1e9:.1f} GB")
                log.info("tokens per batch lowered from %d to %d to fit memory", cap, fits)
                cap = fits
        batches = tune_train.plan_batches(lengths, cap, opts.batch_examples, opts.epochs,
                                          opts.seed)
        biggest = max(tune_train.padded_tokens(b, lengths) for b in batches)
        tokens = sum(tune_train.padded_tokens(b, lengths) for b in batches)
        measured = self._measure_speed([train[i] for i in batches[0]])
        self.threads = max(measured, key=measured.get)
        speed = measured[self.threads]
        held_tokens = opts.max_new_tokens * 2 * len(held_out)
        # The check: three forward passes (about twice training's tokens/s: no backward) and
        # llama.cpp loading and evaluating (a fixed allowance); then every held-out answer
        # twice.
        check_s = 3 * opts.check_tokens / speed * 0.5 + 8.0
        after_s = check_s + held_tokens / GENERATION_TOKENS_PER_S
        peak = max(peak_rss(), resident + tune_train.training_bytes(config, biggest, longest))
        return Estimate(
            examples=n_examples, trained=len(train), held_out=len(held_out), epochs=opts.epochs,
            steps=len(batches), train_tokens=tokens, tokens_per_s=speed, train_s=tokens / speed,
            after_s=after_s, peak_bytes=peak, available_bytes=available, batch_tokens=cap,
            requested_batch_tokens=opts.batch_tokens, threads=self.threads,
            threads_measured=measured), batches

    def _available(self) -> int | None:
        return available_memory()

    def _measure_speed(self, sample: list[tune_train.Encoded]) -> dict[int, float]:
        """Tokens/s of a forward + backward pass on the first example of ``sample`` (the
        first batch), after an untimed pass on its first 32 tokens, per thread count: the
        threads asked for, or 1 and the physical cores that are free now (the faster count
        is used). BLAS threads meet after every matrix product, so a thread whose core
        another process holds stalls the rest, and timing it costs many seconds: a busy core
        is therefore not tried. One example, not the batch, so the estimate errs long (README,
        "Tuning"). No step is taken."""
        from threadpoolctl import threadpool_limits

        from desktop.core.cpus import free_threads, physical_cores

        counts = [self.options.threads] if self.options.threads else sorted(
            {free_threads(physical_cores(), interval=0.2), 1}, reverse=True)
        speeds = {}
        first, n_warm = sample[0], min(32, len(sample[0]))
        warm = tune_train.Encoded(first.example, tuple(first.ids[:n_warm - 1]),
                                  tuple(first.ids[n_warm - 1:n_warm]))
        for n in counts:
            threadpool_limits(n, user_api="blas")
            self.model.loss_and_grads(*self._collate([warm]), self.lora)
            ids, targets = self._collate([first])
            t0 = time.perf_counter()
            self.model.loss_and_grads(ids, targets, self.lora)
            speeds[n] = ids.size / max(time.perf_counter() - t0, 1e-6)
        threadpool_limits(max(speeds, key=speeds.get), user_api="blas")
        return speeds

    def _collate(self, items: Sequence[tune_train.Encoded]) -> tuple[np.ndarray, np.ndarray]:
        return tune_train.collate(items, self.tokenizer.pad_id)

    def _train(self, train: list[tune_train.Encoded], batches: list[list[int]],
               estimate: Estimate, report: TuneReport, cancel: threading.Event, t0: float
               ) -> Generator[TuneProgress, None, None]:
        """Train the LoRA on ``batches`` (a record per step) until done or cancelled, then
        note the peak memory and hand the freed heap back."""
        opts, model, lora = self.options, self.model, self.lora
        optimizer = AdamW(lora)
        dropout = np.random.default_rng(opts.seed + 1)
        lengths = [len(e) for e in train]
        per_epoch = max(1, len(batches) // max(1, opts.epochs))
        done_tokens, start = 0, time.perf_counter()
        for step, batch in enumerate(batches, start=1):
            if cancel.is_set():
                break
            lr = opts.learning_rate * (1 - 0.9 * (step - 1) / max(1, len(batches)))
            ids, targets = self._collate([train[i] for i in batch])
            value, grads = model.loss_and_grads(ids, targets, lora, dropout)
            if not math.isfinite(value):
                raise GroundedError(f"training diverged at step {step} (loss {value}); try a "
                                    "lower learning rate")
            optimizer.step(grads, lr)
            report.losses.append(value)
            done_tokens += tune_train.padded_tokens(batch, lengths)
            seconds = time.perf_counter() - start
            speed = done_tokens / seconds if seconds > 0 else 0.0
            eta = ((estimate.train_tokens - done_tokens) / speed + estimate.after_s
                   if speed else None)
            report.steps, report.train_tokens = step, done_tokens
            report.tokens_per_s, report.train_s = speed, seconds
            yield TuneProgress("training", "", time.perf_counter() - t0, step=step,
                               steps=len(batches), epoch=min(opts.epochs,
                                                             (step - 1) // per_epoch + 1),
                               loss=value, tokens_per_s=speed, eta_s=eta)
        report.train_peak_rss_bytes = peak_rss()
        _return_freed_memory()

    def export(self, path: Path, name: str, *, only: Sequence[str] | None = None,
               alpha: float | None = None) -> Path:
        """Write the last run's LoRA to ``path`` (``only``: some projections, as the self-check
        needs; ``alpha``: another alpha, a wrong export the tests write on purpose)."""
        if self.lora is None:
            raise RuntimeError("nothing trained yet")
        cfg = self.model.config
        tensors = tune_export.lora_tensors(self.lora, cfg.n_head, cfg.n_head_kv, only=only)
        return tune_export.write_gguf_lora(
            path, self.info.architecture, tensors,
            alpha=self.options.alpha if alpha is None else alpha, name=name)

    def self_check(self, adapter: Path, encoded: Sequence[tune_train.Encoded],
                   qk_adapter: Path | None = None) -> tune_export.SelfCheck:
        """Logits of the numpy model + LoRA against llama.cpp + ``adapter`` (see :meth:`run`);
        ``qk_adapter``: the q/k pairs alone (written from the LoRA when None)."""
        return self._self_check(adapter, encoded, qk_adapter)

    def _self_check(self, adapter: Path, encoded: Sequence[tune_train.Encoded],
                    qk_adapter: Path | None = None) -> tune_export.SelfCheck:
        from desktop.core.model.engine import Engine

        ids: list[int] = []
        for e in encoded:
            ids += e.ids
            if len(ids) >= self.options.check_tokens:
                break
        ids = ids[:self.options.check_tokens]
        model, qk = self.model, tune_export.QK
        tuned = model.logits(ids, self.lora)
        base = model.logits(ids)
        qk_only = model.logits(ids, self.lora, kinds=qk)
        own_qk = qk_adapter is None
        if own_qk:
            qk_adapter = adapter.with_name(adapter.stem + ".qk.gguf")
            self.export(qk_adapter, "qk", only=qk)
        try:
            with Engine(self.info.path, n_ctx=len(ids) + 8, n_threads=self.threads,
                        logits_all=True) as engine:
                ll_base = engine.logits(ids)
                engine.set_adapters([(adapter, 1.0)])
                ll_tuned = engine.logits(ids)
                engine.set_adapters([(qk_adapter, 1.0)])
                ll_qk = engine.logits(ids)
        finally:
            if own_qk:
                qk_adapter.unlink(missing_ok=True)
        return tune_export.judge(base, tuned, qk_only, ll_base, ll_tuned, ll_qk)

    def _compare(self, adapter: Path, held_out: Sequence[tune_train.Encoded],
                 cancel: threading.Event) -> Generator[HeldOutAnswer, None, None]:
        """Base and tuned answers (llama.cpp, greedy) to each held-out prompt."""
        from desktop.core.model.engine import Engine

        if not held_out:
            return
        longest = max(len(e.prompt) for e in held_out)
        n_ctx = longest + self.options.max_new_tokens + 16
        with Engine(self.info.path, n_ctx=n_ctx, n_threads=self.threads) as engine:
            for e in held_out:
                if cancel.is_set():
                    return
                replies = []
                for adapters in ([], [(adapter, 1.0)]):
                    engine.set_adapters(adapters)
                    msgs = tune_train.messages(e.example.prompt, self.options.system_prompt)
                    replies.append(_reply(engine, msgs, self.options.max_new_tokens, cancel))
                base, tuned = replies
                yield HeldOutAnswer(e.example.prompt, e.example.reply, base, tuned,
                                    form(base, e.example.reply), form(tuned, e.example.reply))

    def _keep(self, candidate: Path, target: Path, report: TuneReport,
              held_out: Sequence[tune_train.Encoded]) -> None:
        """Move the adapter into place and write its metadata beside it."""
        opts = self.options
        meta = {
            "name": report.name, "base_model": str(self.info.path),
            "base_model_name": self.info.path.name, "architecture": self.info.architecture,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": report.seconds,
            "examples": report.examples, "trained": report.trained,
            "options": {k: v for k, v in asdict(opts).items() if k != "force"}
            | {"system": opts.system_prompt},
            "steps": report.steps, "final_loss": report.losses[-1] if report.losses else None,
            "train_tokens": report.train_tokens, "tokens_per_s": report.tokens_per_s,
            "peak_rss_bytes": report.peak_rss_bytes,
            "self_check": report.check.to_dict() if report.check else None,
            "form_base": report.form_base, "form_tuned": report.form_tuned,
            "held_out": [{"prompt": a.prompt, "reply": a.ideal, "base": a.base,
                          "tuned": a.tuned, "form_base": a.form_base,
                          "form_tuned": a.form_tuned} for a in report.held_out]
            or [{"prompt": e.example.prompt, "reply": e.example.reply} for e in held_out],
        }
        meta_path = adapter_store.meta_path(target)
        os.replace(candidate, target)
        adapter_store.write_json(meta_path, meta)
        report.adapter, report.metadata = str(target), str(meta_path)

    def _cancelled(self, report: TuneReport, t0: float) -> TuneReport:
        report.cancelled = True
        report.seconds = time.perf_counter() - t0
        report.peak_rss_bytes = peak_rss()
        return report


def _return_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). The training step's freed arrays otherwise stay resident under the
    self-check and the comparison."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reply(engine: Any, msgs: list[dict[str, str]], max_tokens: int,
           cancel: threading.Event) -> str:
    return run_job(engine.chat(msgs, max_tokens=max_tokens, cancel=cancel)).text.strip()
