"""llama-cpp-python with its ggml backends loaded, wherever the libraries were built to live.

A llama.cpp built with ``GGML_BACKEND_DL`` (the packaged app's portable build: every x86 CPU
variant of ggml's CPU backend as a library, the best one for this CPU chosen at run time) has
no backend linked in. ggml then looks for backend libraries beside the *executable* and in the
current folder only, neither of which is where llama-cpp-python keeps its libraries, so
:func:`load` asks ggml to load them from ``llama_cpp/lib`` (where ``packaging/build.sh`` puts
them), or from ``LLAMA_CPP_LIB_PATH`` when set (llama-cpp-python honours it too). A build with
the CPU backend linked in (the development install) has a backend registered already, and
nothing is done.

Where the CPU backend has llama.cpp's AMX kernels (a Sapphire Rapids or newer CPU with a
native build, or the portable build's variant for it), :func:`load` also keeps model weights
out of ggml's extra buffer types, which are what route matrix products to those kernels: on
the AMX machines here (Firecracker VMs) ``ggml_backend_amx_mul_mat`` dies with SIGSEGV on the
first decode. The AVX-512 kernels then do the work.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

_GGML_NAMES = ("libggml.so.0", "libggml.so", "libggml.dylib", "ggml.dll")
_lock = threading.Lock()
_loaded = False


def _ggml(lib_dir: Path) -> ctypes.CDLL | None:
    for name in _GGML_NAMES:
        if (lib_dir / name).is_file():
            return ctypes.CDLL(str(lib_dir / name))
    return None


def ggml_library() -> ctypes.CDLL | None:
    """libggml as this process uses it (its backends loaded), for the device queries that
    llama-cpp-python does not bind; None where the file is not beside llama-cpp-python's."""
    llama_cpp = load()
    return _ggml(_lib_dir(llama_cpp))


def _lib_dir(llama_cpp: ModuleType) -> Path:
    return Path(os.environ.get("LLAMA_CPP_LIB_PATH") or Path(llama_cpp.__file__).parent / "lib")


def loaded_variants() -> list[str]:
    """The ggml CPU backend libraries this process has loaded (Linux; [] elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    return sorted({Path(line.split()[-1]).name for line in maps.splitlines()
                   if "libggml-cpu" in line})


def load() -> ModuleType:
    """Import ``llama_cpp`` and make sure ggml has its backends; return the module."""
    global _loaded
    import llama_cpp

    with _lock:
        if _loaded:
            return llama_cpp
        lib_dir = _lib_dir(llama_cpp)
        ggml = _ggml(lib_dir)
        if ggml is not None:
            ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
            if ggml.ggml_backend_reg_count() == 0:  # a GGML_BACKEND_DL build
                ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
                ggml.ggml_backend_load_all_from_path(str(lib_dir).encode())
                ggml.ggml_backend_reg_name.restype = ctypes.c_char_p
                ggml.ggml_backend_reg_get.restype = ctypes.c_void_p
                ggml.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
                ggml.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
                names = [ggml.ggml_backend_reg_name(ggml.ggml_backend_reg_get(i)).decode()
                         for i in range(ggml.ggml_backend_reg_count())]
                log.info("ggml backends loaded from %s: %s (%s)", lib_dir, ", ".join(names),
                         ", ".join(loaded_variants()) or "variant unknown")
        if has_amx(llama_cpp):
            _keep_weights_out_of_extra_buffers(llama_cpp)
        _loaded = True
    return llama_cpp


def has_amx(llama_cpp: ModuleType) -> bool:
    """Whether the loaded CPU backend runs matrix products on AMX (its system info says)."""
    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def _keep_weights_out_of_extra_buffers(llama_cpp: ModuleType) -> None:
    """Make every ``llama_cpp.Llama`` of this process load with ``use_extra_bufts`` off.

    ``Llama`` takes no argument for it: it starts from ``llama_model_default_params()``, so
    that function is wrapped (once) to return the defaults with the flag cleared."""
    module = llama_cpp.llama_cpp
    default = module.llama_model_default_params

    def defaults_without_extra_buffers():
        params = default()
        params.use_extra_bufts = False
        return params

    module.llama_model_default_params = defaults_without_extra_buffers
    log.info("the CPU backend has AMX kernels: model weights stay in plain buffers")
