"""What each trim saves: the naive build against the trimmed one, rule by rule.

    packaging/.build-venv/bin/python packaging/measure.py dist-naive/grounded dist/grounded

Every file of the naive folder, and every module in its Python archive (PYZ), is attributed
to the first rule of packaging/trims.py that drops it; what the trimmed folder holds smaller
(the same file, stripped) is counted as "strip"; what is left of the difference is reported as
such (dependencies that only excluded modules pulled in). Prints a Markdown table.
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trims  # noqa: E402


def files(folder: Path) -> dict[str, int]:
    """Bundle path (relative to _internal/, or the folder for the executable) → bytes."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(folder)
            parts = rel.parts[1:] if rel.parts[0] == "_internal" else rel.parts
            out["/".join(parts)] = path.stat().st_size
    return out


def pyz_modules(executable: Path) -> dict[str, int]:
    """Module name → compressed bytes in the executable's PYZ archive."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    archive = CArchiveReader(str(executable))
    name = next(n for n, entry in archive.toc.items() if entry[-1] == "z")
    with tempfile.NamedTemporaryFile(suffix=".pyz") as tmp:
        tmp.write(archive.extract(name))
        tmp.flush()
        pyz = ZlibArchiveReader(tmp.name)
        return {mod: entry[-1] for mod, entry in pyz.toc.items()}


def measure(naive: Path, trimmed: Path) -> list[tuple[str, int, float]]:
    nf, tf = files(naive), files(trimmed)
    nm, tm = pyz_modules(naive / naive.name), pyz_modules(trimmed / trimmed.name)
    saved: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for dest, size in nf.items():
        if dest == naive.name:
            continue  # the executable: it shrinks by its archive's modules, counted below
        if dest in tf:
            if tf[dest] < size:
                saved["strip (symbol tables of native libraries)"][0] += 1
                saved["strip (symbol tables of native libraries)"][1] += size - tf[dest]
            continue
        rule = trims.files_trim(dest)
        if rule is not None:
            saved[rule.name][0] += 1
            saved[rule.name][1] += size
    for mod, size in nm.items():
        if mod in tm:
            continue
        rule = trims.module_trim(mod)
        if rule is not None:
            saved[rule.name][0] += 1
            saved[rule.name][1] += size
    total_n, total_t = sum(nf.values()), sum(tf.values())
    accounted = sum(v[1] for v in saved.values())
    rows = [(name, int(n), mb / 1e6) for name, (n, mb) in
            sorted(saved.items(), key=lambda kv: -kv[1][1])]
    rows.append(("other (pulled in only by what was left out)", 0,
                 (total_n - total_t - accounted) / 1e6))
    print(f"naive: {total_n / 1e6:.0f} MB in {len(nf)} files, {len(nm)} modules; "
          f"trimmed: {total_t / 1e6:.0f} MB in {len(tf)} files, {len(tm)} modules "
          f"({total_t / total_n:.2f} of naive)\n")
    print("| trim | files / modules | saves |\n|---|---|---|")
    for name, n, mb in rows:
        print(f"| {name} | {n or ''} | {mb:.1f} MB |")
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    measure(Path(sys.argv[1]), Path(sys.argv[2]))
