"""Rearrange a llama-cpp-python wheel built with GGML_BACKEND_DL so it works as installed.

Such a build installs the CPU backend variants (``libggml-cpu-x64.so``, ``-haswell``, ...) into
the wheel's top-level ``bin/`` (ggml's install rule), i.e. ``site-packages/bin/``, where neither
llama-cpp-python nor ggml's loader looks. This moves them beside ``libllama.so`` in
``llama_cpp/lib/`` (where ``desktop.core.model.llamalib`` loads them from) and drops the other
top-level folders (``lib/``: copies of the libraries in ``llama_cpp/lib``; ``include/``: headers
and cmake files). ``RECORD`` is rewritten.

    python packaging/relayout_wheel.py IN.whl OUT_DIR
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import zipfile
from pathlib import Path

BACKEND = re.compile(r"(?:lib)?ggml-[a-z0-9]+-[A-Za-z0-9_.]+\.(?:so|dll|dylib)$")


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def relayout(wheel: Path, out_dir: Path) -> Path:
    """Write the rearranged wheel into ``out_dir`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel.name
    tmp = target.with_suffix(".tmp")
    moved, dropped, record_name, lines = [], [], None, []
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            name = info.filename
            top = name.split("/", 1)[0]
            if name.endswith(".dist-info/RECORD"):
                record_name = name
                continue
            if top == "llama_cpp" or top.endswith(".dist-info"):
                new = name
            elif BACKEND.search(Path(name).name) and not name.endswith("/"):
                new = f"llama_cpp/lib/{Path(name).name}"
                moved.append(f"{name} -> {new}")
            else:
                dropped.append(name)
                continue
            data = src.read(info)
            out = zipfile.ZipInfo(new, date_time=info.date_time)
            out.external_attr = info.external_attr
            out.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(out, data)
            lines.append(_record_line(new, data))
        if record_name is None:
            raise SystemExit(f"{wheel}: no RECORD")
        if not moved and not any(BACKEND.search(line.split(",")[0]) for line in lines):
            raise SystemExit(f"{wheel}: no ggml backend libraries: was it built with "
                             "GGML_BACKEND_DL=ON?")
        lines.append(f"{record_name},,")
        dst.writestr(record_name, "\n".join(lines) + "\n")
    tmp.replace(target)
    for line in moved:
        print(f"moved   {line}")
    print(f"dropped {len(dropped)} entries outside llama_cpp/: "
          f"{sorted({n.split('/', 1)[0] + '/' for n in dropped})}")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(relayout(Path(sys.argv[1]), Path(sys.argv[2])))
