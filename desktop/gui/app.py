"""`grounded gui`: open the window. The window shows first; models load behind it.

Start-up imports only Qt and the window's own modules: numpy, SQLite, ONNX Runtime and llama.cpp are
imported by the background jobs that need them. ``python -m desktop.gui.app --exit-when-ready``
quits as soon as the window has been shown and the event loop has turned once, printing the
time since the process started (the start-up benchmark runs it).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from desktop import process
from desktop.core.config import home

log = logging.getLogger(__name__)


def _log_to_file() -> None:
    """Details (tracebacks included) go to a log file; the window shows one line."""
    folder = home().logs
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(folder / "grounded.log", maxBytes=2_000_000,
                                      backupCount=2, encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:  # `grounded gui` has set up stderr logging already: keep its level
        root.setLevel(logging.INFO)
    root.addHandler(handler)


def icon_path() -> Path:
    """The window icon: resources/icons/grounded.png of the checkout, or of the packaged app."""
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[2]))
    return base / "resources" / "icons" / "grounded.png"


def _process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc; else since this module loaded)."""
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _T0


_T0 = time.perf_counter()


def run(argv: list[str] | None = None) -> int:
    """Open the window and run until it closes; return the exit code."""
    argv = list(sys.argv if argv is None else argv)
    exit_when_ready = "--exit-when-ready" in argv
    argv = [a for a in argv if a != "--exit-when-ready"]
    process.prepare()
    _log_to_file()
    if hasattr(faulthandler, "register"):  # a window that hangs: `kill -USR1 PID` shows where
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from desktop.gui import theme
    from desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(argv or ["grounded"])
    app.setApplicationName("Grounded")
    app.setOrganizationName("Grounded")
    app.setDesktopFileName("grounded")  # resources/grounded.desktop
    if icon_path().is_file():
        app.setWindowIcon(QIcon(str(icon_path())))
    theme.apply(app)
    window = MainWindow()

    def on_uncaught(kind, value, tb) -> None:
        log.error("uncaught error", exc_info=(kind, value, tb))
        window.show_error(f"unexpected error: {kind.__name__}: {value} (details in the log)")

    sys.excepthook = on_uncaught
    window.show()
    if exit_when_ready:
        def ready() -> None:
            print(f"ready {_process_age_s() * 1000:.0f} ms", flush=True)
            window.close()
            app.quit()

        QTimer.singleShot(0, ready)
    else:
        QTimer.singleShot(0, window.start)
    return app.exec()


if __name__ == "__main__":
    sys.exit(run())
