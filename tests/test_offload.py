"""GPU offload fitted to free memory: ggml's device query on this build, the layer sizes of
the real bundled model's header, and the engine's fallback to the CPU."""

from __future__ import annotations

import logging

import llama_cpp
import pytest

from desktop.core.model import offload
from desktop.core.model.engine import Engine
from desktop.core.model.modelfile import bundled_model_path, check_model_file
from desktop.core.model.offload import MARGIN_BYTES, Device

GB = 1_000_000_000


@pytest.fixture(scope="module")
def info():
    return check_model_file(bundled_model_path())


def test_ggml_lists_this_builds_devices_with_their_memory() -> None:
    found = offload.devices()
    cpu = [d for d in found if d.kind == "cpu"]
    assert len(cpu) == 1 and cpu[0].total > 0 and 0 < cpu[0].free <= cpu[0].total
    if not llama_cpp.llama_supports_gpu_offload():
        assert offload.gpu_devices(found) == []


def test_dedicated_gpus_come_before_integrated_ones() -> None:
    cpu, igpu = Device("CPU", "", "cpu", GB, GB), Device("iGPU", "", "igpu", GB, GB)
    gpus = [Device("CUDA0", "", "gpu", 8 * GB, 8 * GB), Device("CUDA1", "", "gpu", GB, GB)]
    assert offload.gpu_devices([cpu, igpu, *gpus]) == gpus
    assert offload.gpu_devices([cpu, igpu]) == [igpu]
    assert offload.gpu_devices([cpu]) == []


def test_layer_sizes_follow_the_header_and_the_context(info) -> None:
    short, long = offload.layer_bytes(info, 512), offload.layer_bytes(info, 8192)
    assert len(short) == info.block_count + 1  # the output, then the repeating layers
    weights = info.size_bytes
    assert 0.9 * weights < sum(short[1:]) < 1.2 * weights  # the file, with a small KV cache
    # K and V of 192 values each, f16, per token of context, per layer
    assert long[1] - short[1] == (8192 - 512) * 2 * (192 + 192)
    assert long[0] == short[0] > 0  # the output layer holds no cache


def test_the_output_layer_is_offloaded_first(info) -> None:
    # llama.cpp puts layers block_count + 1 - n_gpu_layers .. block_count on the GPU, the
    # output being layer block_count (i_gpu_start in llama_model::load_tensors): one layer
    # is the output alone, two are the output and the last block. SmolLM2's output (its
    # 49152-token embedding, tied) weighs about as much as five of its blocks (at n_ctx 2048).
    sizes = offload.layer_bytes(info, 2048)
    per_weight = info.size_bytes / info.parameters
    assert sizes[0] == round(49152 * 576 * per_weight) > 4 * max(sizes[1:])
    fit = offload.layers_that_fit
    assert fit(info, 2048, MARGIN_BYTES + 3 * sizes[1]) == 0  # three blocks, but no output
    assert fit(info, 2048, MARGIN_BYTES + sizes[0]) == 1
    assert fit(info, 2048, MARGIN_BYTES + sizes[0] + sizes[1]) == 2


def test_as_many_layers_as_fit_with_the_margin_left_free(info) -> None:
    sizes = offload.layer_bytes(info, 2048)
    fit = offload.layers_that_fit
    assert fit(info, 2048, MARGIN_BYTES - 1) == 0
    assert fit(info, 2048, MARGIN_BYTES + sum(sizes[:3])) == 3
    assert fit(info, 2048, MARGIN_BYTES + sum(sizes[:3]) - 1) == 2
    assert fit(info, 2048, MARGIN_BYTES + sum(sizes)) == info.block_count + 1

    def gpu(free: int) -> list[Device]:
        return [Device("CUDA0", "", "gpu", free, 80 * GB)]

    assert offload.fitted_layers(info, 2048, []) == 0
    assert offload.fitted_layers(info, 2048, gpu(80 * GB)) == -1  # all of them
    assert offload.fitted_layers(info, 2048, gpu(MARGIN_BYTES + sum(sizes[:5]))) == 5
    # two GPUs: each keeps its margin, the rest is shared
    two = [Device("CUDA0", "", "gpu", MARGIN_BYTES + sum(sizes[:2]), 80 * GB),
           Device("CUDA1", "", "gpu", MARGIN_BYTES + sum(sizes[2:4]), 80 * GB)]
    assert offload.fitted_layers(info, 2048, two) == 4


@pytest.mark.skipif(llama_cpp.llama_supports_gpu_offload(), reason="a CPU build's fallback")
def test_a_cpu_build_runs_on_the_cpu_with_a_message_when_layers_are_asked(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="desktop.core.model.engine"):
        asked = Engine(n_ctx=512, n_threads=1, n_gpu_layers=12)
    assert asked.n_gpu_layers == 0 and not asked.gpu_offload
    assert "cannot offload to a GPU; running on the CPU" in caplog.text
    caplog.clear()
    auto = Engine(n_ctx=512, n_threads=1)  # "auto": nothing to offload to, nothing said
    assert auto.n_gpu_layers == 0 and caplog.text == ""
    asked.close()
    auto.close()
