"""`grounded bench generate`: our engine against llama-cpp-python called directly.

Same model, same ``Llama`` instance (so the same threads and context), same formatted RAG
prompt, the same number of generated tokens on both sides (end-of-generation tokens get a
-inf logit bias on both, so each run generates exactly ``n_tokens``), greedy. The two sides
alternate in one run, the KV cache is cleared before each, and the ratios are medians of
back-to-back pairs: these machines are noisy, single times are only context.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from desktop.core.answering.quote import Quote
from desktop.core.jobs import run_job
from desktop.core.model.engine import Engine

Report = Callable[[str], None]
SYSTEM = ("Answer the question using only the numbered sources below. Cite the sources you "
          "use like [1]. If the sources do not contain the answer, say so.")
QUESTION = "What are comb jellies, and how do they move through the water?"


def _corpus() -> list[str]:
    """Passages (~150 words) from the shared SQuAD corpus, or generated text without it."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        folder = base.parent / "shared" / "eval" / "squad_v1.1_dev" / "corpus_small"
        if folder.is_dir():
            texts = [f.read_text(encoding="utf-8") for f in sorted(folder.iterdir())]
            return [" ".join(t.split()[:150]) for t in texts if len(t.split()) >= 100]
    return [" ".join(f"Sentence {j} of passage {i} says that item {i * 31 + j} is filed under "
                     f"shelf {j % 7}." for j in range(15)) for i in range(200)]


def _messages(passages: list[str]) -> list[dict[str, str]]:
    sources = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {QUESTION}"}]


def _fill(engine: Engine, corpus: list[str], tokens: int) -> list[dict[str, str]]:
    """Messages with as many passages as fit in ``tokens`` prompt tokens."""
    chosen: list[str] = []
    for passage in corpus:
        trial = _messages([*chosen, passage])
        if len(engine.tokenize(engine.format_prompt(trial), special=True)) > tokens:
            break
        chosen.append(passage)
    return _messages(chosen)


def _time(stream) -> tuple[float, float, int, str]:
    """(seconds to the first piece, seconds from the first piece to the last, pieces, text)."""
    t0 = time.perf_counter()
    first = last = None
    pieces = []
    for piece in stream:
        last = time.perf_counter()
        first = first or last
        pieces.append(piece)
    return (first or last or t0) - t0, (last or t0) - (first or t0), len(pieces), "".join(pieces)


def _pair(engine: Engine, messages, n_tokens: int, bias: dict[int, float], direct_first: bool):
    """One run of each side on a cleared cache: {side: (ttft_s, gen_s, pieces, text)}."""
    prompt = engine.format_prompt(messages)
    runs = {
        "direct": lambda: _time(c["choices"][0]["text"] for c in engine.llama.create_completion(
            prompt, max_tokens=n_tokens, temperature=0.0, top_k=1, repeat_penalty=1.0,
            logit_bias=bias, stream=True)),
        "ours": lambda: _time(t.text for t in engine.chat(
            messages, max_tokens=n_tokens, temperature=0.0, logit_bias=bias)),
    }
    out = {}
    for side in (("direct", "ours") if direct_first else ("ours", "direct")):
        engine.reset()
        out[side] = runs[side]()
    return out


def bench_generate(say: Report, n_tokens: int = 128, repeats: int = 3, passages: int = 5,
                   full_context: bool = True, n_ctx: int = 4096,
                   n_threads: int | None = None, busy: bool = True) -> dict:
    """Time to first token and generation tokens/s: Engine.chat against llama-cpp-python.

    A RAG prompt of ``passages`` passages and a question; then (``full_context``) the time to
    first token for a prompt filling ~85 % of ``n_ctx``. Threads: the engine's default
    (physical cores, adaptive) unless ``n_threads``; then (``busy``) adaptive against fixed
    threads beside a busy process. Prints each figure with its reference and the ratio;
    returns them as a dict.
    """
    import llama_cpp

    n_tokens = max(n_tokens, 2)  # tokens/s is measured after the first
    with Engine(n_ctx=n_ctx, n_threads=n_threads) as engine:
        llm = engine.llama
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        ban = {t: float("-inf") for t in range(llm.n_vocab())
               if llama_cpp.llama_vocab_is_eog(vocab, t)}
        corpus = _corpus()
        messages = _messages(corpus[:passages])
        n_prompt = len(engine.tokenize(engine.format_prompt(messages), special=True))
        say(f"model: {engine.info.name} ({engine.info.path.name}), n_ctx {engine.n_ctx}, "
            f"{engine.n_threads} thread(s), {engine.n_gpu_layers} GPU layers")
        say(f"prompt: {passages} passage(s) + question = {n_prompt} tokens; {n_tokens} tokens "
            f"generated per run (end-of-generation banned on both sides); {repeats} runs "
            "each, alternating")
        pairs = [_pair(engine, messages, n_tokens, ban, r % 2 == 0) for r in range(repeats)]
        texts = {p[side][3] for p in pairs for side in p}
        result = {"model": str(engine.info.path), "n_ctx": engine.n_ctx,
                  "threads": engine.n_threads, "gpu_layers": engine.n_gpu_layers,
                  "prompt_tokens": n_prompt, "n_tokens": n_tokens, "repeats": repeats,
                  "same_text": len(texts) == 1}
        for side in ("ours", "direct"):
            ttft = [p[side][0] * 1000 for p in pairs]
            tps = [(n_tokens - 1) / p[side][1] if p[side][1] > 0 else 0.0 for p in pairs]
            result[side] = {"first_token_ms": statistics.median(ttft),
                            "tokens_per_s": statistics.median(tps),
                            "runs_first_token_ms": ttft, "runs_tokens_per_s": tps}
        result["ratio_tokens_per_s"] = statistics.median(
            (n_tokens - 1) / p["ours"][1] / ((n_tokens - 1) / p["direct"][1]) for p in pairs)
        result["ratio_first_token"] = statistics.median(
            p["ours"][0] / p["direct"][0] for p in pairs)
        ours, direct = result["ours"], result["direct"]
        say(f"generation: ours {ours['tokens_per_s']:.1f} tok/s, llama-cpp-python direct "
            f"{direct['tokens_per_s']:.1f} tok/s")
        say(f"RATIO generation tokens/s ours/direct: {result['ratio_tokens_per_s']:.3f} "
            "(target >= 0.95)")
        say(f"first token ({n_prompt}-token prompt): ours {ours['first_token_ms']:.0f} ms, "
            f"direct {direct['first_token_ms']:.0f} ms; RATIO ours/direct "
            f"{result['ratio_first_token']:.3f} (lower is better)")
        say(f"same generated text on both sides in every run: {result['same_text']}")
        result["quoted"] = _quoted(engine, messages, corpus[:passages], n_tokens, ban,
                                   repeats, say)
        if busy and engine.adaptive_threads:
            result["busy"] = _beside_busy(engine, messages, n_tokens, ban, repeats, say)
        if full_context:
            result["full_context"] = _full_context(engine, corpus, ban, repeats, say)
    return result


class _Endless:
    """A quote over the passages that may not end (the end tokens and `` [`` banned; anything
    but the end once the quote runs out), so that each run generates exactly n_tokens."""

    def __init__(self, quote: Quote, anything: list[int]) -> None:
        self.quote, self.anything = quote, anything
        self.banned = {*quote.table.ends, quote.table.open_cite}

    def allowed(self, generated):
        return [t for t in self.quote.allowed(generated) if t not in self.banned] \
            or self.anything


def _quoted(engine: Engine, messages, passages: list[str], n_tokens: int, ban, repeats: int,
            say: Report) -> dict:
    """Generation with the quote constraint (:mod:`desktop.core.answering.quote`) against free
    generation, both through Engine.chat, alternating: what the constraint costs per token."""
    table = engine.token_table()
    quote = _Endless(Quote(dict(enumerate(passages, 1)), table),
                     [t for t in range(len(table.pieces)) if t not in ban])
    runs: dict[str, list[float]] = {"quoted": [], "free": []}
    for r in range(repeats):
        for side in (("quoted", "free") if r % 2 == 0 else ("free", "quoted")):
            engine.reset()
            gen = run_job(engine.chat(messages, max_tokens=n_tokens, temperature=0.0,
                                      logit_bias=ban,
                                      constraint=quote if side == "quoted" else None))
            runs[side].append(gen.tokens_per_s)
    ratio = statistics.median(q / f for q, f in zip(runs["quoted"], runs["free"], strict=True))
    quoted, free = statistics.median(runs["quoted"]), statistics.median(runs["free"])
    say(f"quoted answers: {quoted:.1f} tok/s, free {free:.1f} tok/s; RATIO quoted/free "
        f"{ratio:.3f}")
    return {"quoted_tokens_per_s": quoted, "free_tokens_per_s": free,
            "ratio_quoted_to_free": ratio}


def _beside_busy(engine: Engine, messages, n_tokens: int, ban, repeats: int,
                 say: Report) -> dict:
    """Adaptive threads (the default) against all n_threads, beside one process that keeps
    a core busy: what a person sees when something else runs while Grounded answers."""
    import subprocess
    import sys

    def run(adaptive: bool) -> tuple[float, int]:
        engine.adaptive_threads = adaptive
        engine.reset()
        gen = run_job(engine.chat(messages, max_tokens=n_tokens, temperature=0.0,
                                  logit_bias=ban))
        return gen.tokens_per_s, gen.threads

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        runs = []
        for r in range(repeats):  # alternating which goes first
            if r % 2:
                fixed, adaptive = run(False), run(True)
            else:
                adaptive, fixed = run(True), run(False)
            runs.append((adaptive, fixed))
    finally:
        engine.adaptive_threads = True
        spinner.kill()
        spinner.wait()
    adaptive = statistics.median(a[0] for a, _ in runs)
    fixed = statistics.median(f[0] for _, f in runs)
    threads = sorted({a[1] for a, _ in runs})
    ratio = statistics.median(a[0] / f[0] for a, f in runs if f[0] > 0)
    say(f"beside one busy process: adaptive ({'/'.join(map(str, threads))} thread(s)) "
        f"{adaptive:.1f} tok/s, all {engine.n_threads} threads {fixed:.1f} tok/s; RATIO "
        f"adaptive/fixed {ratio:.2f}")
    return {"adaptive_tokens_per_s": adaptive, "fixed_tokens_per_s": fixed,
            "adaptive_threads": threads, "ratio_adaptive_to_fixed": ratio}


def _full_context(engine: Engine, corpus: list[str], ban, repeats: int, say: Report) -> dict:
    messages = _fill(engine, corpus, int(engine.n_ctx * 0.85))
    n_prompt = len(engine.tokenize(engine.format_prompt(messages), special=True))
    pairs = [_pair(engine, messages, 2, ban, r % 2 == 1) for r in range(repeats)]
    ours = statistics.median(p["ours"][0] for p in pairs) * 1000
    direct = statistics.median(p["direct"][0] for p in pairs) * 1000
    ratio = statistics.median(p["ours"][0] / p["direct"][0] for p in pairs)
    say(f"full context ({n_prompt} tokens of n_ctx {engine.n_ctx}): first token ours "
        f"{ours:.0f} ms, direct {direct:.0f} ms ({n_prompt / direct * 1000:.0f} prompt tok/s); "
        f"RATIO ours/direct {ratio:.3f}")
    return {"prompt_tokens": n_prompt, "ours_first_token_ms": ours,
            "direct_first_token_ms": direct, "ratio_first_token": ratio,
            "direct_prompt_tokens_per_s": n_prompt / direct * 1000}
