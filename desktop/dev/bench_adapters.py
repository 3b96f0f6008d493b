"""`grounded bench adapters`: LoRA attach, switch and re-scale against a full model load, and
generation speed with an adapter attached against without.

Two random LoRA adapters for the model are written first (:func:`write_lora`, rank 8 on all
seven projections of every block, like a tuned one). Each repeat loads the model afresh
(header check + llama.cpp load: what a switch would cost if it reloaded), attaches A (check,
llama.cpp load, set), attaches B in its place, then switches between the two, re-scales one and
attaches both, all on the same loaded model. Generation alternates without and with adapter A
on one prompt, greedy, end-of-generation banned so each run makes exactly ``n_tokens``; the
ratio is the median of back-to-back pairs (these machines are noisy: single times are context).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from desktop.core.jobs import run_job
from desktop.core.model.adapters import PROJECTIONS, write_lora
from desktop.core.model.engine import Engine, Generation, bundled_model_path, check_model_file

Report = Callable[[str], None]
PROMPT = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def _timed(fn: Callable[..., object], *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _generate(engine: Engine, n_tokens: int, ban: dict[int, float]) -> Generation:
    engine.reset()
    return run_job(engine.chat(PROMPT, max_tokens=n_tokens, logit_bias=ban))


def bench_adapters(
    model_path: Path | None, out: Report, *, repeats: int = 3, switches: int = 20,
    n_tokens: int = 64, rank: int = 8, n_ctx: int = 2048, n_threads: int | None = None,
) -> dict:
    """Measure adapter attach / switch / re-scale times against model load time, and
    generation tokens/s with an adapter against without; print each with its ratio (``out``)
    and return them as a dict. ``model_path`` None: the bundled model."""
    import llama_cpp

    repeats, n_tokens = max(repeats, 1), max(n_tokens, 2)
    loads, attaches, switch, rescale, both, pairs = [], [], [], [], [], []
    info, same_model = check_model_file(model_path or bundled_model_path()), True
    with tempfile.TemporaryDirectory(prefix="grounded-bench-") as tmp:
        t0 = time.perf_counter()
        a = write_lora(info, Path(tmp) / "a.gguf", targets=PROJECTIONS, rank=rank, seed=1,
                       magnitude=0.2)
        b = write_lora(info, Path(tmp) / "b.gguf", targets=PROJECTIONS, rank=rank, seed=2,
                       magnitude=0.2)
        write_s = (time.perf_counter() - t0) / 2
        out(f"model: {info.name} ({info.path.name}); adapters: rank {rank} on "
            f"{', '.join(PROJECTIONS)} of every block ({a.stat().st_size / 1e6:.1f} MB each, "
            f"written in {write_s * 1000:.0f} ms)")
        for r in range(repeats):
            t0 = time.perf_counter()
            engine = Engine(model_path, n_ctx=n_ctx, n_threads=n_threads)
            try:
                llm = engine.llama
                loads.append(time.perf_counter() - t0)
                attaches.append(_timed(engine.set_adapters, [(a, 1.0)]))
                attaches.append(_timed(engine.set_adapters, [(b, 1.0)]))  # in A's place
                switch += [_timed(engine.set_adapters, [((a, b)[i % 2], 1.0)])
                           for i in range(switches)]
                rescale += [_timed(engine.set_adapters, [(b, 0.25 + i % 4 * 0.25)])
                            for i in range(switches)]
                both.append(_timed(engine.set_adapters, [(a, 1.0), (b, 0.5)]))
                same_model &= engine.llama is llm
                if r == repeats - 1:
                    vocab = llama_cpp.llama_model_get_vocab(llm.model)
                    ban = {t: float("-inf") for t in range(llm.n_vocab())
                           if llama_cpp.llama_vocab_is_eog(vocab, t)}
                    out(f"generation: {n_tokens} tokens per run, greedy, "
                        f"{engine.n_threads} thread(s), {engine.n_gpu_layers} GPU layers, "
                        f"{repeats} pairs alternating without / with adapter A")
                    for k in range(repeats):
                        pair = {}
                        for side in (("base", "adapter") if k % 2 == 0 else ("adapter", "base")):
                            engine.set_adapters([(a, 1.0)] if side == "adapter" else [])
                            pair[side] = _generate(engine, n_tokens, ban)
                        pairs.append(pair)
            finally:
                engine.close()

    load_ms = _ms(loads)
    result = {
        "model": str(info.path), "same_model_throughout": same_model, "rank": rank,
        "targets": list(PROJECTIONS), "repeats": repeats,
        "load_ms": load_ms, "attach_ms": _ms(attaches), "switch_ms": _ms(switch),
        "rescale_ms": _ms(rescale), "attach_two_ms": _ms(both),
        "runs_load_ms": [s * 1000 for s in loads],
        "runs_attach_ms": [s * 1000 for s in attaches],
    }
    for key in ("attach", "switch", "rescale"):
        result[f"ratio_{key}_to_load"] = result[f"{key}_ms"] / load_ms
    for side in ("base", "adapter"):
        result[side] = {
            "tokens_per_s": statistics.median(p[side].tokens_per_s for p in pairs),
            "first_token_ms": statistics.median(p[side].first_token_ms for p in pairs),
            "runs_tokens_per_s": [p[side].tokens_per_s for p in pairs]}
    result["ratio_tokens_per_s"] = statistics.median(
        p["adapter"].tokens_per_s / p["base"].tokens_per_s for p in pairs)
    result["ratio_first_token"] = statistics.median(
        p["adapter"].first_token_ms / p["base"].first_token_ms for p in pairs)
    result["prompt_tokens"] = pairs[0]["base"].prompt_tokens

    out(f"model load (header check + llama.cpp): {load_ms:.0f} ms (median of {repeats})")
    out(f"attach (check + llama.cpp load + set): {result['attach_ms']:.1f} ms; RATIO "
        f"attach/load {result['ratio_attach_to_load']:.3f}")
    out(f"switch A <-> B (loaded): {result['switch_ms']:.3f} ms; RATIO switch/load "
        f"{result['ratio_switch_to_load']:.5f}")
    out(f"re-scale: {result['rescale_ms']:.3f} ms; RATIO re-scale/load "
        f"{result['ratio_rescale_to_load']:.5f}")
    out(f"attach both A and B (loaded): {result['attach_two_ms']:.3f} ms; the model was "
        f"{'never' if same_model else 'SOMETIMES'} reloaded")
    base, lora = result["base"], result["adapter"]
    out(f"generation: without {base['tokens_per_s']:.1f} tok/s, with adapter "
        f"{lora['tokens_per_s']:.1f} tok/s; RATIO with/without {result['ratio_tokens_per_s']:.3f}")
    out(f"first token ({result['prompt_tokens']}-token prompt, after a switch): without "
        f"{base['first_token_ms']:.0f} ms, with {lora['first_token_ms']:.0f} ms; RATIO "
        f"with/without {result['ratio_first_token']:.3f}")
    return result
