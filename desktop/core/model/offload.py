"""How many of a model's layers go to the GPU: as many as fit in the GPU memory free now.

Asked for more layers than fit, llama.cpp fails to load the model (or the driver spills into
slow shared memory). llama.cpp's own fitting (``--fit`` of its tools) lives in its ``common``
library, which llama-cpp-python does not ship, so the estimate is made here: the free memory
of ggml's GPU devices (``ggml_backend_dev_memory``, the figure llama.cpp's fitting reads), the
size of each layer from the GGUF header, and its KV cache at the context size. What stays free
is llama.cpp's default margin for ``--fit``, 1 GiB per device, which also covers the compute
buffers.
"""

from __future__ import annotations

import ctypes
import math
import re
from dataclasses import dataclass

from desktop.core.model.modelfile import ModelInfo, parameter_count

#: Memory left free on each GPU device (llama.cpp's ``--fit-target`` default).
MARGIN_BYTES = 1024 * 1024 * 1024
#: ggml_backend_dev_type (ggml-backend.h).
_CPU, _GPU, _IGPU = 0, 1, 2
_KV_BYTES = 2  # f16 K and V cache entries
_LAYER = re.compile(r"blk\.(\d+)\.")


@dataclass(frozen=True)
class Device:
    """A ggml device and its memory, in bytes."""

    name: str
    description: str
    kind: str  # "cpu", "gpu", "igpu" or "accel"
    free: int
    total: int


def devices() -> list[Device]:
    """The devices of the ggml backends loaded in this process (the CPU on a CPU build)."""
    from desktop.core.model import llamalib

    ggml = llamalib.ggml_library()
    if ggml is None:
        return []
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(ggml, name).restype = ctypes.c_char_p
        getattr(ggml, name).argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_type.restype = ctypes.c_int
    ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                             ctypes.POINTER(ctypes.c_size_t)]
    kinds = {_CPU: "cpu", _GPU: "gpu", _IGPU: "igpu"}
    found = []
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        ggml.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.append(Device((ggml.ggml_backend_dev_name(dev) or b"").decode(),
                            (ggml.ggml_backend_dev_description(dev) or b"").decode(),
                            kinds.get(ggml.ggml_backend_dev_type(dev), "accel"),
                            free.value, total.value))
    return found


def gpu_devices(found: list[Device] | None = None) -> list[Device]:
    """The devices llama.cpp offloads to: the dedicated GPUs, else the integrated ones."""
    found = devices() if found is None else found
    return [d for d in found if d.kind == "gpu"] or [d for d in found if d.kind == "igpu"]


def layer_bytes(info: ModelInfo, n_ctx: int) -> list[int]:
    """Bytes each offloadable layer needs on the GPU, in llama.cpp's order of offload: the
    output layer first, then the repeating layers from the last one down (weights plus KV
    cache at ``n_ctx``). ``n_gpu_layers=k`` puts layers ``block_count + 1 - k`` to
    ``block_count`` on the GPU, the output layer counting as layer ``block_count``
    (``i_gpu_start`` in llama.cpp's ``llama_model::load_tensors``): one layer is the output
    alone. Weights are counted at the file's mean bytes per weight."""
    per_weight = info.size_bytes / max(1, info.parameters)
    blocks: dict[int, dict[str, tuple[int, ...]]] = {}
    for name, shape in info.tensors.items():
        if match := _LAYER.match(name):
            blocks.setdefault(int(match.group(1)), {})[name] = shape
    output = info.tensors.get("output.weight") or info.tensors.get("token_embd.weight") or ()
    sizes = [round(math.prod(output) * per_weight) if output else 0]
    for i in sorted(blocks, reverse=True):
        tensors = blocks[i]
        weights = parameter_count(tensors) * per_weight
        k, v = tensors.get(f"blk.{i}.attn_k.weight"), tensors.get(f"blk.{i}.attn_v.weight")
        kv = n_ctx * _KV_BYTES * ((k[-1] if k else 0) + (v[-1] if v else 0))
        sizes.append(round(weights + kv))
    return sizes


def layers_that_fit(info: ModelInfo, n_ctx: int, free_bytes: int,
                    margin_bytes: int = MARGIN_BYTES) -> int:
    """How many layers (llama.cpp's ``n_gpu_layers``; block_count + 1 is all of them, the
    output included) fit in ``free_bytes`` with ``margin_bytes`` left free."""
    budget, count = free_bytes - margin_bytes, 0
    for size in layer_bytes(info, n_ctx):
        if size > budget:
            break
        budget -= size
        count += 1
    return count


def fitted_layers(info: ModelInfo, n_ctx: int, gpus: list[Device]) -> int:
    """``n_gpu_layers`` for "auto": -1 (all) when the whole model fits the free memory of
    ``gpus`` (a margin left on each), else the layers that fit, 0 without a GPU."""
    if not gpus:
        return 0
    free = sum(max(0, d.free - MARGIN_BYTES) for d in gpus)
    count = layers_that_fit(info, n_ctx, free, margin_bytes=0)
    return -1 if count >= info.block_count + 1 else count
