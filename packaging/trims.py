"""What the packaged app leaves out, rule by rule (read by grounded.spec and measure.py).

Each :class:`Trim` names Python modules to exclude from the analysis and/or file patterns
(matched against a file's path inside the bundle) to drop from what the hooks collected.
``measure.py`` attributes the files and modules of the untrimmed ("naive") build to these
rules, so README.md can say what each one saves. Every rule is checked by ``smoke.sh``: the
trimmed app still indexes, answers, reports and opens its window.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path


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

# transformers.models.X whose model code stays: the bundled embedder's family (bert), every
# family transformers' GGUF loader knows (transformers.integrations.ggml: `grounded tune`
# loads the bundled model, llama, or another GGUF the settings name), the registry (auto), and
# every family their code imports (found by transformers_families_kept). The other families
# keep their configuration, tokenizer and processor modules: transformers' auto classes import
# those by name while they look a model up.
TRANSFORMERS_SEED = (
    "auto", "bert", "llama", "mistral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3",
    "gemma2", "gemma3", "gemma4", "gpt2", "gpt_oss", "falcon", "bloom", "stablelm",
    "starcoder2", "nemotron", "mamba", "lfm2", "minimax_m2", "t5", "umt5")
TRANSFORMERS_MODEL_CODE = ("modeling", "image_processing", "video_processing",
                           "feature_extraction")
TRANSFORMERS_DEV_CODE = ("modular", "convert")  # code generators and checkpoint converters


def transformers_families_kept(models_dir: Path | None = None) -> tuple[str, ...]:
    """TRANSFORMERS_SEED and every family its code imports (``from ..X``), transitively."""
    if models_dir is None:
        spec = importlib.util.find_spec("transformers")
        if spec is None or spec.origin is None:
            return TRANSFORMERS_SEED
        models_dir = Path(spec.origin).parent / "models"
    ref = re.compile(r"^\s*from (?:\.\.|transformers\.models\.)(\w+)", re.M)
    kept: set[str] = set()
    todo = [f for f in TRANSFORMERS_SEED if (models_dir / f).is_dir()]
    while todo:
        family = todo.pop()
        if family in kept:
            continue
        kept.add(family)
        for path in (models_dir / family).rglob("*.py"):
            if path.name.startswith(tuple(p + "_" for p in TRANSFORMERS_DEV_CODE)):
                continue  # never imported at run time
            for name in ref.findall(path.read_text(encoding="utf-8", errors="ignore")):
                if name not in kept and (models_dir / name).is_dir():
                    todo.append(name)
    return tuple(sorted(kept))


KEEP_TRANSFORMERS_MODELS = transformers_families_kept()

# torch modules that call install_config_module, which reads the module's own source
# (tests/test_packaging.py checks the installed torch for new ones).
TORCH_CONFIG_MODULES = (
    "torch._dynamo.config", "torch._export.config", "torch._functorch.config",
    "torch._inductor.config", "torch._inductor.config_comms", "torch.compiler.config",
    "torch.distributed.config", "torch.fx.experimental._config",
    "torch.utils.serialization.config")

TRIMS: tuple[Trim, ...] = (
    Trim(
        "torch C++ tests and tools",
        "torch/test, torch/bin's test programs and protoc, test libraries in torch/lib: never "
        "loaded at run time (torch/bin/torch_shm_manager stays: `import torch` checks for it)",
        files=("torch/test/*", "torch/bin/*Test", "torch/bin/test_*", "torch/bin/protoc*",
               "torch/bin/*.pt", "torch/bin/*.ptl", "torch/bin/upgrader_models/*",
               "torch/lib/libjitbackend_test.so",
               "torch/lib/libtorchbind_test.so", "torch/lib/libbackend_with_compiler.so",
               "torch/lib/libaoti_custom_ops.so"),
    ),
    Trim(
        "torch headers, static libraries, build files",
        "torch/include, torch/share (cmake), *.a, *.cuh: for compiling against torch",
        files=("torch/include/*", "torch/share/*", "*.a", "*.cuh"),
    ),
    Trim(
        "torch Python sources",
        "torch's hook collects each module's .py beside its compiled form (for TorchScript, "
        "which needs source); Grounded scripts nothing. Kept: the config modules, which read "
        "their own source at import (torch.utils._config_module); every other source lookup "
        "on the paths Grounded runs (embedding, bf16 autocast, a training step) is optional "
        "and caught by torch",
        files=("torch/*.py",),
        keep=TORCH_CONFIG_MODULES,
    ),
    Trim(
        "torch tools Grounded never imports",
        "TensorBoard writers (tensorboard is not installed), the bottleneck profiler script, "
        "caffe2 and triton (not in a CPU build). torch.testing._internal stays: torch imports "
        "parts of it at run time (torch.utils.checkpoint, torch._refs)",
        modules=("torch.utils.tensorboard", "torch.utils.bottleneck", "tensorboard", "caffe2",
                 "triton"),
        files=("torch/utils/tensorboard/*", "torch/utils/bottleneck/*"),
    ),
    Trim(
        CPU_ONLY,
        "nvidia-* wheels, libcudart, cuDNN, ROCm: this build runs on the CPU",
        modules=("nvidia",),
        files=("nvidia/*", "*libcudart*", "*libcublas*", "*libcudnn*", "*libnccl*",
               "*libcusparse*", "*libcufft*", "*libcurand*", "*libnvrtc*", "*libnvJitLink*",
               "*libcusolver*", "*libamdhip*", "*librocm*", "triton/*"),
    ),
    Trim(
        "transformers model code of families not used",
        "modeling, image/video processing and feature extraction modules of the "
        "transformers.models.* families outside KEEP_TRANSFORMERS_MODELS (their "
        "configuration, tokenizer and processor modules stay), and every family's modular_* "
        "and convert_* modules (code generators, checkpoint converters)",
        pattern=(r"transformers\.models\.(?:\w+\.(?:" + "|".join(TRANSFORMERS_DEV_CODE)
                 + r")_\w+|(?!(?:" + "|".join(KEEP_TRANSFORMERS_MODELS) + r")\.)\w+\.(?:"
                 + "|".join(TRANSFORMERS_MODEL_CODE) + r")_\w+)$"),
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
        "Hugging Face transfer client",
        "hf_xet, huggingface_hub's client for up- and downloads from Xet storage: the Hub "
        "imports it only inside its transfer functions, and Grounded never transfers (offline, "
        "models from the bundle)",
        modules=("hf_xet",),
        files=("hf_xet/*",),
    ),
    Trim(
        "development and test tools",
        "pytest, hypothesis, ruff, import-linter, IPython, pip, setuptools' vendored "
        "packages, tkinter",
        modules=("pytest", "_pytest", "pytestqt", "hypothesis", "importlinter", "grimp", "IPython",
                 "jedi", "matplotlib", "tkinter", "_tkinter", "pip", "setuptools", "pkg_resources",
                 "distutils", "lib2to3", "pydoc_data", "notebook"),
    ),
)


# Native libraries whose symbol tables are stripped (`strip --strip-unneeded`): the two
# where it counts (torch's, ~98 MB of the ~139 MB stripping everything would save). Not all of
# them: stripping a library that auditwheel rewrote with patchelf (numpy's OpenBLAS) made it
# unloadable here ("ELF load command address/offset not page-aligned").
STRIP = ("torch/lib/libtorch_cpu.so", "torch/lib/libtorch_python.so")


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
