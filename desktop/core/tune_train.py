"""The training half of tune: the GGUF model in transformers, chat-template examples with the
loss on the reply only, token-capped batches, a peft LoRA, and the memory they need.

torch, transformers and peft are imported inside the functions (seconds of import time that
nothing else should pay). transformers dequantizes the GGUF's weights to float32 (~20 s and
~1 GB for the bundled 135M model); a GGUF-loaded model cannot ``save_pretrained``, which is why
the adapter is exported by :mod:`desktop.core.tune_export`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.core.errors import GroundedError
from desktop.core.modelfile import check_model_file
from desktop.core.tune_examples import Example

log = logging.getLogger(__name__)

#: peft module names of the seven projections of a llama-style block (all are tuned).
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100  # the label transformers' loss skips


@dataclass(frozen=True)
class Encoded:
    """An example as token ids: the prompt (no loss) and the reply (the loss)."""

    example: Example
    prompt: tuple[int, ...]
    reply: tuple[int, ...]

    @property
    def ids(self) -> list[int]:
        return [*self.prompt, *self.reply]

    def __len__(self) -> int:
        return len(self.prompt) + len(self.reply)


def load(path: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of a GGUF file in transformers, float32; a GroundedError when
    transformers cannot load it (an architecture or quantization it does not read)."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    arch = check_model_file(path, check_memory=False).architecture
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError:  # a transformers without the list: let loading tell
        GGUF_SUPPORTED_ARCHITECTURES = [arch]  # noqa: N806
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        raise GroundedError(f"{path.name} is a {arch} model; transformers cannot load that "
                            "architecture from GGUF for tuning (it reads "
                            f"{', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES)[:12])}, …)")
    try:
        with _quiet_dequantizing():
            tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent,
                                                                   gguf_file=path.name)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - ValueError, KeyError, NotImplementedError…
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise GroundedError(f"{path.name}: transformers cannot load this model for tuning "
                            f"({reason})") from None
    if not getattr(tokenizer, "chat_template", None):
        from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE

        tokenizer.chat_template = CHATML_CHAT_TEMPLATE  # as the engine does
    return model.to(device), tokenizer


@contextlib.contextmanager
def _quiet_dequantizing() -> Iterator[None]:
    """transformers' GGUF loader draws its own tqdm bar on stderr (disable_progress_bar does
    not reach it): hide it, the CLI has its own progress line."""
    from transformers import modeling_gguf_pytorch_utils as loader

    bar = getattr(loader, "tqdm", None)
    if bar is not None:
        loader.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        if bar is not None:
            loader.tqdm = bar


def messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    """The chat messages of a prompt, as :meth:`Engine.chat` will get them."""
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": prompt}]


def render(tokenizer: Any, prompt: str, system: str | None, reply: str | None = None) -> str:
    """The chat template's text for a prompt (ending where the assistant writes), or for the
    whole exchange when ``reply`` is given."""
    msgs = messages(prompt, system)
    if reply is None:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return tokenizer.apply_chat_template([*msgs, {"role": "assistant", "content": reply}],
                                         tokenize=False)


def encode(tokenizer: Any, examples: Sequence[Example], system: str | None) -> list[Encoded]:
    """Each example through the chat template: the prompt part (up to where the assistant
    writes) and the reply part (the reply and its end-of-turn token), tokenized apart."""
    out = []
    for ex in examples:
        prompt = render(tokenizer, ex.prompt, system)
        full = render(tokenizer, ex.prompt, system, ex.reply)
        if not full.startswith(prompt):
            raise GroundedError("the model's chat template does not render a reply after the "
                                "prompt; it cannot be tuned this way")
        reply = full[len(prompt):].rstrip()
        out.append(Encoded(
            ex, tuple(tokenizer(prompt, add_special_tokens=False)["input_ids"]),
            tuple(tokenizer(reply, add_special_tokens=False)["input_ids"])))
    return out


def plan_batches(lengths: Sequence[int], batch_tokens: int, batch_examples: int, epochs: int,
                 seed: int) -> list[list[int]]:
    """Every epoch's batches of example indices: shuffled (seeded), consecutive examples
    grouped while the padded batch (count × longest) stays within ``batch_tokens``."""
    rng = random.Random(seed)
    batches: list[list[int]] = []
    for _ in range(epochs):
        order = list(range(len(lengths)))
        rng.shuffle(order)
        batch: list[int] = []
        for i in order:
            longest = max([lengths[j] for j in batch] + [lengths[i]])
            if batch and (len(batch) >= batch_examples or (len(batch) + 1) * longest
                          > batch_tokens):
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    return batches


def padded_tokens(batch: Iterable[int], lengths: Sequence[int]) -> int:
    """Tokens the batch takes once padded to its longest example."""
    batch = list(batch)
    return len(batch) * max(lengths[i] for i in batch) if batch else 0


def collate(items: Sequence[Encoded], pad_id: int, device: str = "cpu"):
    """(input_ids, attention_mask, labels) tensors, right-padded; labels only on replies."""
    import torch

    width = max(len(e) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(items):
        n, p = len(e), len(e.prompt)
        ids[row, :n] = torch.tensor(e.ids)
        mask[row, :n] = 1
        labels[row, p:n] = torch.tensor(e.reply)
    return ids.to(device), mask.to(device), labels.to(device)


def with_lora(model: Any, rank: int, alpha: float, dropout: float, seed: int) -> Any:
    """``model`` wrapped by peft with a fresh LoRA on all seven projections (seeded)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(TARGET_MODULES), bias="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


@contextlib.contextmanager
def only_lora(model: Any, kinds: Iterable[str]) -> Iterator[None]:
    """Within the block, only the LoRA layers of these module kinds (``q_proj``…) act: the
    others' scaling is 0 (the self-check's q/k-only logits)."""
    from peft.tuners.lora import LoraLayer

    kinds = set(kinds)
    saved = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and name.rsplit(".", 1)[-1] not in kinds:
            saved[module] = dict(module.scaling)
            module.scaling = {k: 0.0 for k in module.scaling}
    try:
        yield
    finally:
        for module, scaling in saved.items():
            module.scaling = scaling


def logits(model: Any, ids: Sequence[int], device: str = "cpu"):
    """The model's logits (numpy float32, tokens × vocabulary) for one sequence."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.tensor([list(ids)], device=device)).logits[0]
    return out.float().cpu().numpy()


def bytes_per_token(config: Any) -> int:
    """Memory one token of a training batch takes: the float32 activations autograd keeps for
    the backward pass, counted as ~22 hidden-size and ~10 intermediate-size vectors per layer
    and four vocabulary-size ones (logits, their float copy, softmax, gradient). Fitted to the
    bundled model (4.15 MB per token), where the peak above the ~1.0 GB resident after loading
    measured 1.27 / 1.85 / 2.53 / 4.30 / 7.00 GB at 97 / 200 / 400 / 800 / 1,600 tokens per
    batch and 9.5 GB for one 2,048-token sequence; times 1.15 for what the allocator holds
    over a whole run (whole runs peaked 8–10% above the bare fit)."""
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    inner = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    return int(1.15 * 4 * (layers * (22 * hidden + 10 * inner) + 4 * vocab))
