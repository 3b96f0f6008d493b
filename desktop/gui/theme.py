"""Light and dark follow the system; colours for the window's HTML come from the palette.

Fusion everywhere (the same look on every OS). When the system reports a dark colour scheme
and the style's palette is light, a dark palette is set; when it turns light again, the
style's own. Widgets that render HTML call :func:`colors` so their text follows too.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Colors:
    """The colours the window's HTML uses, as CSS values."""

    text: str
    muted: str
    link: str
    mark: str  # background of a highlighted passage (and of evidence sentences)
    strong_mark: str  # background of the evidence sentence within its highlighted passage
    question: str  # background of a question bubble
    error: str
    dark: bool


def _dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(30, 31, 34), QColor(43, 45, 48), QColor(225, 226, 228)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        p.setColor(group, QPalette.ColorRole.Window, window)
        p.setColor(group, QPalette.ColorRole.WindowText, text)
        p.setColor(group, QPalette.ColorRole.Base, base)
        p.setColor(group, QPalette.ColorRole.AlternateBase, window)
        p.setColor(group, QPalette.ColorRole.Text, text)
        p.setColor(group, QPalette.ColorRole.Button, window)
        p.setColor(group, QPalette.ColorRole.ButtonText, text)
        p.setColor(group, QPalette.ColorRole.ToolTipBase, base)
        p.setColor(group, QPalette.ColorRole.ToolTipText, text)
        p.setColor(group, QPalette.ColorRole.PlaceholderText, QColor(140, 142, 146))
        p.setColor(group, QPalette.ColorRole.Highlight, QColor(53, 116, 240))
        p.setColor(group, QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
        p.setColor(group, QPalette.ColorRole.Link, QColor(110, 160, 255))
        p.setColor(group, QPalette.ColorRole.Mid, QColor(70, 72, 76))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 126))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, window)
    return p


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def apply(app: QApplication, scheme: Qt.ColorScheme | None = None) -> None:
    """Set the palette for ``scheme`` (default: the system's), and keep following it."""
    app.setStyle("Fusion")
    wanted = scheme if scheme is not None else app.styleHints().colorScheme()
    if wanted == Qt.ColorScheme.Dark:
        if not is_dark(app.style().standardPalette()):
            app.setPalette(_dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    if scheme is None and not app.property("grounded_follows_scheme"):
        app.setProperty("grounded_follows_scheme", True)
        app.styleHints().colorSchemeChanged.connect(lambda _s: apply(app))


def colors(palette: QPalette | None = None) -> Colors:
    """CSS colours for HTML shown in the window, from the current palette."""
    palette = palette or QGuiApplication.palette()
    dark = is_dark(palette)
    text = palette.color(QPalette.ColorRole.Text).name()
    return Colors(
        text=text,
        muted="#9a9ca1" if dark else "#6b6e73",
        link=palette.color(QPalette.ColorRole.Link).name(),
        mark="#6b5a12" if dark else "#fff1a8",
        strong_mark="#a07a00" if dark else "#ffc94a",
        question="#33363b" if dark else "#eef1f5",
        error="#ff8a80" if dark else "#b3261e",
        dark=dark,
    )
