"""The numpy llama that tune trains on: its base logits against llama.cpp's on the bundled
model, the hand-written backward pass against finite differences on a tiny random model
(float64, grouped KV heads, dropout on), right padding, llama.cpp's RoPE layout, and AdamW."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np
import pytest

from desktop.core.answering.prompts import SYSTEM_BARE
from desktop.core.errors import GroundedError
from desktop.core.model.engine import Engine, bundled_model_path
from desktop.core.tuning.examples import read_examples
from desktop.core.tuning.export import correlation, permute_rows
from desktop.core.tuning.lora import KINDS, AdamW, Lora
from desktop.core.tuning.numpy_llama import Config, LlamaModel, _rope, _rope_tables, load_gguf
from desktop.core.tuning.train import IGNORE

MEMO = Path(__file__).resolve().parents[1] / "resources" / "tune" / "memo-style.jsonl"

TINY = Config(n_layer=2, n_embd=16, n_head=4, n_head_kv=2, n_ff=24, n_vocab=40, head_dim=4,
              rope_base=10000.0, eps=1e-5)


def tiny_model(dtype=np.float64, seed: int = 0) -> LlamaModel:
    """A random llama of :data:`TINY`'s shapes, tied output embedding."""
    c, rng = TINY, np.random.default_rng(seed)
    kv = c.n_head_kv * c.head_dim
    shapes = {"attn_q": (c.n_head * c.head_dim, c.n_embd), "attn_k": (kv, c.n_embd),
              "attn_v": (kv, c.n_embd), "attn_output": (c.n_embd, c.n_head * c.head_dim),
              "ffn_gate": (c.n_ff, c.n_embd), "ffn_up": (c.n_ff, c.n_embd),
              "ffn_down": (c.n_embd, c.n_ff)}
    w = {"token_embd": rng.normal(size=(c.n_vocab, c.n_embd)),
         "output_norm": 1 + 0.1 * rng.normal(size=c.n_embd)}
    for i in range(c.n_layer):
        w[f"blk.{i}.attn_norm"] = 1 + 0.1 * rng.normal(size=c.n_embd)
        w[f"blk.{i}.ffn_norm"] = 1 + 0.1 * rng.normal(size=c.n_embd)
        for kind, shape in shapes.items():
            w[f"blk.{i}.{kind}"] = rng.normal(size=shape) / np.sqrt(shape[1])
    w = {k: v.astype(dtype) for k, v in w.items()}
    w["output"] = w["token_embd"]
    return LlamaModel(c, w)


def tiny_lora(model: LlamaModel, dropout: float, seed: int = 1) -> Lora:
    """A LoRA with random B too (a fresh one has B = 0, where A's gradient is 0)."""
    lora = Lora.fresh(model.lora_shapes(), 3, 6.0, dropout, seed, dtype=model.dtype)
    rng = np.random.default_rng(seed + 1)
    for name in lora.b:
        lora.b[name][:] = 0.3 * rng.normal(size=lora.b[name].shape)
    return lora


def batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two right-padded rows: targets on a stretch of each (the reply), IGNORE elsewhere."""
    ids = rng.integers(0, TINY.n_vocab, size=(2, 7))
    targets = np.full((2, 7), IGNORE)
    targets[0, 2:6] = ids[0, 3:7]
    targets[1, 1:4] = ids[1, 2:5]
    return ids, targets


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_backward_pass_matches_finite_differences(dropout):
    model = tiny_model()
    lora = tiny_lora(model, dropout)
    ids, targets = batch(np.random.default_rng(5))

    def loss() -> float:  # the same dropout masks every time
        return model.loss_and_grads(ids, targets, lora, np.random.default_rng(7))[0]

    _, grads = model.loss_and_grads(ids, targets, lora, np.random.default_rng(7))
    assert sorted(grads) == sorted(lora.names()) and len(grads) == 2 * 2 * len(KINDS)
    eps, worst = 1e-6, 0.0
    for name in lora.names():
        p, numeric = lora.tensor(name), np.zeros_like(grads[name])
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        worst = max(worst, float(np.abs(numeric - grads[name]).max() / np.abs(numeric).max()))
    assert worst < 1e-6, worst


def test_the_loss_is_the_cross_entropy_of_the_logits_and_padding_changes_nothing():
    model = tiny_model()
    lora = tiny_lora(model, 0.0)
    ids, targets = batch(np.random.default_rng(3))
    loss, _ = model.loss_and_grads(ids, targets, lora)
    terms = []
    for row, n in ((0, 7), (1, 5)):  # row 1 is 5 tokens and 2 of padding
        logits = model.logits(ids[row, :n], lora)
        for t in np.flatnonzero(targets[row, :n] >= 0):
            z = logits[t] - logits[t].max()
            terms.append(np.log(np.exp(z).sum()) - z[targets[row, t]])
    assert loss == pytest.approx(np.mean(terms), rel=1e-12)
    # Other padding tokens after row 1's end change neither the loss nor the gradients.
    other = ids.copy()
    other[1, 5:] = 0
    loss2, grads2 = model.loss_and_grads(other, targets, lora)
    _, grads = model.loss_and_grads(ids, targets, lora)
    assert loss2 == pytest.approx(loss, rel=1e-12)
    assert all(np.allclose(grads[k], grads2[k], rtol=1e-10, atol=1e-14) for k in grads)


def test_lora_kinds_switch_their_pairs_on_and_off():
    model = tiny_model()
    lora = tiny_lora(model, 0.0)
    ids = [1, 5, 7, 2, 9]
    base, tuned = model.logits(ids), model.logits(ids, lora)
    assert not np.allclose(base, tuned)
    assert np.array_equal(model.logits(ids, lora, kinds=()), base)
    assert np.array_equal(model.logits(ids, lora, kinds=KINDS), tuned)
    qk = model.logits(ids, lora, kinds=("attn_q", "attn_k"))
    assert not np.allclose(qk, base) and not np.allclose(qk, tuned)
    fresh = Lora.fresh(model.lora_shapes(), 4, 8.0, 0.0, 0, dtype=np.float64)
    assert np.array_equal(model.logits(ids, fresh), base)  # B = 0: no change


def test_rope_on_adjacent_pairs_of_permuted_rows_is_transformers_rope_on_halves():
    # llama.cpp's converter permutes q/k rows so that its RoPE on pairs (x[2i], x[2i+1])
    # gives, in that row order, what transformers' RoPE on halves (x[i], x[i + d/2]) gives
    # on the original rows: the numpy model, working on the GGUF's rows, is llama.cpp's.
    rng = np.random.default_rng(0)
    heads, d, t = 3, 8, 5
    hf = rng.normal(size=(t, heads * d))  # q rows in transformers' order, per position
    cos, sin = _rope_tables(t, d, 10000.0, np.float64)
    x = hf.reshape(t, heads, d)
    half = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], axis=-1)
    c2, s2 = np.concatenate([cos, cos], -1), np.concatenate([sin, sin], -1)
    hf_roped = (x * c2 + half * s2).reshape(t, heads * d)
    ours = _rope(permute_rows(hf.T, heads).T.reshape(1, t, heads, d), (cos, sin))
    assert np.allclose(ours.reshape(t, heads * d), permute_rows(hf_roped.T, heads).T)
    assert not np.allclose(permute_rows(hf.T, heads).T, hf)


def test_adamw_first_step_moves_each_weight_by_the_learning_rate():
    model = tiny_model(np.float32)
    lora = tiny_lora(model, 0.0)
    before = {n: lora.tensor(n).copy() for n in lora.names()}
    grads = {n: np.random.default_rng(1).normal(size=p.shape).astype(np.float32)
             for n, p in before.items()}
    AdamW(lora).step(grads, 1e-3)
    for n, g in grads.items():  # step 1: m̂ / sqrt(v̂) = sign(g)
        assert np.allclose(before[n] - lora.tensor(n), 1e-3 * np.sign(g), atol=1e-6)


@pytest.fixture(scope="module")
def bundled():
    return load_gguf(bundled_model_path())


def test_the_numpy_model_reads_the_bundled_gguf_like_llama_cpp(bundled):
    c = bundled.config
    assert (c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.n_ff, c.n_vocab, c.head_dim) == \
        (30, 576, 9, 3, 1536, 49152, 64)
    assert bundled.w["output"] is bundled.w["token_embd"]  # tied
    ids: list[int] = []
    with Engine(n_ctx=512, n_threads=1, logits_all=True) as engine:
        for example in read_examples(MEMO)[:2]:  # two exchanges, as the self-check runs
            ids += engine.tokenize(engine.format_prompt(
                [{"role": "system", "content": SYSTEM_BARE},
                 {"role": "user", "content": example.prompt}]), special=True)
            ids += engine.tokenize(example.reply + "<|im_end|>\n", special=True)
        theirs = engine.logits(ids)
    ours = bundled.logits(ids)
    assert len(ids) >= 100 and ours.shape == theirs.shape
    # Measured on these 199 tokens: 0.9992, the same top token at 96% of the positions (Q4_1
    # weights dequantized here, 8-bit activations in llama.cpp).
    assert correlation(ours, theirs) >= 0.99
    assert np.mean(ours.argmax(1) == theirs.argmax(1)) > 0.9


def write_tiny_gguf(path: Path, model: LlamaModel, dtype=np.float32) -> Path:
    """``model`` as a llama GGUF (no tokenizer: enough for :func:`load_gguf`)."""
    c = model.config
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(c.n_layer)
    writer.add_context_length(64)
    writer.add_embedding_length(c.n_embd)
    writer.add_feed_forward_length(c.n_ff)
    writer.add_head_count(c.n_head)
    writer.add_head_count_kv(c.n_head_kv)
    writer.add_rope_freq_base(c.rope_base)
    writer.add_layer_norm_rms_eps(c.eps)
    for name, w in model.w.items():
        if name != "output":  # tied
            writer.add_tensor(f"{name}.weight", np.ascontiguousarray(w, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_small_gguf_loads_into_the_same_model(tmp_path):
    model = tiny_model(np.float32)
    loaded = load_gguf(write_tiny_gguf(tmp_path / "tiny.gguf", model))
    assert replace(loaded.config, eps=TINY.eps) == TINY
    assert loaded.config.eps == pytest.approx(TINY.eps)  # stored as float32
    assert loaded.w["output"] is loaded.w["token_embd"]
    assert all(np.array_equal(loaded.w[k], w) for k, w in model.w.items())
    assert np.allclose(loaded.logits([3, 1, 4, 1, 5]), model.logits([3, 1, 4, 1, 5]),
                       rtol=1e-5, atol=1e-5)


def test_weights_that_cannot_be_dequantized_are_a_clear_error(tmp_path):
    path = write_tiny_gguf(tmp_path / "f64.gguf", tiny_model(), dtype=np.float64)
    with pytest.raises(GroundedError, match=r"f64.gguf: cannot load this model for tuning "
                                            r"\(F64 weights \(token_embd\) cannot be dequant"):
        load_gguf(path)


def test_tuning_imports_neither_torch_nor_transformers_nor_peft():
    code = ("import sys; from desktop.core.tuning import tuner, train; "
            "from desktop.core.model.engine import bundled_model_path; "
            "train.load(bundled_model_path()); "
            "print(sorted({'torch', 'transformers', 'peft'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert out.strip() == "[]"
