"""llama.cpp behind one small owner: model load, GPU offload, tokens, streaming chat.

The model file is checked first (:func:`desktop.core.model.modelfile.check_model_file`), so a
missing, foreign, truncated or adapter file is a one-line GroundedError, never a crash.
:class:`Engine` owns one ``llama_cpp.Llama`` (loaded on first use, freed once by ``close``).
:meth:`Engine.chat` formats messages with the GGUF's own chat template and is a generator of
:class:`Token` pieces that *returns* a :class:`Generation` (``stats = yield from
engine.chat(...)``, or ``StopIteration.value``), like the indexer. :meth:`Engine.set_adapters`
attaches GGUF LoRA adapters to the loaded model (checked first by
:func:`desktop.core.model.adapters.check_adapter`). llama.cpp's log lines go to the
``desktop.core.model.engine.llama_cpp`` logger (debug), never to stderr.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import math
import os
import random
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from desktop.core.cpus import free_threads, physical_cores
from desktop.core.errors import AdapterError, GroundedError
from desktop.core.model.adapters import AdapterInfo, check_adapter
from desktop.core.model.chat_template import ChatTemplate
from desktop.core.model.modelfile import (
    ModelInfo,
    bundled_model_path,
    check_fits_memory,
    check_model_file,
)
from desktop.core.model.vocabulary import TokenTable

__all__ = ["Engine", "Generation", "ModelInfo", "Token", "bundled_model_path",
           "check_model_file", "load_vocabulary", "physical_cores"]

log = logging.getLogger(__name__)
_llama_log = logging.getLogger(__name__ + ".llama_cpp")

_ABORT = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)


class Constraint(Protocol):
    """What may be generated: the tokens allowed after the ones generated so far."""

    def allowed(self, generated: Sequence[int]) -> list[int]: ...


@dataclass(frozen=True)
class Token:
    """A piece of streamed text: one token, or the few that complete a UTF-8 character."""

    text: str


@dataclass(frozen=True)
class Generation:
    """What one :meth:`Engine.chat` produced, and how fast."""

    text: str
    prompt_tokens: int
    completion_tokens: int  # end-of-generation tokens not counted
    first_token_ms: float  # from the call to the first sampled token (prompt processing)
    total_ms: float
    tokens_per_s: float  # generation only: tokens after the first / time after the first
    finish_reason: str  # "stop" | "length" | "cancelled"
    threads: int = 0  # CPU threads it ran on


_log_level = [logging.DEBUG]
_load_errors: list[str] = []  # llama.cpp's error lines since the last load began


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _on_llama_log(level: int, text: bytes, _data) -> None:
    """llama.cpp's log lines → logging: errors at info (the user gets a GroundedError), the
    rest at debug. (llama-cpp-python 0.3.36's own callback has a stale level table: it shows
    warnings as errors and hides errors as debug.)"""
    if level != 5:  # ggml: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line
        _log_level[0] = logging.INFO if level == 4 else logging.DEBUG
    if message := text.decode("utf-8", "replace").rstrip():
        _llama_log.log(_log_level[0], "%s", message)
        if _log_level[0] == logging.INFO and len(_load_errors) < 32:
            _load_errors.append(message)


def _prepare_llama():
    """``llama_cpp`` with its log lines routed to ours and ggml's backends loaded."""
    import llama_cpp

    from desktop.core.model import llamalib

    llama_cpp.llama_log_set(_on_llama_log, ctypes.c_void_p(0))  # before anything logs
    llamalib.load()  # ggml's backends, where they are separate libraries
    return llama_cpp


def _open_llama(path: Path, what: str, **kwargs):
    """A ``llama_cpp.Llama`` of ``path``; a GroundedError naming the file and llama.cpp's
    own reason (from its log) when it cannot load ``what``."""
    llama_cpp = _prepare_llama()
    _load_errors.clear()
    try:  # verbose=False: llama-cpp-python also points fds 1 and 2 at /dev/null meanwhile
        return llama_cpp.Llama(str(path), verbose=False, **kwargs)
    except (ValueError, RuntimeError) as exc:
        why = [e.partition("error loading model: ")[2] for e in _load_errors]
        raise GroundedError(f"{path}: llama.cpp cannot load {what} "
                            f"({next(filter(None, why), str(exc))})") from exc


def load_vocabulary(info: ModelInfo):
    """A ``llama_cpp.Llama`` of the model's vocabulary only (no weights: quick to load), for
    tokens and the chat template without a context."""
    return _open_llama(info.path, "its vocabulary", vocab_only=True)


class Engine:
    """One llama.cpp model and context, loaded on first use and freed once by :meth:`close`.

    One generation at a time. ``n_gpu_layers=None`` offloads every layer where this llama.cpp
    build can (``llama_supports_gpu_offload()``), else none. ``seed=None``: a fresh sampling
    seed per call (it only matters at temperature > 0). ``logits_all``: keep every
    position's logits, for :meth:`logits`.
    """

    def __init__(
        self, model: str | Path | None = None, *, n_ctx: int = 4096,
        n_threads: int | None = None, n_gpu_layers: int | None = None, seed: int | None = None,
        logits_all: bool = False,
    ) -> None:
        llama_cpp = _prepare_llama()
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
        if n_gpu_layers and not gpu:
            log.warning("this llama.cpp build cannot offload to a GPU; running on the CPU")
        self.info = check_model_file(model or bundled_model_path(), check_memory=False)
        self._n_ctx = min(n_ctx, self.info.context_length or n_ctx)
        self._gpu_layers = 0
        if gpu:
            self._gpu_layers = (n_gpu_layers if n_gpu_layers is not None
                                else self._fit_gpu_layers())
        if self._gpu_layers != -1:  # some of it stays in this computer's memory
            check_fits_memory(self.info)
        self.n_threads = n_threads or physical_cores()
        # Without a thread count of the user's, each generation runs on the cores that are
        # free when it starts (desktop.core.cpus), up to n_threads.
        self.adaptive_threads = n_threads is None
        self._threads_now = self.n_threads
        self.seed = seed
        self.logits_all = logits_all
        self._llm = None
        self._closed = False
        self._load_lock, self._busy = threading.Lock(), threading.Lock()
        self._cancel: threading.Event | None = None
        self._abort_cb = _ABORT(lambda _: bool(self._cancel and self._cancel.is_set()))
        self._loras: dict[Path, tuple[AdapterInfo, object]] = {}  # loaded adapters by file
        self._retired: list = []  # handles of files changed on disk, freed once detached
        self._attached: tuple[tuple[AdapterInfo, float], ...] = ()
        self._token_table: TokenTable | None | bool = None  # False: cannot be built

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def n_gpu_layers(self) -> int:
        """Layers offloaded to the GPU: 0 on a CPU build; all is block_count + 1 (output)."""
        every = self.info.block_count + 1
        return every if self._gpu_layers < 0 else min(self._gpu_layers, every)

    def _fit_gpu_layers(self) -> int:
        """"Auto" offload: the layers that fit in the GPU memory free now (-1: all)."""
        from desktop.core.model.offload import fitted_layers, gpu_devices

        gpus = gpu_devices()
        layers = fitted_layers(self.info, self._n_ctx, gpus)
        free = sum(d.free for d in gpus) / 1e9
        if not gpus:
            log.warning("this llama.cpp build offloads to a GPU, but none is usable; "
                        "running on the CPU")
        elif layers == 0:
            log.warning("%.1f GB of GPU memory is free: too little for a layer of %s; running "
                        "on the CPU", free, self.info.path.name)
        else:
            log.info("%s of %d layers fit in the %.1f GB of GPU memory free",
                     "all" if layers < 0 else layers, self.info.block_count + 1, free)
        return layers

    @property
    def gpu_offload(self) -> bool:
        return self.n_gpu_layers > 0

    @property
    def llama(self):
        """The underlying ``llama_cpp.Llama``, loaded now if need be (the engine owns it)."""
        with self._load_lock:
            if self._closed:
                raise RuntimeError("the engine is closed")
            if self._llm is None:
                self._llm = self._load()
        return self._llm

    def _load(self):
        import llama_cpp

        t0 = time.perf_counter()
        llm = _open_llama(self.info.path, "it", n_ctx=self._n_ctx, n_threads=self.n_threads,
                          n_threads_batch=self.n_threads, n_gpu_layers=self._gpu_layers,
                          logits_all=self.logits_all)
        self._n_ctx = llm.n_ctx()
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._set_abort = getattr(llama_cpp.llama_cpp._lib, "llama_set_abort_callback", None)
        if self._set_abort is not None:
            self._set_abort.argtypes = [ctypes.c_void_p, _ABORT, ctypes.c_void_p]
        if not self.info.has_chat_template:
            log.warning("%s has no chat template; using ChatML", self.info.path)
        self._template = ChatTemplate(llm, self.info)
        log.info("loaded %s in %.2f s: n_ctx %d, %d threads, %d GPU layers", self.info.path,
                 time.perf_counter() - t0, self._n_ctx, self.n_threads, self.n_gpu_layers)
        return llm

    def close(self) -> None:
        """Free the adapters, model and context (once; later calls do nothing)."""
        with self._load_lock:
            self._closed, llm, self._llm = True, self._llm, None
        if llm is not None:
            import llama_cpp

            # Before the model: ~llama_model deletes the adapters still registered with it,
            # and llama_adapter_lora_free unregisters one (freeing after would be a double free).
            llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
            for handle in [*self._retired, *(h for _, h in self._loras.values())]:
                llama_cpp.llama_adapter_lora_free(handle)
            self._loras, self._retired, self._attached = {}, [], ()
            llm.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def adapters(self) -> tuple[tuple[AdapterInfo, float], ...]:
        """The attached LoRA adapters and their scales, in the order given."""
        return self._attached

    def set_adapters(self, adapters: Sequence[tuple[str | Path, float]]) -> None:
        """Attach exactly ``adapters`` — (GGUF LoRA file, scale) pairs — to the loaded model,
        replacing the set before; ``[]`` detaches all. Scale 0 gives the base model's output.

        Each file is checked (:func:`check_adapter`) before llama.cpp reads it and loaded once
        per engine (again only if it changed on disk), so switching, adding or re-scaling
        never reloads the model. A changed set clears the KV cache. On an error
        (AdapterError for a file that does not fit) the attached set stays as it was.
        """
        import llama_cpp

        llm = self.llama
        if not self._busy.acquire(blocking=False):
            raise GroundedError("the model is busy with another answer")
        try:
            if bad := [s for _, s in adapters if not math.isfinite(s)]:
                raise GroundedError(f"an adapter scale must be a finite number, not {bad[0]}")
            if len({Path(p).expanduser().resolve() for p, _ in adapters}) < len(adapters):
                raise GroundedError("an adapter is given twice: give it once, with one scale")
            chosen = tuple((self._lora(path), float(scale)) for path, scale in adapters)
            if [(i, s) for (i, _), s in chosen] != list(self._attached):
                n = len(chosen)
                handles = (llama_cpp.llama_adapter_lora_p_ctypes * n)(*(h for (_, h), _ in chosen))
                scales = (ctypes.c_float * n)(*(s for _, s in chosen))
                if llama_cpp.llama_set_adapters_lora(llm.ctx, handles if n else None, n,
                                                     scales if n else None) != 0:
                    raise GroundedError("llama.cpp could not attach the adapters")
                self._attached = tuple((i, s) for (i, _), s in chosen)
                llm.reset()  # the cached keys and values were computed with the old weights
            for handle in self._retired:  # none is attached any more
                llama_cpp.llama_adapter_lora_free(handle)
            self._retired.clear()
        finally:
            self._busy.release()

    def _lora(self, path: str | Path) -> tuple[AdapterInfo, object]:
        """(info, llama.cpp handle) for an adapter file: checked and loaded on first use."""
        import llama_cpp

        path = Path(path).expanduser()
        key = path.resolve()
        if (cached := self._loras.get(key)) is not None and not cached[0].changed():
            return cached
        info = check_adapter(path, self.info)
        _load_errors.clear()
        handle = llama_cpp.llama_adapter_lora_init(self._llm.model, os.fsencode(key))
        if not handle:  # NULL comes back as a false pointer object, not None
            why = next(iter(_load_errors), "no reason given")
            raise AdapterError(f"{path}: llama.cpp cannot load the adapter ({why})")
        if cached is not None:
            self._retired.append(cached[1])
        self._loras[key] = (info, handle)
        return self._loras[key]

    def logits(self, tokens: Sequence[int]):
        """The logits (a float32 array, tokens × vocabulary) the model, with the attached
        adapters, gives after each of ``tokens`` evaluated from scratch. Needs an engine made
        with ``logits_all=True`` (tune's self-check compares them with its numpy model's)."""
        import numpy as np

        if not self.logits_all:
            raise RuntimeError("logits() needs an Engine made with logits_all=True")
        llm = self.llama
        if len(tokens) >= self._n_ctx:
            raise GroundedError(f"{len(tokens)} tokens do not fit the context ({self._n_ctx})")
        if not self._busy.acquire(blocking=False):
            raise GroundedError("the model is busy with another answer")
        try:
            llm.reset()
            llm.eval(list(tokens))
            out = np.array(llm.scores[:len(tokens)], dtype=np.float32)
            llm.reset()
        finally:
            self._busy.release()
        return out

    def reset(self) -> None:
        """Forget the evaluated prompt (KV cache): the next chat processes its prompt whole.
        Otherwise a chat reuses the longest prefix it shares with the previous one."""
        if self._llm is not None:
            self._llm.reset()

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """The model's tokens for ``text``, no BOS (``special``: parse control-token text)."""
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def token_table(self) -> TokenTable | None:
        """The vocabulary as bytes (for :class:`..answering.quote.Quote`), built once; None
        when the tokenizer has no single `` [`` token to open a citation with."""
        if self._token_table is None:
            llm = self.llama
            opener = self.tokenize(" [")
            if len(opener) != 1:
                log.warning("%s: no ' [' token, so answers cannot be quoted", self.info.path)
                self._token_table = False
            else:
                pieces = [llm.detokenize([t]) for t in range(llm.n_vocab())]
                ends = [t for t in range(len(pieces)) if self._is_eog(self._vocab, t)]
                self._token_table = TokenTable.build(pieces, ends, opener[0])
        return self._token_table or None

    def end_tokens(self) -> list[int]:
        """The model's end-of-generation tokens (banned, they make a reply of fixed length)."""
        llm = self.llama
        return [t for t in range(llm.n_vocab()) if self._is_eog(self._vocab, t)]

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the model's context (for the context budget)."""
        return len(self.tokenize(text))

    def format_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt for chat ``messages`` by the GGUF's chat template (as create_chat_completion
        renders it), ending with the assistant's turn. Control-token text inside a message
        (a document quoting ``<|im_end|>``, say) is dropped: it would be parsed as the token."""
        _ = self.llama
        return self._template.render(messages)

    def chat(
        self, messages: Sequence[Mapping[str, str]], max_tokens: int = 256,
        temperature: float = 0.0, cancel: threading.Event | None = None,
        logit_bias: Mapping[int, float] | None = None, constraint: Constraint | None = None,
    ) -> Generator[Token, None, Generation]:
        """Stream a reply to ``messages``; the generator returns a :class:`Generation`.

        Greedy and deterministic at temperature 0, else sampled (top-k 40, top-p 0.95) with
        the engine's seed. ``cancel.set()`` stops it between tokens and aborts prompt
        processing. ``logit_bias`` adds to the logits of token ids (-inf bans one);
        ``constraint`` names the only tokens that may come next (:mod:`..answering.quote`).
        """
        start = time.perf_counter()
        llm = self.llama
        prompt = self.tokenize(self.format_prompt(messages), special=True)
        if len(prompt) >= self._n_ctx:
            raise GroundedError(
                f"the prompt has {len(prompt)} tokens; the model's context is {self._n_ctx}")
        if not self._busy.acquire(blocking=False):
            raise GroundedError("the model is busy with another answer")
        sampling = ({"temp": 0.0, "top_k": 1} if temperature <= 0 else
                    {"temp": temperature, "top_k": 40, "top_p": 0.95, "min_p": 0.05})
        threads = self._fit_threads(llm)
        llm.set_seed(random.randrange(2**32) if self.seed is None else self.seed)
        processors = [p for p in (_biased(logit_bias),
                                  _constrained(constraint, llm, len(prompt))) if p]
        tokens = llm.generate(prompt, repeat_penalty=1.0, logits_processor=processors or None,
                              **sampling)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        budget = min(max_tokens, self._n_ctx - len(prompt))
        pieces, n, first, last, reason = [], 0, None, None, "length"
        self._arm(cancel)
        try:
            while n < budget:
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
                token = next(tokens)
                last = time.perf_counter()
                if first is None:
                    first = last
                    self._arm(None)  # a Python call per graph node would slow generation
                if self._is_eog(self._vocab, token):
                    reason = "stop"
                    break
                n += 1
                if text := decoder.decode(llm.detokenize([token])):
                    pieces.append(text)
                    yield Token(text)
        except RuntimeError:  # llama_decode aborted by the cancel callback
            if not (cancel is not None and cancel.is_set()):
                raise
            reason = "cancelled"
            llm.reset()  # the aborted batch left the KV cache part-written
        finally:
            self._arm(None)
            tokens.close()
            self._busy.release()
        if tail := decoder.decode(b"", final=True):
            pieces.append(tail)
            yield Token(tail)
        end = time.perf_counter()
        gen_s = last - first if n > 1 else 0.0
        return Generation(
            text="".join(pieces), prompt_tokens=len(prompt), completion_tokens=n,
            first_token_ms=((first or end) - start) * 1000, total_ms=(end - start) * 1000,
            tokens_per_s=(n - 1) / gen_s if gen_s > 0 else 0.0, finish_reason=reason,
            threads=threads)

    def _fit_threads(self, llm) -> int:
        """The threads for the next generation: n_threads, or with adaptive threads the
        cores free right now (a thread on a busy core stalls the others at every barrier)."""
        threads = self.n_threads
        if self.adaptive_threads and not self.gpu_offload:
            threads = free_threads(self.n_threads)
        if threads != self._threads_now:
            import llama_cpp

            llama_cpp.llama_set_n_threads(llm.ctx, threads, threads)
            log.debug("generating on %d of %d threads", threads, self.n_threads)
            self._threads_now = threads
        return threads

    def _arm(self, cancel: threading.Event | None) -> None:
        """Let llama.cpp abort a decode when ``cancel`` is set (None: no callback)."""
        self._cancel = cancel
        if self._set_abort is not None and self._llm is not None:
            self._set_abort(self._llm.ctx, self._abort_cb if cancel else _ABORT(), None)


def _biased(bias: Mapping[int, float] | None):
    """A logits processor that adds ``bias`` (what create_completion's logit_bias does)."""
    if not bias:
        return None
    import numpy as np

    ids, add = np.array(list(bias), dtype=np.intc), np.array(list(bias.values()), np.single)

    def apply(_input_ids, scores):
        scores = np.copy(scores)
        scores[ids] += add
        return scores

    return apply


def _constrained(constraint: Constraint | None, llm, prompt_tokens: int):
    """A logits processor that leaves only ``constraint``'s tokens (the rest -inf). It is
    called with llama-cpp-python's whole token buffer: the generated tokens are those after
    the prompt, up to ``llm.n_tokens``."""
    if constraint is None:
        return None
    import numpy as np

    def apply(input_ids, scores):
        allowed = constraint.allowed(input_ids[prompt_tokens:llm.n_tokens].tolist())
        out = np.full_like(scores, -np.inf)
        out[allowed] = scores[allowed]
        return out

    return apply
