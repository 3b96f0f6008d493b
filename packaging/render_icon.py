"""Render resources/icons/grounded.svg to grounded.png (256 px) with Qt's SVG renderer.

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icon.py
"""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def main(size: int = 256) -> None:
    app = QGuiApplication([])  # noqa: F841  (QPainter needs one)
    renderer = QSvgRenderer(str(ICONS / "grounded.svg"))
    if not renderer.isValid():
        raise SystemExit("grounded.svg does not parse")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(ICONS / "grounded.png")):
        raise SystemExit("could not write grounded.png")


if __name__ == "__main__":
    main()
