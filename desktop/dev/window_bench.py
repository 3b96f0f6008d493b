"""Measure the window: start-up to a usable window, memory at rest and while answering, and
the event loop's longest stall while models load, while indexing and while answering.

    QT_QPA_PLATFORM=offscreen python -m desktop.dev.window_bench [--threads N] [--json]

Start-up runs ``python -m desktop.gui.app --exit-when-ready`` in fresh processes (the time from
process start to the shown window, models not loaded: they load behind it) against a bare
PySide6 window in the same run. The rest runs one real window in this process, in a
throwaway GROUNDED_HOME, on a slice of ../shared/eval (or the bundled samples).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BARE_WINDOW = (
    "import time; t = time.perf_counter(); from PySide6.QtWidgets import QApplication, "
    "QMainWindow; from PySide6.QtCore import QTimer; app = QApplication([]); w = QMainWindow(); "
    "w.show(); QTimer.singleShot(0, lambda: (print('ready', (time.perf_counter() - t) * 1000), "
    "app.quit())); app.exec()"
)


def rss_mb() -> float | None:
    """This process's resident memory in MB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _ready_ms(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(the process's own 'ready' time, wall time from spawn to exit) in ms."""
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    wall = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    return float(out.stdout.split()[1]), wall


def bench_startup(runs: int = 5) -> dict:
    """Start-up to a shown window, median of ``runs`` fresh processes, against a bare window."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    ours, bare, walls = [], [], []
    with tempfile.TemporaryDirectory() as home:
        env["GROUNDED_HOME"] = home
        for _ in range(runs):  # interleaved: the machine's load hits both alike
            ready, wall = _ready_ms([sys.executable, "-m", "desktop.gui.app",
                                     "--exit-when-ready"], env)
            ours.append(ready)
            walls.append(wall)
            bare.append(_ready_ms([sys.executable, "-c", BARE_WINDOW], env)[0])
    return {"window_ready_ms": statistics.median(ours), "process_wall_ms": statistics.median(walls),
            "bare_pyside_window_ms": statistics.median(bare),
            "ratio": statistics.median(ours) / statistics.median(bare), "runs": runs}


MEMORY_STEPS = """
import json, os, sys
sys.path.insert(0, {repo!r})
from desktop.dev.window_bench import rss_mb
steps = [("python", rss_mb())]
import onnxruntime; steps.append(("onnxruntime", rss_mb()))
from desktop.core.embedding.embedder import OnnxEmbedder
e = OnnxEmbedder(); e.embed(["warm up"]); steps.append(("MiniLM loaded", rss_mb()))
from desktop.core.model.engine import Engine
g = Engine(n_threads=1); _ = g.llama; steps.append((f"SmolLM2, n_ctx {{g.n_ctx}}", rss_mb()))
print(json.dumps(steps))
"""


def bench_memory_steps() -> dict:
    """Where the memory at rest goes: RSS growth per import/load step, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEMORY_STEPS.format(repo=str(REPO))],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    steps = json.loads(out.stdout.strip().splitlines()[-1])
    return {f"rss_step_{name}_mb": round(mb - prev, 1)
            for (name, mb), (_, prev) in zip(steps[1:], steps[:-1], strict=True)}


def wait_until(app, condition: Callable[[], bool], timeout_s: float = 600.0) -> None:
    """Process Qt events until ``condition()`` holds (TimeoutError after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not reach the state in time")
        app.processEvents()
        time.sleep(0.005)


def bench_session(threads: int, eval_dir: Path, work: Path, switch_to: Path | None = None
                  ) -> dict:
    """Memory and longest stalls of one real window: load, index, answer."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.core.config import Settings
    from desktop.core.workspace import Workspace
    from desktop.dev.stall import StallMeter
    from desktop.gui import theme
    from desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["grounded"])
    theme.apply(app)
    meter = StallMeter()
    result: dict = {"threads": threads or "auto"}
    window = MainWindow(Workspace(Settings(n_threads=threads)))
    window.show()
    app.processEvents()
    result["rss_window_shown_mb"] = rss_mb()
    states: dict[str, str] = {}
    window.answers.model_state.connect(lambda s: states.__setitem__(s.model, s.state))
    meter.start()
    window.start()
    wait_until(app, lambda: states.get("embedder") in ("ready", "failed")
          and states.get("model") in ("ready", "failed") and window.library.summary is not None)
    result["stall_loading_models_ms"] = meter.stop()
    result["stall_loading_models_p99_ms"] = meter.percentile(0.99)
    settle(app)
    result["rss_at_rest_models_loaded_mb"] = rss_mb()

    corpus = eval_dir / "squad_v1.1_dev" / "corpus_small"
    folder = work / "docs"
    if corpus.is_dir():
        folder.mkdir()
        for path in sorted(corpus.iterdir())[:150]:
            shutil.copy(path, folder / path.name)
        question = "What ctenophore was accidentally introduced into the Black Sea?"
    else:
        shutil.copytree(REPO / "resources" / "samples", folder)
        question = "Can I stop indexing halfway?"
    reports = []
    window.library.index_finished.connect(reports.append)
    meter.start()
    window.index_paths([str(folder)])
    wait_until(app, lambda: bool(reports))
    result["stall_indexing_ms"] = meter.stop()
    result["stall_indexing_p99_ms"] = meter.percentile(0.99)
    result["indexed_files"] = reports[0].added
    result["indexed_chunks"] = reports[0].chunks
    settle(app)
    result["rss_at_rest_after_indexing_mb"] = rss_mb()

    peak = [0.0]
    sampler = QTimer()
    sampler.timeout.connect(lambda: peak.__setitem__(0, max(peak[0], rss_mb() or 0.0)))
    answers = []
    window.answers.answered.connect(answers.append)
    meter.start()
    sampler.start(20)
    window.ask(question)
    wait_until(app, lambda: bool(answers))
    sampler.stop()
    result["stall_answering_ms"] = meter.stop()
    result["stall_answering_p99_ms"] = meter.percentile(0.99)
    result["rss_peak_answering_mb"] = peak[0]
    result["answer_tokens"] = answers[0].generation.completion_tokens
    result["answer_tokens_per_s"] = answers[0].generation.tokens_per_s
    result.update(bench_switch(app, window, question, work, switch_to))
    window.close()
    return result


def bench_switch(app, window, question: str, work: Path, target: Path | None = None) -> dict:
    """Switch to ``target`` (default: a copy of the bundled model, its own pages, so a model
    left loaded would show) as Settings' OK does, ask, then switch back to the bundled model
    and ask again: the time from each switch to the first token, and memory at rest before,
    after the switch and after the switch back (each old model freed)."""
    from dataclasses import replace

    from desktop.core.model.modelfile import bundled_model_path

    other = target
    if other is None:
        other = work / "other-model.gguf"
        shutil.copy(bundled_model_path(), other)
    tokens: list[float] = []
    answers: list = []
    window.answers.token.connect(lambda _t: tokens.append(time.perf_counter()))
    window.answers.answered.connect(answers.append)

    def switch(model: str) -> tuple[float | None, float | None]:
        """(ms from the switch to the first token, RSS MB at rest after the answer)."""
        tokens.clear()
        answers.clear()
        started = time.perf_counter()
        window.apply_settings(replace(window.workspace.settings, model=model))
        window.ask(question)
        wait_until(app, lambda: bool(answers))
        first = (tokens[0] - started) * 1000 if tokens else None
        settle(app)
        return first, rss_mb()

    settle(app)
    before = rss_mb()
    first, after = switch(str(other))
    switched = window.workspace.engine().info.path.name
    back_first, back = switch("")
    return {"switched_model": switched, "switch_to_first_token_ms": first,
            "rss_before_switch_mb": before, "rss_after_switch_mb": after,
            "switch_back_to_first_token_ms": back_first, "rss_after_switch_back_mb": back}


def settle(app, seconds: float = 1.0) -> None:
    """Let the event loop run a while (threads finish, memory settles)."""
    for _ in range(int(seconds * 100)):
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="model threads (0: auto)")
    parser.add_argument("--runs", type=int, default=5, help="start-up runs")
    parser.add_argument("--eval", type=Path, default=REPO.parent / "shared" / "eval")
    parser.add_argument("--switch-to", type=Path, help="a GGUF model to switch to and back "
                        "from (default: a copy of the bundled one)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if hasattr(faulthandler, "register"):  # `kill -USR1 PID` shows where every thread is
        faulthandler.register(signal.SIGUSR1)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    startup = bench_startup(args.runs)
    work = Path(tempfile.mkdtemp(prefix="grounded-bench-"))
    os.environ["GROUNDED_HOME"] = str(work / "home")
    from desktop import process

    process.prepare()
    try:
        session = bench_session(args.threads, args.eval, work, args.switch_to)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"startup": startup, "session": session, "memory_steps": bench_memory_steps()}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for part in result.values():
            for key, value in part.items():
                shown = f"{value:.1f}" if isinstance(value, float) else value
                print(f"{key:32} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
