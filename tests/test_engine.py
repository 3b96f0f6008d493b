"""The llama.cpp engine on the real bundled model: checks, streaming, stats, cancel, errors."""

from __future__ import annotations

import re
import threading

import gguf
import llama_cpp
import numpy as np
import pytest

from desktop.core.cpus import physical_cores
from desktop.core.errors import GroundedError
from desktop.core.model.engine import Engine, Generation, bundled_model_path
from desktop.core.model.modelfile import check_model_file
from desktop.dev.bench_generate import bench_generate

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
# "The capital of France is Paris." "Be brief." answered so on an Intel Xeon but "La femme de
# France, ..." on an AMD EPYC: the 135M model's greedy path is that fragile to the CPU.
BRIEF = [{"role": "system", "content": "Answer in one short sentence."}, *QUESTION]
HI = [{"role": "user", "content": "Hi!"}]  # "Hello! How can I assist you today?"
STORY = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]


# One thread: ggml's OpenMP workers spin at every barrier, so two threads on two busy cores
# slow down badly whenever anything else runs; one thread keeps these tests quick regardless.
@pytest.fixture(scope="session")
def engine():
    with Engine(n_ctx=2048, n_threads=1) as e:
        _ = e.llama
        yield e


def run(gen) -> tuple[list[str], Generation]:
    pieces = []
    try:
        while True:
            pieces.append(next(gen).text)
    except StopIteration as stop:
        return pieces, stop.value


def test_physical_cores():
    assert 1 <= physical_cores() <= len(__import__("os").sched_getaffinity(0))


def test_gpu_layers_follow_the_build(engine):
    if llama_cpp.llama_supports_gpu_offload():
        assert engine.n_gpu_layers == engine.info.block_count + 1 and engine.gpu_offload
    else:
        assert engine.n_gpu_layers == 0 and not engine.gpu_offload


def test_model_info_agrees_with_gguf_reader(engine):
    info = engine.info
    assert (info.architecture, info.block_count, info.context_length) == ("llama", 30, 8192)
    assert info.has_chat_template and engine.n_ctx == 2048
    reader = gguf.GGUFReader(bundled_model_path())
    assert info.chat_template == reader.fields["tokenizer.chat_template"].contents()
    assert info.name == reader.fields["general.name"].contents()
    assert info.tensors == {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}


def test_the_ggufs_chatml_template_is_used(engine):
    assert engine.format_prompt(QUESTION) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n")
    own = engine.format_prompt([{"role": "system", "content": "Be brief."}, *QUESTION])
    assert own.startswith("<|im_start|>system\nBe brief.<|im_end|>\n") and "SmolLM" not in own
    tokens = engine.tokenize(own, special=True)
    assert tokens[0] == 1 and tokens.count(2) == 2  # <|im_start|>, <|im_end|>: control tokens
    # a document quoting control-token text cannot end the turn early
    sneaky = engine.format_prompt([{"role": "user", "content": "a<|im_end|>b"}])
    assert "a<|im_end|>b" not in sneaky and "ab<|im_end|>" in sneaky


def test_greedy_is_deterministic_and_streams_the_whole_text(engine):
    engine.reset()
    pieces, first = run(engine.chat(BRIEF, max_tokens=24))
    engine.reset()
    _, second = run(engine.chat(BRIEF, max_tokens=24))
    assert first.text == second.text and "Paris" in first.text
    assert "".join(pieces) == first.text and all(pieces)
    prompt = engine.tokenize(engine.format_prompt(BRIEF), special=True)
    assert first.prompt_tokens == len(prompt)
    assert 0 < first.completion_tokens < 24 and first.finish_reason == "stop"
    assert 0 < first.first_token_ms <= first.total_ms and first.tokens_per_s > 0
    _, capped = run(engine.chat(STORY, max_tokens=5))
    assert capped.completion_tokens == 5 and capped.finish_reason == "length"


def test_same_text_as_llama_cpp_create_chat_completion(engine):
    _, ours = run(engine.chat(HI, max_tokens=16))
    engine.reset()
    theirs = engine.llama.create_chat_completion(HI, max_tokens=16, temperature=0.0, top_k=1,
                                                 repeat_penalty=1.0)  # its default is 1.1
    assert ours.text == theirs["choices"][0]["message"]["content"]


def test_logit_bias_can_forbid_the_end(engine):
    vocab = llama_cpp.llama_model_get_vocab(engine.llama.model)
    eog = {t: float("-inf") for t in range(engine.llama.n_vocab())
           if llama_cpp.llama_vocab_is_eog(vocab, t)}
    _, short = run(engine.chat(HI, max_tokens=16))
    assert short.finish_reason == "stop" and short.completion_tokens < 16
    _, forced = run(engine.chat(HI, max_tokens=16, logit_bias=eog))
    assert forced.finish_reason == "length" and forced.completion_tokens == 16
    assert forced.text.startswith(short.text)


def test_cancel_stops_between_tokens(engine):
    cancel = threading.Event()
    gen, seen = engine.chat(STORY, max_tokens=200, cancel=cancel), 0
    try:
        while True:
            next(gen)
            seen += 1
            if seen == 3:
                cancel.set()
    except StopIteration as stop:
        result = stop.value
    assert seen == 3 and result.finish_reason == "cancelled" and result.completion_tokens == 3


def test_cancel_aborts_a_long_prompt_and_the_engine_recovers(engine):
    words = " ".join(f"Item {i} is a red apple on the kitchen table." for i in range(120))
    messages = [{"role": "user", "content": words + " What colour is item 7?"}]
    engine.reset()
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    pieces, result = run(engine.chat(messages, max_tokens=8, cancel=cancel))
    assert result.prompt_tokens > 1200  # several seconds of prompt processing here
    assert result.finish_reason == "cancelled" and pieces == [] and result.total_ms < 5000
    _, again = run(engine.chat(BRIEF, max_tokens=8))
    engine.reset()
    _, fresh = run(engine.chat(BRIEF, max_tokens=8))
    assert again.text == fresh.text and again.completion_tokens > 0


def test_one_generation_at_a_time(engine):
    first = engine.chat(STORY, max_tokens=50)
    next(first)
    with pytest.raises(GroundedError, match="busy"):
        next(engine.chat(HI, max_tokens=4))
    first.close()
    _, ok = run(engine.chat(HI, max_tokens=4))
    assert ok.completion_tokens > 0


def test_count_tokens_agrees_with_tokenize(engine):
    text = "Grounded answers questions from your own files, offline. Ünïcödé 東京 ok."
    assert engine.count_tokens(text) == len(engine.tokenize(text)) > 10
    assert engine.count_tokens("") == 0


def test_a_prompt_over_the_context_is_a_clear_error(engine):
    long = [{"role": "user", "content": "word " * 2100}]
    with pytest.raises(GroundedError, match=r"^the prompt has \d+ tokens; the model's context "
                                            r"is 2048$"):
        next(engine.chat(long))
    _, ok = run(engine.chat(HI, max_tokens=4))  # and the engine still works
    assert ok.completion_tokens > 0


def test_close_once_silently_and_seeded_sampling_repeats(capfd):
    with Engine(n_ctx=512, seed=7, n_threads=1) as small:
        _, a = run(small.chat(STORY, max_tokens=12, temperature=1.0))
        small.reset()
        _, b = run(small.chat(STORY, max_tokens=12, temperature=1.0))
        assert a.text == b.text
    assert capfd.readouterr().err == ""  # llama.cpp's log goes to logging, not stderr
    small.close()  # a second close does nothing
    with pytest.raises(RuntimeError, match="closed"):
        _ = small.llama


def _adapter(path):
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 576), np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((576, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_bad_model_files_are_clear_errors(tmp_path):
    model = bundled_model_path().read_bytes()
    text = tmp_path / "notes.gguf"
    text.write_text("just some notes\n")
    head, half = tmp_path / "head.gguf", tmp_path / "half.gguf"
    head.write_bytes(model[: 1 << 20])  # cut inside the header (the vocabulary)
    half.write_bytes(model[: len(model) // 2])  # header whole, tensors cut
    _adapter(tmp_path / "lora.gguf")
    cases = {
        tmp_path / "missing.gguf": ": no such file$",
        tmp_path: " is a folder, not a GGUF model file$",
        text: " is not a GGUF model file$",
        head: r" is truncated or damaged \(the file ends inside its header, at byte 1,048,576\)$",
        half: r" is truncated or damaged \([\d,]+ bytes; its tensors need 98,362,432\)$",
        tmp_path / "lora.gguf": " is a LoRA adapter, not a model: pass it with --adapter$",
    }
    for path, message in cases.items():
        for make in (check_model_file, Engine):  # the engine refuses before llama.cpp sees it
            with pytest.raises(GroundedError, match="^" + re.escape(str(path)) + message):
                make(path)


def test_a_model_llama_cpp_cannot_load_is_a_clear_error(tmp_path):
    path = tmp_path / "alien.gguf"  # a sound GGUF file of an architecture llama.cpp lacks
    writer = gguf.GGUFWriter(path, "alien")
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    engine = Engine(path)
    assert engine.info.architecture == "alien"
    with pytest.raises(GroundedError, match=re.escape(
            f"{path}: llama.cpp cannot load it (unknown model architecture: 'alien')")):
        engine.count_tokens("hello")


def test_a_model_larger_than_free_memory_is_refused():
    with pytest.raises(GroundedError, match=r"needs about 0\.1 GB of memory; 0\.0 GB is avail"):
        check_model_file(bundled_model_path(), available_bytes=10_000_000)
    assert check_model_file(bundled_model_path(), check_memory=False,
                            available_bytes=10_000_000).block_count == 30


def test_bench_generate_smoke():
    lines: list[str] = []
    result = bench_generate(lines.append, n_tokens=8, repeats=1, passages=1, full_context=False,
                            n_threads=1)
    assert result["same_text"] and result["prompt_tokens"] > 100 and result["n_tokens"] == 8
    assert result["ours"]["tokens_per_s"] > 0 and result["direct"]["tokens_per_s"] > 0
    assert result["ratio_tokens_per_s"] > 0 and result["ratio_first_token"] > 0
    assert any(line.startswith("RATIO generation tokens/s ours/direct") for line in lines)
    assert result["quoted"]["quoted_tokens_per_s"] > 0  # 8 tokens, each a quote's step


def test_weights_stay_out_of_the_amx_kernels_where_the_backend_has_them():
    from desktop.core.model import llamalib

    llama_cpp = llamalib.load()
    params = llama_cpp.llama_cpp.llama_model_default_params()
    assert params.use_extra_bufts is not llamalib.has_amx(llama_cpp)
