"""The GGUF's chat template as llama-cpp-python's ``create_chat_completion`` renders it
(``Jinja2ChatFormatter``; ChatML where the file has none), shared by :class:`Engine` and
tuning so that a tuned model is trained on exactly the text it is later prompted with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from desktop.core.model.modelfile import ModelInfo


class ChatTemplate:
    """Renders chat messages for one loaded ``llama_cpp.Llama`` (a vocabulary is enough)."""

    def __init__(self, llm: Any, info: ModelInfo) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

        def text(t: int) -> str:
            return llm.detokenize([t], special=True).decode("utf-8", "replace") if t >= 0 else ""

        template, eos, bos = (info.chat_template or CHATML_CHAT_TEMPLATE, text(llm.token_eos()),
                              text(llm.token_bos()))
        self._prompt = Jinja2ChatFormatter(template, eos, bos)
        self._whole = Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=False)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        control = [text(t) for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_get_attr(
            vocab, t) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL]
        self._control = re.compile("|".join(re.escape(c) for c in control if c) or "(?!)")

    def render(self, messages: Sequence[Mapping[str, str]], *,
               add_generation_prompt: bool = True) -> str:
        """The text of ``messages``, ending with the assistant's turn opened (or, with
        ``add_generation_prompt=False``, after the last message). Control-token text inside a
        message (a document quoting ``<|im_end|>``, say) is dropped: it would be parsed as
        the token."""
        clean = [{**m, "content": self._control.sub("", m["content"])} for m in messages]
        formatter = self._prompt if add_generation_prompt else self._whole
        return formatter(messages=clean).prompt
