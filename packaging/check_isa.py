"""Which x86-64 instruction-set level does each library's machine code need?

    python3 packaging/check_isa.py LIB_DIR          (e.g. dist/grounded/_internal/llama_cpp/lib)

Disassembles every ``*.so`` in LIB_DIR with ``objdump -d`` and reports the highest
x86-64 micro-architecture level its instructions belong to: v1 (the 2003 baseline: SSE2),
v2 (SSE3/SSSE3/SSE4.1/SSE4.2/POPCNT), v3 (AVX, AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE), v4
(AVX-512). ``tzcnt`` is not counted: GCC emits it as ``rep bsf``, which older CPUs run as
``bsf``. Exits 1 when a library that every CPU loads needs more than v1: libllama, libggml,
libggml-base, and the CPU backend (libggml-cpu of a build without variants, or the baseline
variant libggml-cpu-x64). The other CPU variants are loaded by ggml only on CPUs that have
what they need (``ggml_backend_score``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

V2 = set("""pshufb palignr phaddw phaddd phaddsw phsubw phsubd phsubsw pmaddubsw pmulhrsw pabsb
pabsw pabsd psignb psignw psignd pmulld pminsd pmaxsd pminud pmaxud pminsb pmaxsb pminuw pmaxuw
ptest roundps roundpd roundss roundsd blendps blendpd blendvps blendvpd pblendvb pblendw
pmovzxbw pmovzxbd pmovzxbq pmovzxwd pmovzxwq pmovzxdq pmovsxbw pmovsxbd pmovsxbq pmovsxwd
pmovsxwq pmovsxdq pextrb pextrd pextrq pinsrb pinsrd pinsrq packusdw pcmpeqq pcmpgtq crc32
popcnt dpps dppd insertps extractps mpsadbw phminposuw lddqu movddup movshdup movsldup haddps
haddpd hsubps hsubpd addsubps addsubpd pcmpestri pcmpestrm pcmpistri pcmpistrm movntdqa pmuldq
cmpxchg16b""".split())
V3_SCALAR = set("andn bextr blsi blsmsk blsr bzhi mulx pdep pext rorx sarx shlx shrx lzcnt "
                "movbe".split())
ALWAYS_LOADED = re.compile(r"^lib(llama|ggml|ggml-base|ggml-cpu|ggml-cpu-x64)\.so")


def level_of(mnemonic: str, operands: str) -> int:
    if "%zmm" in operands or re.search(r"%k[0-7]", operands) or "{1to" in operands:
        return 4
    if mnemonic.startswith("v") and mnemonic not in ("verr", "verw"):
        return 3
    if mnemonic in V3_SCALAR:
        return 3
    if mnemonic in V2:
        return 2
    return 1


def scan(lib: Path) -> tuple[int, Counter]:
    proc = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)],
                          capture_output=True, text=True, check=True)
    found: Counter = Counter()
    top = 1
    for line in proc.stdout.splitlines():
        m = re.match(r"^\s*[0-9a-f]+:\s+([a-z][a-z0-9.]*)\s*(.*)$", line)
        if not m:
            continue
        mnemonic, operands = m.groups()
        level = level_of(mnemonic, operands)
        if level > 1:
            found[(level, mnemonic)] += 1
            top = max(top, level)
    return top, found


def main(folder: Path) -> int:
    bad = []
    for lib in sorted(folder.glob("*.so*")):
        if lib.is_symlink():
            continue
        top, found = scan(lib)
        examples = ", ".join(f"{m}" for (lvl, m), _ in found.most_common()
                             if lvl == top)[:70] if top > 1 else "-"
        loaded = bool(ALWAYS_LOADED.match(lib.name))
        print(f"{lib.name:<32} x86-64-v{top}  {'(every CPU loads it)' if loaded else '':<22}"
              f" {examples}")
        if loaded and top > 1:
            bad.append(lib.name)
    if bad:
        print(f"NOT PORTABLE: {', '.join(bad)} need more than the x86-64 baseline")
        return 1
    print("portable: what every CPU loads needs only the x86-64 baseline; the other CPU "
          "variants are chosen at run time")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
