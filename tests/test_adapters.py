"""LoRA adapters on the real bundled model: real adapter files written with ``gguf``, broken ones
refused before llama.cpp sees them, scale 0 is the base model, switching never reloads."""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import numpy as np
import pytest

import desktop.core.model.engine as engine_module
from desktop.core.errors import AdapterError, GroundedError
from desktop.core.model.adapters import PROJECTIONS, check_adapter, write_adapter, write_lora
from desktop.core.model.engine import Engine, bundled_model_path
from desktop.dev.bench_adapters import bench_adapters

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


# One thread, as in test_engine: spinning OpenMP workers on busy cores slow the tests down.
@pytest.fixture(scope="module")
def engine():
    with Engine(n_ctx=1024, n_threads=1) as e:
        _ = e.llama
        yield e


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adapters")


@pytest.fixture(scope="module")
def tone(engine, folder) -> Path:
    return write_lora(engine.info, folder / "tone.gguf", seed=0)


@pytest.fixture(scope="module")
def style(engine, folder) -> Path:
    return write_lora(engine.info, folder / "style.gguf", targets=PROJECTIONS, magnitude=0.2,
                      seed=1)


@pytest.fixture(scope="module")
def base(engine) -> list[str]:
    engine.set_adapters([])
    return greedy(engine)


def greedy(engine: Engine, max_tokens: int = 16) -> list[str]:
    """The greedy reply as its token pieces (one per token): compared token for token."""
    engine.reset()
    stream = engine.chat(QUESTION, max_tokens=max_tokens)
    pieces = []
    while True:
        try:
            pieces.append(next(stream).text)
        except StopIteration as stop:
            assert stop.value.completion_tokens == len(pieces)
            return pieces


def pair(n_in: int, n_out: int, rank: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """numpy A (rank, n_in) and B (n_out, rank): ggml ne [n_in, rank] and [rank, n_out]."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rank, n_in)).astype(np.float32),
            rng.standard_normal((n_out, rank)).astype(np.float32))


def lora(name: str, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{name}.lora_a": a, f"{name}.lora_b": b}


def raw(path: Path, kv: dict[str, tuple[str, object]], tensors: dict[str, np.ndarray]) -> Path:
    """A GGUF with exactly these keys ((writer method, value)) and tensors."""
    writer = gguf.GGUFWriter(path, "llama")
    for key, (method, value) in kv.items():
        getattr(writer, method)(key, value)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


Q = "blk.0.attn_q.weight"  # [576, 576] in the bundled model
K = "blk.3.attn_k.weight"  # [576, 192]: not square, so a swapped A/B shows


def _plain_model(_folder):
    return bundled_model_path()


def _other_architecture(folder):
    return write_adapter(folder / "qwen.gguf", "qwen2", lora(Q, *pair(576, 576)), alpha=8)


def _wrong_shapes(folder):
    return write_adapter(folder / "shape.gguf", "llama", lora(K, *pair(576, 576)), alpha=8)


def _swapped_halves(folder):
    a, b = pair(576, 192)
    return write_adapter(folder / "swapped.gguf", "llama",
                         {f"{K}.lora_a": b.T.copy(), f"{K}.lora_b": a.T.copy()}, alpha=8)


def _ranks_differ(folder):
    (a, _), (_, b) = pair(576, 576, rank=8), pair(576, 576, rank=4)
    return write_adapter(folder / "ranks.gguf", "llama", lora(Q, a, b), alpha=8)


def _truncated(folder):
    whole = write_lora(bundled_model_path(), folder / "whole.gguf").read_bytes()
    (folder / "truncated.gguf").write_bytes(whole[: len(whole) - 100])
    return folder / "truncated.gguf"


def _cut_in_header(folder):
    whole = write_lora(bundled_model_path(), folder / "whole2.gguf").read_bytes()
    (folder / "header.gguf").write_bytes(whole[:300])
    return folder / "header.gguf"


def _not_gguf(folder):
    (folder / "notes.gguf").write_text("not an adapter at all\n")
    return folder / "notes.gguf"


def _missing(folder):
    return folder / "missing.gguf"


def _tensor_the_model_lacks(folder):
    return write_adapter(folder / "lacks.gguf", "llama",
                         lora("blk.99.attn_q.weight", *pair(576, 576)), alpha=8)


def _half_a_pair(folder):
    return write_adapter(folder / "half.gguf", "llama", {f"{Q}.lora_a": pair(576, 576)[0]})


def _not_a_lora(folder):
    return write_adapter(folder / "cvec.gguf", "llama", lora(Q, *pair(576, 576)),
                         adapter_type="control_vector")


def _no_tensors(folder):
    return write_adapter(folder / "empty.gguf", "llama", {}, alpha=8)


def _stray_tensor(folder):
    return write_adapter(folder / "stray.gguf", "llama",
                         {**lora(Q, *pair(576, 576)), "blk.0.extra": np.zeros(4, np.float32)})


def _alpha_float64(folder):  # llama.cpp's gguf getter asserts float32: the process aborts
    return raw(folder / "alpha64.gguf", {"general.type": ("add_string", "adapter"),
                                         "adapter.type": ("add_string", "lora"),
                                         "adapter.lora.alpha": ("add_float64", 8.0)},
               lora(Q, *pair(576, 576)))


def _type_not_a_string(folder):  # likewise for general.type
    return raw(folder / "typeint.gguf", {"general.type": ("add_uint32", 1),
                                         "adapter.type": ("add_string", "lora")},
               lora(Q, *pair(576, 576)))


def _token_embd_on_a_tied_model(folder):  # loads, then the first decode aborts
    rng = np.random.default_rng(0)
    return write_adapter(folder / "embd.gguf", "llama", {
        "token_embd.weight.lora_a": rng.standard_normal((49152, 8)).astype(np.float32),
        "token_embd.weight.lora_b": rng.standard_normal((576, 8)).astype(np.float32)}, alpha=8)


BROKEN = {
    "plain model file": (_plain_model, r"is a model, not a LoRA adapter"),
    "other architecture": (_other_architecture, r"adapter for qwen2 .*SmolLM2.* is llama"),
    "wrong shapes": (_wrong_shapes, r"blk\.3\.attn_k\.weight \[576, 192\]: lora_a is \[576, "
                     r"8\], lora_b is \[8, 576\]; expected lora_a \[576, r\] and lora_b "
                     r"\[r, 192\]"),
    "swapped halves": (_swapped_halves, r"shapes do not fit"),
    "ranks differ": (_ranks_differ, r"lora_a is \[576, 8\], lora_b is \[4, 576\]"),
    "truncated": (_truncated, r"is truncated \([\d,]+ bytes; its tensors need [\d,]+\)"),
    "cut in its header": (_cut_in_header, r"truncated or damaged \(the file ends inside its "
                          r"header, at byte 300\)"),
    "not GGUF": (_not_gguf, r"is not a GGUF file"),
    "missing": (_missing, r"no such file"),
    "a tensor the model lacks": (_tensor_the_model_lacks, r"has no tensor blk\.99\.attn_q"),
    "half a pair": (_half_a_pair, r"attn_q\.weight has no lora_b"),
    "not a LoRA": (_not_a_lora, r"is a control_vector adapter, not a LoRA"),
    "no tensors": (_no_tensors, r"has no LoRA tensors"),
    "stray tensor": (_stray_tensor, r"tensor blk\.0\.extra is not a LoRA tensor"),
    "float64 alpha": (_alpha_float64, r"adapter\.lora\.alpha is a float64; .* float32"),
    "general.type not a string": (_type_not_a_string, r"general\.type is 1, not a string"),
    "token_embd on tied embeddings": (_token_embd_on_a_tied_model,
                                      r"uses token_embd as its output layer too"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_adapter_is_a_clear_error_and_the_model_stays_usable(
        kind, engine, folder, tone, base):
    make, message = BROKEN[kind]
    path = make(folder)
    with pytest.raises(AdapterError, match=message) as caught:
        check_adapter(path, engine.info)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    engine.set_adapters([(tone, 0.0)])
    with pytest.raises(AdapterError, match=message):
        engine.set_adapters([(path, 1.0)])
    with pytest.raises(AdapterError, match=message):  # one bad file in a set: nothing changes
        engine.set_adapters([(tone, 1.0), (path, 1.0)])
    assert [(i.path, s) for i, s in engine.adapters] == [(tone, 0.0)]
    assert greedy(engine) == base  # still generating, with the set as it was


def test_a_written_adapter_fits_the_model(engine, tone, style):
    info = check_adapter(tone, engine.info)
    assert (info.architecture, info.ranks, info.alpha, info.name) == ("llama", (8,), 8.0, "tone")
    assert len(info.targets) == 60 and f"{Q}" in info.targets
    assert all(t.split(".")[2] in ("attn_q", "attn_v") for t in info.targets)
    assert len(check_adapter(style, bundled_model_path()).targets) == 30 * 7  # by model file
    # ggml order as GGUFReader reads it (engine.info.tensors equals GGUFReader's, see
    # test_engine): lora_a [n_in, r], lora_b [r, n_out] against attn_k [576, 192]
    shapes = {t.name: [int(d) for d in t.shape] for t in gguf.GGUFReader(style).tensors}
    assert engine.info.tensors[K] == (576, 192)
    assert shapes[f"{K}.lora_a"] == [576, 8] and shapes[f"{K}.lora_b"] == [8, 192]


def test_scale_zero_is_the_base_model_token_for_token(engine, tone, base):
    engine.set_adapters([(tone, 0.0)])
    assert greedy(engine) == base
    engine.set_adapters([(tone, 1.0)])
    changed = greedy(engine)
    assert changed != base
    engine.set_adapters([(tone, 0.0)])  # re-scaled back
    assert greedy(engine) == base
    engine.set_adapters([])
    assert greedy(engine) == base and engine.adapters == ()


def test_two_adapters_at_once_each_with_its_scale(engine, tone, style, base):
    engine.set_adapters([(tone, 1.0)])
    one = greedy(engine)
    engine.set_adapters([(style, 1.0)])
    other = greedy(engine)
    engine.set_adapters([(tone, 1.0), (style, 1.0)])
    assert [(i.name, s) for i, s in engine.adapters] == [("tone", 1.0), ("style", 1.0)]
    both = greedy(engine)
    assert len({tuple(base), tuple(one), tuple(other), tuple(both)}) == 4
    engine.set_adapters([(tone, 0.0), (style, 1.0)])
    assert greedy(engine) == other
    engine.set_adapters([(tone, 0.0), (style, 0.0)])
    assert greedy(engine) == base
    engine.set_adapters([])


def test_switching_and_rescaling_never_reload_the_model(engine, tone, style, base):
    llm, model, ctx = engine.llama, engine.llama.model, engine.llama.ctx
    engine.set_adapters([(tone, 1.0)])
    first = greedy(engine)
    for adapters in ([(style, 1.0)], [(tone, 0.5)], [(tone, 1.0), (style, -0.5)], [(tone, 1.0)]):
        engine.set_adapters(adapters)
        assert engine.llama.n_tokens == 0  # a new set clears the KV cache
        _ = greedy(engine, max_tokens=2)
    assert greedy(engine) == first
    assert engine.llama is llm and engine.llama.model == model and engine.llama.ctx == ctx
    loaded = dict(engine._loras)
    engine.set_adapters([(style, 1.0)])
    assert engine._loras == loaded  # each file was loaded once
    engine.set_adapters([])


def test_the_same_set_keeps_the_prompt_cache(engine, tone):
    engine.set_adapters([(tone, 1.0)])
    _ = greedy(engine, max_tokens=2)
    cached = engine.llama.n_tokens
    engine.set_adapters([(str(tone), 1.0)])
    assert cached > 0 and engine.llama.n_tokens == cached
    engine.set_adapters([])


def test_a_file_changed_on_disk_is_loaded_again(engine, folder, base):
    path = write_lora(engine.info, folder / "retuned.gguf", seed=5)
    engine.set_adapters([(path, 1.0)])
    before = greedy(engine)
    handle = engine._loras[path.resolve()][1]
    write_lora(engine.info, path, seed=6, magnitude=2.0)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    engine.set_adapters([(path, 1.0)])
    after = greedy(engine)
    assert engine._loras[path.resolve()][1] is not handle and not engine._retired
    assert after != before
    write_lora(engine.info, folder / "seed6.gguf", seed=6, magnitude=2.0)
    engine.set_adapters([(folder / "seed6.gguf", 1.0)])
    assert greedy(engine) == after
    engine.set_adapters([])
    assert greedy(engine) == base


def test_bad_scales_and_repeats_are_refused(engine, tone):
    with pytest.raises(GroundedError, match="finite number, not nan"):
        engine.set_adapters([(tone, float("nan"))])
    with pytest.raises(GroundedError, match="given twice"):
        engine.set_adapters([(tone, 1.0), (Path(str(tone)), 0.5)])
    assert engine.adapters == ()


def test_a_null_from_llama_cpp_is_an_error_not_a_crash(engine, folder, tone, base, monkeypatch):
    """Were the check to miss something llama.cpp refuses, its NULL is still caught."""
    other = _other_architecture(folder)
    with pytest.raises(AdapterError):
        check_adapter(other, engine.info)
    real = check_adapter(tone, engine.info)
    monkeypatch.setattr(engine_module, "check_adapter", lambda path, model: real)
    with pytest.raises(AdapterError, match=r"qwen\.gguf: llama\.cpp cannot load the adapter "
                                           r"\(.*arch mismatch"):
        engine.set_adapters([(other, 1.0)])
    assert engine.adapters == () and greedy(engine) == base


def test_close_frees_the_adapters_once(tone):
    engine = Engine(n_ctx=256, n_threads=1)
    engine.set_adapters([(tone, 1.0)])
    engine.close()
    engine.close()
    assert engine._loras == {} and engine.adapters == ()
    with pytest.raises(RuntimeError, match="closed"):
        engine.set_adapters([(tone, 1.0)])


def test_write_lora_targets_and_layers(engine, folder):
    path = write_lora(engine.info, folder / "few.gguf", targets=["ffn_down"], layers=[0, 29],
                      rank=2)
    info = check_adapter(path, engine.info)
    assert info.targets == ("blk.0.ffn_down.weight", "blk.29.ffn_down.weight") and info.rank == 2
    with pytest.raises(ValueError, match="not a projection"):
        write_lora(engine.info, folder / "norm.gguf", targets=["output_norm.weight"])
    with pytest.raises(ValueError, match="no tensor matching"):
        write_lora(engine.info, folder / "none.gguf", targets=["attn_qkv"])


def test_bench_adapters_smoke():
    lines: list[str] = []
    result = bench_adapters(None, lines.append, repeats=1, switches=2, n_tokens=8, n_threads=1)
    assert result["same_model_throughout"] and result["load_ms"] > 0
    assert 0 < result["switch_ms"] < result["load_ms"] and result["attach_ms"] > 0
    assert result["base"]["tokens_per_s"] > 0 and result["adapter"]["tokens_per_s"] > 0
    assert any(line.startswith("switch A <-> B") and "RATIO switch/load" in line
               for line in lines)
