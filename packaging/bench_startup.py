"""Start-up of the packaged window against the source install, measured in one run.

    python3 packaging/bench_startup.py [--runs 7] [--dist dist/grounded] [--venv .venv]

Each run starts a fresh process with `gui --exit-when-ready` (offscreen, an empty
GROUNDED_HOME), which quits as soon as the window is shown and the event loop has turned once;
the time is wall-clock from before the process is started until it has exited (the packaged
app's bootloader starts a second process, so the app's own "ready" figure would miss part of
it). The two alternate, after one warm-up each; medians and their ratio are printed. Needs no
third-party package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def once(command: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="grounded-startup-") as home:
        env = {**os.environ, "GROUNDED_HOME": home, "QT_QPA_PLATFORM": "offscreen"}
        t0 = time.perf_counter()
        out = subprocess.run([*command, "gui", "--exit-when-ready"], env=env, cwd=home,
                             capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - t0
    if out.returncode != 0 or not out.stdout.startswith("ready"):
        raise SystemExit(f"{command[0]} failed: {out.stdout}{out.stderr}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist" / "grounded")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    args = parser.parse_args()
    commands = {"packaged": [str(args.dist / "grounded")],
                "source": [str(args.venv / "bin" / "grounded")]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        once(command)  # warm-up: the files into the page cache
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(once(command))
    result = {name: round(statistics.median(t)) for name, t in times.items()}
    result["ratio_packaged_to_source"] = round(result["packaged"] / result["source"], 2)
    result["runs"] = args.runs
    for name, t in times.items():
        print(f"{name:>9}: median {statistics.median(t):.0f} ms "
              f"(min {min(t):.0f}, max {max(t):.0f}) over {len(t)} runs")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
