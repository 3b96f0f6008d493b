"""The training half of tune: the GGUF model in numpy (:mod:`tune_model`), examples through
the model's chat template with the loss on the reply only, token-capped batches, and the
memory they need.

Tokens and the chat template come from llama.cpp itself (the model's vocabulary alone and
:class:`desktop.core.model.chat_template.ChatTemplate`, the route :class:`Engine` renders prompts
by), so training sees exactly the tokens inference will.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.core.errors import GroundedError
from desktop.core.model.chat_template import ChatTemplate
from desktop.core.model.modelfile import ModelInfo, check_model_file
from desktop.core.tuning.examples import Example
from desktop.core.tuning.numpy_llama import (
    ARCHITECTURE,
    LOGIT_ROWS,
    Config,
    LlamaModel,
    load_gguf,
    out_of_scope,
)

IGNORE = -1  # a position without a target token (prompt, last token, padding)


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


class ChatTokenizer:
    """The model's tokenizer and chat template from llama.cpp (its vocabulary only)."""

    def __init__(self, info: ModelInfo) -> None:
        from desktop.core.model.engine import load_vocabulary

        self._llm = load_vocabulary(info)
        self.template = ChatTemplate(self._llm, info)
        self.pad_id = max(0, int(self._llm.token_eos()))

    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text`` as :meth:`Engine.chat` tokenizes a prompt: no BOS added,
        control-token text parsed as the token."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def load(path: Path) -> tuple[LlamaModel, ChatTokenizer]:
    """(model, tokenizer) of a GGUF file, the model float32 in numpy; a GroundedError when it
    is not a llama-architecture model this tuner reads."""
    info = check_model_file(path, check_memory=False)
    if info.architecture != ARCHITECTURE:
        raise out_of_scope(path, f"is {info.architecture}")
    try:
        model = load_gguf(info.path)
    except GroundedError:
        raise
    except Exception as exc:  # noqa: BLE001 - ValueError, KeyError, IndexError…
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise GroundedError(f"{path.name}: cannot load this model for tuning "
                            f"({reason})") from None
    return model, ChatTokenizer(info)


def messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    """The chat messages of a prompt, as :meth:`Engine.chat` will get them."""
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": prompt}]


def render(tokenizer: ChatTokenizer, prompt: str, system: str | None,
           reply: str | None = None) -> str:
    """The chat template's text for a prompt (ending where the assistant writes), or for the
    whole exchange when ``reply`` is given."""
    msgs = messages(prompt, system)
    if reply is None:
        return tokenizer.template.render(msgs)
    return tokenizer.template.render([*msgs, {"role": "assistant", "content": reply}],
                                     add_generation_prompt=False)


def encode(tokenizer: ChatTokenizer, examples: Sequence[Example], system: str | None
           ) -> list[Encoded]:
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
        out.append(Encoded(ex, tuple(tokenizer.tokenize(prompt)),
                           tuple(tokenizer.tokenize(reply))))
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


def collate(items: Sequence[Encoded], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, targets), right-padded ``(examples, longest)``: ``targets[t]`` is the token that
    should follow position ``t`` where that token is part of the reply (its end-of-turn
    token included), else :data:`IGNORE`. Causal attention alone keeps the padding out of
    every real position (it comes after them), and no target falls on it."""
    width = max(len(e) for e in items)
    ids = np.full((len(items), width), pad_id, dtype=np.int64)
    targets = np.full((len(items), width), IGNORE, dtype=np.int64)
    for row, e in enumerate(items):
        n, p = len(e), len(e.prompt)
        ids[row, :n] = e.ids
        targets[row, max(p, 1) - 1:n - 1] = e.ids[max(p, 1):n]
    return ids, targets


def training_bytes(config: Config, tokens: int, longest: int) -> int:
    """Memory a training step on ``tokens`` padded tokens (sequences up to ``longest``) takes
    above the loaded model. Per token, what the backward pass keeps of each layer (float32:
    the block's input and middle, q, k, v, the attention output, gate and up, the LoRA's
    ``x A^T``; a byte per dropout mask input) plus one layer's attention scores and their
    gradients while its backward runs (~3.5 × ``n_head × longest`` floats); once, the
    logits of :data:`LOGIT_ROWS` positions and two temporaries of their size.

    Fitted to peaks measured on the bundled model at 100 to 2,048 tokens per batch (README,
    "Tuning"). The count is taken × 1.1 (it leaves out the temporaries of the layer in
    flight), which puts it above every measured step; whole runs hold more (batches of
    changing shapes), hence × 1.1 again for a run."""
    d, kv, ff = config.n_embd, config.n_head_kv * config.head_dim, config.n_ff
    kept = config.n_layer * (4 * (4 * d + 2 * kv + 2 * ff) + 6 * d + ff)
    attention = 4 * 3.5 * config.n_head * longest
    logits = 3 * 4 * LOGIT_ROWS * config.n_vocab
    return int(1.1 * (tokens * (1.1 * kept + attention) + logits))


def tokens_that_fit(config: Config, budget: float, longest: int) -> int:
    """The most tokens per batch whose :func:`training_bytes` stay within ``budget``."""
    fixed = training_bytes(config, 0, longest)
    per_token = training_bytes(config, 1, longest) - fixed
    return max(0, int((budget - fixed) // per_token))
